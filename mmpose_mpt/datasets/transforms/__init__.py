from .masked_heatmap_modeling import MaskedHeatmapModeling
from .pack_mesh_inputs import PackMeshInputs
from .random_virtual_camera import RandomVirtualCamera

__all__ = ['MaskedHeatmapModeling', 'PackMeshInputs', 'RandomVirtualCamera']

from .hand_crop import HandCrop
from .load_mesh_image import LoadMeshImage, MeshImageError
from .masked_heatmap_modeling import MaskedHeatmapModeling
from .mesh_image_crop import MeshImageCrop
from .pack_mesh_inputs import PackMeshInputs
from .random_virtual_camera import RandomVirtualCamera

__all__ = ['HandCrop', 'LoadMeshImage', 'MeshImageError', 'MaskedHeatmapModeling', 'MeshImageCrop',
           'PackMeshInputs', 'RandomVirtualCamera']

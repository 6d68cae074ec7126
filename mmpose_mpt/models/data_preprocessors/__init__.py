from .hand_preprocessors import HandHeatmapPreprocessor, HandImagePreprocessor
from .mesh_image_preprocessor import MeshImagePreprocessor
from .mocap_heatmap_preprocessor import MoCapHeatmapPreprocessor
from .render_heatmaps import render_heatmaps

__all__ = ['HandHeatmapPreprocessor', 'HandImagePreprocessor', 'MeshImagePreprocessor',
           'MoCapHeatmapPreprocessor', 'render_heatmaps']

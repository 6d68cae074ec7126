from .mocap_heatmap_preprocessor import MoCapHeatmapPreprocessor
from .render_heatmaps import render_heatmaps

__all__ = ['MoCapHeatmapPreprocessor', 'render_heatmaps']

from .ae_higher_resolution_neck import AEHigherResolutionNeck
from .concat_heatmap_head import ConcatHeatmapHead

__all__ = ['ConcatHeatmapHead', 'AEHigherResolutionNeck']

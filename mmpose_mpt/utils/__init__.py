from .mmpose_compat import ensure_mmpose_visualization_importable
from .runtime import adapt_cfg_to_device, init_distributed_without_cuda

__all__ = ['adapt_cfg_to_device', 'init_distributed_without_cuda',
           'ensure_mmpose_visualization_importable']

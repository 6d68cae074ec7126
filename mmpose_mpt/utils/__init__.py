from .mmpose_compat import ensure_mmpose_visualization_importable
from .runtime import adapt_cfg_to_device

__all__ = ['adapt_cfg_to_device', 'ensure_mmpose_visualization_importable']

from .runtime import adapt_cfg_to_device

__all__ = ['adapt_cfg_to_device']

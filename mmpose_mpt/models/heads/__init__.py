from .mpt_head import MPTHead

__all__ = ['MPTHead']

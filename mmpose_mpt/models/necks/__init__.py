from .ae_higher_resolution_neck import AEHigherResolutionNeck

__all__ = ['AEHigherResolutionNeck']

from .short_epoch_linear_lr import ShortEpochLinearLR

__all__ = ['ShortEpochLinearLR']

from .mpt_loss import MPTLoss, masked_l1

__all__ = ['MPTLoss', 'masked_l1']

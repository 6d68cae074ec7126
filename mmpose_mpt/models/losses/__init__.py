from .mpt_loss import MPTLoss, MPTLossInputError, masked_l1

__all__ = ['MPTLoss', 'MPTLossInputError', 'masked_l1']

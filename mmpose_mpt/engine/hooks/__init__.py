from .non_finite_loss_hook import NonFiniteLossHook
from .resumable_checkpoint_hook import ResumableCheckpointHook

__all__ = ['NonFiniteLossHook', 'ResumableCheckpointHook']

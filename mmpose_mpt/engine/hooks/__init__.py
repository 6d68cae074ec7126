from .mesh_visualization_hook import MeshVisualizationHook
from .non_finite_loss_hook import NonFiniteLossHook
from .resumable_checkpoint_hook import ResumableCheckpointHook
from .strict_checkpoint_hook import (CheckpointError, CheckpointMismatchError, StrictCheckpointHook,
                                     check_checkpoint_file)

__all__ = ['MeshVisualizationHook', 'NonFiniteLossHook', 'ResumableCheckpointHook', 'StrictCheckpointHook',
           'CheckpointError', 'CheckpointMismatchError', 'check_checkpoint_file']

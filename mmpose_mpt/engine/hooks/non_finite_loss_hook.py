"""Stop training at the first non-finite loss, naming the iteration and where the batch came from."""
import math
from typing import Optional, Sequence

import torch
from mmengine.hooks import Hook
from mmpose.registry import HOOKS

# Meta fields that identify a sample's source (MoCap: sequence + frame; image datasets: image path).
SOURCE_KEYS = ('dataset_name', 'seq_name', 'frame_index', 'img_path', 'sample_idx')


def describe_batch_sources(data_batch: Optional[dict], max_items: int = 8) -> str:
    """One line per sample (at most ``max_items``) with the meta fields that say where it came from."""
    if not data_batch or 'data_samples' not in data_batch:
        return '<unknown batch>'
    lines = []
    samples = data_batch['data_samples']
    for ds in samples[:max_items]:
        meta = ds.metainfo if hasattr(ds, 'metainfo') else dict(ds)
        lines.append(', '.join(f'{k}={meta[k]}' for k in SOURCE_KEYS if k in meta) or '<no meta>')
    if len(samples) > max_items:
        lines.append(f'... and {len(samples) - max_items} more')
    return '\n  '.join(lines)


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Raise ``FloatingPointError`` when a loss term is NaN / inf.

    Continuing would silently destroy the weights (Adam moments become NaN); stopping with the
    iteration and the batch's sources lets a user find the bad sequence and resume from the last
    checkpoint.
    """

    priority = 'ABOVE_NORMAL'

    def after_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if not outputs:
            return
        bad = []
        for name, value in outputs.items():
            v = value.item() if isinstance(value, torch.Tensor) else value
            if isinstance(v, float) and not math.isfinite(v):
                bad.append(f'{name}={v}')
        if bad:
            raise FloatingPointError(
                f'non-finite loss at iteration {runner.iter + 1} (epoch {runner.epoch + 1}): '
                f'{", ".join(bad)}. Batch sources:\n  {describe_batch_sources(data_batch)}')

"""Stop training at the first non-finite loss, naming the iteration and every sample of the batch."""
import cmath
import json
import os
import os.path as osp
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from mmengine.hooks import Hook
from mmpose.registry import HOOKS

# Meta fields that identify a sample's source (MoCap: sequence + frame; image datasets: image path).
SOURCE_KEYS = ('dataset_name', 'seq_name', 'frame_index', 'img_path', 'sample_idx')
MAX_LINES = 64  # samples named in the message itself; the file in the work dir has all of them


def _non_finite_fields(fields: Dict[str, Any]) -> List[str]:
    bad = []
    for k, v in fields.items():
        if isinstance(v, torch.Tensor):
            if v.is_floating_point() and not bool(torch.isfinite(v).all()):
                bad.append(k)
        elif isinstance(v, (np.ndarray, np.generic)) and np.asarray(v).dtype.kind in 'fc':
            if not np.isfinite(v).all():
                bad.append(k)
        elif isinstance(v, (float, complex)) and not cmath.isfinite(v):
            bad.append(k)
    return bad


def batch_sources(data_batch: Optional[dict]) -> List[dict]:
    """Every sample of the batch: its source meta fields and the names of its non-finite inputs /
    ground-truth fields (``inputs``, ``gt_instances.<field>``, ``<meta field>``); the samples with
    non-finite values first, then the others, each group in batch order."""
    if not data_batch or 'data_samples' not in data_batch:
        return []
    samples = data_batch['data_samples']
    inputs = data_batch.get('inputs')
    out = []
    for i, ds in enumerate(samples):
        meta = ds.metainfo if hasattr(ds, 'metainfo') else dict(ds)
        bad = _non_finite_fields(meta)
        gt = getattr(ds, 'gt_instances', None)
        if gt is not None:
            bad += [f'gt_instances.{k}' for k in _non_finite_fields(dict(gt.items()))]
        if isinstance(inputs, (list, tuple, torch.Tensor)) and i < len(inputs):
            bad += _non_finite_fields({'inputs': inputs[i]})
        src = {k: (meta[k].item() if isinstance(meta[k], np.generic) else meta[k]) for k in SOURCE_KEYS
               if k in meta}
        out.append(dict(index=i, source=src, non_finite=bad))
    return [s for s in out if s['non_finite']] + [s for s in out if not s['non_finite']]


def _line(s: dict) -> str:
    src = ', '.join(f'{k}={v}' for k, v in s['source'].items()) or '<no meta>'
    return (f"{'*' if s['non_finite'] else ' '} [{s['index']}] {src}"
            + (f" (non-finite: {', '.join(s['non_finite'])})" if s['non_finite'] else ''))


def describe_batch_sources(data_batch: Optional[dict], max_items: int = MAX_LINES,
                           sources: Optional[List[dict]] = None) -> str:
    """One line per sample (at most ``max_items``, non-finite ones first, marked ``*``);
    ``sources``: :func:`batch_sources` of the batch when the caller has it already."""
    if sources is None:
        sources = batch_sources(data_batch)
    if not sources:
        return '<unknown batch>'
    lines = [_line(s) for s in sources[:max_items]]
    if len(sources) > max_items:
        lines.append(f'... and {len(sources) - max_items} more')
    return '\n  '.join(lines)


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Raise ``FloatingPointError`` when a loss term is NaN / inf.

    Continuing would silently destroy the weights (Adam moments become NaN); stopping with the
    iteration and every sample of the batch (those holding non-finite inputs or ground truth first;
    all of them also in ``<work_dir>/non_finite_loss_iter<N>[_rank<R>].json``) lets a user find the bad
    sequence and resume from the last checkpoint.
    """

    priority = 'ABOVE_NORMAL'

    def after_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if not outputs:
            return
        bad = []
        for name, value in outputs.items():
            if _non_finite_fields({name: value}):
                v = value.item() if isinstance(value, torch.Tensor) and value.numel() == 1 else value
                bad.append(f'{name}={v}' if not isinstance(v, (torch.Tensor, np.ndarray)) else
                           f'{name} (non-finite elements)')
        if not bad:
            return
        it = runner.iter + 1
        sources = batch_sources(data_batch)
        n_bad = sum(1 for s in sources if s['non_finite'])
        listing = self._write(runner, it, bad, sources)
        raise FloatingPointError(
            f'non-finite loss at iteration {it} (epoch {runner.epoch + 1}): {", ".join(bad)}. '
            f'Batch of {len(sources)} samples, {n_bad} with non-finite inputs or ground truth (listed '
            f'first, marked *){"; every sample in " + listing if listing else ""}:\n  '
            f'{describe_batch_sources(data_batch, sources=sources)}')

    @staticmethod
    def _write(runner, it: int, bad: List[str], sources: List[dict]) -> Optional[str]:
        work_dir = getattr(runner, 'work_dir', None)
        if not work_dir:
            return None
        rank = getattr(runner, 'rank', 0)
        world = getattr(runner, 'world_size', 1)
        path = osp.join(work_dir, f'non_finite_loss_iter{it}' + (f'_rank{rank}' if world > 1 else '')
                        + '.json')
        try:
            os.makedirs(work_dir, exist_ok=True)
            with open(path, 'w') as f:
                json.dump(dict(iteration=it, epoch=runner.epoch + 1, losses=bad, samples=sources), f,
                          indent=1, default=str)
        except OSError:
            return None
        return path

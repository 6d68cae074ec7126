"""Checkpoints that load with ``torch.load(weights_only=True)`` and resume the exact trajectory.

Two gaps of mmengine 0.10 with torch >= 2.6 are closed here:

* torch now loads with ``weights_only=True`` by default, and mmengine's checkpoints hold the message
  hub's ``HistoryBuffer`` objects (pickled with bound methods, i.e. the ``getattr`` global) and numpy
  arrays/scalars, so ``--resume`` fails with "Unsupported global". Allow-listing ``getattr`` would make
  the safe loader unsafe; instead, before saving, those objects are turned into plain containers and
  tensors, and rebuilt after loading.
* mmengine re-seeds every generator from ``randomness.seed`` when a runner starts, so a resumed run
  would draw different virtual views, joint masks, heatmap noise and MVM masks than the uninterrupted
  run from that point on. The generators' states are saved and restored.
"""
import pickle
import random
from typing import Any

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging.history_buffer import HistoryBuffer
from mmpose.registry import HOOKS

_BUFFER_TAG = '__history_buffer__'


def to_weights_only(obj: Any) -> Any:
    """Recursively replace numpy objects and HistoryBuffers by tensors / python values / tagged dicts."""
    if isinstance(obj, HistoryBuffer):
        logs, counts = obj.data
        return {_BUFFER_TAG: True, 'log': torch.from_numpy(np.asarray(logs, np.float64)),
                'count': torch.from_numpy(np.asarray(counts, np.float64)),
                'max_length': int(obj.max_length)}
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return type(obj)((k, to_weights_only(v)) for k, v in obj.items()) \
            if type(obj) in (dict, ) else {k: to_weights_only(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_weights_only(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(to_weights_only(v) for v in obj)
    return obj


def from_weights_only(obj: Any) -> Any:
    """Inverse of :func:`to_weights_only` for the HistoryBuffers (other values stay plain)."""
    if isinstance(obj, dict):
        if obj.get(_BUFFER_TAG):
            return HistoryBuffer(obj['log'].numpy(), obj['count'].numpy(), obj['max_length'])
        return {k: from_weights_only(v) for k, v in obj.items()}
    return obj


@HOOKS.register_module()
class ResumableCheckpointHook(Hook):
    """Make checkpoints weights-only loadable and carry the RNG states (key ``rng_state``)."""

    priority = 'VERY_LOW'  # after every other hook has added its part to the checkpoint

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        name, keys, pos, has_gauss, cached = np.random.get_state()
        state = dict(python=random.getstate(),
                     numpy=(name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss),
                            float(cached)),
                     torch=torch.get_rng_state())
        if torch.cuda.is_available():
            state['cuda'] = torch.cuda.get_rng_state_all()
        checkpoint['rng_state'] = state
        for key in ('meta', 'message_hub'):
            if key in checkpoint:
                checkpoint[key] = to_weights_only(checkpoint[key])

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if 'message_hub' in checkpoint:
            checkpoint['message_hub'] = from_weights_only(checkpoint['message_hub'])
        if not getattr(runner, '_resume', False):
            return  # `load_from` for fine-tuning keeps the new run's seeds
        self._restore_dataset_meta(runner, checkpoint)
        state = checkpoint.get('rng_state')
        if state is None:
            return
        random.setstate(state['python'])
        name, keys, pos, has_gauss, cached = state['numpy']
        np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
        torch.set_rng_state(state['torch'])
        if 'cuda' in state and torch.cuda.is_available() and \
                len(state['cuda']) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state['cuda'])

    @staticmethod
    def _restore_dataset_meta(runner, checkpoint: dict) -> None:
        """mmengine's resume compares ``pickle.dumps`` of the saved and the current dataset metainfo;
        the saved one had its arrays turned into lists, so every resume warned "dataset metainfo is
        different". When the saved metainfo equals the current one converted the same way, give
        mmengine the current object; a real difference still warns."""
        meta = checkpoint.get('meta')
        if not isinstance(meta, dict) or meta.get('dataset_meta') is None:
            return
        try:
            current = runner.train_dataloader.dataset.metainfo
        except Exception:  # noqa: BLE001 - no train dataloader: mmengine's check has nothing to compare
            return
        # mmengine's own measure, on the current metainfo converted as the saved one was
        if pickle.dumps(to_weights_only(current)) == pickle.dumps(meta['dataset_meta']):
            meta['dataset_meta'] = current


"""Checkpoints that load with ``torch.load(weights_only=True)`` and resume the exact trajectory.

Gaps of mmengine 0.10 (with torch >= 2.6) closed here:

* torch now loads with ``weights_only=True`` by default, and mmengine's checkpoints hold the message
  hub's ``HistoryBuffer`` objects (pickled with bound methods, i.e. the ``getattr`` global) and numpy
  arrays/scalars, so ``--resume`` fails with "Unsupported global". Allow-listing ``getattr`` would make
  the safe loader unsafe; instead, before saving, those objects are turned into plain containers and
  tensors, and rebuilt after loading.
* mmengine re-seeds every generator from ``randomness.seed`` when a runner starts, so a resumed run
  would draw different virtual views, joint masks, heatmap noise and MVM masks than the uninterrupted
  run from that point on. The generators' states are saved and restored.
* validation draws from torch's generator (every DataLoader iterator takes a base seed), after the
  epoch's checkpoint was saved: the uninterrupted run trained on from a state the resumed one never
  had. Validation leaves the generators as it found them, so training does not depend on it.
* with ``randomness.seed=None`` the resumed run draws its own seed and builds its sampler with it
  before the checkpoint is read; the checkpoint's seed is adopted (``_adopt_checkpoint_seed``).
"""
import functools
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

    @staticmethod
    def _rng_now() -> tuple:
        return (random.getstate(), np.random.get_state(), torch.get_rng_state(),
                torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        # a checkpoint saved during validation (mmengine re-saves the epoch's checkpoint when the best
        # score improves) gets the state training continues from, which after_val restores
        saved = getattr(self, '_train_rng', None)
        py, (name, keys, pos, has_gauss, cached), torch_state, cuda_state = \
            saved if saved is not None else self._rng_now()
        state = dict(python=py,
                     numpy=(name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss),
                            float(cached)),
                     torch=torch_state)
        if cuda_state is not None:
            state['cuda'] = cuda_state
        checkpoint['rng_state'] = state
        for key in ('meta', 'message_hub'):
            if key in checkpoint:
                checkpoint[key] = to_weights_only(checkpoint[key])

    def before_val(self, runner) -> None:
        self._train_rng = self._rng_now()

    def after_val(self, runner) -> None:
        state = getattr(self, '_train_rng', None)
        if state is None:
            return
        random.setstate(state[0])
        np.random.set_state(state[1])
        torch.set_rng_state(state[2])
        if state[3] is not None:
            torch.cuda.set_rng_state_all(state[3])
        self._train_rng = None

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if 'message_hub' in checkpoint:
            checkpoint['message_hub'] = from_weights_only(checkpoint['message_hub'])
        if not getattr(runner, '_resume', False):
            return  # `load_from` for fine-tuning keeps the new run's seeds
        self._restore_dataset_meta(runner, checkpoint)
        self._adopt_checkpoint_seed(runner, checkpoint)
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
    def _adopt_checkpoint_seed(runner, checkpoint: dict) -> None:
        """Continue with the checkpoint's seed, everywhere the new run already used its own.

        With ``randomness.seed=None`` every run draws its own seed, and mmengine builds the train
        dataloader with it (sampler seed, workers' ``worker_init_fn``) before the checkpoint is read;
        mmengine's resume then re-seeds every generator with the checkpoint's seed (after this hook
        restored their states, which are lost). Here the checkpoint's seed becomes the runner's
        before the states are restored (mmengine then finds them equal and re-seeds nothing), and the
        sampler / worker seeds that came from the runner's seed are set to it: the sample order
        (DefaultSampler, ResumableMultiSourceSampler) continues the interrupted run's."""
        seed = checkpoint.get('meta', {}).get('seed') if isinstance(checkpoint.get('meta'), dict) \
            else None
        cfg = getattr(runner, '_randomness_cfg', None)
        if seed is None or not isinstance(cfg, dict) or seed == cfg.get('seed'):
            return
        old = runner.seed
        if cfg.get('seed') is not None:   # mmengine's own warning, which it no longer reaches
            runner.logger.warning(f'The value of random seed in the checkpoint "{seed}" is different '
                                  f'from the value in `randomness` config "{cfg.get("seed")}"')
        cfg['seed'] = seed
        runner.set_randomness(**cfg)
        loop = getattr(runner, '_train_loop', None)
        loader = getattr(loop, 'dataloader', None)
        sampler = getattr(loader, 'sampler', None)
        if sampler is not None and getattr(sampler, 'seed', None) == old:
            sampler.seed = seed
        init_fn = getattr(loader, 'worker_init_fn', None)
        if isinstance(init_fn, functools.partial) and init_fn.keywords.get('seed') == old:
            loader.worker_init_fn = functools.partial(init_fn.func, *init_fn.args,
                                                      **dict(init_fn.keywords, seed=seed))

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


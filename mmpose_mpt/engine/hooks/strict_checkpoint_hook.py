"""Strict checkpoint loading: a checkpoint that does not fit the model is an error, not a warning.

mmengine's runner loads ``load_from`` / ``--resume`` / ``tools/test.py CONFIG CKPT`` with
``strict=False``: a checkpoint of another model (or a wrong file) logs one "missing keys" warning among
hundreds of lines and the run goes on from random weights, so an untrained model is scored (or
fine-tuned) as if it were the checkpoint. :class:`StrictCheckpointHook` runs in the runner's
``after_load_checkpoint`` (before the weights are copied, for ``Runner`` and ``FlexibleRunner`` alike)
and compares the checkpoint's ``state_dict`` with the model's: any missing, unexpected or
shape-mismatched tensor is one :class:`CheckpointMismatchError` naming the file and the counts.

Intended partial loads (e.g. a pre-trained MPT head into a fine-tuning model whose pose network comes
from elsewhere) are explicit: the config key ``load_partial = True`` (anything that does not fit is left
out) or a list of ``fnmatch`` patterns of the keys allowed not to fit (``['backbone.*', 'neck.*']``;
any other mismatch is still an error). What was not loaded is listed in the log, key by key, and a
partial load that loads nothing is still an error.

:func:`check_checkpoint_file` gives the same kind of one-line error for files that are not
checkpoints at all (missing, empty, truncated, text, or holding objects ``torch.load(weights_only=True)``
refuses); ``tools/train.py`` and ``tools/test.py`` call it before building the runner.
"""
import fnmatch
import os.path as osp
import re
import zipfile
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from mmengine.hooks import Hook
from mmpose.registry import HOOKS

from ...utils.cli import MPTUserError

PartialSpec = Union[bool, str, Sequence[str], None]
DEFAULT_REVISE_KEYS = ((r'^module.', ''), )  # exactly mmengine's Runner.load_checkpoint default


class CheckpointError(MPTUserError, RuntimeError):
    """A checkpoint file is missing, unreadable, or not a checkpoint."""


class CheckpointMismatchError(CheckpointError):
    """A checkpoint does not fit the model it is loaded into."""


def check_checkpoint_file(path: str) -> None:
    """Raise :class:`CheckpointError` unless ``path`` is a local checkpoint that
    ``torch.load(weights_only=True)`` reads into a dict (URLs and other URIs are left to mmengine).

    The file is memory-mapped where torch allows it, so the check costs little even for large files.
    """
    if '://' in str(path):
        return
    if not osp.exists(path):
        raise CheckpointError(f'{path}: checkpoint not found')
    if not osp.isfile(path):
        raise CheckpointError(f'{path}: checkpoint is not a file')
    if osp.getsize(path) == 0:
        raise CheckpointError(f'{path}: checkpoint is an empty file')
    is_zip = zipfile.is_zipfile(path)
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True, mmap=is_zip)
    except Exception as e:  # noqa: BLE001 - torch raises many types; each becomes one line
        msg = str(e)
        if 'Weights only load failed' in msg or 'Unsupported global' in msg:
            found = re.search(r'Unsupported global: GLOBAL ([\w.]+)', msg)
            raise CheckpointError(
                f'{path}: holds Python objects that torch.load(weights_only=True) refuses '
                f'({found.group(1) if found else msg.splitlines()[0]}); a checkpoint of tools/train.py '
                'holds only tensors and plain values. If you trust the file, re-save its state_dict: '
                "torch.save({'state_dict': torch.load(f, weights_only=False)['state_dict']}, out)"
            ) from None
        with open(path, 'rb') as fh:
            head = fh.read(4)
        what = ('a truncated or corrupt zip archive' if head.startswith(b'PK') else
                'a truncated pickle' if isinstance(e, EOFError) or head[:1] == b'\x80' else
                'not a PyTorch checkpoint (text or other data)')
        raise CheckpointError(f'{path}: cannot load the checkpoint: {what} ({type(e).__name__}: '
                              f'{msg.splitlines()[0] if msg else ""})') from None
    if not isinstance(ckpt, Mapping):
        raise CheckpointError(f'{path}: not a checkpoint (torch.load gives a {type(ckpt).__name__}, '
                              'expected a dict with a state_dict)')


def _revise(keys: List[str], revise_keys: Sequence[Tuple[str, str]]) -> Dict[str, str]:
    """{original key: key after mmengine's ``revise_keys`` substitutions}."""
    out = {}
    for k in keys:
        r = k
        for p, s in revise_keys:
            r = re.sub(p, s, r)
        out[k] = r
    return out


def _patterns(partial: PartialSpec) -> Optional[List[str]]:
    if partial is None or partial is False:
        return None
    if partial is True:
        return ['*']
    if isinstance(partial, str):
        return [partial]
    if isinstance(partial, (list, tuple)) and all(isinstance(p, str) for p in partial):
        return list(partial)
    raise CheckpointError(f'load_partial must be False, True or a list of key patterns (e.g. '
                          f"['backbone.*']), got {partial!r}")


def _describe(v: object) -> str:
    if not isinstance(v, torch.Tensor):
        return f'a {type(v).__name__}, not a tensor'
    if v.is_meta:
        return f'meta tensor {tuple(v.shape)} (no data)'
    return str(tuple(v.shape)) + (' complex' if v.is_complex() else '')


def compare_state_dict(model_state: Mapping[str, torch.Tensor], ckpt_state: Mapping[str, object]
                       ) -> Tuple[List[str], List[str], List[Tuple[str, str, str]]]:
    """(missing: model keys absent from the checkpoint, unexpected: checkpoint keys the model lacks,
    mismatched: (key, checkpoint value, model value) of entries in both that cannot be loaded as they
    are: another shape, not a tensor, a meta tensor without data, complex for real or real for
    complex)."""
    missing = [k for k in model_state if k not in ckpt_state]
    unexpected = [k for k in ckpt_state if k not in model_state]
    mismatched = []
    for k, v in ckpt_state.items():
        if k in model_state:
            m = model_state[k]
            ok = (isinstance(v, torch.Tensor) and not v.is_meta and tuple(v.shape) == tuple(m.shape)
                  and v.is_complex() == m.is_complex())
            if not ok:
                mismatched.append((k, _describe(v), _describe(m)))
    return missing, unexpected, mismatched


def state_dict_of(checkpoint: object, filename: str) -> Mapping:
    """The state dict of a loaded checkpoint (``checkpoint['state_dict']``, or the checkpoint itself
    when it is a bare state dict), checked to be a mapping with string keys.

    Raises:
        CheckpointError: naming ``filename`` and what is wrong.
    """
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f'{filename}: not a checkpoint (a {type(checkpoint).__name__}, expected a '
                              'dict with a state_dict)')
    raw = checkpoint['state_dict'] if 'state_dict' in checkpoint else checkpoint
    if not isinstance(raw, Mapping):
        raise CheckpointError(f'{filename}: its state_dict is a {type(raw).__name__}, not a dict')
    bad = [k for k in raw if not isinstance(k, str)]
    if bad:
        raise CheckpointError(f'{filename}: its state_dict has {len(bad)} key(s) that are not strings '
                              f'(e.g. a {type(bad[0]).__name__})')
    return raw


def _examples(keys: List[str], n: int = 3) -> str:
    return ', '.join(keys[:n]) + (', ...' if len(keys) > n else '')


@HOOKS.register_module()
class StrictCheckpointHook(Hook):
    """Refuse checkpoints that do not fit the model (see the module docstring).

    Args:
        partial: default for the config key ``load_partial`` (which wins when set): False = strict;
            True = load whatever fits; a list of ``fnmatch`` patterns = only keys matching them may
            be missing / unexpected / of another shape.
    """

    priority = 'VERY_HIGH'  # before any other hook uses the checkpoint (e.g. restores RNG states)

    def __init__(self, partial: PartialSpec = False,
                 revise_keys: Sequence[Tuple[str, str]] = DEFAULT_REVISE_KEYS) -> None:
        self.partial = partial
        self.revise_keys = [tuple(r) for r in revise_keys]

    @staticmethod
    def _filename(runner) -> str:
        name = getattr(runner, '_load_from', None)
        if name is None and getattr(runner, '_resume', False):
            from mmengine.runner import find_latest_checkpoint
            name = find_latest_checkpoint(runner.work_dir)
        return str(name) if name else 'the checkpoint'

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        from mmengine.model import is_model_wrapper
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        cfg = getattr(runner, 'cfg', None)
        partial = cfg.get('load_partial', self.partial) if cfg is not None else self.partial
        filename = self._filename(runner)
        self.check(model, checkpoint, filename, partial, runner.logger)

    def check(self, model: torch.nn.Module, checkpoint: dict, filename: str, partial: PartialSpec = False,
              logger=None) -> None:
        """Raise :class:`CheckpointMismatchError`, or (partial) drop what does not fit from
        ``checkpoint`` in place and log every key that is not loaded."""
        pats = _patterns(partial)  # a bad load_partial is an error even when the checkpoint fits
        raw = state_dict_of(checkpoint, filename)
        names = _revise(list(raw), self.revise_keys)
        ckpt_state = OrderedDict((names[k], raw[k]) for k in names)
        model_state = model.state_dict()
        missing, unexpected, mismatched = compare_state_dict(model_state, ckpt_state)
        if not (missing or unexpected or mismatched):
            return
        allowed = (lambda k: any(fnmatch.fnmatchcase(k, p) for p in pats)) if pats else (lambda k: False)
        refused = ([k for k in missing if not allowed(k)], [k for k in unexpected if not allowed(k)],
                   [m for m in mismatched if not allowed(m[0])])
        loaded = len(model_state) - len(missing) - len(mismatched)
        counts = (f'{len(missing)} of the model\'s {len(model_state)} tensors missing from it, '
                  f'{len(unexpected)} unexpected, {len(mismatched)} with another shape or type')
        if any(refused) or loaded <= 0:
            m, u, s = refused if any(refused) else (missing, unexpected, mismatched)
            parts = ([f'missing e.g. {_examples(m)}'] if m else []) + \
                ([f'unexpected e.g. {_examples(u)}'] if u else []) + \
                ([f'not loadable e.g. {s[0][0]}: {s[0][1]} vs model {s[0][2]}'] if s else [])
            hint = ('nothing of it fits the model' if loaded <= 0 and pats else
                    'to load the part that fits on purpose, set load_partial=True or a list of key '
                    'patterns (e.g. load_partial=[\'backbone.*\']) in the config'
                    + (f' (load_partial={partial!r} does not cover these)' if pats else ''))
            raise CheckpointMismatchError(
                f'{filename}: the checkpoint does not fit the model {type(model).__name__}: {counts} '
                f'({"; ".join(parts)}); {hint}')
        # an intended partial load: drop what does not fit, list every key that is not loaded
        drop = set(unexpected) | {m[0] for m in mismatched}
        for orig, new in names.items():
            if new in drop:
                del raw[orig]
        lines = [f'partial load of {filename} (load_partial={partial!r}): {loaded} of '
                 f'{len(model_state)} model tensors loaded; {counts}. Not loaded:']
        lines += [f'  missing (kept as initialised): {k}' for k in missing]
        lines += [f'  {cs} in the checkpoint vs {ms} in the model (kept as initialised): {k}'
                  for k, cs, ms in mismatched]
        lines += [f'  unexpected (ignored): {k}' for k in unexpected]
        if logger is not None:
            logger.warning('\n'.join(lines))

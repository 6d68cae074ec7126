"""Load a released 2D pose-network checkpoint (mmpose 0.x or 1.x) into a backbone + neck, strictly.

MPT's image path (Sec. 3.2, 3.3) puts a COCO-trained 2D pose network in front of the MPT head:
``MeshEstimator.backbone`` (e.g. ``HRNet`` / ``ResNet``) and ``MeshEstimator.neck`` (the network's
own head, e.g. :class:`AEHigherResolutionNeck` / mmpose's ``HeatmapHead``). Released checkpoints name
these parts differently:

* mmpose 0.x (e.g. ``higher_hrnet48_coco_512x512-60fedcbc_20200712.pth``): ``backbone.*`` and
  ``keypoint_head.*``;
* mmpose 1.x (e.g. ``td-hm_res101_8xb64-210e_coco-256x192-065d3625_20220926.pth``): ``backbone.*``
  and ``head.*``. In a ``MeshEstimator`` ``head`` is the MPT head, so these keys go to the *neck*.

Either may sit in a ``{'state_dict': ...}`` container (with ``meta`` etc.) or be a bare state dict;
a ``module.`` prefix (DataParallel) is stripped. mmengine's ``init_cfg=dict(type='Pretrained')`` and
``load_from`` load with ``strict=False``, which turns a wrong file into a log warning and random
weights; here any missing, unexpected or mis-shaped tensor is one :class:`CheckpointMismatchError`.

Files are read with ``torch.load(weights_only=True)``. Released mmpose 1.x checkpoints also keep
mmengine's ``meta['dataset_meta']``, whose numpy arrays ``weights_only`` refuses; those files are read
again through the project's restricted unpickler (:mod:`mmpose_mpt.utils.restricted_pickle`) extended
by torch's tensor rebuild functions only: nothing the file names is called, numpy arrays are rebuilt
from plain buffers and any other object becomes an inert record.
"""
import importlib
import os.path as osp
import pickle
import re
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from typing import Dict, Optional, Tuple

import torch
from torch import nn

from ...engine.hooks.strict_checkpoint_hook import (CheckpointError, CheckpointMismatchError,
                                                    check_checkpoint_file, compare_state_dict,
                                                    state_dict_of)
from ...utils.restricted_pickle import RestrictedUnpickler, to_plain

BACKBONE_PREFIX = 'backbone.'
NECK_PREFIXES = ('keypoint_head.', 'head.')  # mmpose 0.x, mmpose 1.x


def _examples(keys, n: int = 3) -> str:
    keys = list(keys)
    return ', '.join(keys[:n]) + (', ...' if len(keys) > n else '')


def _local_file(path: str) -> str:
    """``path``; a URL is refused: nothing is downloaded at run time (the configs name the URL to
    download by hand)."""
    if re.match(r'^[a-z][a-z0-9+.-]*://', str(path)):
        raise CheckpointError(f'{path}: pose_net_checkpoint must be a local file; download it first (e.g. '
                              'into data/pose_nets/) and pass its path')
    return str(path)


def _needs_more_than_weights(e: Exception) -> bool:
    msg = str(e)
    return 'Weights only load failed' in msg or 'Unsupported global' in msg


class _TorchRestrictedUnpickler(RestrictedUnpickler):
    """The project's restricted unpickler plus exactly what torch needs to rebuild tensors."""

    _TORCH = {('torch._utils', '_rebuild_tensor_v2'), ('torch._utils', '_rebuild_tensor'),
              ('torch._utils', '_rebuild_parameter'), ('torch', 'Size')}

    def find_class(self, module: str, name: str):
        if (module, name) in self._TORCH:
            return getattr(importlib.import_module(module), name)
        if module == 'torch' and (name.endswith('Storage') or name == 'UntypedStorage'):
            cls = getattr(torch, name, None)
            if isinstance(cls, type):   # storage types: markers torch's persistent_load reads
                return cls
        if module == 'torch' and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        if module == 'collections' and name == 'OrderedDict':
            return OrderedDict
        return super().find_class(module, name)

    def load_build(self):
        # state dicts are OrderedDicts with a `_metadata` attribute (module versions): dropped, the
        # modules load without it; any other BUILD keeps the restricted unpickler's rule
        if isinstance(self.stack[-2], dict):
            self.stack.pop()
            return
        super().load_build()

    dispatch = dict(RestrictedUnpickler.dispatch)
    dispatch[pickle.BUILD[0]] = load_build


class _TorchRestrictedPickle:
    """A ``pickle_module`` for ``torch.load`` built on :class:`_TorchRestrictedUnpickler`."""

    Unpickler = _TorchRestrictedUnpickler
    __name__ = 'mmpose_mpt_restricted_pickle'

    @staticmethod
    def load(file, **kwargs):
        return _TorchRestrictedUnpickler(file, **kwargs).load()


def _restricted_torch_load(path: str) -> dict:
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=False,
                          pickle_module=_TorchRestrictedPickle)
        if isinstance(ckpt, dict) and 'meta' in ckpt:
            # numpy builders -> arrays, inert records stay records; a meta that does not convert
            # (bounded size / depth) is dropped: only the weights are needed
            try:
                ckpt['meta'] = to_plain(ckpt['meta'])
            except Exception:  # noqa: BLE001
                ckpt['meta'] = {}
        return ckpt
    except Exception as e:  # noqa: BLE001 - one line naming the file
        raise CheckpointError(f'{path}: cannot read the checkpoint, not even with the restricted unpickler '
                              f'({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""})') \
            from None


def read_checkpoint_state_dict(path: str) -> Tuple[Dict[str, torch.Tensor], dict]:
    """(state dict with ``module.`` stripped, the checkpoint's ``meta`` or {}) of ``path``.

    Read with ``torch.load(weights_only=True)``: a released ``.pth`` is a pickle, and only tensors and
    plain values are unpickled. A file that needs more is a :class:`CheckpointError` saying how to
    re-save it.
    """
    if not osp.isfile(path):
        check_checkpoint_file(path)  # missing / a directory: its one-line error
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True, mmap=zipfile.is_zipfile(path))
    except Exception as e:  # noqa: BLE001 - turned into one line by check_checkpoint_file
        if not _needs_more_than_weights(e):
            check_checkpoint_file(path)  # raises the CheckpointError describing what is wrong
            raise
        # released mmpose 1.x files keep mmengine's meta['dataset_meta'] (numpy arrays), which
        # weights_only refuses: read them with the restricted unpickler instead, which calls nothing
        # the file names (numpy arrays rebuilt from plain buffers, other objects inert records)
        ckpt = _restricted_torch_load(path)
    raw = state_dict_of(ckpt, path)
    meta = ckpt.get('meta') if isinstance(ckpt.get('meta'), Mapping) else {}
    state = OrderedDict((re.sub(r'^module\.', '', k), v) for k, v in raw.items())
    if not state:
        raise CheckpointError(f'{path}: the checkpoint holds no tensors (empty state_dict)')
    return state, dict(meta)


def load_pose_net_checkpoint(backbone: nn.Module, neck: Optional[nn.Module], path: str,
                             use_head: bool = True) -> dict:
    """Load a 2D pose network's checkpoint into ``backbone`` and ``neck``; everything must fit.

    Args:
        backbone: the pose network's backbone (gets the checkpoint's ``backbone.*``).
        neck: the pose network's head used as the MeshEstimator's neck (gets ``keypoint_head.*``, the
            mmpose 0.x name, or ``head.*``, the 1.x name); None for a backbone-only checkpoint.
        path: a local ``.pth`` file (URLs are refused: nothing is downloaded at run time).
        use_head: False (only with ``neck=None``): the checkpoint's head tensors (``keypoint_head.*`` /
            ``head.*``) are left out on purpose and only its backbone must fit (a model that reads the
            backbone's image features, Table 3b); counted in ``num_head_tensors_ignored``.

    Returns:
        ``dict(path, head_prefix, num_backbone_tensors, num_neck_tensors, num_head_tensors_ignored,
        meta)``; ``head_prefix`` is the checkpoint's name of the neck part (None when it has none).

    Raises:
        CheckpointError: the file is missing or not a checkpoint ``torch.load(weights_only=True)``
            reads, or names its head both ``keypoint_head.`` and ``head.``.
        CheckpointMismatchError: a tensor of the backbone / neck is missing from the file, the file
            has one they do not, or shapes differ (one error with the counts and example keys).
    """
    local = _local_file(path)
    state, meta = read_checkpoint_state_dict(local)
    used = [p for p in NECK_PREFIXES if any(k.startswith(p) for k in state)]
    if len(used) > 1:
        raise CheckpointError(f'{path}: the checkpoint has both keypoint_head.* (mmpose 0.x) and head.* '
                              '(mmpose 1.x) tensors; cannot tell which is the pose network\'s head')
    head_prefix = used[0] if used else None
    ignored = 0
    if not use_head:
        if neck is not None:
            raise ValueError('load_pose_net_checkpoint: use_head=False needs neck=None')
        kept = OrderedDict((k, v) for k, v in state.items() if not k.startswith(NECK_PREFIXES))
        ignored, state = len(state) - len(kept), kept
    # the model side, named as in the checkpoint (so messages show the file's own key names)
    model_state = OrderedDict((BACKBONE_PREFIX + k, v) for k, v in backbone.state_dict().items())
    if neck is not None:
        neck_prefix = head_prefix or NECK_PREFIXES[1]
        model_state.update((neck_prefix + k, v) for k, v in neck.state_dict().items())
    missing, unexpected, mismatched = compare_state_dict(model_state, state)
    if missing or unexpected or mismatched:
        parts = ([f'missing e.g. {_examples(missing)}'] if missing else []) + \
            ([f'unexpected e.g. {_examples(unexpected)}'] if unexpected else []) + \
            ([f'another shape e.g. {mismatched[0][0]}: {mismatched[0][1]} in the file vs '
              f'{mismatched[0][2]} in the model'] if mismatched else [])
        what = type(backbone).__name__ + (f' + {type(neck).__name__}' if neck is not None else '')
        raise CheckpointMismatchError(
            f'{path}: the checkpoint does not fit the pose network {what}: {len(missing)} of its '
            f'{len(model_state)} tensors missing from the file, {len(unexpected)} unexpected, '
            f'{len(mismatched)} with another shape or type ({"; ".join(parts)}); expected '
            f'backbone.* and {"keypoint_head.* or head.*" if neck is not None else "no head"} '
            'tensors of exactly this architecture (check the pose_net config against the checkpoint)')
    n = len(BACKBONE_PREFIX)
    backbone.load_state_dict(OrderedDict((k[n:], v) for k, v in state.items()
                                         if k.startswith(BACKBONE_PREFIX)), strict=True)
    num_neck = 0
    if neck is not None and head_prefix is not None:
        m = len(head_prefix)
        neck_state = OrderedDict((k[m:], v) for k, v in state.items() if k.startswith(head_prefix))
        neck.load_state_dict(neck_state, strict=True)
        num_neck = len(neck_state)
    return dict(path=str(path), head_prefix=head_prefix,
                num_backbone_tensors=len(state) - num_neck, num_neck_tensors=num_neck,
                num_head_tensors_ignored=ignored, meta=meta)

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
"""
import os
import os.path as osp
import re
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from typing import Dict, Optional, Tuple

import torch
from torch import nn

from ...engine.hooks.strict_checkpoint_hook import (CheckpointError, CheckpointMismatchError,
                                                    check_checkpoint_file, compare_state_dict)

BACKBONE_PREFIX = 'backbone.'
NECK_PREFIXES = ('keypoint_head.', 'head.')  # mmpose 0.x, mmpose 1.x


def _examples(keys, n: int = 3) -> str:
    keys = list(keys)
    return ', '.join(keys[:n]) + (', ...' if len(keys) > n else '')


def _local_file(path: str) -> str:
    """``path`` itself, or for an http(s) URL its copy in torch's hub cache (downloaded once)."""
    if not re.match(r'^https?://', str(path)):
        return str(path)
    dst = osp.join(torch.hub.get_dir(), 'checkpoints', osp.basename(path.split('?')[0]))
    if not osp.isfile(dst):
        os.makedirs(osp.dirname(dst), exist_ok=True)
        try:
            torch.hub.download_url_to_file(path, dst, progress=False)
        except Exception as e:  # noqa: BLE001 - network errors of many types; one line each
            raise CheckpointError(f'{path}: cannot download the checkpoint ({type(e).__name__}: {e}); '
                                  'download it yourself and pass the local file') from None
    return dst


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
    except Exception:  # noqa: BLE001 - turned into one line by check_checkpoint_file
        check_checkpoint_file(path)  # raises the CheckpointError describing what is wrong
        raise
    if not isinstance(ckpt, Mapping):
        raise CheckpointError(f'{path}: not a checkpoint (torch.load gives a {type(ckpt).__name__}, '
                              'expected a dict with a state_dict)')
    meta = ckpt.get('meta') if isinstance(ckpt.get('meta'), Mapping) else {}
    raw = ckpt['state_dict'] if 'state_dict' in ckpt else ckpt
    if not isinstance(raw, Mapping):
        raise CheckpointError(f'{path}: its state_dict is a {type(raw).__name__}, not a dict')
    bad = [k for k in raw if not isinstance(k, str)]
    if bad:
        raise CheckpointError(f'{path}: its state_dict has {len(bad)} key(s) that are not strings '
                              f'(e.g. a {type(bad[0]).__name__})')
    state = OrderedDict((re.sub(r'^module\.', '', k), v) for k, v in raw.items())
    if not state:
        raise CheckpointError(f'{path}: the checkpoint holds no tensors (empty state_dict)')
    return state, dict(meta)


def load_pose_net_checkpoint(backbone: nn.Module, neck: Optional[nn.Module], path: str) -> dict:
    """Load a 2D pose network's checkpoint into ``backbone`` and ``neck``; everything must fit.

    Args:
        backbone: the pose network's backbone (gets the checkpoint's ``backbone.*``).
        neck: the pose network's head used as the MeshEstimator's neck (gets ``keypoint_head.*``, the
            mmpose 0.x name, or ``head.*``, the 1.x name); None for a backbone-only checkpoint.
        path: a local ``.pth`` file (or an http(s) URL, downloaded once to torch's hub cache).

    Returns:
        ``dict(path, head_prefix, num_backbone_tensors, num_neck_tensors, meta)``; ``head_prefix`` is
        the checkpoint's name of the neck part (None when it has none).

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
                num_backbone_tensors=len(state) - num_neck, num_neck_tensors=num_neck, meta=meta)

"""mmhuman3d HumanData ``.npz`` annotations (open-mmlab/mmhuman3d
``mmhuman3d/data/data_structures/human_data.py``, ``docs/human_data.md``).

A file is ``np.savez_compressed(__key_strict__=..., __data_len__=N (older files:
__temporal_len__), __keypoints_compressed__=..., **keys)`` with (N samples):

* ``image_path`` (N,) str, relative to the dataset's image folder;
* ``bbox_xywh`` (N, 5) [x_min, y_min, w, h, conf] px (mmhuman3d appends conf = 1 to (N, 4));
* ``keypoints2d`` (N, 190, 3) [x, y, conf] / ``keypoints3d`` (N, 190, 4) [x, y, z, conf] metres in the
  190-joint ``'human_data'`` convention, with ``keypoints2d_mask`` / ``keypoints3d_mask`` (190,)
  (per-convention validity). If ``__keypoints_compressed__`` is true only the ``mask == 1`` columns
  are stored: (N, mask.sum(), D);
* ``smpl`` dict ``{global_orient (N, 3), body_pose (N, 23, 3) | (N, 69), betas (N, 10), transl}``,
  optional ``has_smpl`` (N,) (SPIN-converted files); ``meta`` dict with ``gender`` (N,) 'm' / 'f';
  ``config`` str (the converter, e.g. 'h36m', 'pw3d', 'coco').

The dicts are pickled object members: they are read with
:func:`mmpose_mpt.utils.restricted_pickle.load_npz_restricted` (no code from the file runs), every
other member with ``allow_pickle=False``.

Normalisation to SPIN / METRO: ``center`` = box centre, ``scale = max(w, h) / 200`` (mmhuman3d keeps
pixels); J24 = ``keypoints[:, HUMANDATA_TO_J24]`` with ``conf *= mask``. The Human3.6M head trap:
mmhuman3d's h36m converter stores H36M joint 9 in 'head_extra' (152) and joint 10 (the head) in
'headtop' (147), where SPIN / METRO put them in J24 slots 17 (Jaw) and 18 (Head, the slot LSP-14
reads). For files of Human3.6M origin slots 17 / 18 are therefore read from 152 / 147 and slot 13
(Top_of_Head_LSP) is left empty (see :mod:`mmpose_mpt.body_models.j24`).
"""
import os
import os.path as osp
from typing import Dict, List, Optional

import numpy as np

from ...body_models.j24 import (HUMANDATA_H36M_ORIGIN_J24_17_18, HUMANDATA_NUM_KEYPOINTS,
                                HUMANDATA_TO_J24, NUM_J24)
from .common import MeshAnnotations, MeshImageDatasetError, as_array, gender_code
from .spin_npz import _str_array, load_members, stack_records

__all__ = ['read_humandata_npz', 'write_humandata_npz', 'humandata_to_j24_index', 'HUMANDATA_KEYS',
           'is_h36m_config']

HUMANDATA_KEYS = ('__key_strict__', '__data_len__', '__temporal_len__', '__keypoints_compressed__',
                  'image_path', 'bbox_xywh', 'keypoints2d', 'keypoints2d_mask', 'keypoints2d_convention',
                  'keypoints3d', 'keypoints3d_mask', 'keypoints3d_convention', 'smpl', 'has_smpl', 'meta',
                  'config')


def is_h36m_config(config: str) -> bool:
    """Auto-detection of a Human3.6M-origin file: its ``config`` string contains 'h36m'."""
    return 'h36m' in str(config).lower()


def humandata_to_j24_index(h36m_origin: bool) -> np.ndarray:
    """(24,) int: the human_data index each J24 slot is read from, -1 = left empty."""
    idx = np.array(HUMANDATA_TO_J24, np.int64)
    if h36m_origin:
        idx[17], idx[18] = HUMANDATA_H36M_ORIGIN_J24_17_18
        idx[13] = -1
    return idx


def _scalar(d: Dict[str, np.ndarray], key: str, path: str):
    v = d[key]
    if v.shape != ():
        raise MeshImageDatasetError(f'{path}: {key!r} has shape {v.shape}, expected a scalar')
    return v.item()


def _object(d: Dict[str, np.ndarray], key: str, path: str, kind: type):
    v = _scalar(d, key, path)
    if not isinstance(v, kind):
        raise MeshImageDatasetError(f'{path}: {key!r} is a {type(v).__name__}, expected a '
                                    f'{kind.__name__}')
    return v


def _keypoints(d: Dict[str, np.ndarray], key: str, dim: int, n: int, compressed: bool,
               j24_index: np.ndarray, path: str) -> Optional[np.ndarray]:
    """(N, 24, dim) J24 keypoints of ``key`` with conf x mask, or None if the file has none."""
    if key not in d:
        return None
    conv_key = f'{key}_convention'
    if conv_key in d:
        conv = str(_scalar(d, conv_key, path))
        if conv != 'human_data':
            raise MeshImageDatasetError(f"{path}: {conv_key!r} is {conv!r}; only 'human_data' "
                                        '(the convention mmhuman3d stores) can be read')
    mask_key = f'{key}_mask'
    if mask_key in d:
        mask = as_array(d[mask_key], (HUMANDATA_NUM_KEYPOINTS, ), repr(mask_key), path)
    elif compressed:
        raise MeshImageDatasetError(f'{path}: {key!r} is compressed but the file has no {mask_key!r}')
    else:
        mask = np.ones(HUMANDATA_NUM_KEYPOINTS, np.float32)
    raw = d[key]
    if compressed:
        valid = np.flatnonzero(mask == 1)
        raw = as_array(raw, (n, len(valid), dim), f'{key!r} (compressed: the mask==1 columns)', path)
        full = np.zeros((n, HUMANDATA_NUM_KEYPOINTS, dim), np.float32)
        full[:, valid] = raw  # mmhuman3d HumanData.__add_zero_pad__
    else:
        full = as_array(raw, (n, HUMANDATA_NUM_KEYPOINTS, dim), repr(key), path)
    out = np.zeros((n, NUM_J24, dim), np.float32)
    have = j24_index >= 0
    out[:, have] = full[:, j24_index[have]]
    m = mask[j24_index[have]]
    out[:, have, -1] *= m
    out[:, np.flatnonzero(have)[m == 0]] = 0  # a joint the file's convention lacks: no coordinates either
    return out


def read_humandata_npz(path: str, h36m_origin: Optional[bool] = None) -> MeshAnnotations:
    """Read a HumanData file (see the module docstring); one :class:`MeshImageDatasetError` naming the
    file for anything malformed."""
    try:
        return _read_humandata_npz(path, h36m_origin)
    except MeshImageDatasetError:
        raise
    except (TypeError, ValueError) as e:   # ragged arrays, text where numbers belong, ...
        raise MeshImageDatasetError(f'{path}: malformed HumanData file ({type(e).__name__}: {e})') \
            from None


def _read_humandata_npz(path: str, h36m_origin: Optional[bool] = None) -> MeshAnnotations:
    """Read a HumanData ``.npz`` into :class:`MeshAnnotations` (see the module docstring).

    Args:
        h36m_origin: the file comes from mmhuman3d's Human3.6M converter (the head trap); None = auto:
            the file's ``config`` contains 'h36m'.

    Raises:
        MeshImageDatasetError: missing file / ``image_path`` / ``bbox_xywh``, a wrong shape or number of
        samples, a compressed array that does not match its mask, an unreadable or refused pickled
        member (names the file and key).
    """
    d = load_members(path, HUMANDATA_KEYS, 'HumanData annotation')
    for key in ('image_path', 'bbox_xywh'):
        if key not in d:
            raise MeshImageDatasetError(f'{path}: HumanData file has no {key!r} (keys: {sorted(d)})')
    names = _str_array(d['image_path'], "'image_path'", path)
    n = len(names)
    for key in ('__data_len__', '__temporal_len__'):
        if key in d:
            data_len = int(_scalar(d, key, path))
            if data_len >= 0 and data_len != n:
                raise MeshImageDatasetError(f"{path}: {key!r} is {data_len} but 'image_path' has {n} "
                                            'samples')
    compressed = bool(_scalar(d, '__keypoints_compressed__', path)) \
        if '__keypoints_compressed__' in d else False
    config = str(_scalar(d, 'config', path)) if 'config' in d else ''
    h36m = is_h36m_config(config) if h36m_origin is None else bool(h36m_origin)
    j24_index = humandata_to_j24_index(h36m)

    bbox = d['bbox_xywh']
    if bbox.ndim == 2 and bbox.shape[1] == 4:
        bbox = as_array(bbox, (n, 4), "'bbox_xywh'", path)
    else:
        bbox = as_array(bbox, (n, 5), "'bbox_xywh'", path)
    x, y, w, h = bbox[:, 0], bbox[:, 1], bbox[:, 2], bbox[:, 3]
    center = np.stack([x + w / 2, y + h / 2], 1).astype(np.float32)
    scale = (np.maximum(w, h) / 200.0).astype(np.float32)

    kp2d = _keypoints(d, 'keypoints2d', 3, n, compressed, j24_index, path)
    kp3d = _keypoints(d, 'keypoints3d', 4, n, compressed, j24_index, path)
    # no per-sample flags in HumanData: "has" = the key exists and the sample has a confidence > 0
    has_2d = np.zeros(n, np.float32) if kp2d is None else (kp2d[..., 2] > 0).any(1).astype(np.float32)
    has_3d = np.zeros(n, np.float32) if kp3d is None else (kp3d[..., 3] > 0).any(1).astype(np.float32)
    kp2d = np.zeros((n, NUM_J24, 3), np.float32) if kp2d is None else kp2d
    kp3d = np.zeros((n, NUM_J24, 4), np.float32) if kp3d is None else kp3d

    pose = np.zeros((n, 72), np.float32)
    betas = np.zeros((n, 10), np.float32)
    has_smpl = np.zeros(n, np.float32)
    if 'smpl' in d:
        smpl = _object(d, 'smpl', path, dict)
        for key in ('global_orient', 'body_pose', 'betas'):
            if key not in smpl:
                raise MeshImageDatasetError(f"{path}: 'smpl' has no {key!r} (keys: {sorted(smpl)})")
        go = as_array(smpl['global_orient'], (n, 3), "'smpl.global_orient'", path)
        bp = np.asarray(smpl['body_pose'])
        bp = as_array(bp, (n, 23, 3) if bp.ndim == 3 else (n, 69), "'smpl.body_pose'", path)
        pose = np.concatenate([go, bp.reshape(n, 69)], 1)
        betas = as_array(smpl['betas'], (n, 10), "'smpl.betas'", path)
        has_smpl = as_array(d['has_smpl'], (n, ), "'has_smpl'", path) if 'has_smpl' in d \
            else np.ones(n, np.float32)
    gender = np.zeros(n, np.int64)
    if 'meta' in d:
        meta = _object(d, 'meta', path, dict)
        if 'gender' in meta:
            g = np.asarray(meta['gender'], dtype=object).reshape(-1)
            if len(g) != n:
                raise MeshImageDatasetError(f"{path}: 'meta.gender' has {len(g)} entries but "
                                            f"'image_path' has {n} samples")
            gender = np.array([gender_code(v) for v in g], np.int64)
    return MeshAnnotations(
        source=path, ids=names, center=center, scale=scale, keypoints_2d=kp2d, keypoints_3d=kp3d,
        smpl_pose=pose, smpl_betas=betas, has_smpl=has_smpl, has_2d_joints=has_2d,
        has_3d_joints=has_3d, gender=gender, img_names=names)


def write_humandata_npz(path: str, records: List[dict], compressed: bool = True, config: str = '') -> None:
    """Write records as a HumanData ``.npz`` (the layout of the module docstring).

    ``bbox_xywh`` = the square crop box ``(cx - 100 s, cy - 100 s, 200 s, 200 s, 1)`` (as mmhuman3d's
    SpinConverter); J24 goes to the human_data indices :func:`humandata_to_j24_index` reads back (for
    an h36m ``config``: the mmhuman3d Human3.6M layout, so J24 slot 13 is not written), masks = 1
    there; keypoint confidences are multiplied by their has-flag (no per-sample flags in HumanData);
    ``smpl`` (global_orient, body_pose (N, 23, 3), betas) and ``has_smpl``; ``meta.gender`` 'm' / 'f' /
    'n'; ``config``. ``compressed``: store only the mask == 1 columns (``__keypoints_compressed__``).
    """
    a = stack_records(records)
    n = len(records)
    idx = humandata_to_j24_index(is_h36m_config(config))
    have = idx >= 0
    mask = np.zeros(HUMANDATA_NUM_KEYPOINTS, np.float32)
    mask[idx[have]] = 1
    kp2d = np.zeros((n, HUMANDATA_NUM_KEYPOINTS, 3), np.float32)
    kp3d = np.zeros((n, HUMANDATA_NUM_KEYPOINTS, 4), np.float32)
    kp2d[:, idx[have]] = a['keypoints_2d_j24'][:, have]
    kp3d[:, idx[have]] = a['keypoints_3d_j24'][:, have]
    if compressed:
        valid = np.flatnonzero(mask == 1)
        kp2d, kp3d = kp2d[:, valid], kp3d[:, valid]
    side = 200.0 * a['scale']
    bbox = np.stack([a['center'][:, 0] - side / 2, a['center'][:, 1] - side / 2, side, side,
                     np.ones(n, np.float32)], 1).astype(np.float32)
    smpl = dict(global_orient=a['smpl_pose'][:, :3].copy(),
                body_pose=a['smpl_pose'][:, 3:].reshape(n, 23, 3).copy(), betas=a['smpl_betas'])
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'wb') as f:
        np.savez_compressed(
            f, __key_strict__=True, __data_len__=n, __keypoints_compressed__=bool(compressed),
            image_path=a['img_name'], bbox_xywh=bbox, keypoints2d=kp2d, keypoints2d_mask=mask,
            keypoints2d_convention='human_data', keypoints3d=kp3d, keypoints3d_mask=mask.copy(),
            keypoints3d_convention='human_data', smpl=smpl, has_smpl=a['has_smpl'],
            meta=dict(gender=[str(g) for g in a['gender']]), config=str(config))

"""SPIN ``.npz`` annotations (nkolot/SPIN ``datasets/preprocess/*.py``, read by
``datasets/base_dataset.py``).

Keys (N samples): ``imgname`` (N,) str, path relative to the dataset's image folder; ``center`` (N, 2)
px; ``scale`` (N,) = box side / 200; optional ``part`` (N, 24, 3) J24 [x, y, visibility] px, ``S``
(N, 24, 4) J24 [x, y, z, conf] metres, ``pose`` (N, 72) axis-angle (global orientation first) +
``shape`` (N, 10), ``has_smpl`` (N,), ``gender`` (N,) 'm' / 'f' (+ keys not used here: ``openpose``,
``maskname``, ``partname``).

SPIN has no per-sample 2D / 3D flags (a missing key means "none" for the whole file; a joint's
confidence is the loss weight). So ``has_2d_joints`` / ``has_3d_joints`` = the key is present and the
sample has a confidence > 0; ``has_smpl`` = the ``has_smpl`` key, else 1 when ``pose`` is present
(as SPIN). Gender codes follow this project ('m' -> 1, 'f' -> 2, else 0), not SPIN's (0 male, 1 other).
"""
import os
import os.path as osp
import zipfile
from typing import Dict, List

import numpy as np

from ...body_models.j24 import NUM_J24
from ...utils.restricted_pickle import Pickled, RestrictedPickleError, load_npz_restricted
from .common import MeshAnnotations, MeshImageDatasetError, as_array, gender_code, gender_letter

__all__ = ['read_spin_npz', 'write_spin_npz', 'SPIN_KEYS']

# a pickled member (HumanData's smpl / meta dicts) larger than this is refused: a deflated member can
# grow ~1000x, and 300 000 samples of SMPL parameters are ~200 MB
MAX_PICKLED_BYTES = 2 << 30

SPIN_KEYS = ('imgname', 'center', 'scale', 'part', 'S', 'pose', 'shape', 'has_smpl', 'gender')


def _str_array(arr: np.ndarray, what: str, where: str) -> np.ndarray:
    if arr.ndim != 1:
        raise MeshImageDatasetError(f'{where}: {what} has shape {arr.shape}, expected (N,)')
    out = []
    for v in arr.tolist():
        if isinstance(v, bytes):
            v = v.decode('utf-8')
        if not isinstance(v, str):
            raise MeshImageDatasetError(f'{where}: {what} holds a {type(v).__name__}, expected str')
        out.append(v)
    return np.asarray(out, dtype=str) if out else np.zeros(0, dtype='<U1')


def load_members(path: str, keys, what: str) -> Dict[str, np.ndarray]:
    """The members ``keys`` of an npz (plain arrays with ``allow_pickle=False``, object arrays through
    the restricted unpickler), each error naming the file and key."""
    if not osp.isfile(path):
        raise MeshImageDatasetError(f'{path}: {what} file not found')
    out = {}
    for key in keys:
        try:
            got = load_npz_restricted(path, keys=(key, ), max_member_bytes=MAX_PICKLED_BYTES)
        except RestrictedPickleError as e:
            raise MeshImageDatasetError(f'{path}: key {key!r}: refused ({e})') from None
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
            raise MeshImageDatasetError(f'{path}: key {key!r}: not a readable .npz member '
                                        f'({type(e).__name__}: {e})') from None
        for k, v in got.items():
            stand_ins = _stand_ins(v) if v.dtype == object else []
            if stand_ins:  # what a plain np.load would have constructed (or called)
                raise MeshImageDatasetError(f'{path}: key {k!r} holds pickled objects of classes '
                                            f'{", ".join(stand_ins)}; refused (a data file never runs code)')
        out.update(got)
    return out


def _stand_ins(obj) -> List[str]:
    """Class names of the restricted unpickler's stand-ins anywhere inside ``obj``."""
    names, todo, seen = set(), [obj], set()
    while todo:
        o = todo.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        if isinstance(o, Pickled):
            names.add(o._qualname)
        elif isinstance(o, dict):
            todo.extend(o.values())
        elif isinstance(o, (list, tuple, set, frozenset)):
            todo.extend(o)
        elif isinstance(o, np.ndarray) and o.dtype == object:
            todo.extend(o.ravel().tolist())
    return sorted(names)


def read_spin_npz(path: str) -> MeshAnnotations:
    """Read a SPIN ``.npz`` into :class:`MeshAnnotations` (see the module docstring).

    Raises:
        MeshImageDatasetError: missing file / required key (``imgname``, ``center``, ``scale``; ``shape``
        when ``pose`` is present), a wrong shape or a wrong number of samples (names file and key).
    """
    d = load_members(path, SPIN_KEYS, 'SPIN annotation')
    for key in ('imgname', 'center', 'scale'):
        if key not in d:
            raise MeshImageDatasetError(f'{path}: SPIN file has no {key!r} (keys: {sorted(d)})')
    names = _str_array(d['imgname'], "'imgname'", path)
    n = len(names)

    def get(key: str, shape, dtype=np.float32) -> np.ndarray:
        return as_array(d[key], (n, ) + shape, f'{key!r}', path, dtype)

    for key, v in d.items():
        if v.ndim == 0 or len(v) != n:
            raise MeshImageDatasetError(f"{path}: {key!r} has shape {v.shape} but 'imgname' has {n} "
                                        'samples')
    center = get('center', (2, ))
    scale = d['scale']
    scale = get('scale', (1, )).reshape(n) if np.ndim(scale) == 2 else get('scale', ())
    kp2d = get('part', (NUM_J24, 3)) if 'part' in d else np.zeros((n, NUM_J24, 3), np.float32)
    kp3d = get('S', (NUM_J24, 4)) if 'S' in d else np.zeros((n, NUM_J24, 4), np.float32)
    has_2d = ((kp2d[..., 2] > 0).any(1) if 'part' in d else np.zeros(n, bool)).astype(np.float32)
    has_3d = ((kp3d[..., 3] > 0).any(1) if 'S' in d else np.zeros(n, bool)).astype(np.float32)
    if 'pose' in d:
        if 'shape' not in d:
            raise MeshImageDatasetError(f"{path}: SPIN file has 'pose' but no 'shape'")
        pose, betas = get('pose', (72, )), get('shape', (10, ))
        has_smpl = get('has_smpl', ()) if 'has_smpl' in d else np.ones(n, np.float32)
    else:
        pose, betas = np.zeros((n, 72), np.float32), np.zeros((n, 10), np.float32)
        has_smpl = np.zeros(n, np.float32)
    if 'gender' in d:
        g = d['gender']
        if g.ndim != 1:
            raise MeshImageDatasetError(f"{path}: 'gender' has shape {g.shape}, expected (N,)")
        gender = np.array([gender_code(v) for v in g.tolist()], np.int64)
    else:
        gender = np.zeros(n, np.int64)
    return MeshAnnotations(
        source=path, ids=names, center=center, scale=scale, keypoints_2d=kp2d, keypoints_3d=kp3d,
        smpl_pose=pose, smpl_betas=betas, has_smpl=has_smpl, has_2d_joints=has_2d,
        has_3d_joints=has_3d, gender=gender, img_names=names)


def stack_records(records: List[dict], with_names: bool = True) -> Dict[str, np.ndarray]:
    """Records (see the contract) -> stacked float32 arrays; keypoint confidences multiplied by their
    has-flag (formats without per-sample flags encode "no 2D / 3D" as confidence 0)."""
    if not records:
        raise ValueError('no records to write')
    out = dict(
        center=np.stack([np.asarray(r['center'], np.float32).reshape(2) for r in records]),
        scale=np.array([float(np.asarray(r['scale']).reshape(())) for r in records], np.float32),
        keypoints_2d_j24=np.stack([np.asarray(r['keypoints_2d_j24'], np.float32).reshape(NUM_J24, 3)
                                   for r in records]),
        keypoints_3d_j24=np.stack([np.asarray(r['keypoints_3d_j24'], np.float32).reshape(NUM_J24, 4)
                                   for r in records]),
        smpl_pose=np.stack([np.asarray(r['smpl_pose'], np.float32).reshape(72) for r in records]),
        smpl_betas=np.stack([np.asarray(r['smpl_betas'], np.float32).reshape(10) for r in records]),
        gender=np.array([gender_letter(r['gender']) for r in records]))
    for k in ('has_smpl', 'has_2d_joints', 'has_3d_joints'):
        out[k] = np.array([float(np.asarray(r[k]).reshape(())) > 0 for r in records], np.float32)
    out['keypoints_2d_j24'][..., 2] *= out['has_2d_joints'][:, None]
    out['keypoints_3d_j24'][..., 3] *= out['has_3d_joints'][:, None]
    if with_names:
        out['img_name'] = np.array([str(r['img_name']) for r in records])
    return out


def write_spin_npz(path: str, records: List[dict]) -> None:
    """Write records as a SPIN ``.npz``: ``imgname, center, scale, part (N,24,3), S (N,24,4),
    pose (N,72), shape (N,10), has_smpl (N,), gender (N,)`` ('m' / 'f'; 'n' for neutral, which SPIN's
    own loader would read as female). Confidences are multiplied by ``has_2d_joints`` /
    ``has_3d_joints`` (SPIN has no per-sample flags); ``pose`` / ``shape`` of ``has_smpl == 0`` samples
    are written as given."""
    a = stack_records(records)
    d = osp.dirname(osp.abspath(path))
    os.makedirs(d, exist_ok=True)
    with open(path, 'wb') as f:  # a file object: np.savez would append '.npz' to a path without it
        np.savez(f, imgname=a['img_name'], center=a['center'].astype(np.float64),
                 scale=a['scale'].astype(np.float64), part=a['keypoints_2d_j24'],
                 S=a['keypoints_3d_j24'], pose=a['smpl_pose'], shape=a['smpl_betas'],
                 has_smpl=a['has_smpl'], gender=a['gender'])

"""What the three mesh-image annotation readers share: the error type, the per-file arrays
(:class:`MeshAnnotations`), gender codes and the per-sample checks.

Every reader normalises its file to the same compact arrays (one numpy array per field, never one
Python dict per sample) in SPIN / METRO conventions: J24 joints, ``center`` (2,) px and ``scale`` =
box side / 200 (the crop is a square of side ``200 * scale`` px centred at ``center``).
"""
from dataclasses import dataclass, fields
from typing import Any, Dict, Optional, Tuple

import numpy as np

from ...body_models.j24 import NUM_J24
from ...utils.cli import MPTUserError

__all__ = ['MeshImageDatasetError', 'MeshAnnotations', 'RECORD_KEYS', 'SKIP_REASONS', 'gender_code',
           'gender_letter', 'check_samples', 'as_array']

# the keys of a *record* (the writers' input; see the module docstrings of the writers)
RECORD_KEYS = ('center', 'scale', 'keypoints_2d_j24', 'keypoints_3d_j24', 'smpl_pose', 'smpl_betas',
               'has_smpl', 'has_2d_joints', 'has_3d_joints', 'gender')

# per-sample problems that are skipped (counted) instead of raising: the reason -> what it means
SKIP_REASONS: Dict[str, str] = {
    'non_finite': 'NaN / inf in the centre, scale, has-flags or in annotations the flags say are used',
    'bad_scale': 'scale <= 0',
    'zero_conf_2d': 'has_2d_joints set but every 2D confidence is 0',
    'zero_conf_3d': 'has_3d_joints set but every 3D confidence is 0',
    'box_outside_image': 'the crop box lies entirely outside the image (size from hw.tsv)',
}


class MeshImageDatasetError(MPTUserError, ValueError):
    """An annotation file cannot be used (missing file or key, wrong shape, a line index that does not
    match its TSV ...): the message names the file (and the row / key) and the problem."""


def gender_code(value: Any) -> int:
    """'m' / 'male' -> 1, 'f' / 'female' -> 2, anything else (neutral, 'none', unknown) -> 0."""
    if isinstance(value, (bytes, np.bytes_)):
        value = value.decode('utf-8', 'replace')
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ('m', 'male'):
            return 1
        if v in ('f', 'female'):
            return 2
    return 0


def gender_letter(value: Any) -> str:
    """The inverse for writers: a gender code (0 / 1 / 2) or letter -> 'n' / 'm' / 'f'."""
    if isinstance(value, (str, bytes, np.bytes_)):
        code = gender_code(value)
    else:
        code = int(value) if int(value) in (1, 2) else 0
    return 'nmf'[code]


def as_array(value: Any, shape: Tuple[int, ...], what: str, where: str,
             dtype=np.float32) -> np.ndarray:
    """``value`` as an array of exactly ``shape`` (-1 = any size), else one clear error."""
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as e:
        raise MeshImageDatasetError(f'{where}: {what} is not numeric ({e})') from None
    ok = arr.ndim == len(shape) and all(s in (-1, a) for s, a in zip(shape, arr.shape))
    if not ok:
        want = '(' + ', '.join('N' if s == -1 else str(s) for s in shape) + ')'
        raise MeshImageDatasetError(f'{where}: {what} has shape {tuple(arr.shape)}, expected {want}')
    return arr


@dataclass
class MeshAnnotations:
    """One annotation file normalised to arrays (N samples).

    Attributes:
        source: the annotation file (for messages).
        ids: (N,) str, the TSV row key / image name.
        center: (N, 2) float32 px; scale: (N,) float32 box side / 200.
        keypoints_2d: (N, 24, 3) float32 [x, y, conf] px; keypoints_3d: (N, 24, 4) float32
            [x, y, z, conf] metres.
        smpl_pose: (N, 72) float32 axis-angle (global orientation first); smpl_betas: (N, 10).
        has_smpl / has_2d_joints / has_3d_joints: (N,) float32 0/1.
        gender: (N,) int64 code (0 neutral / unknown, 1 male, 2 female).
        img_names: (N,) str image paths relative to the image prefix (npz formats), else None.
        image_hw: (N, 2) int64 (height, width) px, -1 where unknown (TSV hw.tsv), else None.
        tsv_file / tsv_row: (N,) int64 which image TSV and which row (TSV), else None.
    """
    source: str
    ids: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    keypoints_2d: np.ndarray
    keypoints_3d: np.ndarray
    smpl_pose: np.ndarray
    smpl_betas: np.ndarray
    has_smpl: np.ndarray
    has_2d_joints: np.ndarray
    has_3d_joints: np.ndarray
    gender: np.ndarray
    img_names: Optional[np.ndarray] = None
    image_hw: Optional[np.ndarray] = None
    tsv_file: Optional[np.ndarray] = None
    tsv_row: Optional[np.ndarray] = None

    _SHAPES = dict(center=(2, ), scale=(), keypoints_2d=(NUM_J24, 3), keypoints_3d=(NUM_J24, 4),
                   smpl_pose=(72, ), smpl_betas=(10, ), has_smpl=(), has_2d_joints=(),
                   has_3d_joints=(), gender=(), ids=(), img_names=(), image_hw=(2, ), tsv_file=(),
                   tsv_row=())

    def __post_init__(self) -> None:
        # the readers build these; a mismatch is a bug in a reader, not a user error
        n = len(self.ids)
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == 'source' or v is None:
                continue
            want = (n, ) + self._SHAPES[f.name]
            if v.shape != want:
                raise AssertionError(f'{self.source}: {f.name} {v.shape} != {want}')

    def __len__(self) -> int:
        return len(self.ids)


def check_samples(ann: MeshAnnotations) -> Tuple[np.ndarray, Dict[str, int]]:
    """Find the samples whose annotations cannot be used (see :data:`SKIP_REASONS`).

    Values the flags say are unused (a group whose has-flag is 0, the coordinates of a joint with
    confidence 0) are not checked; non-finite ones are set to 0 in place so that a loss weighted by
    the flag stays finite (``nan * 0`` is ``nan``). Has-flags become exactly 0 / 1 (``> 0``).

    Returns:
        (keep, skipped): keep (N,) bool; skipped {reason: count} (only reasons that occurred), each
        sample counted once, under the first reason in :data:`SKIP_REASONS` order.
    """
    n = len(ann)
    finite_flags = (np.isfinite(ann.has_smpl) & np.isfinite(ann.has_2d_joints)
                    & np.isfinite(ann.has_3d_joints))
    non_finite = (~np.isfinite(ann.center).all(1) | ~np.isfinite(ann.scale) | ~finite_flags)
    for name in ('has_smpl', 'has_2d_joints', 'has_3d_joints'):
        v = getattr(ann, name)
        setattr(ann, name, (np.nan_to_num(v, nan=0.0) > 0).astype(np.float32))

    zero_conf = {}
    for key, has_name in (('2d', 'has_2d_joints'), ('3d', 'has_3d_joints')):
        kp = ann.keypoints_2d if key == '2d' else ann.keypoints_3d
        used = getattr(ann, has_name) > 0
        conf, coords = kp[..., -1], kp[..., :-1]
        bad_conf = ~np.isfinite(conf).all(1)
        bad_coords = (~np.isfinite(coords).all(-1) & (conf != 0)).any(1)  # nan conf != 0 too
        non_finite |= used & (bad_conf | bad_coords)
        unused_bad = ~used & ~np.isfinite(kp).all((1, 2))
        kp[unused_bad] = 0
        hidden_bad = used[:, None] & (conf == 0) & ~np.isfinite(coords).all(-1)
        coords[hidden_bad] = 0
        zero_conf[key] = used & ~(conf > 0).any(1)
    used = ann.has_smpl > 0
    bad = ~np.isfinite(ann.smpl_pose).all(1) | ~np.isfinite(ann.smpl_betas).all(1)
    non_finite |= used & bad
    ann.smpl_pose[~used & bad] = 0
    ann.smpl_betas[~used & bad] = 0

    with np.errstate(invalid='ignore'):
        bad_scale = ann.scale <= 0
        outside = np.zeros(n, bool)
        if ann.image_hw is not None:
            h, w = ann.image_hw[:, 0], ann.image_hw[:, 1]
            half = 100.0 * ann.scale
            cx, cy = ann.center[:, 0], ann.center[:, 1]
            known = (h > 0) & (w > 0)
            # pixel centres run from 0 to w - 1 (MeshImageCrop's convention, whose check this must
            # equal: a box kept here must not stop the run in a worker)
            outside = known & ((cx + half <= -0.5) | (cx - half >= w - 0.5) | (cy + half <= -0.5)
                               | (cy - half >= h - 0.5))
    masks = dict(non_finite=non_finite, bad_scale=bad_scale, zero_conf_2d=zero_conf['2d'],
                 zero_conf_3d=zero_conf['3d'], box_outside_image=outside)
    keep = np.ones(n, bool)
    skipped: Dict[str, int] = {}
    for reason in SKIP_REASONS:
        m = masks[reason] & keep
        if m.any():
            skipped[reason] = int(m.sum())
            keep &= ~m
    return keep, skipped

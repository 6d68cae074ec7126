"""Mesh-image annotation formats users already have: METRO TSV, SPIN npz, mmhuman3d HumanData npz.

Each reader normalises one file to :class:`MeshAnnotations` (J24 joints, SPIN / METRO center / scale)
and each writer writes *records* (dicts with ``center, scale, keypoints_2d_j24, keypoints_3d_j24,
smpl_pose, smpl_betas, has_smpl, has_2d_joints, has_3d_joints, gender`` ('m' / 'f' / 'n') and, for
the npz formats, ``img_name``) in exactly the published layout (used by ``tools/make_toy_images.py``
and the tests). :func:`detect_format` tells the formats apart from the file.
"""
import os.path as osp
import zipfile

from .common import (RECORD_KEYS, SKIP_REASONS, MeshAnnotations, MeshImageDatasetError,
                     check_samples, gender_code, gender_letter)
from .humandata_npz import read_humandata_npz, write_humandata_npz
from .metro_tsv import MetroTSV, TSVFile, generate_lineidx, write_metro_tsv
from .spin_npz import read_spin_npz, write_spin_npz

__all__ = ['MeshAnnotations', 'MeshImageDatasetError', 'RECORD_KEYS', 'SKIP_REASONS', 'check_samples',
           'gender_code', 'gender_letter', 'detect_format', 'MetroTSV', 'TSVFile', 'generate_lineidx',
           'read_spin_npz', 'read_humandata_npz', 'write_metro_tsv', 'write_spin_npz',
           'write_humandata_npz']

HUMANDATA_MARKERS = ('__data_len__', '__temporal_len__', 'image_path')


def detect_format(path: str) -> str:
    """'metro_tsv' (``*.yaml`` / ``*.yml`` / ``*.tsv``), 'humandata' (an npz with ``__data_len__``,
    ``__temporal_len__`` or ``image_path``) or 'spin' (an npz with ``imgname``).

    Raises:
        MeshImageDatasetError: missing file, unknown extension, or an npz with neither marker.
    """
    if not osp.isfile(path):
        raise MeshImageDatasetError(f'{path}: annotation file not found')
    ext = osp.splitext(path)[1].lower()
    if ext in ('.yaml', '.yml', '.tsv'):
        return 'metro_tsv'
    if ext != '.npz':
        raise MeshImageDatasetError(f'{path}: unknown annotation format (expected a METRO .yaml / .tsv '
                                    'or a SPIN / HumanData .npz)')
    try:
        with zipfile.ZipFile(path) as zf:
            keys = {n[:-4] if n.endswith('.npy') else n for n in zf.namelist()}
    except (zipfile.BadZipFile, OSError) as e:
        raise MeshImageDatasetError(f'{path}: not a readable .npz ({e})') from None
    if any(k in keys for k in HUMANDATA_MARKERS):
        return 'humandata'
    if 'imgname' in keys:
        return 'spin'
    markers = ', '.join(HUMANDATA_MARKERS)
    raise MeshImageDatasetError(f"{path}: an npz with neither HumanData keys ({markers}) nor SPIN's "
                                f"'imgname' (keys: {sorted(keys)})")

"""The prepared AMASS index: walking/validating AMASS files, sparse sampling, and the on-disk format.

MPT (Sec. 3.1) pre-trains on ~2 M SMPL meshes sparsely sampled from the AMASS motion sequences, every
mesh centred at the origin. Preparing them once (``tools/prepare_amass.py``) keeps the per-sample work
of :class:`~mmpose_mpt.datasets.MoCapHeatmapDataset` to a few array reads.

AMASS input (``<AMASS_ROOT>/<dataset>/<subject>/*.npz``, ``shape.npz`` skipped):
    ``poses`` (N, 156) SMPL-H [22 body joints + 2 x 15 finger joints] or (N, 165) SMPL-X [22 body + jaw,
    eyes, fingers] or (N, 72) SMPL, axis-angle radians; ``trans`` (N, 3) metres; ``betas`` (>= 10,);
    ``gender`` 0-d str/bytes array; ``mocap_framerate`` or ``mocap_frame_rate`` (frames per second).

Conventions of the prepared meshes:
    * SMPL body pose (72,) = global orient (3) + 23 joints x 3. The 22 body joints of SMPL-H/SMPL-X are
      SMPL joints 0..21 in the same order; SMPL's rigid hand joints 22/23 (l_hand, r_hand) have no
      SMPL-H/SMPL-X counterpart (those models articulate fingers instead) and are set to zero (flat
      hand, the wrist rotation is kept). 72-wide SMPL poses are kept as they are.
    * betas: the first 10 (SMPL-H's 16-dim shape space truncated, as is common practice).
    * Orientation: AMASS's world is z-up and is kept (the canonical frame of this project); the global
      orient is kept, the translation ``trans`` is dropped.
    * Centring: SMPL rotates the whole body about the *rest-pose* pelvis joint, so a posed mesh is not
      centred by construction; every point is expressed relative to the *posed* SMPL pelvis joint
      (``joints[:, 0]`` of the body-model forward), which is therefore at the origin.
    * ``keypoints_3d`` (17, 3) metres: COCO-17 joints regressed from the posed vertices
      (``smpl.regress(vertices, 'coco')``), centred as above. They are computed with the *neutral*
      model unless the body-model directory also holds ``SMPL_MALE``/``SMPL_FEMALE`` files (and
      ``neutral_only`` is off); the stored ``gender`` is the gender of the model that produced the
      joints (0 neutral, 1 male, 2 female) so that a consumer rebuilding the mesh from
      (``pose``, ``betas``, ``gender``) gets the same joints. The sequence's AMASS gender is in the
      sequence table (``source_gender``).
    * Non-finite frames (NaN/inf anywhere in ``poses`` or ``trans``) are dropped individually (samples
      that would land on them are dropped, counted in the report); a file whose frames are all
      non-finite, or whose betas are non-finite, is skipped as ``nonfinite``.

Sparse sampling is by time, frame-rate aware: sample ``k`` of a sequence with ``N`` frames at ``fps``
is frame ``floor(k * stride_seconds * fps)`` for every ``k >= 0`` with ``k * stride_seconds < N / fps``.
With a target count ``T`` the stride is ``sum_i(N_i / fps_i) / T`` over all usable sequences (all
splits together), so the total is in ``[T, T + number_of_sequences)`` before non-finite drops.

Index format (one directory per split, ``<OUT_DIR>/<split>/``), all arrays memory-mappable ``.npy``
with ``M`` meshes:
    ``pose.npy`` (M, 72) float32 radians, ``betas.npy`` (M, 10) float32, ``gender.npy`` (M,) uint8,
    ``keypoints_3d.npy`` (M, 17, 3) float32 metres, ``seq_id.npy`` (M,) int32 (row of the sequence
    table), ``frame_index.npy`` (M,) int32 (frame in the source sequence), and ``index.json`` (written
    last, so its presence marks a complete index) with ``format_version``, ``split``, ``num_meshes``,
    ``arrays`` ({name: {shape, dtype}}), ``sequences`` (list of {name, dataset, path, fps,
    num_frames, source_gender, gender, start, count, nonfinite_frames}) and ``metadata`` (sampling,
    conventions, body model).
"""
from __future__ import annotations

import hashlib
import json
import os
import os.path as osp
import stat
import time
import zipfile
from collections import deque
from dataclasses import dataclass, field
from typing import Deque, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

INDEX_FORMAT_VERSION = 1
GENDERS = ('neutral', 'male', 'female')  # index = stored gender id
NUM_COCO_KEYPOINTS = 17
# name -> (per-mesh shape, dtype) of the arrays of a split index.
INDEX_ARRAYS: Dict[str, Tuple[Tuple[int, ...], str]] = {
    'pose': ((72,), 'float32'),
    'betas': ((10,), 'float32'),
    'gender': ((), 'uint8'),
    'keypoints_3d': ((NUM_COCO_KEYPOINTS, 3), 'float32'),
    'seq_id': ((), 'int32'),
    'frame_index': ((), 'int32'),
}
FRAMERATE_KEYS = ('mocap_framerate', 'mocap_frame_rate')
REQUIRED_KEYS = ('poses', 'trans', 'betas', 'gender')
# accepted ``poses`` widths: SMPL (24 joints), SMPL-H (52), SMPL-X (55); the first 22 joints are shared.
POSE_WIDTHS = (72, 156, 165)

# Default split: the AMASS paper's held-out sets (vald: HumanEva, MPI_HDM05, SFU, MPI_mosh; test:
# Transitions_mocap, SSM_synced) under both their old and new release directory names, plus the toy
# generator's validation set; every other sub-dataset is 'train' ('*').
DEFAULT_SPLITS: Dict[str, List[str]] = {
    'val': ['HumanEva', 'MPI_HDM05', 'HDM05', 'SFU', 'MPI_mosh', 'MoSh', 'ToyVal'],
    'test': ['Transitions_mocap', 'Transitions', 'SSM_synced', 'SSM'],
    'train': ['*'],
}

# Plausible capture rates (AMASS: 50-250 fps). Outside them a file is skipped as 'bad_framerate': a
# rate near 0 makes a few frames last for years (one file would take every sample of --target-count,
# or allocate terabytes), a huge one makes a long sequence last a moment (no sample at all).
MIN_FPS, MAX_FPS = 1.0, 2000.0

# Reasons a file/dir is skipped (keys of the report's ``skipped``).
SKIP_REASONS = {
    'shape_file': 'AMASS subject shape file (shape.npz), holds no motion',
    'empty_dir': 'directory without any .npz file',
    'unreadable': 'not a readable .npz (truncated / corrupt archive or array)',
    'missing_keys': 'a required key is missing',
    'bad_shape': 'an array has the wrong shape or dtype',
    'bad_framerate': f'frame rate non-finite or outside [{MIN_FPS:g}, {MAX_FPS:g}] fps',
    'unknown_gender': 'gender is not neutral/male/female',
    'unsafe_pickle': 'holds a pickled object other than a plain string (refused: nothing was run)',
    'nonfinite': 'non-finite betas, or every frame non-finite',
    'no_frames': 'the sequence has no frames',
    'no_samples': 'usable, but every sampled frame was dropped (non-finite): 0 meshes',
    'duplicate': 'the same file or directory as another path (alias, link loop): visited once',
    'not_regular': 'not a regular file (FIFO, socket, device)',
    'broken_link': 'a symbolic link whose target is missing (or a loop of links)',
    'unreadable_dir': 'a directory that cannot be listed (permissions)',
    'not_in_dataset': 'a .npz directly under the AMASS root (motions live in <dataset>/...)',
}


class MoCapIndexError(FileNotFoundError):
    """The prepared MoCap index directory is missing or incomplete."""


class AmassFileError(ValueError):
    """One AMASS file cannot be used; ``reason`` is a key of :data:`SKIP_REASONS`."""

    def __init__(self, path: str, reason: str, detail: str = '') -> None:
        self.path, self.reason, self.detail = path, reason, detail
        super().__init__(f'{path}: {reason}' + (f' ({detail})' if detail else ''))


# ----------------------------------------------------------------------------------------------
# Splits
# ----------------------------------------------------------------------------------------------
def parse_splits(specs: Optional[Sequence[str]]) -> Dict[str, List[str]]:
    """Parse ``['train:CMU,BMLmovi', 'val:HumanEva', 'train:*']`` into {split: [dataset names]}.

    ``*`` means "every sub-dataset not named by another split". ``None``/empty gives
    :data:`DEFAULT_SPLITS`.
    """
    if not specs:
        return {k: list(v) for k, v in DEFAULT_SPLITS.items()}
    out: Dict[str, List[str]] = {}
    for spec in specs:
        if ':' not in spec:
            raise ValueError(f'--splits entry {spec!r} is not of the form SPLIT:DATASET[,DATASET...]')
        split, names = spec.split(':', 1)
        split = split.strip()
        if not split or not names.strip():
            raise ValueError(f'--splits entry {spec!r} has an empty split or dataset list')
        out.setdefault(split, []).extend(n.strip() for n in names.split(',') if n.strip())
    return out


def split_of(dataset: str, splits: Mapping[str, Sequence[str]]) -> Optional[str]:
    """The split a sub-dataset belongs to (case-insensitive names; ``*`` as fallback), or None."""
    low = dataset.lower()
    for split, names in splits.items():
        if any(n.lower() == low for n in names):
            return split
    for split, names in splits.items():
        if '*' in names:
            return split
    return None


# ----------------------------------------------------------------------------------------------
# Walking and reading AMASS files
# ----------------------------------------------------------------------------------------------
def walk_amass(root: str, details: Optional[Dict[str, Dict[str, str]]] = None
               ) -> Tuple[List[str], Dict[str, List[str]]]:
    """List the motion files under ``root`` (``<dataset>/<subject>/*.npz``, any depth below dataset).

    Symbolic links are followed, but every real directory and file is visited once (by device and
    inode): a file or directory reached a second time (an alias, a link loop, crossing links, two links
    to one place) is skipped as ``duplicate``, with the path it duplicates in ``details``. The tree
    without links is walked first and links after it, so a file keeps the dataset (and so the split)
    of the place it really is, whatever a link to it is named. Hard links have no such side: of the
    paths of one hard-linked file the first in sorted walk order is kept, the others are reported as
    duplicates ("hard link of"). Only regular files are candidates: a FIFO, socket or device named
    ``*.npz`` is skipped as ``not_regular`` (opening a FIFO would hang).

    Args:
        root: the AMASS root.
        details: if given, filled with {reason: {relative path: detail}} for the skipped entries.

    Returns:
        (relative paths of candidate motion files, sorted; {reason: [relative paths]} of skipped
        entries: ``shape.npz`` files, directories holding nothing usable, duplicates, non-regular
        files, broken links, unreadable directories, ``.npz`` files directly under the root).
    """
    if not osp.isdir(root):
        raise FileNotFoundError(f'AMASS root {root!r} is not a directory')
    files: List[str] = []
    skipped: Dict[str, List[str]] = {}
    details = {} if details is None else details
    seen_dirs: Dict[Tuple[int, int], str] = {}
    seen_files: Dict[Tuple[int, int], str] = {}
    links: Deque[Tuple[str, str]] = deque()  # (relative path, path) of links, after the real tree

    def skip(reason: str, rel: str, detail: str = '') -> None:
        skipped.setdefault(reason, []).append(rel)
        if detail:
            details.setdefault(reason, {})[rel] = detail

    def add_file(path: str, rel: str, st: os.stat_result, linked: bool) -> None:
        if not stat.S_ISREG(st.st_mode):
            skip('not_regular', rel, 'not a regular file (FIFO, socket or device)')
            return
        key = (st.st_dev, st.st_ino)
        if key in seen_files:
            # a symbolic link, or a hard link (no side of which is "the real one": walk order decides)
            how = 'symbolic link to' if linked else 'hard link of'
            skip('duplicate', rel, f'same file as {seen_files[key]} ({how} it)')
            return
        seen_files[key] = rel
        if osp.basename(rel).lower() == 'shape.npz':
            skip('shape_file', rel)
        else:
            files.append(rel)

    def scan_tree(path: str, rel: str) -> None:
        # an explicit stack, not recursion: a tree thousands of levels deep must not overflow it;
        # directories are taken in sorted depth-first order, as a recursive walk would
        stack = [(path, rel)]
        while stack:
            path, rel = stack.pop()
            try:
                st = os.stat(path)
                key = (st.st_dev, st.st_ino)
                if key in seen_dirs:
                    skip('duplicate', rel or '.', f'same directory as {seen_dirs[key]}')
                    continue
                seen_dirs[key] = rel or '.'
                with os.scandir(path) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as e:
                skip('unreadable_dir', rel or '.', f'{type(e).__name__}: {e.strerror or e}')
                continue
            subdirs, usable = [], False
            for e in entries:
                if e.name.startswith('.'):
                    continue
                erel = osp.join(rel, e.name) if rel else e.name
                try:
                    if e.is_symlink():
                        links.append((erel, e.path))
                        usable = True
                    elif e.is_dir(follow_symlinks=False):
                        subdirs.append((e.path, erel))
                    elif e.name.lower().endswith('.npz'):
                        usable = True
                        if not rel:
                            skip('not_in_dataset', erel)
                        else:
                            add_file(e.path, erel, e.stat(follow_symlinks=False), False)
                except OSError as err:
                    skip('unreadable', erel, f'{type(err).__name__}: {err.strerror or err}')
            if rel and not subdirs and not usable:  # a leaf directory (subject or dataset), nothing usable
                skip('empty_dir', rel)
            stack.extend(reversed(subdirs))

    scan_tree(root, '')
    while links:   # in discovery order; links inside linked directories are appended
        rel, path = links.popleft()
        try:
            st = os.stat(path)
        except OSError as e:  # dangling link, or a loop of links (ELOOP)
            skip('broken_link', rel, f'{type(e).__name__}: {e.strerror or e}')
            continue
        if stat.S_ISDIR(st.st_mode):
            scan_tree(path, rel)
        elif rel.lower().endswith('.npz'):
            if os.sep not in rel:
                skip('not_in_dataset', rel)
            else:
                add_file(path, rel, st, True)
    return sorted(files), skipped


@dataclass
class AmassHeader:
    """Cheap per-file facts read without loading the motion arrays."""
    rel: str                 # path relative to the AMASS root
    dataset: str             # first path component (AMASS sub-dataset)
    num_frames: int
    fps: float
    gender: str              # 'neutral' | 'male' | 'female' (the file's own)
    betas: np.ndarray        # (10,) float64
    pose_width: int          # 72 | 156 | 165
    size: int = 0
    mtime_ns: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def duration(self) -> float:
        """Seconds covered by the sequence (``num_frames / fps``)."""
        return self.num_frames / self.fps


def _npy_header(zf: zipfile.ZipFile, member: str) -> Tuple[Tuple[int, ...], np.dtype]:
    with zf.open(member) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        else:  # (3, 0): utf8 field names; no public reader
            shape, _, dtype = np.lib.format._read_array_header(f, version)  # noqa: SLF001
    return tuple(shape), dtype


def _decode_gender(value: np.ndarray) -> str:
    v = value.item() if isinstance(value, np.ndarray) and value.size == 1 else value
    if isinstance(v, np.ndarray):
        raise ValueError(f'gender array of shape {v.shape}')
    if isinstance(v, bytes):
        v = v.decode('utf-8', errors='replace')
    return str(v).strip().lower()


def _read_pickled_gender(path: str, rel: str) -> np.ndarray:
    """``gender`` saved as a pickled object array (some AMASS releases), read by the restricted
    unpickler: a plain string comes out, anything else is refused and nothing from the file runs."""
    from mmpose_mpt.utils.restricted_pickle import (RestrictedPickleError, load_npz_restricted,
                                                    refused_classes)
    try:
        value = load_npz_restricted(path, ('gender', ), max_member_bytes=1 << 20)['gender']
    except RestrictedPickleError as e:
        raise AmassFileError(rel, 'unsafe_pickle', f'gender: {e}') from None
    bad = refused_classes(value)
    if bad or any(not isinstance(v, (str, bytes)) for v in np.asarray(value, dtype=object).reshape(-1)):
        what = ', '.join(bad) if bad else ', '.join(sorted({type(v).__name__ for v in value.reshape(-1)}))
        raise AmassFileError(rel, 'unsafe_pickle', f'gender holds a pickled {what}')
    return value


def read_amass_header(root: str, rel: str) -> AmassHeader:
    """Validate one AMASS file and read its small fields (shapes from the .npy headers only).

    Raises:
        AmassFileError: with ``reason`` in :data:`SKIP_REASONS`.
    """
    path = osp.join(root, rel)
    try:
        st = os.stat(path)
    except OSError as e:
        raise AmassFileError(rel, 'unreadable', f'{type(e).__name__}: {e}') from None
    if not stat.S_ISREG(st.st_mode):  # opening a FIFO would block forever
        raise AmassFileError(rel, 'not_regular')
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as e:  # truncated zip, not a zip, permissions ... all mean "unreadable"
        raise AmassFileError(rel, 'unreadable', f'{type(e).__name__}: {e}') from None
    if not isinstance(npz, np.lib.npyio.NpzFile):  # a bare .npy saved under an .npz name
        raise AmassFileError(rel, 'unreadable', 'not an .npz archive')
    try:
        keys = set(npz.files)
        missing = [k for k in REQUIRED_KEYS if k not in keys]
        fr_key = next((k for k in FRAMERATE_KEYS if k in keys), None)
        if fr_key is None:
            missing.append('mocap_framerate|mocap_frame_rate')
        if missing:
            raise AmassFileError(rel, 'missing_keys', ', '.join(missing))
        try:
            poses_shape, poses_dtype = _npy_header(npz.zip, 'poses.npy')
            trans_shape, trans_dtype = _npy_header(npz.zip, 'trans.npy')
        except Exception as e:
            raise AmassFileError(rel, 'unreadable', f'{type(e).__name__}: {e}') from None
        if len(poses_shape) != 2 or poses_shape[1] not in POSE_WIDTHS \
                or poses_dtype.kind not in 'fi':
            raise AmassFileError(rel, 'bad_shape', f'poses {poses_shape} {poses_dtype}, expected '
                                 f'(N, 72|156|165) float')
        n = poses_shape[0]
        if trans_shape != (n, 3) or trans_dtype.kind not in 'fi':
            raise AmassFileError(rel, 'bad_shape', f'trans {trans_shape}, expected ({n}, 3)')
        if n == 0:
            raise AmassFileError(rel, 'no_frames')
        try:
            betas = npz['betas']
            fps_raw = npz[fr_key]
            try:
                gender_raw = npz['gender']
            except ValueError:  # some releases pickled the gender string as an object array
                gender_raw = _read_pickled_gender(path, rel)
        except AmassFileError:
            raise
        except Exception as e:
            raise AmassFileError(rel, 'unreadable', f'{type(e).__name__}: {e}') from None
        if betas.dtype.kind not in 'fi' or not (betas.ndim == 1 or (betas.ndim == 2
                                                                    and betas.shape[0] == 1)) \
                or betas.size < 10:
            raise AmassFileError(rel, 'bad_shape', f'betas {betas.shape}, expected (>=10,)')
        betas = betas.reshape(-1)[:10].astype(np.float64)
        if not np.isfinite(betas).all():
            raise AmassFileError(rel, 'nonfinite', 'betas')
        try:
            fps = float(np.asarray(fps_raw, dtype=np.float64).reshape(-1)[0])
        except Exception as e:
            raise AmassFileError(rel, 'bad_framerate', f'{fr_key}: {e}') from None
        if not np.isfinite(fps) or not MIN_FPS <= fps <= MAX_FPS:
            raise AmassFileError(rel, 'bad_framerate', f'{fr_key}={fps:g}, expected '
                                 f'{MIN_FPS:g}..{MAX_FPS:g}')
        try:
            gender = _decode_gender(gender_raw)
        except Exception as e:
            raise AmassFileError(rel, 'unknown_gender', str(e)) from None
        if gender not in GENDERS:
            raise AmassFileError(rel, 'unknown_gender', repr(gender))
    finally:
        npz.close()
    dataset = rel.split(os.sep)[0]
    return AmassHeader(rel=rel, dataset=dataset, num_frames=int(n), fps=fps, gender=gender,
                       betas=betas, pose_width=int(poses_shape[1]), size=int(st.st_size),
                       mtime_ns=int(st.st_mtime_ns))


def amass_to_smpl_pose(poses: np.ndarray) -> np.ndarray:
    """AMASS ``poses`` (N, 72|156|165) axis-angle -> SMPL body pose (N, 72).

    SMPL-H/SMPL-X keep their 22 body joints (``poses[:, :66]``); SMPL's hand joints 22/23 get zeros.
    """
    poses = np.asarray(poses)
    if poses.ndim != 2 or poses.shape[1] not in POSE_WIDTHS:
        raise ValueError(f'poses of shape {poses.shape}, expected (N, 72|156|165)')
    if poses.shape[1] == 72:
        return poses.astype(np.float64, copy=True)
    out = np.zeros((poses.shape[0], 72), dtype=np.float64)
    out[:, :66] = poses[:, :66]
    return out


def read_amass_motion(root: str, header: AmassHeader) -> Tuple[np.ndarray, np.ndarray]:
    """Load the motion of a validated file.

    Returns:
        (SMPL pose (N, 72) float64 radians, finite mask (N,) bool: frame has finite poses and trans).

    Raises:
        AmassFileError: ``unreadable`` (corrupt array data) or ``bad_shape``.
    """
    path = osp.join(root, header.rel)
    try:
        with np.load(path, allow_pickle=False) as npz:
            poses = np.asarray(npz['poses'])
            trans = np.asarray(npz['trans'])
    except Exception as e:
        raise AmassFileError(header.rel, 'unreadable', f'{type(e).__name__}: {e}') from None
    if poses.shape != (header.num_frames, header.pose_width) or trans.shape != (header.num_frames,
                                                                                 3):
        raise AmassFileError(header.rel, 'bad_shape', f'poses {poses.shape}, trans {trans.shape}')
    finite = np.isfinite(poses).all(axis=1) & np.isfinite(trans).all(axis=1)
    return amass_to_smpl_pose(poses), finite


# ----------------------------------------------------------------------------------------------
# Sampling
# ----------------------------------------------------------------------------------------------
def sample_frame_indices(num_frames: int, fps: float, stride_seconds: float) -> np.ndarray:
    """Frames sampled every ``stride_seconds`` of a sequence of ``num_frames`` at ``fps``.

    Returns:
        (K,) int64 sorted unique frame indices ``floor(k * stride_seconds * fps)`` for all ``k >= 0``
        with ``k * stride_seconds < num_frames / fps``; ``K = ceil(num_frames / (stride * fps))``
        (fewer only when the stride is shorter than a frame).
    """
    if stride_seconds <= 0 or not np.isfinite(stride_seconds):
        raise ValueError(f'stride_seconds must be > 0, got {stride_seconds}')
    if num_frames <= 0:
        return np.zeros(0, dtype=np.int64)
    step = stride_seconds * fps  # frames per sample
    count = int(np.ceil(num_frames / step - 1e-9))
    # small epsilon: k * step is often an integer computed with rounding error just below it
    idx = np.floor(np.arange(count, dtype=np.float64) * step + 1e-6).astype(np.int64)
    idx = idx[idx < num_frames]
    return np.unique(idx)


def stride_for_target_count(durations: Iterable[float], target_count: int) -> float:
    """Uniform time stride (s) that yields ``target_count`` samples over sequences of ``durations`` s."""
    total = float(np.sum(np.asarray(list(durations), dtype=np.float64)))
    if target_count <= 0:
        raise ValueError(f'target_count must be > 0, got {target_count}')
    if total <= 0:
        raise ValueError('no usable sequence: total duration is 0')
    return total / target_count


# ----------------------------------------------------------------------------------------------
# The index on disk
# ----------------------------------------------------------------------------------------------
def _atomic_save_npy(path: str, arr: np.ndarray) -> None:
    tmp = path + '.tmp.npy'
    np.save(tmp, arr)
    os.replace(tmp, path)


STALE_INDEX_NAME = 'index.stale.json'


def retire_split_index(split_dir: str) -> bool:
    """Make a split directory of an earlier run unloadable without deleting anything: its
    ``index.json`` becomes ``index.stale.json`` (the arrays stay). Returns True if it held an index."""
    json_path = osp.join(split_dir, 'index.json')
    if not osp.isfile(json_path):
        return False
    os.replace(json_path, osp.join(split_dir, STALE_INDEX_NAME))
    return True


def write_split_index(split_dir: str, arrays: Mapping[str, np.ndarray],
                      sequences: List[dict], metadata: dict, split: str) -> str:
    """Write one split's arrays (see :data:`INDEX_ARRAYS`) and ``index.json`` (last, atomically).

    Returns:
        the path of ``index.json``.
    """
    os.makedirs(split_dir, exist_ok=True)
    json_path = osp.join(split_dir, 'index.json')
    if osp.exists(json_path):  # invalidate first: a crash mid-write must not leave a stale index
        os.remove(json_path)
    m = None
    desc = {}
    for name, (shape, dtype) in INDEX_ARRAYS.items():
        arr = np.ascontiguousarray(arrays[name], dtype=dtype)
        if m is None:
            m = arr.shape[0]
        if arr.shape != (m, ) + shape:
            raise ValueError(f'index array {name} has shape {arr.shape}, expected {(m, ) + shape}')
        _atomic_save_npy(osp.join(split_dir, f'{name}.npy'), arr)
        desc[name] = dict(shape=list(arr.shape), dtype=dtype)
    info = dict(format_version=INDEX_FORMAT_VERSION, split=split, num_meshes=int(m or 0),
                arrays=desc, sequences=sequences, metadata=metadata)
    tmp = json_path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(info, f, indent=1, sort_keys=True)
    os.replace(tmp, json_path)
    return json_path


class MoCapIndex:
    """Read-only view of one prepared split (``<data_root>/<split>/``), memory-mapped lazily.

    The arrays are opened (``np.load(mmap_mode='r')``) on first access in each process and never
    pickled, so the object is cheap to send to DataLoader workers.

    Args:
        split_dir: the split directory holding ``index.json`` and the ``.npy`` arrays.

    Raises:
        MoCapIndexError: the directory, ``index.json`` or an array is missing / inconsistent.
    """

    def __init__(self, split_dir: str) -> None:
        self.split_dir = split_dir
        json_path = osp.join(split_dir, 'index.json')
        hint = ('prepare it with `python tools/prepare_amass.py AMASS_ROOT OUT_DIR --body-model-dir '
                'DIR` (OUT_DIR/<split> is this directory), or for the toy data '
                '`python tools/make_toy_mocap.py` followed by tools/prepare_amass.py')
        if not osp.isfile(json_path):
            if osp.isfile(osp.join(split_dir, STALE_INDEX_NAME)):
                raise MoCapIndexError(
                    f'MoCap index {split_dir!r} is stale: the latest tools/prepare_amass.py run into '
                    f'{osp.dirname(osp.abspath(split_dir))!r} did not produce this split (other --splits, '
                    f'or no mesh in it; see its report.json); use one of that run\'s splits or re-run it')
            what = 'directory' if not osp.isdir(split_dir) else 'index.json'
            raise MoCapIndexError(f'MoCap index {what} missing: {json_path!r} does not exist; {hint}')
        try:
            with open(json_path) as f:
                info = json.load(f)
        except Exception as e:
            raise MoCapIndexError(f'MoCap index {json_path!r} is unreadable ({e}); {hint}') from None
        if info.get('format_version') != INDEX_FORMAT_VERSION:
            raise MoCapIndexError(f'MoCap index {json_path!r} has format_version '
                                  f'{info.get("format_version")}, expected {INDEX_FORMAT_VERSION}; '
                                  f're-run tools/prepare_amass.py')
        self.num_meshes = int(info['num_meshes'])
        for name, (shape, dtype) in INDEX_ARRAYS.items():
            path = osp.join(split_dir, f'{name}.npy')
            try:
                arr = np.load(path, mmap_mode='r')
            except Exception as e:
                raise MoCapIndexError(f'MoCap index incomplete: cannot read {path!r} '
                                      f'({type(e).__name__}: {e}); {hint}') from None
            if arr.shape != (self.num_meshes, ) + shape or arr.dtype != np.dtype(dtype):
                raise MoCapIndexError(
                    f'MoCap index incomplete: {path!r} has shape {arr.shape} {arr.dtype}, '
                    f'expected {(self.num_meshes, ) + shape} {dtype}; {hint}')
            del arr
        self.split = info.get('split')
        self.metadata = info.get('metadata', {})
        seqs = info.get('sequences', [])
        if self.num_meshes:  # an edited index must not fail later with a bare IndexError
            seq_id = np.load(osp.join(split_dir, 'seq_id.npy'), mmap_mode='r')
            lo, hi = int(seq_id.min()), int(seq_id.max())
            del seq_id
            if lo < 0 or hi >= len(seqs):
                raise MoCapIndexError(f'MoCap index {json_path!r}: seq_id.npy holds ids in [{lo}, {hi}] but '
                                      f'index.json lists {len(seqs)} sequences; re-run tools/prepare_amass.py')
        # compact per-sequence tables (small: one entry per AMASS file)
        self.seq_names = [s['name'] for s in seqs]
        self.seq_datasets = [s['dataset'] for s in seqs]
        self.sequences = seqs
        self._arrays: Optional[Dict[str, np.ndarray]] = None

    def __len__(self) -> int:
        return self.num_meshes

    @property
    def arrays(self) -> Dict[str, np.ndarray]:
        """{name: read-only memmap} of :data:`INDEX_ARRAYS`, opened on first use in this process."""
        if self._arrays is None:
            self._arrays = {name: np.load(osp.join(self.split_dir, f'{name}.npy'), mmap_mode='r')
                            for name in INDEX_ARRAYS}
        return self._arrays

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state['_arrays'] = None  # memmaps would be pickled as full copies; reopen in the worker
        return state

    def get(self, i: int) -> dict:
        """Mesh ``i``: pose (72,) f32, betas (10,) f32, gender int, keypoints_3d (17, 3) f32 metres,
        seq_id, frame_index, seq_name, dataset_name."""
        a = self.arrays
        seq_id = int(a['seq_id'][i])
        return dict(pose=np.array(a['pose'][i], dtype=np.float32),
                    betas=np.array(a['betas'][i], dtype=np.float32),
                    gender=int(a['gender'][i]),
                    keypoints_3d=np.array(a['keypoints_3d'][i], dtype=np.float32),
                    seq_id=seq_id, frame_index=int(a['frame_index'][i]),
                    seq_name=self.seq_names[seq_id], dataset_name=self.seq_datasets[seq_id])

    def get_many(self, rows: np.ndarray) -> dict:
        """:meth:`get` for meshes ``rows`` (int array), one gather per array: pose (N, 72) f32, betas (N, 10) f32,
        gender (N,), keypoints_3d (N, 17, 3) f32, seq_id (N,), frame_index (N,), and the lists
        seq_name, dataset_name."""
        a = self.arrays
        rows = np.asarray(rows, dtype=np.int64)
        seq_id = np.asarray(a['seq_id'][rows])
        return dict(pose=np.asarray(a['pose'][rows], dtype=np.float32),
                    betas=np.asarray(a['betas'][rows], dtype=np.float32),
                    gender=np.asarray(a['gender'][rows]),
                    keypoints_3d=np.asarray(a['keypoints_3d'][rows], dtype=np.float32),
                    seq_id=seq_id, frame_index=np.asarray(a['frame_index'][rows]),
                    seq_name=[self.seq_names[s] for s in seq_id],
                    dataset_name=[self.seq_datasets[s] for s in seq_id])


# ----------------------------------------------------------------------------------------------
# Preparation
# ----------------------------------------------------------------------------------------------
class _JointsEngine:
    """Batched body-model forward: (pose, betas, model gender) -> centred COCO-17 joints."""

    def __init__(self, body_model_dir: str, device: str, neutral_only: bool) -> None:
        import torch
        from mmpose_mpt.body_models import SMPL
        from mmpose_mpt.body_models.body_model_file import (BodyModelFileNotFoundError,
                                                            resolve_model_file)
        self.torch = torch
        self.device = torch.device(device)
        self.models = {}
        self.model_files = {}
        # neutral is required; a single model file (not a directory) is used as the neutral model
        self.model_files[0] = resolve_model_file(body_model_dir, 'smpl', 'neutral')
        if osp.isdir(body_model_dir) and not neutral_only:
            for gid in (1, 2):
                try:
                    self.model_files[gid] = resolve_model_file(body_model_dir, 'smpl', GENDERS[gid])
                except BodyModelFileNotFoundError:
                    pass  # that gender falls back to the neutral model
        for gid, path in self.model_files.items():
            self.models[gid] = SMPL(path, gender=GENDERS[gid]).to(self.device).eval()
        self.smpl_dir = osp.dirname(osp.abspath(self.model_files[0]))
        # fingerprint of what the models compute (goes into the cache keys): the model files'
        # bytes and the COCO regressor in use, per gender (exact and device independent)
        fp = hashlib.sha1()
        for gid in sorted(self.models):
            fp.update(str(gid).encode())
            with open(self.model_files[gid], 'rb') as f:
                for chunk in iter(lambda: f.read(1 << 22), b''):
                    fp.update(chunk)
            reg = self.models[gid].get_regressor('coco')
            fp.update(reg.detach().cpu().double().numpy().tobytes())
        self.fingerprint = fp.hexdigest()[:16]

    def model_gender(self, gender: str) -> int:
        gid = GENDERS.index(gender)
        return gid if gid in self.models else 0

    def compute(self, pose: np.ndarray, betas: np.ndarray, model_gender: np.ndarray) -> np.ndarray:
        """pose (B, 72), betas (B, 10), model_gender (B,) -> COCO-17 joints (B, 17, 3) float32 metres,
        relative to the posed SMPL pelvis joint."""
        torch = self.torch
        out = np.zeros((len(pose), NUM_COCO_KEYPOINTS, 3), dtype=np.float32)
        with torch.no_grad():
            for gid, model in self.models.items():
                sel = np.nonzero(model_gender == gid)[0]
                if len(sel) == 0:
                    continue
                dtype = torch.float32
                p = torch.as_tensor(pose[sel], dtype=dtype, device=self.device)
                b = torch.as_tensor(betas[sel], dtype=dtype, device=self.device)
                res = model(betas=b, body_pose=p[:, 3:], global_orient=p[:, :3])
                kp = model.regress(res['vertices'], 'coco') - res['joints'][:, :1]
                out[sel] = kp.float().cpu().numpy()
        return out


def _cache_name(rel: str, suffix: str = '.npz') -> str:
    return hashlib.sha1(rel.encode('utf-8')).hexdigest()[:20] + suffix


def _progress(iterable, total: int, enabled: bool, desc: str):
    if not enabled:
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm ships with mmpose's requirements; be tolerant anyway
        return iterable
    return tqdm(iterable, total=total, desc=desc, unit='file', dynamic_ncols=True)


def prepare_amass(amass_root: str,
                  out_dir: str,
                  body_model_dir: str,
                  stride_seconds: Optional[float] = None,
                  target_count: Optional[int] = None,
                  splits: Optional[Mapping[str, Sequence[str]]] = None,
                  device: str = 'cpu',
                  batch_size: int = 1024,
                  neutral_only: bool = False,
                  progress: bool = True,
                  verbose: bool = True) -> dict:
    """Prepare the MoCap index from an AMASS tree (see the module docstring for the conventions).

    Resumable and idempotent: each file's result is cached in ``<out_dir>/.cache/`` keyed by its
    relative path, size, mtime, the stride and a fingerprint of the body models; the split indices
    are rebuilt from the caches in sorted path order, so a re-run gives identical arrays.

    Args:
        amass_root: directory holding ``<dataset>/<subject>/*.npz``.
        out_dir: output directory; gets ``<split>/`` indices, ``report.json`` and ``.cache/``.
        body_model_dir: directory with ``SMPL_NEUTRAL.{pkl,npz}`` (optionally MALE/FEMALE; also the
            official ``basicModel_*`` names), or its parent holding ``smpl/``, or one model file
            (used as the neutral model).
        stride_seconds: time between samples of a sequence (s). Exclusive with ``target_count``;
            if both are None, 1.0 s.
        target_count: total number of meshes wanted over all splits (the paper uses ~2,000,000).
        splits: {split: [AMASS sub-dataset names or '*']}; None -> :data:`DEFAULT_SPLITS`.
        device: torch device for the body-model forward.
        batch_size: meshes per body-model forward.
        neutral_only: always use the neutral model for the joints.

    Returns:
        the report dict (also written to ``<out_dir>/report.json``).
    """
    t0 = time.time()
    if stride_seconds is not None and target_count is not None:
        raise ValueError('give either stride_seconds or target_count, not both')
    if stride_seconds is None and target_count is None:
        stride_seconds = 1.0
    splits = {k: list(v) for k, v in (splits or DEFAULT_SPLITS).items()}
    amass_root = osp.abspath(amass_root)
    if not osp.isdir(amass_root):
        raise FileNotFoundError(f'AMASS root {amass_root!r} is not a directory')
    if osp.exists(out_dir) and not osp.isdir(out_dir):
        raise NotADirectoryError(f'output directory {out_dir!r} is an existing file')
    if target_count is not None and int(target_count) <= 0:
        raise ValueError(f'target_count must be > 0, got {target_count}')
    if stride_seconds is not None and not (np.isfinite(stride_seconds) and stride_seconds > 0):
        raise ValueError(f'stride_seconds must be a finite number > 0, got {stride_seconds}')
    if int(batch_size) <= 0:
        raise ValueError(f'batch_size must be > 0, got {batch_size}')
    os.makedirs(out_dir, exist_ok=True)
    cache_dir = osp.join(out_dir, '.cache')
    os.makedirs(cache_dir, exist_ok=True)

    # the body models first: a wrong --body-model-dir must not wait for a full AMASS scan
    engine = _JointsEngine(body_model_dir, device, neutral_only)
    details: Dict[str, Dict[str, str]] = {}
    files, skipped = walk_amass(amass_root, details)

    def skip(reason: str, rel: str, detail: str = '') -> None:
        skipped.setdefault(reason, []).append(rel)
        if detail:
            details.setdefault(reason, {})[rel] = detail

    # pass 1: cheap validation of every file (npy headers + small arrays)
    headers: List[AmassHeader] = []
    excluded: Dict[str, int] = {}
    for rel in _progress(files, len(files), progress, 'scan AMASS'):
        try:
            h = read_amass_header(amass_root, rel)
        except AmassFileError as e:
            skip(e.reason, rel, e.detail)
            continue
        if split_of(h.dataset, splits) is None:
            excluded[h.dataset] = excluded.get(h.dataset, 0) + 1
            continue
        headers.append(h)

    def save_cache(path: str, key: str, res: dict) -> None:
        tmp = path + '.tmp.npz'
        np.savez(tmp, key=np.array(key), **{k: np.asarray(v) for k, v in res.items()})
        os.replace(tmp, path)

    def load_cache(path: str, key: str) -> Optional[dict]:
        if not osp.isfile(path):
            return None
        try:
            with np.load(path, allow_pickle=False) as c:
                if str(c['key']) == key:
                    return {k: c[k] for k in c.files if k != 'key'}
        except Exception:
            pass  # a broken cache entry (interrupted write) is recomputed
        return None

    scan_failed: Dict[str, dict] = {}
    if target_count is not None:
        # The stride must come from the time actually usable: read every motion once to find
        # unreadable files and non-finite frames (cached per file, independent of the stride).
        durations = []
        for h in _progress(headers, len(headers), progress, 'scan motion'):
            cpath = osp.join(cache_dir, _cache_name(h.rel, '.scan.npz'))
            key = json.dumps(dict(v=INDEX_FORMAT_VERSION, rel=h.rel, size=h.size,
                                  mtime=h.mtime_ns), sort_keys=True)
            res = load_cache(cpath, key)
            if res is None:
                try:
                    _, finite = read_amass_motion(amass_root, h)
                    if not finite.any():
                        raise AmassFileError(h.rel, 'nonfinite', 'every frame has NaN/inf')
                    res = dict(num_finite=np.int64(finite.sum()))
                except AmassFileError as e:
                    res = dict(error=np.array(e.reason), detail=np.array(e.detail))
                save_cache(cpath, key, res)
            if 'error' in res:
                scan_failed[h.rel] = res
            else:
                durations.append(int(res['num_finite']) / h.fps)
        stride = stride_for_target_count(durations, int(target_count)) if durations else 1.0
    else:
        stride = float(stride_seconds)

    # pass 2: per-file sampling + batched body-model forward, cached per file
    results: Dict[str, dict] = {}
    pending: List[Tuple[AmassHeader, str, dict]] = []  # (header, cache path, partial result)
    n_computed = n_cached = 0

    def cache_key(h: AmassHeader) -> str:
        return json.dumps(dict(v=INDEX_FORMAT_VERSION, rel=h.rel, size=h.size, mtime=h.mtime_ns,
                               stride=repr(stride), model=engine.fingerprint), sort_keys=True)

    def flush() -> None:
        if not pending:
            return
        pose = np.concatenate([r['pose'] for _, _, r in pending])
        betas = np.concatenate([np.repeat(h.betas[None], len(r['pose']), 0)
                                for h, _, r in pending])
        mg = np.concatenate([np.full(len(r['pose']), r['model_gender'], dtype=np.int64)
                             for _, _, r in pending])
        kp = np.concatenate([engine.compute(pose[i:i + batch_size], betas[i:i + batch_size],
                                            mg[i:i + batch_size])
                             for i in range(0, len(pose), batch_size)]) if len(pose) else \
            np.zeros((0, NUM_COCO_KEYPOINTS, 3), np.float32)
        start = 0
        for h, cpath, r in pending:
            k = len(r['pose'])
            r['keypoints_3d'] = kp[start:start + k]
            start += k
            save_cache(cpath, cache_key(h), r)
            results[h.rel] = r
        pending.clear()

    pending_meshes = 0
    for h in _progress(headers, len(headers), progress, 'prepare AMASS'):
        if h.rel in scan_failed:
            results[h.rel] = scan_failed[h.rel]
            continue
        cpath = osp.join(cache_dir, _cache_name(h.rel))
        key = cache_key(h)
        cached = load_cache(cpath, key)
        if cached is not None:
            results[h.rel] = cached
            n_cached += 1
            continue
        n_computed += 1
        try:
            pose, finite = read_amass_motion(amass_root, h)
            frames = sample_frame_indices(h.num_frames, h.fps, stride)
            keep = frames[finite[frames]]
            if not finite.any():
                raise AmassFileError(h.rel, 'nonfinite', 'every frame has NaN/inf')
        except AmassFileError as e:
            res = dict(error=np.array(e.reason), detail=np.array(e.detail))
            save_cache(cpath, key, res)
            results[h.rel] = res
            continue
        res = dict(frame_index=keep.astype(np.int32), pose=pose[keep].astype(np.float32),
                   model_gender=np.int64(engine.model_gender(h.gender)),
                   nonfinite_frames=np.int64((~finite).sum()),
                   dropped_samples=np.int64(len(frames) - len(keep)))
        pending.append((h, cpath, res))
        pending_meshes += len(keep)
        if pending_meshes >= batch_size * 4:
            flush()
            pending_meshes = 0
    flush()

    # assemble the split indices deterministically (sorted relative paths)
    nonfinite_files: Dict[str, int] = {}
    dropped_samples = 0
    per_split: Dict[str, List[Tuple[AmassHeader, dict]]] = {s: [] for s in splits}
    for h in headers:
        r = results[h.rel]
        if 'error' in r:
            skip(str(r['error']), h.rel, str(r['detail']))
            continue
        if int(r['nonfinite_frames']):
            nonfinite_files[h.rel] = int(r['nonfinite_frames'])
        dropped_samples += int(r['dropped_samples'])
        if len(r['frame_index']):
            per_split[split_of(h.dataset, splits)].append((h, r))
        else:  # every sampled frame was non-finite: say so instead of leaving the file out silently
            skip('no_samples', h.rel, f"{int(r['dropped_samples'])} sampled frames dropped, "
                                      f"{int(r['nonfinite_frames'])} of {h.num_frames} frames non-finite")

    meta = dict(amass_root=amass_root, stride_seconds=stride, target_count=target_count,
                splits=splits, body_model_files={GENDERS[g]: osp.abspath(p) for g, p in
                                                 sorted(engine.model_files.items())},
                body_model_genders=[GENDERS[g] for g in sorted(engine.models)],
                body_model_fingerprint=engine.fingerprint, neutral_only=bool(neutral_only),
                up_axis='z', centred_on='posed SMPL pelvis joint (joints[:, 0])',
                translation='dropped', keypoints='COCO-17 (smpl.regress(vertices, "coco"))',
                units='metres, radians')
    num_meshes = {}
    for split, items in per_split.items():
        split_dir = osp.join(out_dir, split)
        if not items:
            retire_split_index(split_dir)
            num_meshes[split] = 0
            continue
        seqs, start = [], 0
        for sid, (h, r) in enumerate(items):
            k = len(r['frame_index'])
            seqs.append(dict(name=osp.splitext(h.rel)[0].replace(os.sep, '/'), dataset=h.dataset,
                             path=h.rel.replace(os.sep, '/'), fps=h.fps, num_frames=h.num_frames,
                             source_gender=h.gender, gender=GENDERS[int(r['model_gender'])],
                             start=start, count=k, nonfinite_frames=int(r['nonfinite_frames'])))
            start += k
        arrays = dict(
            pose=np.concatenate([r['pose'] for _, r in items]),
            betas=np.concatenate([np.repeat(h.betas[None].astype(np.float32),
                                            len(r['frame_index']), 0) for h, r in items]),
            gender=np.concatenate([np.full(len(r['frame_index']), int(r['model_gender']), np.uint8)
                                   for _, r in items]),
            keypoints_3d=np.concatenate([r['keypoints_3d'] for _, r in items]),
            seq_id=np.concatenate([np.full(len(r['frame_index']), i, np.int32)
                                   for i, (_, r) in enumerate(items)]),
            frame_index=np.concatenate([r['frame_index'] for _, r in items]))
        write_split_index(split_dir, arrays, seqs, meta, split)
        num_meshes[split] = start

    # splits of an earlier run with other --splits must not stay loadable as if they were this run's
    stale_splits = []
    for name in sorted(os.listdir(out_dir)):
        if name not in splits and not name.startswith('.') and retire_split_index(osp.join(out_dir, name)):
            stale_splits.append(name)

    # prune cache entries of files that are gone
    wanted = {_cache_name(h.rel, sfx) for h in headers for sfx in ('.npz', '.scan.npz')}
    for n in os.listdir(cache_dir):
        if n.endswith('.npz') and n not in wanted:
            os.remove(osp.join(cache_dir, n))

    seconds = time.time() - t0
    total = int(sum(num_meshes.values()))
    report = dict(
        amass_root=amass_root, out_dir=osp.abspath(out_dir), stride_seconds=stride,
        target_count=target_count, num_files_found=len(files),
        num_files_used=int(sum(len(v) for v in per_split.values())),
        num_meshes=num_meshes, total_meshes=total,
        skipped={r: dict(count=len(v), description=SKIP_REASONS.get(r, r), files=sorted(v),
                         details=details.get(r, {})) for r, v in sorted(skipped.items())},
        nonfinite_frames=dict(count=int(sum(nonfinite_files.values())), files=nonfinite_files,
                              dropped_samples=int(dropped_samples)),
        excluded_datasets=excluded, stale_splits=stale_splits, files_computed=n_computed,
        files_cached=n_cached,
        seconds=round(seconds, 3), body_model=meta['body_model_genders'], device=device)
    with open(osp.join(out_dir, 'report.json'), 'w') as f:
        json.dump(report, f, indent=1, sort_keys=True)
    if verbose:
        print(format_report(report))
    return report


def format_report(report: dict) -> str:
    """A short human-readable summary of a :func:`prepare_amass` report."""
    lines = [f"AMASS: {report['num_files_used']}/{report['num_files_found']} motion files used, "
             f"{report['total_meshes']} meshes (stride {report['stride_seconds']:.4g} s) in "
             f"{report['seconds']:.1f} s ({report['files_computed']} computed, "
             f"{report['files_cached']} cached)"]
    for split, n in report['num_meshes'].items():
        lines.append(f'  {split}: {n} meshes')
    for reason, s in report['skipped'].items():
        shown = ', '.join(s['files'][:5]) + (' ...' if s['count'] > 5 else '')
        lines.append(f"  skipped {reason} ({s['description']}): {s['count']}: {shown}")
    nf = report['nonfinite_frames']
    if nf['count']:
        lines.append(f"  non-finite frames dropped: {nf['count']} in {len(nf['files'])} files "
                     f"({nf['dropped_samples']} samples lost)")
    if report['excluded_datasets']:
        lines.append(f"  not in any split: {report['excluded_datasets']}")
    if report.get('stale_splits'):
        lines.append(f"  retired splits of an earlier run (not in --splits; index.json -> "
                     f"{STALE_INDEX_NAME}): {', '.join(report['stale_splits'])}")
    lines.append(f"  report: {osp.join(report['out_dir'], 'report.json')}")
    return '\n'.join(lines)

"""Complement (MobRecon, Chen et al. CVPR 2022): the hand pre-training data of MPT (Sec. 4, Table 6),
read from its release as it is.

What the release holds (SeanChenxy/HandMesh ``complement_data.md`` and its only format spec, the
loader ``mobrecon/datasets/comphand.py``; ../shared/research/hand.md sec. 4): no MANO parameters, no
joint files, no camera files; per (pose, view) one **camera-space** mesh with MANO topology (778
vertices), stored **mirrored** (the loader does ``vert[:, 0] *= -1``, and flips the images the same
way), seen by one **fixed camera** ``K = [[373.3511425, 0, 128], [0, 373.3511425, 128], [0, 0, 1]]``
for 256 x 256 images. Layout::

    <data_root>/<part>/model_mano/<num>.obj     (parts: base_pose, trans_pose_batch1..3)
    <data_root>/<part>/pic256/<variant>/<name>.<num>.png, mask256/<num>.png   (images, not needed here)

This reader takes every ``model_mano/*.obj`` under ``data_root`` (sorted), un-mirrors it (right hand,
camera frame, metres) and gives one pre-training item per mesh: the 21 joints ``J21 @ V``
(:meth:`MANO.joint_regressor21`: FreiHAND's order and convention; the released meshes have no
skeleton) and their ``projectPoints`` with the fixed K. The 71 released views already are the
"virtual cameras"; :class:`HandCrop`'s in-plane rotation adds more. The images are not read: MPT
pre-trains on heatmaps.

Every OBJ is parsed once at build time (so a bad file fails before training, naming it) into one
float32 array; ``cache_dir`` keeps it as ``.npy`` for the next run.
"""
from __future__ import annotations

import glob
import hashlib
import os
import os.path as osp
from typing import Callable, List, Optional, Sequence, Union

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log
from mmpose.registry import DATASETS

from ..body_models.joint_regressors import FREIHAND21_NAMES
from ..utils.cli import MPTUserError
from .freihand_dataset import project_points

COMPLEMENT_K = np.array([[373.3511425, 0.0, 128.0], [0.0, 373.3511425, 128.0], [0.0, 0.0, 1.0]])
COMPLEMENT_IMAGE_SIZE = (256, 256)
NUM_VERTICES = 778


class ComplementDatasetError(MPTUserError, ValueError):
    """A Complement file cannot be used (no meshes found, not an OBJ, wrong vertex count, a mesh behind
    the camera): the message names the file."""


def read_obj_vertices(path: str) -> np.ndarray:
    """The ``v x y z`` lines of a Wavefront OBJ as a (V, 3) float64 array (faces, normals ignored).

    Raises:
        ComplementDatasetError: unreadable file, malformed vertex line, no vertices.
    """
    try:
        with open(path, 'rb') as fh:
            lines = [ln for ln in fh.read().splitlines() if ln[:2] == b'v ']
    except OSError as e:
        raise ComplementDatasetError(f'{path}: cannot read ({type(e).__name__}: {e})') from None
    if not lines:
        raise ComplementDatasetError(f'{path}: no vertices (not a Wavefront OBJ mesh)')
    try:
        v = np.array([ln.split()[1:4] for ln in lines], dtype=np.float64)
    except ValueError:
        raise ComplementDatasetError(f'{path}: malformed vertex line (expected "v x y z")') from None
    if v.ndim != 2 or v.shape[1] != 3 or not np.isfinite(v).all():
        raise ComplementDatasetError(f'{path}: malformed or non-finite vertices')
    return v


def write_obj(path: str, vertices: np.ndarray, faces: Optional[np.ndarray] = None) -> None:
    """Write a mesh as Wavefront OBJ (1-based faces), the release's mesh format."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as fh:
        fh.write(''.join(f'v {x:.6f} {y:.6f} {z:.6f}\n' for x, y, z in np.asarray(vertices)))
        if faces is not None:
            fh.write(''.join(f'f {a + 1} {b + 1} {c + 1}\n' for a, b, c in np.asarray(faces)))


@DATASETS.register_module()
class ComplementDataset(BaseDataset):
    """Complement meshes -> hand pre-training items.

    Args:
        data_root: the release folder (holding ``*/model_mano/*.obj``, at any depth).
        mano_model_path: MANO model (file or folder) for the 21-joint regressor.
        fingertip_vertex_ids: the 5 tip vertices (default: FreiHAND's 744, 320, 443, 555, 672, the
            convention of its ``training_xyz.json``; the toy hand has its own, see the toy configs).
        mirrored: the files are mirrored (the release): x is negated on reading.
        K: the camera (default the release's fixed K).
        split: ``'all'``; ``'train'`` / ``'val'``: the release has no split, so every ``val_every``-th
            mesh (in sorted path order) is held out for ``'val'`` and the rest is ``'train'``.
        val_every: see ``split``.
        max_meshes: keep this many meshes (after ``split``), evenly spaced (deterministic).
        cache_dir: keep the parsed vertices here (``complement_<hash>.npy``).
        pipeline, test_mode, lazy_init, max_refetch, metainfo: mmengine's.

    Item: ``vertices`` (778, 3) float32 metres, camera frame (right hand), ``keypoints_3d`` (21, 3)
    float32, ``keypoints_2d`` (21, 3) float32 [u, v, 1] px, ``K`` (3, 3), ``mesh_path``,
    ``sample_idx``, ``img_path`` (= the mesh path, how errors name a sample), ``dataset_name``,
    ``has_vertices`` / ``has_2d_joints`` / ``has_3d_joints`` = 1.
    """

    METAINFO: dict = dict(dataset_name='complement', num_keypoints=21, keypoint_names=list(FREIHAND21_NAMES),
                          root_index=0, num_vertices=NUM_VERTICES)

    def __init__(self, data_root: str, mano_model_path: str,
                 fingertip_vertex_ids: Sequence[int] = (744, 320, 443, 555, 672), mirrored: bool = True,
                 K: Optional[Sequence[Sequence[float]]] = None, split: str = 'all', val_every: int = 50,
                 max_meshes: Optional[int] = None,
                 cache_dir: Optional[str] = None, pipeline: Sequence[Union[dict, Callable]] = (),
                 test_mode: bool = False, metainfo: Optional[dict] = None, lazy_init: bool = False,
                 max_refetch: int = 1000) -> None:
        if max_meshes is not None and int(max_meshes) < 1:
            raise ComplementDatasetError(f'ComplementDataset: max_meshes must be >= 1, got {max_meshes}')
        if split not in ('all', 'train', 'val') or int(val_every) < 2:
            raise ComplementDatasetError(f'ComplementDataset: split must be all / train / val and val_every >= 2, '
                                         f'got {split!r}, {val_every}')
        self.split, self.val_every = split, int(val_every)
        self.mano_model_path = mano_model_path
        self.fingertip_vertex_ids = tuple(int(i) for i in fingertip_vertex_ids)
        self.mirrored = bool(mirrored)
        self.K = np.asarray(COMPLEMENT_K if K is None else K, np.float64).reshape(3, 3)
        self.max_meshes = None if max_meshes is None else int(max_meshes)
        self.cache_dir = cache_dir
        self.paths: List[str] = []
        self._verts: Optional[np.ndarray] = None
        self._joints: Optional[np.ndarray] = None
        super().__init__(ann_file='', metainfo=metainfo, data_root=data_root, data_prefix=dict(),
                         filter_cfg=None, indices=None, serialize_data=False, pipeline=list(pipeline),
                         test_mode=test_mode, lazy_init=lazy_init, max_refetch=max_refetch)

    def _find(self) -> List[str]:
        if not osp.isdir(self.data_root):
            raise ComplementDatasetError(f'{self.data_root}: Complement folder not found')
        paths = sorted(glob.glob(osp.join(self.data_root, '**', 'model_mano', '*.obj'), recursive=True))
        if not paths:
            raise ComplementDatasetError(f'{self.data_root}: no Complement meshes (<part>/model_mano/<num>.obj) '
                                         'found below it')
        if self.split != 'all':
            held = np.arange(len(paths)) % self.val_every == 0
            paths = [p for p, h in zip(paths, held) if h == (self.split == 'val')]
        if self.max_meshes is not None and self.max_meshes < len(paths):
            keep = np.unique(np.linspace(0, len(paths) - 1, self.max_meshes).round().astype(np.int64))
            paths = [paths[i] for i in keep]
        return paths

    def _read_all(self, paths: List[str]) -> np.ndarray:
        cache = None
        if self.cache_dir is not None:
            h = hashlib.sha1()
            for p in paths:
                st = os.stat(p)
                h.update(f'{p}\0{st.st_size}\0{st.st_mtime_ns}\0'.encode())
            cache = osp.join(self.cache_dir, f'complement_{h.hexdigest()[:16]}.npy')
            if osp.isfile(cache):
                return np.load(cache, mmap_mode='r')
        out = np.empty((len(paths), NUM_VERTICES, 3), np.float32)
        for i, p in enumerate(paths):
            v = read_obj_vertices(p)
            if len(v) != NUM_VERTICES:
                raise ComplementDatasetError(
                    f'{p}: {len(v)} vertices, a Complement mesh has MANO topology ({NUM_VERTICES} vertices)')
            out[i] = v
        if self.mirrored:
            out[..., 0] *= -1   # comphand.py: vert[:, 0] *= -1  # flip
        if cache is not None:
            os.makedirs(self.cache_dir, exist_ok=True)
            np.save(cache, out)
        return out

    def full_init(self) -> None:
        if self._fully_initialized:
            return
        from ..body_models.mano import MANO
        paths = self._find()
        verts = self._read_all(paths)
        reg = MANO(self.mano_model_path, fingertip_vertex_ids=self.fingertip_vertex_ids).joint_regressor21()
        joints = np.einsum('jv,nvc->njc', reg, np.asarray(verts, np.float64))
        z = joints[..., 2]
        if not (z > 0).all():
            i = int(np.argwhere(~(z > 0))[0][0])
            raise ComplementDatasetError(f'{paths[i]}: a joint lies behind the camera (depth {z[i].min():.4g} m): '
                                         'not a camera-space Complement mesh (or a different unit)')
        self.paths, self._verts, self._joints = paths, verts, joints.astype(np.float32)
        self._uv = project_points(joints, self.K[None]).astype(np.float32)
        print_log(f'ComplementDataset ({self.data_root}): {len(paths)} meshes', logger='current')
        self._fully_initialized = True

    def load_data_list(self) -> List[dict]:
        return []

    def __len__(self) -> int:
        if not self._fully_initialized:
            self.full_init()
        return len(self.paths)

    def get_data_info(self, idx: int) -> dict:
        if not self._fully_initialized:
            self.full_init()
        n = len(self.paths)
        if idx < 0:
            idx += n
        if not 0 <= idx < n:
            raise IndexError(f'index {idx} out of range for {n} items')
        one = np.float32(1.0)
        kp2 = np.concatenate([self._uv[idx], np.ones((21, 1), np.float32)], 1)
        return dict(sample_idx=int(idx), mesh_path=self.paths[idx], img_path=self.paths[idx],
                    dataset_name='complement', vertices=np.array(self._verts[idx], np.float32),
                    keypoints_3d=self._joints[idx].copy(), keypoints_2d=kp2, K=self.K.astype(np.float32),
                    has_vertices=one, has_2d_joints=one, has_3d_joints=one)

"""MANO parameters seen by virtual cameras around the hand: a generic hand pre-training source for users
who have MANO fits (pose / shape) instead of Complement's meshes.

File: an ``.npz`` with ``pose`` (N, 48) axis-angle (wrist 3 + 15 finger joints x 3, as FreiHAND's
``training_mano.json[:, :48]``; relative to MANO's ``hands_mean`` unless ``flat_hand_mean``) or
``global_orient`` (N, 3) + ``hand_pose`` (N, 45); optional ``betas`` (N, <= 10) (default 0). Read without
pickle.

Cameras: ``num_views`` viewpoints spread evenly over the sphere around the hand (Fibonacci points,
deterministic), each looking at the hand's centre (the middle finger's MCP, FreiHAND's root joint 9)
from ``distance`` metres with a pinhole ``focal`` / ``principal_point`` (FreiHAND-like defaults), the
camera's up vector kept as close to the hand frame's -y as the direction allows. Item ``idx = mesh *
num_views + view``; ``random_view=True`` draws the view instead (training). MANO is run per item on
the CPU (one hand, ~1 ms); the joints are the 16 posed skeleton joints + 5 fingertips
(:meth:`MANO.joints21`, how FreiHAND made ``training_xyz.json``).

Item: as :class:`~mmpose_mpt.datasets.ComplementDataset`'s (``vertices`` (778, 3), ``keypoints_3d`` (21, 3),
``keypoints_2d`` (21, 3), ``K``; camera frame, metres) + ``view_index``, ``mesh_index``.
"""
from __future__ import annotations

import os.path as osp
import zipfile
from typing import Callable, List, Optional, Sequence, Union

import numpy as np
from mmengine.dataset import BaseDataset
from mmpose.registry import DATASETS

from ..body_models.joint_regressors import FREIHAND21_NAMES
from ..utils.cli import MPTUserError
from .freihand_dataset import project_points


class ManoParamDatasetError(MPTUserError, ValueError):
    """The MANO-parameter file cannot be used; the message names it."""


def sphere_views(num_views: int) -> np.ndarray:
    """(num_views, 3, 3) rotations R (world -> camera, ``X_cam = R X``) of cameras on a Fibonacci sphere
    looking at the origin: the camera z axis points from the camera to the origin."""
    k = np.arange(num_views) + 0.5
    z = 1 - 2 * k / num_views
    phi = np.pi * (1 + 5 ** 0.5) * k
    centres = np.stack([np.sqrt(1 - z * z) * np.cos(phi), np.sqrt(1 - z * z) * np.sin(phi), z], 1)
    out = np.empty((num_views, 3, 3))
    for i, c in enumerate(centres):
        fwd = -c / np.linalg.norm(c)
        down = np.array([0.0, -1.0, 0.0])   # image "down" close to the hand frame's -y (fingers up)
        down = down - fwd * (down @ fwd)
        if np.linalg.norm(down) < 1e-6:
            down = np.array([0.0, 0.0, 1.0]) - fwd * fwd[2]
        down /= np.linalg.norm(down)
        right = np.cross(down, fwd)
        out[i] = np.stack([right, down, fwd])
    return out


@DATASETS.register_module()
class ManoParamDataset(BaseDataset):
    """MANO fits x virtual cameras (see the module docstring).

    Args:
        ann_file: the ``.npz``.
        mano_model_path: MANO model (file or folder).
        num_views: cameras around each hand.
        random_view: draw the view per item (training) instead of ``idx % num_views``.
        distance: camera distance from the hand centre, metres.
        focal, principal_point: the pinhole (px); defaults FreiHAND-like for 224 crops.
        flat_hand_mean, fingertip_vertex_ids: :class:`MANO`'s.
        max_meshes: keep this many fits, evenly spaced.
        pipeline, test_mode, lazy_init, max_refetch, metainfo: mmengine's.
    """

    METAINFO: dict = dict(dataset_name='mano_params', num_keypoints=21, keypoint_names=list(FREIHAND21_NAMES),
                          root_index=0, num_vertices=778)

    def __init__(self, ann_file: str, mano_model_path: str, num_views: int = 8, random_view: bool = False,
                 distance: float = 0.6, focal: float = 560.0, principal_point: Sequence[float] = (112.0, 112.0),
                 flat_hand_mean: bool = False, fingertip_vertex_ids: Optional[Sequence[int]] = None,
                 max_meshes: Optional[int] = None, pipeline: Sequence[Union[dict, Callable]] = (),
                 test_mode: bool = False, metainfo: Optional[dict] = None, lazy_init: bool = False,
                 max_refetch: int = 1000) -> None:
        if int(num_views) < 1 or not distance > 0 or not focal > 0:
            raise ManoParamDatasetError(f'{ann_file}: num_views >= 1, distance > 0 and focal > 0 needed, got '
                                        f'{num_views}, {distance}, {focal}')
        self.mano_model_path = mano_model_path
        self.num_views, self.random_view = int(num_views), bool(random_view)
        self.distance = float(distance)
        self.K = np.array([[focal, 0, principal_point[0]], [0, focal, principal_point[1]], [0, 0, 1]], np.float64)
        self.flat_hand_mean = bool(flat_hand_mean)
        self.fingertip_vertex_ids = fingertip_vertex_ids
        self.max_meshes = max_meshes
        self.views = sphere_views(self.num_views)
        self._model = None
        super().__init__(ann_file=ann_file, metainfo=metainfo, data_root='', data_prefix=dict(), filter_cfg=None,
                         indices=None, serialize_data=False, pipeline=list(pipeline), test_mode=test_mode,
                         lazy_init=lazy_init, max_refetch=max_refetch)

    def _read(self) -> dict:
        path = self.ann_file
        if not osp.isfile(path):
            raise ManoParamDatasetError(f'{path}: MANO-parameter file not found')
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: np.asarray(z[k], np.float64) for k in z.files}
        except (OSError, ValueError, zipfile.BadZipFile) as e:
            raise ManoParamDatasetError(f'{path}: not a readable .npz without pickles ({type(e).__name__}: {e})'
                                        ) from None
        if 'pose' in arrays:
            pose = arrays['pose']
        elif 'global_orient' in arrays and 'hand_pose' in arrays:
            pose = np.concatenate([arrays['global_orient'].reshape(len(arrays['global_orient']), -1),
                                   arrays['hand_pose'].reshape(len(arrays['hand_pose']), -1)], 1)
        else:
            raise ManoParamDatasetError(f'{path}: needs "pose" (N, 48) or "global_orient" (N, 3) + "hand_pose" '
                                        f'(N, 45); keys found: {sorted(arrays)}')
        pose = pose.reshape(len(pose), -1)
        if pose.shape[1] != 48 or len(pose) == 0:
            raise ManoParamDatasetError(f'{path}: pose must be (N>=1, 48) axis-angle, got {pose.shape}')
        betas = arrays.get('betas', np.zeros((len(pose), 10))).reshape(len(pose), -1)
        if len(betas) != len(pose) or betas.shape[1] > 10:
            raise ManoParamDatasetError(f'{path}: betas must be (N={len(pose)}, <=10), got {betas.shape}')
        if not (np.isfinite(pose).all() and np.isfinite(betas).all()):
            raise ManoParamDatasetError(f'{path}: pose / betas contain NaN / inf')
        if self.max_meshes is not None and int(self.max_meshes) < len(pose):
            keep = np.unique(np.linspace(0, len(pose) - 1, int(self.max_meshes)).round().astype(np.int64))
            pose, betas = pose[keep], betas[keep]
        return dict(pose=pose.astype(np.float32), betas=betas.astype(np.float32))

    def full_init(self) -> None:
        if self._fully_initialized:
            return
        self._arrays = self._read()
        self._fully_initialized = True

    def load_data_list(self) -> List[dict]:
        return []

    def __len__(self) -> int:
        if not self._fully_initialized:
            self.full_init()
        return len(self._arrays['pose']) * self.num_views

    def _mano(self):
        if self._model is None:   # per process (DataLoader workers build their own)
            from ..body_models.mano import MANO
            self._model = MANO(self.mano_model_path, flat_hand_mean=self.flat_hand_mean,
                               fingertip_vertex_ids=self.fingertip_vertex_ids)
        return self._model

    def get_data_info(self, idx: int) -> dict:
        import torch
        if not self._fully_initialized:
            self.full_init()
        n = len(self)
        if idx < 0:
            idx += n
        if not 0 <= idx < n:
            raise IndexError(f'index {idx} out of range for {n} items')
        mesh, view = divmod(int(idx), self.num_views)
        if self.random_view:
            view = int(np.random.randint(self.num_views))
        p = torch.from_numpy(self._arrays['pose'][mesh:mesh + 1])
        model = self._mano()
        with torch.no_grad():
            out = model(betas=torch.from_numpy(self._arrays['betas'][mesh:mesh + 1]), global_orient=p[:, :3],
                        hand_pose=p[:, 3:])
            joints = model.joints21(out)[0].double().numpy()
        verts = out['vertices'][0].double().numpy()
        R = self.views[view]
        centre = joints[9]
        t = np.array([0.0, 0.0, self.distance])
        verts_c, joints_c = (verts - centre) @ R.T + t, (joints - centre) @ R.T + t
        uv = project_points(joints_c, self.K)
        one = np.float32(1.0)
        return dict(sample_idx=int(idx), mesh_index=mesh, view_index=view, img_path=f'{self.ann_file}[{mesh}]',
                    dataset_name='mano_params', vertices=verts_c.astype(np.float32),
                    keypoints_3d=joints_c.astype(np.float32),
                    keypoints_2d=np.concatenate([uv, np.ones((21, 1))], 1).astype(np.float32),
                    K=self.K.astype(np.float32), has_vertices=one, has_2d_joints=one, has_3d_joints=one)

"""MANO hand model: a batched, device/dtype-agnostic wrapper of ``smplx.MANO`` (no PCA: full 45-D
axis-angle hand pose) returning 21 joints = the 16 kinematic joints + 5 fingertip vertices.

The model file (``MANO_RIGHT.pkl`` / ``.npz``, official with chumpy objects or converted) is read by
our chumpy-free loader and passed to smplx via ``data_struct``. Metres; sizes come from the file.
"""
import contextlib
import io
import os
from typing import Dict, Mapping, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from .body_model_file import BodyModelFileError, load_body_model_file, resolve_model_file, validate_body_model
from .joint_regressors import MANO21_TO_OPENPOSE, MANO_FINGERTIP_VERTEX_IDS
from .smpl import _LBSBodyModel, _struct


class MANO(_LBSBodyModel):
    """MANO hand.

    Args:
        model_path: a model file or a directory holding ``MANO_{RIGHT,LEFT}.pkl|.npz`` (or ``mano/``).
        is_rhand: right (True) or left hand file in a directory.
        num_betas: shape coefficients to use (default: all the model has, MANO: 10).
        flat_hand_mean: False (smplx / manopth default): ``hand_pose`` is relative to the model's
            ``hands_mean``; True: zero pose is the flat hand.
        fingertip_vertex_ids: 5 vertex ids (thumb, index, middle, ring, pinky) appended as joints 16-20
            (default MANO's, from smplx: 744, 320, 443, 554, 671; the toy hand uses the same ids).
            FreiHAND's ground truth used ``FREIHAND_FINGERTIP_VERTEX_IDS`` (744, 320, 443, 555, 672):
            pass those with the real MANO to rebuild ``training_xyz.json`` exactly (:meth:`joints21`).
        dtype: float dtype of the buffers.
    """

    def __init__(self, model_path: Union[str, os.PathLike], is_rhand: bool = True,
                 num_betas: Optional[int] = None, flat_hand_mean: bool = False,
                 fingertip_vertex_ids: Optional[Sequence[int]] = None,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        import smplx
        self.model_file = resolve_model_file(os.fspath(model_path), 'mano', is_rhand=is_rhand)
        arrays = load_body_model_file(self.model_file)
        info = validate_body_model(arrays, self.model_file, kind='mano')
        self.num_vertices, self.num_joints = info['num_vertices'], info['num_joints']
        nb = info['num_betas'] if num_betas is None else min(int(num_betas), info['num_betas'])
        if os.path.isfile(os.fspath(model_path)) and 'LEFT' in os.path.basename(self.model_file).upper():
            is_rhand = False  # as smplx: a file's name tells the side
        self.is_rhand = bool(is_rhand)
        self.flat_hand_mean = bool(flat_hand_mean)
        with contextlib.redirect_stdout(io.StringIO()):
            self.body = smplx.MANO(model_path=self.model_file, data_struct=_struct(arrays), is_rhand=is_rhand,
                                   num_betas=nb, use_pca=False, flat_hand_mean=flat_hand_mean,
                                   create_betas=False, create_global_orient=False, create_hand_pose=False,
                                   create_transl=False, dtype=dtype)
        self._finish_smplx(arrays, dtype)
        mean = np.zeros(45) if flat_hand_mean else np.asarray(arrays['hands_mean'], np.float64)
        self.body.hand_mean = torch.as_tensor(mean, dtype=dtype)
        self.body.pose_mean = torch.cat([torch.zeros(3, dtype=dtype), self.body.hand_mean])
        tips = list(MANO_FINGERTIP_VERTEX_IDS.values()) if fingertip_vertex_ids is None else \
            [int(i) for i in fingertip_vertex_ids]
        if len(tips) != 5 or min(tips) < 0 or max(tips) >= self.num_vertices:
            raise BodyModelFileError(f'{self.model_file}: fingertip vertex ids {tips} must be 5 ids in '
                                     f'[0, {self.num_vertices})')
        self.register_buffer('fingertip_vertex_ids', torch.as_tensor(tips, dtype=torch.long))
        self._make_buffers_nonpersistent()

    @property
    def num_keypoints(self) -> int:
        return self.num_joints + 5

    def forward(self, betas: Optional[Tensor] = None, hand_pose: Optional[Tensor] = None,
                global_orient: Optional[Tensor] = None, transl: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Posed hands.

        Args:
            betas: (B, S') shape coefficients (S' <= num_betas; missing ones 0).
            hand_pose: (B, 45) axis-angle of the 15 finger joints (relative to ``hands_mean`` unless
                ``flat_hand_mean``).
            global_orient: (B, 3) axis-angle of the wrist.
            transl: (B, 3) metres.

        Returns:
            dict(vertices (B, V, 3), joints (B, 21, 3) = 16 MANO joints + 5 fingertips), metres.
        """
        B = self._batch_size(betas, hand_pose, global_orient, transl)
        zeros = torch.zeros(B, 3, dtype=self.dtype, device=self.device)
        go = zeros if global_orient is None else self._as(global_orient, 'global_orient').reshape(-1, 3).expand(B, -1)
        n = 3 * (self.num_joints - 1)
        hp = zeros.new_zeros(B, n) if hand_pose is None else self._as(hand_pose, 'hand_pose')
        hp = hp.reshape(hp.shape[0], -1).expand(B, -1)
        if hp.shape[1] != n:
            raise ValueError(f'{self.model_file}: hand_pose must have {n} values per hand, got {hp.shape[1]}')
        # smplx.MANO.forward, with the rotations made in float32 for float16 models
        from smplx.lbs import lbs
        body = self.body
        pose = torch.cat([go, hp], 1) + body.pose_mean
        rot = self._rotmats_if_half(pose)
        vertices, joints = lbs(self._betas(betas, B), pose if rot is None else rot, body.v_template, body.shapedirs,
                               body.posedirs, body.J_regressor, body.parents, body.lbs_weights,
                               pose2rot=rot is None)
        joints = torch.cat([joints, vertices[:, self.fingertip_vertex_ids]], 1)
        if transl is not None:
            t = self._as(transl, 'transl').reshape(-1, 1, 3)
            vertices, joints = vertices + t, joints + t
        return dict(vertices=vertices, joints=joints)

    def regress(self, vertices: Tensor, name: str = 'mano') -> Tensor:
        """21 keypoints (..., 21, 3) from vertices (..., V, 3): ``J_regressor @ vertices`` + fingertips;
        name 'mano' (MANO order + tips) or 'openpose' (wrist, thumb1-4, index1-4, ... pinky1-4)."""
        if vertices.shape[-2] != self.num_vertices:
            raise ValueError(f'vertices have {vertices.shape[-2]} points, the model {self.num_vertices}')
        joints = torch.cat([self._einsum_regress(self.body.J_regressor, vertices),
                            vertices[..., self.fingertip_vertex_ids, :]], -2)
        if name == 'mano':
            return joints
        if name == 'openpose':
            return joints[..., list(MANO21_TO_OPENPOSE), :]
        raise ValueError(f"unknown regressor {name!r} (expected 'mano' or 'openpose')")

    def joints21(self, vertices_or_output: Union[Tensor, Mapping[str, Tensor]]) -> Tensor:
        """The 21 hand joints in FreiHAND order (= METRO's, mmpose's hand order): wrist, thumb1-4,
        index1-4, middle1-4, ring1-4, pinky1-4 (1 = the joint nearest the wrist, 4 = the fingertip,
        which is the vertex ``fingertip_vertex_ids`` of that finger).

        Args:
            vertices_or_output: either the dict :meth:`forward` returns: its 16 posed skeleton joints
                (smplx's ``J_transformed``) + the tips of its vertices, which is how FreiHAND built
                ``training_xyz.json`` from ``training_mano.json`` (freihand ``utils/model.py``
                ``_calc_coords``: ``Jtr`` = the translations of ``global_rigid_transformation``, then
                ``get_keypoints_from_mesh_ch``); or vertices (..., V, 3) alone: ``J_regressor @
                vertices`` + the tips, METRO's ``get_3d_joints`` (the only choice for a predicted mesh).
                Both agree on an unposed hand; under pose the regressed joints follow the skinned
                surface, not the skeleton, so the two differ.

        Returns:
            Tensor: (..., 21, 3) in the input's units (metres).
        """
        if isinstance(vertices_or_output, Mapping):
            if 'joints' not in vertices_or_output or 'vertices' not in vertices_or_output:
                raise ValueError('MANO.joints21: a dict input must be MANO.forward\'s output with '
                                 f'"joints" and "vertices", got keys {sorted(vertices_or_output)}')
            vertices, joints = vertices_or_output['vertices'], vertices_or_output['joints']
            if vertices.shape[-2] != self.num_vertices or joints.shape[-2] < self.num_joints:
                raise ValueError(f'MANO.joints21: expected vertices (..., {self.num_vertices}, 3) and joints '
                                 f'(..., >= {self.num_joints}, 3), got {tuple(vertices.shape)} and '
                                 f'{tuple(joints.shape)}')
            mano21 = torch.cat([joints[..., :self.num_joints, :],
                                vertices[..., self.fingertip_vertex_ids, :]], -2)
            return mano21[..., list(MANO21_TO_OPENPOSE), :]
        return self.regress(vertices_or_output, 'openpose')

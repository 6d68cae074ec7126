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

    def joint_regressor21(self) -> np.ndarray:
        """(21, V) float64 dense regressor in FreiHAND order: MANO's ``J_regressor`` rows (16, applied to
        the posed mesh) + one-hot rows at ``fingertip_vertex_ids``, reordered by ``MANO21_TO_OPENPOSE``
        (the matrix METRO's ``_mano.py`` builds, with this model's tip ids), so that
        ``joint_regressor21() @ vertices == joints21(vertices)``."""
        reg = self.body.J_regressor.detach().double().cpu().numpy()
        tips = np.zeros((5, self.num_vertices))
        tips[np.arange(5), self.fingertip_vertex_ids.cpu().numpy()] = 1.0
        return np.concatenate([reg, tips])[list(MANO21_TO_OPENPOSE)]


# METRO's 778 -> 195 MANO vertex selection: the rows of ``D[0]`` of metro/modeling/data/mano_downsampling.npz
# (microsoft/MeshTransformer cefc4af5; one 1.0 per row; same blob in MeshGraphormer), read in
# ../shared/research/hand.md sec. 3.
METRO_MANO_195_VERTEX_IDS = (
    5, 8, 10, 11, 12, 15, 19, 20, 24, 28, 30, 32, 33, 37, 39, 41, 45, 48, 49, 52, 53, 54, 55, 58, 59, 61, 62,
    76, 83, 85, 91, 98, 102, 105, 106, 110, 114, 115, 124, 137, 148, 150, 154, 159, 160, 161, 162, 166, 170,
    173, 186, 187, 189, 190, 192, 199, 201, 209, 211, 212, 213, 224, 225, 230, 235, 236, 240, 243, 247, 248,
    250, 251, 254, 258, 262, 263, 267, 268, 269, 270, 274, 276, 277, 289, 290, 298, 303, 305, 309, 316, 317,
    318, 320, 323, 332, 338, 350, 354, 359, 362, 365, 366, 370, 373, 376, 377, 380, 389, 394, 409, 411, 413,
    416, 420, 423, 424, 429, 436, 439, 451, 452, 453, 460, 462, 463, 470, 471, 474, 478, 486, 487, 491, 499,
    518, 526, 531, 537, 540, 544, 548, 554, 560, 561, 563, 570, 571, 573, 576, 579, 587, 589, 594, 596, 609,
    615, 617, 624, 629, 640, 641, 643, 648, 657, 658, 664, 665, 677, 678, 681, 690, 692, 698, 699, 700, 701,
    703, 705, 714, 718, 724, 728, 731, 735, 736, 738, 739, 744, 746, 750, 751, 756, 759, 761, 770, 775)


def build_selection_sampling(vertices: np.ndarray, faces: np.ndarray,
                             keep: Sequence[int] = METRO_MANO_195_VERTEX_IDS) -> Dict[str, list]:
    """A one-level mesh sampling (the :func:`~mmpose_mpt.body_models.build_mesh_sampling` dict) that
    keeps the given vertex subset, e.g. METRO's 195 MANO vertices.

    ``D`` is the 0/1 selection of ``keep`` (METRO's ``D[0]`` exactly, for the real MANO). ``U`` is
    rebuilt here (METRO's released ``U`` is not derivable from the ids): every vertex joins the region
    of its nearest kept vertex along the mesh edges (multi-source Dijkstra), triangles whose corners lie
    in three different regions form the coarse mesh, and each vertex gets the barycentric coordinates
    of its closest point on that coarse mesh (as for the decimated levels); kept vertices map to
    themselves.

    Args:
        vertices: (V, 3) template (metres); faces: (F, 3) int; keep: distinct ids in [0, V).

    Returns:
        dict(D=[csr (n, V)], U=[csr (V, n)], F=[faces, coarse faces (F', 3)], num_vertices=[V, n],
        vertices=[vertices, vertices[keep]]).
    """
    import scipy.sparse as sp
    from scipy.sparse.csgraph import dijkstra

    from .mesh_sampler import _upsampling_matrix
    vertices = np.asarray(vertices, np.float64)
    faces = np.asarray(faces, np.int64)
    keep = np.asarray(keep, np.int64)
    num_v, n = len(vertices), len(keep)
    if keep.ndim != 1 or n < 4 or len(np.unique(keep)) != n or keep.min() < 0 or keep.max() >= num_v:
        raise ValueError(f'keep must be >= 4 distinct vertex ids in [0, {num_v}), got {n} ids '
                         f'(range {keep.min() if n else None}..{keep.max() if n else None})')
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    w = np.linalg.norm(vertices[e[:, 0]] - vertices[e[:, 1]], axis=1)
    graph = sp.coo_matrix((np.r_[w, w], (np.r_[e[:, 0], e[:, 1]], np.r_[e[:, 1], e[:, 0]])),
                          shape=(num_v, num_v)).tocsr()
    _, _, source = dijkstra(graph, directed=False, indices=keep, min_only=True, return_predecessors=True)
    region = np.full(num_v, -1, np.int64)
    reach = source >= 0
    slot = np.full(num_v, -1, np.int64)
    slot[keep] = np.arange(n)
    region[reach] = slot[source[reach]]
    if (~reach).any():   # parts of the mesh not connected to any kept vertex: nearest in space
        from scipy.spatial import cKDTree
        region[~reach] = cKDTree(vertices[keep]).query(vertices[~reach])[1]
    f = region[faces]
    f = f[(f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])]
    _, first = np.unique(np.sort(f, axis=1), axis=0, return_index=True)
    coarse_faces = f[np.sort(first)]
    d = sp.csr_matrix((np.ones(n), (np.arange(n), keep)), shape=(n, num_v))
    u = _upsampling_matrix(vertices, vertices[keep], coarse_faces, keep)
    return dict(D=[d], U=[u], F=[faces, coarse_faces], num_vertices=[num_v, n],
                vertices=[vertices, vertices[keep]])

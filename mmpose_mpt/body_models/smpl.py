"""SMPL body model: a batched, device/dtype-agnostic wrapper of ``smplx.SMPL`` plus joint regressors.

The model file is read by our chumpy-free loader (:func:`load_body_model_file`, official ``.pkl`` with
chumpy objects, converted ``.pkl`` or ``.npz``), validated, and handed to ``smplx.SMPL`` through its
``data_struct`` argument; the linear blend skinning is smplx's. Sizes (V vertices, J joints, S shape
coefficients) come from the file: SMPL (6890, 24, 10 or 300), SMPL-H (6890, 52, 16) and the toy
stand-in all work. Units are metres; the template is y-up (SMPL's convention).

All buffers are non-persistent: a network holding a body model does not copy the (licensed) model
arrays into its checkpoints.
"""
import contextlib
import io
import os
import os.path as osp
from typing import Dict, Optional, Union

import numpy as np
import torch
from torch import Tensor, nn

from .body_model_file import (BodyModelFileError, load_body_model_file, normalize_gender,
                              resolve_model_file, validate_body_model)
from .joint_regressors import (H36M_J17_TO_J14, build_coco_regressor, check_h36m_regressor_order,
                               load_joint_regressor)

RegressorArg = Union[None, str, os.PathLike, np.ndarray, Tensor]

H36M_REGRESSOR_NAMES = ('J_regressor_h36m_correct.npy', 'J_regressor_h36m.npy')  # METRO, SPIN
COCO_REGRESSOR_NAME = 'J_regressor_coco.npy'


def _struct(arrays: dict):
    from smplx.utils import Struct
    return Struct(**arrays)


class _LBSBodyModel(nn.Module):
    """Shared plumbing of the SMPL / MANO wrappers (``self.body`` is the smplx module)."""

    body: nn.Module
    model_file: str
    num_vertices: int
    num_joints: int

    def _finish_smplx(self, arrays: dict, dtype: torch.dtype) -> None:
        body = self.body
        # smplx casts its arrays through float32 (utils.to_np); reload them at the requested precision.
        num_betas = body.shapedirs.shape[-1]
        exact = dict(v_template=np.asarray(arrays['v_template']),
                     shapedirs=np.asarray(arrays['shapedirs'])[:, :, :num_betas],
                     posedirs=np.asarray(arrays['posedirs']).reshape(-1, arrays['posedirs'].shape[-1]).T,
                     J_regressor=np.asarray(arrays['J_regressor']),
                     lbs_weights=np.asarray(arrays['weights']))
        for name, value in exact.items():
            setattr(body, name, torch.as_tensor(np.ascontiguousarray(value, dtype=np.float64), dtype=dtype))
        # Extra "joints" from smplx's SMPL-topology vertex ids are not ours to add (index errors on other
        # meshes); our regressors provide keypoints instead.
        body.vertex_joint_selector.extra_joints_idxs = torch.zeros(0, dtype=torch.long)
        self.faces = np.asarray(arrays['f']).astype(np.int64)

    def _make_buffers_nonpersistent(self) -> None:
        for module in self.modules():
            module._non_persistent_buffers_set.update(name for name, _ in module.named_buffers(recurse=False))

    @property
    def dtype(self) -> torch.dtype:
        return self.body.v_template.dtype

    @property
    def device(self) -> torch.device:
        return self.body.v_template.device

    @property
    def num_betas(self) -> int:
        return int(self.body.shapedirs.shape[-1])

    @property
    def J_regressor(self) -> Tensor:
        """(J, V) the model's joint regressor."""
        return self.body.J_regressor

    @property
    def parents(self) -> Tensor:
        """(J,) long, parent joint ids (root: -1)."""
        return self.body.parents

    @property
    def v_template(self) -> Tensor:
        """(V, 3) rest-pose template vertices, metres."""
        return self.body.v_template

    def _as(self, x, name: str) -> Tensor:
        x = torch.as_tensor(x)
        if not x.is_floating_point():
            raise TypeError(f'{name} must be a floating-point tensor, got {x.dtype}')
        return x.to(device=self.device, dtype=self.dtype)

    def _betas(self, betas, batch_size: int) -> Tensor:
        if betas is None:
            return torch.zeros(batch_size, self.num_betas, dtype=self.dtype, device=self.device)
        betas = self._as(betas, 'betas').reshape(-1, torch.as_tensor(betas).shape[-1])
        if betas.shape[-1] > self.num_betas:
            raise ValueError(f'{self.model_file}: got {betas.shape[-1]} shape coefficients (betas) but the '
                             f'model has {self.num_betas}')
        if betas.shape[-1] < self.num_betas:  # missing coefficients are zero
            betas = torch.cat([betas, betas.new_zeros(betas.shape[0], self.num_betas - betas.shape[-1])], 1)
        return betas.expand(batch_size, -1)

    @staticmethod
    def _batch_size(*xs) -> int:
        sizes = {int(torch.as_tensor(x).shape[0]) for x in xs if x is not None}
        sizes.discard(1)
        if len(sizes) > 1:
            raise ValueError(f'inconsistent batch sizes {sorted(sizes)}')
        return sizes.pop() if sizes else 1

    def _rotmats_if_half(self, pose: Tensor) -> Optional[Tensor]:
        """float16 cannot hold smplx's Rodrigues epsilon (1e-8 -> 0: NaN for zero rotations): convert
        axis-angle (B, N*3) to rotation matrices (B, N, 3, 3) in float32 instead; None otherwise."""
        if self.dtype != torch.float16:
            return None
        from smplx.lbs import batch_rodrigues
        B = pose.shape[0]
        return batch_rodrigues(pose.float().reshape(-1, 3)).to(self.dtype).reshape(B, -1, 3, 3)

    @staticmethod
    def _einsum_regress(regressor: Tensor, vertices: Tensor) -> Tensor:
        return torch.einsum('kv,...vc->...kc', regressor.to(device=vertices.device, dtype=vertices.dtype),
                            vertices)

    def extra_repr(self) -> str:
        return f'model_file={self.model_file!r}, num_vertices={self.num_vertices}, num_joints={self.num_joints}'


class SMPL(_LBSBodyModel):
    """SMPL (and SMPL-H body) model.

    Args:
        model_path: a model file (``.pkl``/``.npz``) or a directory holding ``SMPL_{GENDER}.pkl|.npz``
            (also the official ``basicModel_*`` names, or a ``smpl/`` sub-directory).
        gender: 'neutral' | 'male' | 'female' (or 0/1/2).
        coco_regressor: COCO-17 regressor (17, V): a path (.npy/.npz/.pkl) or an array; None looks for
            ``J_regressor_coco.npy`` next to the model file, else builds it from the SMPL joints and the
            SMPL face vertex ids (see :mod:`.joint_regressors`).
        h36m_regressor: Human3.6M-17 regressor (17, V): a path or an array; None looks for
            ``J_regressor_h36m_correct.npy`` (or SPIN's ``J_regressor_h36m.npy``) in the model's
            directory and its parent; if absent, ``regress(..., 'h36m'|'lsp')`` raises.
        num_betas: shape coefficients to use (default: all the model has).
        dtype: float dtype of the buffers (``.to()`` changes it later).

    Attributes:
        faces: (F, 3) int64 numpy; ``num_vertices`` V, ``num_joints`` J, ``num_betas``;
        buffers ``coco_regressor`` (17, V) (None if unavailable), ``h36m_regressor`` (17, V) or None.

    Raises:
        BodyModelFileNotFoundError / BodyModelFileError: missing or invalid model / regressor files,
        unknown gender, regressor size mismatch.
    """

    def __init__(self, model_path: Union[str, os.PathLike], gender: Union[str, int] = 'neutral',
                 coco_regressor: RegressorArg = None, h36m_regressor: RegressorArg = None,
                 num_betas: Optional[int] = None, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        import smplx
        model_path = os.fspath(model_path)
        self.gender = normalize_gender(gender, model_path)
        self.model_file = resolve_model_file(model_path, 'smpl', self.gender)
        arrays = load_body_model_file(self.model_file)
        info = validate_body_model(arrays, self.model_file, kind='smpl')
        self.num_vertices, self.num_joints = info['num_vertices'], info['num_joints']
        nb = info['num_betas'] if num_betas is None else min(int(num_betas), info['num_betas'])
        with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a warning for < 300 betas
            self.body = smplx.SMPL(model_path=self.model_file, data_struct=_struct(arrays), gender=self.gender,
                                   num_betas=nb, create_betas=False, create_global_orient=False,
                                   create_body_pose=False, create_transl=False, dtype=dtype)
        self._finish_smplx(arrays, dtype)

        model_dir = osp.dirname(osp.abspath(self.model_file))
        # COCO-17
        coco = self._load_regressor(coco_regressor, [osp.join(model_dir, COCO_REGRESSOR_NAME)], 'COCO-17')
        if coco is None:
            try:
                coco = build_coco_regressor(arrays['J_regressor'])
            except BodyModelFileError:
                coco = None  # not the SMPL topology and no file: regress(..., 'coco') explains
        self.register_buffer('coco_regressor', None if coco is None else torch.as_tensor(coco, dtype=dtype))
        # Human3.6M-17
        candidates = [osp.join(d, n) for d in (model_dir, osp.dirname(model_dir)) for n in H36M_REGRESSOR_NAMES]
        h36m = self._load_regressor(h36m_regressor, candidates, 'Human3.6M-17')
        if h36m is not None:
            where = h36m_regressor if isinstance(h36m_regressor, (str, os.PathLike)) else \
                next((p for p in candidates if osp.isfile(p)), 'h36m_regressor') \
                if h36m_regressor is None else 'h36m_regressor array'
            check_h36m_regressor_order(h36m, arrays['v_template'], os.fspath(where))
        self.register_buffer('h36m_regressor', None if h36m is None else torch.as_tensor(h36m, dtype=dtype))
        self._make_buffers_nonpersistent()

    def _load_regressor(self, arg: RegressorArg, defaults, what: str) -> Optional[np.ndarray]:
        V = self.num_vertices
        if arg is None:
            for p in defaults:
                if osp.isfile(p):
                    return load_joint_regressor(p, num_vertices=V, num_rows=17)
            return None
        if isinstance(arg, (str, os.PathLike)):
            return load_joint_regressor(os.fspath(arg), num_vertices=V, num_rows=17)
        arr = arg.detach().cpu().numpy() if torch.is_tensor(arg) else np.asarray(arg)
        if arr.shape != (17, V):
            raise BodyModelFileError(f'{what} regressor array must be (17, {V}) for {self.model_file}, got '
                                     f'{arr.shape}')
        return arr.astype(np.float64)

    @property
    def has_h36m_regressor(self) -> bool:
        return self.h36m_regressor is not None

    def forward(self, betas: Optional[Tensor] = None, body_pose: Optional[Tensor] = None,
                global_orient: Optional[Tensor] = None, transl: Optional[Tensor] = None,
                pose2rot: bool = True) -> Dict[str, Tensor]:
        """Posed meshes.

        Args:
            betas: (B, S') shape coefficients, S' <= num_betas (missing ones are 0); None = mean shape.
            body_pose: (B, 3 * (J - 1)) axis-angle (radians) of joints 1..J-1 (SMPL: (B, 69)); or
                (B, J - 1, 3), or rotation matrices (B, J - 1, 3, 3) with ``pose2rot=False``. Fewer
                joints than the model has (e.g. 69 values for SMPL-H) leave the rest at identity.
            global_orient: (B, 3) axis-angle of the root (or (B, 3, 3) with ``pose2rot=False``).
            transl: (B, 3) metres, added to vertices and joints.

        Returns:
            dict(vertices (B, V, 3), joints (B, J, 3)), metres, in the module's dtype/device.
        """
        B = self._batch_size(betas, body_pose, global_orient, transl)
        J = self.num_joints
        eye = torch.eye(3, dtype=self.dtype, device=self.device)
        n = 3 if pose2rot else 9  # numbers per joint rotation
        if global_orient is None:
            go = eye.expand(B, 1, 3, 3) if not pose2rot else eye.new_zeros(B, 3)
        else:
            go = self._as(global_orient, 'global_orient').reshape(-1, n)
            go = go.expand(B, -1) if pose2rot else go.reshape(-1, 1, 3, 3).expand(B, -1, -1, -1)
        if body_pose is None:
            bp = eye.new_zeros(B, 0, n)
        else:
            bp = self._as(body_pose, 'body_pose')
            bp = bp.reshape(bp.shape[0], -1, n).expand(B, -1, -1)
        if bp.shape[1] > J - 1:
            raise ValueError(f'{self.model_file}: body_pose has {bp.shape[1]} joint rotations, the model '
                             f'{J - 1} besides the root')
        if bp.shape[1] < J - 1:  # remaining joints (e.g. SMPL-H hands) at identity
            rest = eye.new_zeros(B, J - 1 - bp.shape[1], 3) if pose2rot else \
                eye.reshape(1, 1, 9).expand(B, J - 1 - bp.shape[1], 9)
            bp = torch.cat([bp, rest], 1)
        bp = bp.reshape(B, -1) if pose2rot else bp.reshape(B, J - 1, 3, 3)
        if pose2rot and self.dtype == torch.float16:
            bp, go, pose2rot = self._rotmats_if_half(bp), self._rotmats_if_half(go), False
        out = self.body(betas=self._betas(betas, B), body_pose=bp, global_orient=go, pose2rot=pose2rot)
        vertices, joints = out.vertices, out.joints[:, :J]
        if transl is not None:
            t = self._as(transl, 'transl').reshape(-1, 1, 3)
            vertices, joints = vertices + t, joints + t
        return dict(vertices=vertices, joints=joints)

    def get_regressor(self, name: str) -> Tensor:
        """(K, V) regressor: 'coco' (17), 'h36m' (17), 'lsp' (14, rows of h36m), 'smpl' (J)."""
        name = name.lower()
        if name == 'smpl':
            return self.body.J_regressor
        if name == 'coco':
            if self.coco_regressor is None:
                raise BodyModelFileError(f'{self.model_file}: no COCO regressor (mesh with {self.num_vertices} '
                                         'vertices is not the SMPL topology; pass coco_regressor=...)')
            return self.coco_regressor
        if name in ('h36m', 'lsp'):
            if self.h36m_regressor is None:
                raise BodyModelFileError(
                    f'{self.model_file}: no Human3.6M regressor loaded (pass h36m_regressor=... or put '
                    f'{H36M_REGRESSOR_NAMES[0]} next to the model or in its parent directory)')
            return self.h36m_regressor if name == 'h36m' else self.h36m_regressor[list(H36M_J17_TO_J14)]
        raise ValueError(f"unknown regressor {name!r} (expected 'coco', 'h36m', 'lsp' or 'smpl')")

    def regress(self, vertices: Tensor, name: str = 'coco') -> Tensor:
        """Keypoints (..., K, 3) = R @ vertices for vertices (..., V, 3); see :meth:`get_regressor`."""
        if vertices.shape[-2] != self.num_vertices:
            raise ValueError(f'vertices have {vertices.shape[-2]} points, the model {self.num_vertices}')
        return self._einsum_regress(self.get_regressor(name), vertices)

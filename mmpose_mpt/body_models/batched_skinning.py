"""Batched linear blend skinning laid out for throughput (the MoCap data engine's body-model forward).

The same model as ``smplx.lbs.lbs`` (and :meth:`SMPL.forward`), rearranged so that a batch of B
meshes costs two matrix products per block of vertices and three element-wise passes, where smplx
multiplies B·V separate 4×4 matrices:

* shape and pose blend shapes in **one** product with the stacked (S + P) directions;
* the rest joints from precomputed ``J_regressor @ v_template`` and ``J_regressor @ shapedirs``
  (linear in β, so exact) instead of a (J, V) regression of every mesh;
* per-vertex transforms as ``lbs_weights @ (J, 12·B)`` and their application as ``addcmul`` passes.

Data are **batch-last**, (V, 3, B): every per-vertex step is a row block of a matrix with 3·B
columns, so the blend shapes and the transforms are plain ``mm`` calls, later joint regressors are
one ``(K, V) @ (V, 3·B)`` product and mesh down-sampling is a row gather. On the CPU the vertices
are processed in blocks (``vertex_block``) that keep the blend directions and transforms of a block
in cache; on accelerators in one block. Rodrigues is smplx's; the kinematic chain is composed one
tree level at a time (smplx walks the 23 joints one by one).
Equality with smplx is tested (``tests/test_batched_skinning.py``).
"""
from typing import Optional, Tuple

import torch
from torch import Tensor, nn

from ..utils.recycled_buffer import RecycledBuffer


def apply_keeping_float_dtype(module: nn.Module, super_apply, fn, *args, **kwargs) -> nn.Module:
    """``nn.Module._apply`` for ``module`` that lets its own floating buffers follow device moves but
    not dtype casts (``.half()``, ``.bfloat16()``, DeepSpeed's whole-model cast, ``.double()``): the
    data engine computes in the dtype it was built with (float16 cannot even hold smplx's Rodrigues
    epsilon — zero rotations become NaN — and bfloat16 would round the targets by ~1 cm).

    Args:
        super_apply: the parent class's bound ``_apply``; fn/args: as ``nn.Module._apply`` gets them.
    """
    floats = {n: b for n, b in module._buffers.items() if b is not None and b.is_floating_point()}
    for n in floats:
        module._buffers.pop(n)
    try:
        super_apply(fn, *args, **kwargs)
    finally:
        for n, b in floats.items():
            # where fn sends a tensor it does not cast (an integer one): the target device
            device = fn(torch.empty(0, dtype=torch.long, device=b.device)).device
            module._buffers[n] = b.to(device)
    return module


class BatchedSkinning(nn.Module):
    """Posed vertices of a batch of SMPL parameters, batch-last.

    Args:
        body_model: a :class:`~mmpose_mpt.body_models.SMPL` (its smplx module's ``v_template``,
            ``shapedirs``, ``posedirs``, ``J_regressor``, ``lbs_weights`` and ``parents`` are copied,
            in the wrapper's dtype).
        vertex_block: vertices per block on the CPU (default 512: a block's blend directions and
            transforms, ~1.5 MB each at batch 64, stay in L2/L3); ignored on other devices.

    All buffers are non-persistent (derived from the licensed model file, never checkpointed). They
    follow device moves, not dtype casts (:func:`apply_keeping_float_dtype`): the computation dtype is
    the body model's (build from ``SMPL(dtype=torch.float64)`` for float64). No autograd: this is the
    data engine's forward (use :class:`SMPL` where gradients are needed).
    """

    def __init__(self, body_model: nn.Module, vertex_block: int = 512):
        super().__init__()
        body = body_model.body
        v_template = body.v_template.detach()                              # (V, 3)
        shapedirs = body.shapedirs.detach()                                # (V, 3, S)
        posedirs = body.posedirs.detach()                                  # (P, V * 3)
        j_reg = body.J_regressor.detach()                                  # (J, V)
        V, S = v_template.shape[0], shapedirs.shape[-1]
        J = j_reg.shape[0]
        self.num_vertices, self.num_joints, self.num_betas = V, J, S
        self.vertex_block = int(vertex_block)
        # (V * 3, 1 + S + P): row v * 3 + c holds the template, the shape and the pose directions of
        # coordinate c of v (the template times a constant 1 feature: no separate pass to add it)
        dirs = torch.cat([v_template.reshape(V * 3, 1), shapedirs.reshape(V * 3, S), posedirs.t()], 1)
        self.register_buffer('blend_dirs', dirs.contiguous(), False)
        self.register_buffer('joints_template', j_reg @ v_template, False)                 # (J, 3)
        self.register_buffer('joints_dirs',
                             torch.einsum('jv,vcs->sjc', j_reg, shapedirs).reshape(S, J * 3), False)
        self.register_buffer('lbs_weights', body.lbs_weights.detach().clone(), False)      # (V, J)
        self.register_buffer('parents', body.parents.detach().clone(), False)
        # joints grouped by depth in the kinematic tree: the chain is composed one level at a time
        # (SMPL: 8 levels instead of 23 sequential joints)
        parents = body.parents.detach().cpu().long().tolist()
        depth = [0] * J
        for j in range(1, J):
            depth[j] = depth[parents[j]] + 1
        for d in range(1, max(depth) + 1):
            ids = [j for j in range(J) if depth[j] == d]
            self.register_buffer(f'level{d}_joints', torch.tensor(ids), False)
            self.register_buffer(f'level{d}_parents', torch.tensor([parents[j] for j in ids]), False)
        self.num_levels = max(depth)
        # per-block scratch, reused across blocks and calls (fresh ~2 MB blocks page-fault each time)
        self._scratch = RecycledBuffer()

    def _apply(self, fn, *args, **kwargs):
        return apply_keeping_float_dtype(self, super()._apply, fn, *args, **kwargs)

    def _blocks(self, device: torch.device):
        step = self.vertex_block if device.type == 'cpu' else self.num_vertices
        step = max(1, step)
        return [(s, min(self.num_vertices, s + step)) for s in range(0, self.num_vertices, step)]

    def _rigid_transforms(self, rot: Tensor, joints: Tensor) -> Tuple[Tensor, Tensor]:
        """smplx's ``batch_rigid_transform``, one tree level at a time.

        Args:
            rot: (B, J, 3, 3) local joint rotations; joints: (B, J, 3) rest joints.

        Returns:
            posed joints (B, J, 3) and the skinning transforms (B, J, 3, 4) = [R_j | t_j - R_j j_j]
            (world transform of joint j relative to its rest position).
        """
        B, J = joints.shape[:2]
        offsets = joints.clone()
        offsets[:, 1:] -= joints[:, self.parents[1:]]
        R = rot.new_empty(B, J, 3, 3)
        t = joints.new_empty(B, J, 3)
        R[:, 0], t[:, 0] = rot[:, 0], joints[:, 0]
        for d in range(1, self.num_levels + 1):
            ids, par = getattr(self, f'level{d}_joints'), getattr(self, f'level{d}_parents')
            Rp = R[:, par]
            R[:, ids] = Rp @ rot[:, ids]
            t[:, ids] = (Rp @ offsets[:, ids, :, None])[..., 0] + t[:, par]
        rel_t = t - (R @ joints[..., None])[..., 0]
        return t, torch.cat([R, rel_t[..., None]], -1)

    def forward(self, pose: Tensor, betas: Tensor, root_rotation: Optional[Tensor] = None,
                root_relative: bool = False, out: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Pose a batch.

        Args:
            pose: (B, 3 * J') axis-angle, root first, J' <= J (missing joints at identity; SMPL:
                (B, 72)).
            betas: (B, S') shape coefficients, S' <= S (missing ones are 0).
            root_rotation: optional (B, 3, 3) rotation applied on top of the root's: the mesh comes
                out rotated about the root joint (``R (v - j0) + j0``), e.g. into a camera's frame,
                at no extra cost.
            root_relative: subtract the root joint (the posed root = the rest root ``j0``) from
                vertices and joints.
            out: optional (V, 3, B) tensor for the vertices.

        Returns:
            vertices (V, 3, B) batch-last and posed joints (B, J, 3), metres, in the buffers' dtype
            and on their device.
        """
        dtype, device = self.blend_dirs.dtype, self.blend_dirs.device
        B, J, S = pose.shape[0], self.num_joints, self.num_betas
        if torch.is_grad_enabled() and any(x is not None and x.requires_grad
                                           for x in (pose, betas, root_rotation)):
            raise ValueError('BatchedSkinning computes no gradients (it writes into preallocated '
                             'memory); use mmpose_mpt.body_models.SMPL where gradients are needed, or '
                             'call it under torch.no_grad()')
        pose = pose.to(device=device, dtype=dtype).reshape(B, -1, 3)
        betas = betas.to(device=device, dtype=dtype).reshape(B, -1)
        if pose.shape[1] > J or betas.shape[1] > S:
            raise ValueError(f'got {pose.shape[1]} joint rotations and {betas.shape[1]} betas; the '
                             f'model has {J} joints and {S} betas')
        if pose.shape[1] < J:
            pose = torch.cat([pose, pose.new_zeros(B, J - pose.shape[1], 3)], 1)
        if betas.shape[1] < S:
            betas = torch.cat([betas, betas.new_zeros(B, S - betas.shape[1])], 1)
        from smplx.lbs import batch_rodrigues
        rot = batch_rodrigues(pose.reshape(-1, 3)).reshape(B, J, 3, 3)
        eye = torch.eye(3, dtype=dtype, device=device)
        # pose blend shapes use the joints' own rotations, before any extra root rotation
        feat_t = torch.cat([betas.new_ones(B, 1), betas, (rot[:, 1:] - eye).reshape(B, -1)],
                           1).t().contiguous()                                   # (1 + S + P, B)
        joints = (self.joints_template.reshape(1, -1) + betas @ self.joints_dirs).view(B, J, 3)
        if root_rotation is not None:
            rot = torch.cat([(root_rotation.to(device=device, dtype=dtype) @ rot[:, 0])[:, None],
                             rot[:, 1:]], 1)
        posed_joints, rel = self._rigid_transforms(rot, joints)
        # (B, J, 3, 4) → (J, 12 · B): column (c * 4 + d) * B + b
        rel = rel.reshape(B, J, 12).permute(1, 2, 0).reshape(J, 12 * B)
        root = joints[:, 0].t()                                                        # (3, B)
        if out is None:
            out = torch.empty(self.num_vertices, 3, B, dtype=dtype, device=device)
        elif tuple(out.shape) != (self.num_vertices, 3, B) or out.dtype != dtype:
            raise ValueError(f'out must be ({self.num_vertices}, 3, {B}) {dtype}, got '
                             f'{tuple(out.shape)} {out.dtype}')
        blocks = self._blocks(device)
        step = blocks[0][1] - blocks[0][0]
        scratch = (self._scratch.get((step * 15 * B, ), dtype, device) if len(blocks) > 1 else
                   torch.empty(step * 15 * B, dtype=dtype, device=device))
        for s, e in blocks:
            n = e - s
            v_posed = torch.mm(self.blend_dirs[3 * s:3 * e], feat_t,
                               out=scratch[:3 * n * B].view(3 * n, B)).view(n, 3, B)
            T = torch.mm(self.lbs_weights[s:e], rel,
                         out=scratch[3 * n * B:15 * n * B].view(n, 12 * B)).view(n, 3, 4, B)
            o = out[s:e]
            if root_relative:
                torch.sub(T[:, :, 3], root, out=o)
            else:
                o.copy_(T[:, :, 3])
            for k in range(3):
                o.addcmul_(T[:, :, k], v_posed[:, k:k + 1])
        if root_relative:
            posed_joints = posed_joints - joints[:, :1]
        return out, posed_joints

    def extra_repr(self) -> str:
        return (f'num_vertices={self.num_vertices}, num_joints={self.num_joints}, '
                f'num_betas={self.num_betas}, vertex_block={self.vertex_block}')

"""SMPL parameters from predicted meshes: ``fit_smpl(vertices, body_model)``.

MPT predicts the 6890 SMPL vertices directly, not SMPL parameters. Animation, retargeting and most
downstream tools want ``(global_orient, body_pose, betas, transl)``; this module recovers them from
a batch of meshes in the SMPL topology (any frame, any global rotation, metres).

Method (batched over B, on the input's device, no randomness):

1. **Per-part Kabsch initialisation.** For every joint j, a weighted Kabsch fit (weights = the
   squared skinning weights of j, so the rigidly attached vertices dominate) of the rest template to
   the input gives the part's global rotation G_j; local rotations are ``G_parent(j)^T G_j``. This is
   the "Procrustes fit of the torso" generalised to every part: with it the optimiser starts within
   a few degrees of the answer instead of from a T-pose (which for a 180° rotated, crouching person
   falls into a wrong local minimum).
2. **Exact shape + translation solve.** For fixed joint rotations the posed mesh is *affine* in
   ``(betas, transl)`` (rest joints are linear in betas, pose blend shapes depend on the rotations
   only), so they are found by one ridge-regularised linear least squares per person.
3. **Joint refinement: Levenberg-Marquardt** on all parameters (rotations updated as
   ``rot_j ← rot_j exp([δ_j]×)``: no axis-angle singularity at π), loss = mean squared vertex
   distance + ``betas_weight·|β|²``. The gradient is exact and analytic (weighted sums over the
   vertices); the Gauss-Newton metric comes from an analytic Jacobian on a fixed quarter of the
   vertices without the pose blend shapes' small share. Damping, step acceptance and convergence
   are per person, so every person is fitted independently of the others in the batch.

Why not Adam / L-BFGS (measured on toy meshes, 0.4 rad poses, no noise, same initialisation):
Adam plateaus at ~1.3 mm mean error after 100 steps and ~1.1 mm after 200 — the spine's three
joints share the torso's skin and form an ill-conditioned valley (up to 17 mm on the spine's
vertices) — at two autograd passes of the mesh per step; L-BFGS (strong Wolfe) was still at
~1 mm after ~200 evaluations, and its line search over the whole batch would couple the persons.
LM converges in 3-5 iterations to the float32 floor (~0.01 mm); ~0.06-0.1 s per person on one CPU
core (``tools/benchmark_fit_smpl.py``).

The skinning inside the loop re-implements SMPL's LBS (the same maths as ``smplx.lbs.lbs``); the
returned ``vertices`` / ``vertex_error`` come from the body model's own forward with the returned
axis-angle parameters, so they are exactly what a user reposing those parameters gets.
"""
import math
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

import torch
from torch import Tensor

from ..utils.cli import MPTUserError

if TYPE_CHECKING:  # importing body_models pulls in smplx / scipy: only for the annotations
    from ..body_models import SMPL

__all__ = ['fit_smpl', 'FitSMPLInputError', 'matrix_to_axis_angle', 'axis_angle_to_matrix']


class FitSMPLInputError(MPTUserError, ValueError):
    """The vertices or options given to :func:`fit_smpl` cannot be fitted (shape, values, options)."""


# ------------------------------------------------------------------------------------------------
# Rotations
# ------------------------------------------------------------------------------------------------
def axis_angle_to_matrix(aa: Tensor) -> Tensor:
    """Rodrigues' formula, (..., 3) axis-angle (radians) → (..., 3, 3); finite gradients at 0.

    ``R = I + a K + b K²`` with ``K = [aa]×``, ``a = sin θ / θ``, ``b = (1 - cos θ) / θ²``; near θ = 0
    their Taylor series are used (and the exact branch sees a dummy θ = 1 there, so its 0/0 never
    reaches the gradient through ``torch.where``).
    """
    theta2 = (aa * aa).sum(-1, keepdim=True)
    small = theta2 < 1e-8
    theta2_safe = torch.where(small, torch.ones_like(theta2), theta2)
    theta = theta2_safe.sqrt()
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / theta2_safe)
    x, y, z = aa.unbind(-1)
    zero = torch.zeros_like(x)
    K = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(aa.shape[:-1] + (3, 3))
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device)
    return eye + a[..., None] * K + b[..., None] * (K @ K)


def matrix_to_axis_angle(R: Tensor) -> Tensor:
    """(..., 3, 3) rotation matrices → (..., 3) axis-angle, angle in [0, π].

    Through the quaternion (Shepperd's method: the largest of w, x, y, z is computed from the
    diagonal, the others from it, so the result is accurate near 180° too).
    """
    m = R.reshape(-1, 3, 3)
    r00, r01, r02 = m[:, 0, 0], m[:, 0, 1], m[:, 0, 2]
    r10, r11, r12 = m[:, 1, 0], m[:, 1, 1], m[:, 1, 2]
    r20, r21, r22 = m[:, 2, 0], m[:, 2, 1], m[:, 2, 2]
    tr = r00 + r11 + r22
    # candidates (N, 4 cases, 4 = w x y z), each scaled by 4·(its largest component)
    cand = torch.stack([
        torch.stack([1 + tr, r21 - r12, r02 - r20, r10 - r01], -1),
        torch.stack([r21 - r12, 1 + r00 - r11 - r22, r01 + r10, r02 + r20], -1),
        torch.stack([r02 - r20, r01 + r10, 1 - r00 + r11 - r22, r12 + r21], -1),
        torch.stack([r10 - r01, r02 + r20, r12 + r21, 1 - r00 - r11 + r22], -1)], 1)
    best = torch.stack([tr, r00, r11, r22], -1).argmax(-1)
    q = cand[torch.arange(m.shape[0], device=m.device), best]
    q = q / q.norm(dim=-1, keepdim=True)
    q = torch.where(q[:, :1] < 0, -q, q)  # w >= 0: angle in [0, π]
    w, v = q[:, 0], q[:, 1:]
    s = v.norm(dim=-1)
    angle = 2 * torch.atan2(s, w)
    # small angles: angle / s -> 2 / w (w ~ 1)
    factor = torch.where(s > 1e-7, angle / s.clamp_min(1e-12), 2 / w.clamp_min(1e-12))
    return (v * factor[:, None]).reshape(R.shape[:-2] + (3, ))


def _kabsch_rotations(src: Tensor, dst: Tensor, weights: Tensor) -> Tensor:
    """Weighted Kabsch rotations mapping ``src`` onto ``dst`` for every (batch, group).

    Args:
        src: (V, 3) or (B, V, 3) source points; dst: (B, V, 3); weights: (V, G) non-negative.

    Returns:
        (B, G, 3, 3) proper rotations R minimising ``Σ_v w_vg |R (s_v - s̄_g) - (d_v - d̄_g)|²``.
    """
    wn = weights / weights.sum(0, keepdim=True).clamp_min(1e-12)            # (V, G)
    src = src.expand(dst.shape[0], -1, -1) if src.dim() == 2 else src
    cs = torch.einsum('vg,bvc->bgc', wn, src)                                  # (B, G, 3)
    cd = torch.einsum('vg,bvc->bgc', wn, dst)
    # H = Σ w s dᵀ - s̄ d̄ᵀ (the centred cross-covariance without materialising (B, G, V, 3))
    H = torch.einsum('vg,bvi,bvj->bgij', wn, src, dst) - cs[..., :, None] * cd[..., None, :]
    U, _, Vh = torch.linalg.svd(H)
    V = Vh.transpose(-1, -2)
    d = torch.sign(torch.linalg.det(V @ U.transpose(-1, -2)))
    d = torch.where(d == 0, torch.ones_like(d), d)
    D = torch.diag_embed(torch.stack([torch.ones_like(d), torch.ones_like(d), d], -1))
    return V @ D @ U.transpose(-1, -2)


# ------------------------------------------------------------------------------------------------
# Skinning with its derivatives (smplx.lbs.lbs, laid out for a small Gauss-Newton loop)
# ------------------------------------------------------------------------------------------------
_HESSIAN_VERTICES = 1700  # about this many vertices define the Gauss-Newton metric


def _vee_cross(N: Tensor) -> Tensor:
    """(..., 3) ``Σ a × b`` from (..., 3, 3) ``N = Σ a bᵀ``."""
    return torch.stack([N[..., 1, 2] - N[..., 2, 1], N[..., 2, 0] - N[..., 0, 2],
                        N[..., 0, 1] - N[..., 1, 0]], -1)


class _Skinning:
    """SMPL's linear blend skinning on ``device`` / ``dtype`` from a body model, with the analytic
    derivatives of the posed vertices w.r.t. the parameters x = (δ_j: local rotation increments
    ``rot_j ← rot_j exp([δ_j]×)``, radians, 3J; betas, S; transl, metres, 3).

    Rest joints are ``J_template + β · J_dirs`` (the joint regressor applied once to the template and
    the shape directions: exact, since both are linear) instead of a (J, V) regression per step.

    Derivatives: a rotation of joint j about its local axis δ (world axis G_j δ) turns every vertex,
    as far as it is skinned to j's subtree, about the posed joint p_j:
    ``∂v/∂δ_j = -[c_vj]× G_j``, ``c_vj = Σ_{k ∈ sub(j)} w_vk (x_vk - p_j)`` (x_vk: vertex v moved by
    joint k), plus the change of the pose blend shapes rotated by v's transform T_v. Shape:
    ``∂v/∂β = T_v S_v + Σ_k w_vk q_k`` with ``q_k = ∂p_k/∂β - G_k ∂J_k/∂β`` (the joint chain).
    """

    def __init__(self, body_model: 'SMPL', device: torch.device, dtype: torch.dtype) -> None:
        body = body_model.body
        kw = dict(device=device, dtype=dtype)
        v_template = body.v_template.detach().to(**kw)                        # (V, 3)
        shapedirs = body.shapedirs.detach().to(**kw)                          # (V, 3, S)
        j_reg = body.J_regressor.detach().to(**kw)                            # (J, V)
        V, S, J = v_template.shape[0], shapedirs.shape[-1], j_reg.shape[0]
        self.V, self.S, self.J = V, S, J
        self.v_template = v_template
        self.shapedirs = shapedirs                                            # (V, 3, S)
        self.shapedirs_flat = shapedirs.reshape(V * 3, S).t().contiguous()   # (S, V*3)
        self.posedirs = body.posedirs.detach().to(**kw)                       # (9 (J-1), V*3)
        self.joints_template = j_reg @ v_template                             # (J, 3)
        self.joints_dirs = torch.einsum('jv,vcs->jcs', j_reg, shapedirs)      # (J, 3, S)
        self.weights = body.lbs_weights.detach().to(**kw)                     # (V, J)
        self.parents: List[int] = [int(p) for p in body.parents.detach().cpu().tolist()]
        # anc[k, j] = 1 if j is k or one of its ancestors: a rotation of joint j moves joint k's part
        # (built on the CPU: element-wise writes on an accelerator would be one launch each)
        anc = torch.zeros(J, J, dtype=dtype)
        for k in range(J):
            j = k
            while j >= 0:
                anc[k, j] = 1
                j = self.parents[j] if j > 0 else -1
        self.ancestors = anc.to(device)
        self.subtree_weights = self.weights @ self.ancestors                  # (V, J)
        # vertices of the Gauss-Newton metric: every k-th (SMPL: 1723 of 6890), spread over the body
        self.hessian_ids = torch.arange(0, V, max(1, V // _HESSIAN_VERTICES), device=device)
        # skews[m] = [e_m]×: ∂ exp([δ]×)/∂δ_m at 0
        skews = torch.zeros(3, 3, 3, dtype=dtype)
        for m, (a, b) in enumerate(((1, 2), (2, 0), (0, 1))):
            skews[m, b, a], skews[m, a, b] = 1, -1
        self.skews = skews.to(device)
        self.eye = torch.eye(3, **kw)

    @property
    def num_params(self) -> int:
        return 3 * self.J + self.S + 3

    def rest(self, betas: Tensor) -> Tuple[Tensor, Tensor]:
        """Shaped rest vertices (B, V, 3) and rest joints (B, J, 3) for betas (B, S)."""
        B = betas.shape[0]
        v = self.v_template + (betas @ self.shapedirs_flat).view(B, self.V, 3)
        j = self.joints_template + torch.einsum('jcs,bs->bjc', self.joints_dirs, betas)
        return v, j

    def __call__(self, rot: Tensor, betas: Tensor, transl: Tensor) -> Tuple[Tensor, Dict[str, Tensor]]:
        """Posed vertices (B, V, 3), metres, for local rotations (B, J, 3, 3), betas (B, S) and
        translations (B, 3); and the intermediate quantities the derivatives need."""
        B, J = rot.shape[:2]
        v_shaped, joints = self.rest(betas)
        pose_feature = (rot[:, 1:] - self.eye).reshape(B, -1)
        v_posed = v_shaped + (pose_feature @ self.posedirs).view(B, self.V, 3)
        G: List[Tensor] = [rot[:, 0]]
        p: List[Tensor] = [joints[:, 0]]
        for j in range(1, J):
            par = self.parents[j]
            G.append(G[par] @ rot[:, j])
            p.append((G[par] @ (joints[:, j] - joints[:, par])[..., None])[..., 0] + p[par])
        Gs, ps = torch.stack(G, 1), torch.stack(p, 1)                         # (B, J, 3, 3), (B, J, 3)
        t = ps - (Gs @ joints[..., None])[..., 0]
        A = torch.cat([Gs, t[..., None]], -1)                                  # (B, J, 3, 4)
        T = torch.einsum('vj,bjcd->bvcd', self.weights, A)                     # per-vertex transforms
        verts = T[..., 3] + transl[:, None]
        for d in range(3):  # T_v[:, :3] @ v_posed_v as multiply-adds (batched 3x3 matmuls are slow)
            verts = verts.addcmul(T[..., d], v_posed[..., d, None])
        return verts, dict(rot=rot, G=Gs, p=ps, A=A, T=T, v_posed=v_posed)

    def _shape_chain(self, G: Tensor) -> Tensor:
        """q_k = ∂p_k/∂β - G_k ∂J_k/∂β, (B, J, 3, S)."""
        B, J, S = G.shape[0], self.J, self.S
        dJ = self.joints_dirs                                                  # (J, 3, S)
        dp: List[Tensor] = [dJ[0].expand(B, 3, S)]
        for j in range(1, J):
            par = self.parents[j]
            dp.append(G[:, par] @ (dJ[j] - dJ[par]) + dp[par])
        return torch.stack(dp, 1) - G @ dJ

    def _pose_blend_e(self, rot: Tensor) -> Tensor:
        """(B, J-1, 3, 9): ∂ vec(rot_j - I) / ∂δ_jm = vec(rot_j [e_m]×) (posedirs' row layout)."""
        B, J = rot.shape[:2]
        return torch.einsum('bjcd,mde->bjmce', rot[:, 1:], self.skews).reshape(B, J - 1, 3, 9)

    def jacobian(self, aux: Dict[str, Tensor], vertex_ids: Optional[Tensor] = None, rotations: bool = True,
                 pose_blend: bool = True) -> Tensor:
        """∂v/∂x for the vertices ``vertex_ids`` (default all: V' = V), (B, V'*3, n) with rows
        (v, coordinate) and columns (δ (3J) if ``rotations`` | betas (S) | transl (3)).

        ``pose_blend=False`` leaves the pose blend shapes' (small) share out of the rotation columns.
        The tiny per-vertex 3x3 products are broadcast multiply-adds written in place (batched 3x3
        matmuls are far slower on CPUs).
        """
        G, T, v_posed = aux['G'], aux['T'], aux['v_posed']
        weights, shapedirs = self.weights, self.shapedirs
        if vertex_ids is not None:
            T, v_posed = T[:, vertex_ids], v_posed[:, vertex_ids]
            weights, shapedirs = weights[vertex_ids], shapedirs[vertex_ids]
        B, J, S, V = G.shape[0], self.J, self.S, T.shape[1]
        n_rot = 3 * J if rotations else 0
        jac = G.new_empty(B, V, 3, n_rot + S + 3)
        if rotations:
            j_rot = jac[..., :n_rot].view(B, V, 3, J, 3)
            A, p = aux['A'], aux['p']
            # x_vk = vertex v moved by joint k; c_vj summed over j's subtree, layout (B, V, 3, J)
            x = (v_posed @ A[..., :3].reshape(B, J * 3, 3).transpose(1, 2)).view(B, V, J, 3) \
                + A[:, None, :, :, 3]
            sub_w = self.subtree_weights if vertex_ids is None else self.subtree_weights[vertex_ids]
            c = (weights[:, None, :] * x.transpose(2, 3)) @ self.ancestors \
                - sub_w[None, :, None, :] * p.transpose(1, 2)[:, None]
            for a in range(3):  # column m of ∂v/∂δ_j: (G_j[:, m] × c_vj)_a
                a1, a2 = (a + 1) % 3, (a + 2) % 3
                torch.mul(G[:, None, :, a1, :], c[:, :, a2, :, None], out=j_rot[:, :, a])
                j_rot[:, :, a].sub_(G[:, None, :, a2, :] * c[:, :, a1, :, None])
            if pose_blend:
                P = self.posedirs.view(J - 1, 9, self.V, 3)
                if vertex_ids is not None:
                    P = P[:, :, vertex_ids]
                # ∂ blend shapes (B, V, c, J-1, m), rotated by T_v
                dpb = torch.einsum('jkvc,bjmk->bvcjm', P, self._pose_blend_e(aux['rot']))
                j_pb = j_rot[:, :, :, 1:]
                for cc in range(3):
                    j_pb.addcmul_(T[:, :, :, cc, None, None], dpb[:, :, cc, None])
        j_beta = jac[..., n_rot:n_rot + S]
        j_beta.copy_((weights @ self._shape_chain(G).reshape(B, J, 3 * S)).view(B, V, 3, S))
        for cc in range(3):
            j_beta.addcmul_(T[:, :, :, cc, None], shapedirs[None, :, cc, None, :])
        jac[..., n_rot + S:] = self.eye
        return jac.view(B, V * 3, n_rot + S + 3)

    def gradient(self, aux: Dict[str, Tensor], r: Tensor) -> Tensor:
        """Exact ``(∂v/∂x)ᵀ r`` over all vertices, (B, n), for residuals r (B, V, 3), without
        forming the Jacobian: every term is a weighted sum over vertices (matrix products).

        Rotations: ``Σ_v (G_j e_m × c_vj)·r_v = (G_jᵀ Σ_v c_vj × r_v)_m`` with
        ``Σ_v c_vj × r_v = Σ_{k ∈ sub(j)} [vee(G_k Σ_v w_vk ṽ_v r_vᵀ) + t_k × s_k]
        - p_j × Σ_{k ∈ sub(j)} s_k``, ``s_k = Σ_v w_vk r_v``; pose blend shapes and betas through ``r'_v = T_vᵀ r_v``.
        """
        rot, G, p, A, T, v_posed = (aux[k] for k in ('rot', 'G', 'p', 'A', 'T', 'v_posed'))
        B, J, V, S = G.shape[0], self.J, self.V, self.S
        wt = self.weights.t()                                                  # (J, V)
        s = wt @ r                                                             # (B, J, 3)
        M = (wt @ (v_posed[..., :, None] * r[..., None, :]).reshape(B, V, 9)).view(B, J, 3, 3)
        u = _vee_cross(G @ M) + torch.linalg.cross(A[..., 3], s, dim=-1)       # Σ_v w_vk x_vk × r_v
        U = torch.einsum('kj,bkc->bjc', self.ancestors, u)
        Ssub = torch.einsum('kj,bkc->bjc', self.ancestors, s)
        g_rot = (G.transpose(-1, -2) @ (U - torch.linalg.cross(p, Ssub, dim=-1))[..., None])[..., 0]
        r_local = (T[..., :3] * r[..., :, None]).sum(-2)                       # T_vᵀ r_v, (B, V, 3)
        pr = (r_local.reshape(B, V * 3) @ self.posedirs.t()).view(B, J - 1, 1, 9)
        g_rot = torch.cat([g_rot[:, :1], g_rot[:, 1:] + (self._pose_blend_e(rot) * pr).sum(-1)], 1)
        g_beta = r_local.reshape(B, V * 3) @ self.shapedirs_flat.t() \
            + torch.einsum('bkas,bka->bs', self._shape_chain(G), s)
        return torch.cat([g_rot.reshape(B, 3 * J), g_beta, r.sum(1)], 1)


# ------------------------------------------------------------------------------------------------
# Fitting
# ------------------------------------------------------------------------------------------------
def _check_inputs(vertices, body_model, num_iters: int, betas_weight: float, tol: float,
                  init_rounds: int, chunk_size: int) -> None:
    if not torch.is_tensor(vertices):
        raise FitSMPLInputError(f'fit_smpl: vertices must be a torch.Tensor (B, V, 3), got '
                                f'{type(vertices).__name__}')
    body = getattr(body_model, 'body', None)
    if body is None or not all(hasattr(body, a) for a in ('v_template', 'shapedirs', 'posedirs',
                                                          'J_regressor', 'lbs_weights', 'parents')):
        raise FitSMPLInputError(f'fit_smpl: body_model must be a mmpose_mpt.body_models.SMPL, got '
                                f'{type(body_model).__name__}')
    V = int(body.v_template.shape[0])
    if vertices.dim() != 3 or vertices.shape[1] != V or vertices.shape[2] != 3:
        raise FitSMPLInputError(f'fit_smpl: vertices must be (B, {V}, 3) (the body model has {V} '
                                f'vertices), got {tuple(vertices.shape)}')
    if vertices.shape[0] == 0:
        raise FitSMPLInputError('fit_smpl: vertices is an empty batch (B = 0)')
    if not vertices.is_floating_point():
        raise FitSMPLInputError(f'fit_smpl: vertices must be floating point (metres), got {vertices.dtype}')
    finite = torch.isfinite(vertices.detach()).flatten(1).all(1)
    if not bool(finite.all()):
        bad = torch.nonzero(~finite).flatten().tolist()
        raise FitSMPLInputError(f'fit_smpl: vertices of batch item(s) {bad[:10]}'
                                f'{" ..." if len(bad) > 10 else ""} contain NaN or Inf')
    for name, value, low in (('num_iters', num_iters, 0), ('init_rounds', init_rounds, 1),
                             ('chunk_size', chunk_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise FitSMPLInputError(f'fit_smpl: {name} must be an integer >= {low}, got {value!r}')
    for name, value in (('betas_weight', betas_weight), ('tol', tol)):
        if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                and value >= 0):
            raise FitSMPLInputError(f'fit_smpl: {name} must be a finite number >= 0, got {value!r}')


def _init_rotations(skin: _Skinning, target: Tensor, betas: Tensor) -> Tensor:
    """(B, J, 3, 3) local rotations from per-part Kabsch fits of the shaped rest mesh to ``target``."""
    v_rest, _ = skin.rest(betas)
    G = _kabsch_rotations(v_rest, target, skin.weights**2)                     # global, (B, J, 3, 3)
    local = [G[:, 0]]
    for j in range(1, skin.J):
        local.append(G[:, skin.parents[j]].transpose(-1, -2) @ G[:, j])
    return torch.stack(local, 1)


def _solve_shape_transl(skin: _Skinning, rot: Tensor, target: Tensor,
                        betas_weight: float) -> Tuple[Tensor, Tensor]:
    """Least-squares betas (B, S) and transl (B, 3) for fixed rotations (the mesh is affine in them:
    the Jacobian's shape and translation columns do not depend on betas or transl)."""
    B, S, V = target.shape[0], skin.S, skin.V
    zeros_b, zeros_t = target.new_zeros(B, S), target.new_zeros(B, 3)
    base, aux = skin(rot, zeros_b, zeros_t)
    A = skin.jacobian(aux, rotations=False)                                   # (B, V*3, S + 3)
    r = (target - base).reshape(B, V * 3, 1)
    lhs = A.transpose(1, 2) @ A / V
    lhs[:, :S, :S] += betas_weight * torch.eye(S, dtype=lhs.dtype, device=lhs.device)
    x = _solve(lhs, A.transpose(1, 2) @ r / V)[..., 0]
    return x[:, :S], x[:, S:]


def _solve(lhs: Tensor, rhs: Tensor) -> Tensor:
    """Batched SPD solve in float64 (the normal equations square the condition number); a tiny
    ridge keeps directions the mesh does not determine (e.g. a limb's twist) at zero step."""
    lhs64 = lhs.double()
    ridge = 1e-12 * lhs64.diagonal(dim1=-2, dim2=-1).mean(-1).clamp_min(1e-30)
    lhs64 = lhs64 + ridge[:, None, None] * torch.eye(lhs.shape[-1], dtype=torch.float64, device=lhs.device)
    return torch.linalg.solve(lhs64, rhs.double()).to(lhs.dtype)


def _loss(verts: Tensor, target: Tensor, betas: Tensor, betas_weight: float) -> Tensor:
    """(B,) mean squared vertex distance (m²) + the betas prior."""
    return ((verts - target)**2).sum(-1).mean(-1) + betas_weight * (betas**2).sum(-1)


def _fit_chunk(skin: _Skinning, target: Tensor, num_iters: int, betas_weight: float, init_rounds: int,
               tol: float) -> Tuple[Tensor, Tensor, Tensor]:
    """Local rotations (B, J, 3, 3), betas (B, S), transl (B, 3) for one chunk of targets."""
    B, S, J, V = target.shape[0], skin.S, skin.J, skin.V
    betas = target.new_zeros(B, S)
    for _ in range(init_rounds):
        rot = _init_rotations(skin, target, betas)
        betas, transl = _solve_shape_transl(skin, rot, target, betas_weight)

    # Levenberg-Marquardt with one damping factor per person; a step is kept only where it lowers
    # that person's loss (an input no SMPL can explain cannot make the fit diverge). A person stops
    # once converged (a kept step gained < tol of the loss, the RMS error is below 0.01 mm, or three
    # steps in a row failed) and is left out of the following iterations: its result depends on its
    # own trajectory only, not on how long the others take.
    verts, aux = skin(rot, betas, transl)
    loss = _loss(verts, target, betas, betas_weight)
    damping = target.new_full((B, ), 1e-4)
    fails = torch.zeros(B, dtype=torch.long, device=target.device)
    active = torch.ones(B, dtype=torch.bool, device=target.device)
    n = skin.num_params
    eye_n = torch.eye(n, dtype=target.dtype, device=target.device)
    prior = torch.zeros(n, dtype=target.dtype, device=target.device)
    prior[3 * J:3 * J + S] = betas_weight
    for _ in range(num_iters):
        idx = torch.nonzero(active).flatten()
        if idx.numel() == 0:
            break
        b = idx.numel()
        a_rot, a_betas, a_transl, a_verts, a_target = rot[idx], betas[idx], transl[idx], verts[idx], target[idx]
        a_aux = {k: v[idx] for k, v in aux.items()}
        a_loss, a_damping = loss[idx], damping[idx]
        # Gauss-Newton metric from a fixed subset of the vertices without the pose blend shapes'
        # small share (4-5x cheaper); the gradient is exact: the fit converges to the true optimum
        jac = skin.jacobian(a_aux, vertex_ids=skin.hessian_ids, pose_blend=False)   # (b, 3V', n)
        H = jac.transpose(1, 2) @ jac / skin.hessian_ids.numel() + torch.diag(prior)
        g = skin.gradient(a_aux, a_verts - a_target) / V
        g[:, 3 * J:3 * J + S] += betas_weight * a_betas
        Hd = H + a_damping[:, None, None] * H.diagonal(dim1=-2, dim2=-1)[:, :, None] * eye_n
        step = -_solve(Hd, g[..., None])[..., 0]
        new_rot = a_rot @ axis_angle_to_matrix(step[:, :3 * J].view(b, J, 3))
        new_betas, new_transl = a_betas + step[:, 3 * J:3 * J + S], a_transl + step[:, 3 * J + S:]
        new_verts, new_aux = skin(new_rot, new_betas, new_transl)
        new_loss = _loss(new_verts, a_target, new_betas, betas_weight)
        ok = new_loss < a_loss                                                   # (b,)

        def keep(new: Tensor, old: Tensor) -> Tensor:
            return torch.where(ok.view((b, ) + (1, ) * (new.dim() - 1)), new, old)

        rot[idx], betas[idx], transl[idx], verts[idx] = (keep(new_rot, a_rot), keep(new_betas, a_betas),
                                                         keep(new_transl, a_transl), keep(new_verts, a_verts))
        for k in aux:
            aux[k][idx] = keep(new_aux[k], a_aux[k])
        kept_loss = torch.where(ok, new_loss, a_loss)
        loss[idx] = kept_loss
        damping[idx] = torch.where(ok, (a_damping / 3).clamp_min(1e-9), (a_damping * 10).clamp_max(1e6))
        fails[idx] = torch.where(ok, torch.zeros_like(fails[idx]), fails[idx] + 1)
        converged = (ok & (a_loss - new_loss <= tol * a_loss)) | (kept_loss <= 1e-10) | (fails[idx] >= 3)
        active[idx] = ~converged
    return rot, betas, transl


@torch.no_grad()
def fit_smpl(vertices: Tensor, body_model: 'SMPL', num_iters: int = 10, betas_weight: float = 1e-8,
             tol: float = 1e-3, init_rounds: int = 2, chunk_size: int = 8) -> Dict[str, Tensor]:
    """Fit SMPL parameters to meshes in the SMPL topology.

    Args:
        vertices: (B, V, 3) meshes, metres, in any frame (e.g. MPT's root-relative camera frame,
            y down); V = ``body_model.num_vertices`` (6890 for SMPL). Not modified; nothing is
            recorded for autograd.
        body_model: a :class:`~mmpose_mpt.body_models.SMPL` (any gender / number of betas; the
            toy model works the same). Only read; it may live on another device.
        num_iters: at most this many Levenberg-Marquardt iterations after the initialisation
            (0: initialisation only); a person stops earlier once converged (see ``tol``). Toy
            predictions converge in 3-5.
        betas_weight: weight of the ``|β|²`` prior against the mean squared vertex distance (m²):
            the default 1e-8 costs as much as a 0.1 mm mean error for |β| = 1 — it keeps the shape
            bounded for inputs no SMPL explains without visibly biasing in-model ones (1e-6 already
            biases small-effect coefficients such as head size by ~1 mm).
        tol: a person's fit has converged when an iteration lowers its loss by less than this
            fraction (1e-3: the RMS vertex error changes by < 0.05 %).
        init_rounds: rounds of (part-wise Kabsch rotations → least-squares betas + transl) before
            the refinement (the second re-fits the rotations to the shaped template).
        chunk_size: persons per internal batch (bounds memory to a few MB per person in float32:
            the Jacobian and per-joint intermediates of SMPL).

    Returns:
        dict of tensors on ``vertices``' device (float64 for float64 input, else float32):

        * ``global_orient`` (B, 3) axis-angle (radians) of the root;
        * ``body_pose`` (B, 3·(J-1)) axis-angle of joints 1..J-1 (SMPL: (B, 69));
        * ``betas`` (B, S) shape coefficients (S = ``body_model.num_betas``, SMPL: 10);
        * ``transl`` (B, 3) metres (as ``SMPL.forward``'s ``transl``);
        * ``vertices`` (B, V, 3) the fitted mesh, metres: ``body_model(**params)['vertices']``;
        * ``vertex_error`` (B,) metres: mean distance of the fitted mesh's vertices to the input's.

    Raises:
        FitSMPLInputError: vertices not (B, V, 3) floating point, NaN/Inf in them (naming the batch
            items), empty batch, a body model that is not an SMPL wrapper, bad options.

    Deterministic for a given device and batch (no random state). Every person is fitted
    independently (per-person solves and damping): results for one item do not depend on the
    others beyond floating-point rounding of batched products.
    """
    _check_inputs(vertices, body_model, num_iters, betas_weight, tol, init_rounds, chunk_size)
    device = vertices.device
    dtype = torch.float64 if vertices.dtype == torch.float64 else torch.float32
    target = vertices.detach().to(dtype=dtype)
    # fitted about each person's centroid (added back to transl: exact, transl is a plain offset), so
    # that camera-frame meshes metres away keep float32's precision in the residuals
    centre = target.mean(1, keepdim=True)
    skin = _Skinning(body_model, device, dtype)
    parts = [_fit_chunk(skin, t, num_iters, betas_weight, init_rounds, tol)
             for t in (target - centre).split(chunk_size)]
    rot, betas, transl = (torch.cat(x, 0) for x in zip(*parts))
    transl = transl + centre[:, 0]
    B = target.shape[0]
    aa = matrix_to_axis_angle(rot)                                               # (B, J, 3)
    out = dict(global_orient=aa[:, 0].contiguous(), body_pose=aa[:, 1:].reshape(B, -1).contiguous(),
               betas=betas, transl=transl)
    # the mesh a user gets from these parameters, through the body model's own forward (smplx)
    bm = body_model.device
    fitted = body_model(**{k: v.to(bm) for k, v in out.items()})['vertices']
    out['vertices'] = fitted.to(device=device, dtype=dtype)
    out['vertex_error'] = (out['vertices'] - target).norm(dim=-1).mean(-1)
    return out

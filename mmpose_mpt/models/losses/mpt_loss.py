"""MPTLoss: L_V + L_J + L_J^reg + L_J^proj (Eq. 2–6 of the paper), with masks for missing ground truth.

L1 definition (Eq. 2–5), used by every term: for each supervised point the L1 norm of its error
(|dx| + |dy| + |dz| in metres; |du| + |dv| for the projection), then the mean over all supervised
points of all supervised samples::

    L = sum_{b, i} m_bi * ||P_bi - G_bi||_1 / max(1, sum_{b, i} m_bi)

with m_bi = 1 where ground truth exists (``has_vertices`` per sample for meshes, ``joints_*_visible``
per joint). For per-sample masks this is the mean over the supervised samples of Eq. 2's per-sample
mean over points. A term whose ground truth is missing for the whole batch is an exact 0 that still
carries a (zero, finite) gradient — never NaN, even if the missing targets hold NaN — so mixed 2D / 3D
fine-tuning batches work. The loss runs in float32 with autocast disabled.

Weights: the paper uses 1 / 1 / 1 / 1 (Eq. 6). METRO's training script uses vertices 100, 3D joints
1000 (for both the query joints and the mesh-regressed joints), 2D joints 100, i.e.
``MPTLoss(loss_weight_vertices=100, loss_weight_joints=1000, loss_weight_joints_reg=1000,
loss_weight_joints_proj=100)``.
"""
from typing import Dict, Mapping, Optional, Sequence, Union

import torch
from mmpose.registry import MODELS
from torch import Tensor, nn

from ...cameras import weak_perspective_project


class MPTLossInputError(ValueError):
    """Predictions / targets / regressors given to MPTLoss do not fit together."""


def masked_l1(pred: Tensor, target: Tensor, mask: Optional[Tensor] = None) -> Tensor:
    """Mean over the supervised points of ||pred - target||_1 (L1 norm over the last axis).

    Args:
        pred, target: (B, P, C).
        mask: (B,) per sample or (B, P) per point; > 0 = supervise; None = all.

    Returns:
        scalar float32 tensor; exactly 0 (with a finite gradient) when nothing is supervised.
    """
    pred, target = pred.float(), target.float()
    if mask is None:
        return (pred - target).abs().sum(-1).mean()
    mask = mask.to(pred.device) > 0
    if mask.dim() == 1:
        mask = mask[:, None]
    mask = mask.expand(pred.shape[:2])
    # Unsupervised targets may hold anything (NaN included): replace them by the detached prediction
    # before the difference, so their error is 0 and its gradient 0 · sign(0) = 0, never NaN.
    target = torch.where(mask[..., None], target, pred.detach())
    err = (pred - target).abs().sum(-1)                                # (B, P)
    return err.sum() / mask.sum().clamp(min=1).to(err.dtype)


@MODELS.register_module()
class MPTLoss(nn.Module):
    """Pre-training / fine-tuning objective of MPT (Eq. 6): four separately logged L1 terms.

    Args:
        loss_weight_vertices: weight of L_V (paper: 1; METRO: 100).
        loss_weight_joints: weight of L_J (paper: 1; METRO: 1000).
        loss_weight_joints_reg: weight of L_J^reg (paper: 1; METRO: 1000).
        loss_weight_joints_proj: weight of L_J^proj (paper: 1; METRO: 100).
        vertex_level_weights: weights of the mesh levels inside L_V: a dict by output key
            (``{'vertices': 1, 'vertices_sub': 0.5}``; missing keys weigh 0) or a sequence from the
            coarsest to the full level. None (default): every predicted level weighs 1 / num_levels
            (METRO's ``vloss_w_full = vloss_w_sub = vloss_w_sub2 = 0.33``), so L_V keeps the scale of
            one L1 term.

    :meth:`forward` returns ``loss_vertices``, ``loss_joints``, ``loss_joints_reg`` (only when a joint
    regressor is given) and ``loss_joints_proj``, each a weighted float32 scalar.
    """

    def __init__(self,
                 loss_weight_vertices: float = 1.0,
                 loss_weight_joints: float = 1.0,
                 loss_weight_joints_reg: float = 1.0,
                 loss_weight_joints_proj: float = 1.0,
                 vertex_level_weights: Optional[Union[Mapping[str, float], Sequence[float]]] = None):
        super().__init__()
        self.w_vertices = float(loss_weight_vertices)
        self.w_joints = float(loss_weight_joints)
        self.w_joints_reg = float(loss_weight_joints_reg)
        self.w_joints_proj = float(loss_weight_joints_proj)
        if vertex_level_weights is not None and not isinstance(vertex_level_weights, Mapping):
            vertex_level_weights = [float(w) for w in vertex_level_weights]
        self.vertex_level_weights = vertex_level_weights

    @staticmethod
    def vertex_levels(preds: Mapping[str, Tensor]) -> list:
        """Predicted mesh keys from the coarsest to the full mesh (most vertices last)."""
        names = [k for k in preds if k.startswith('vertices')]
        return sorted(names, key=lambda k: preds[k].shape[1])

    def level_weights(self, levels: Sequence[str]) -> Dict[str, float]:
        """Weight of every predicted level (coarse → full) inside L_V."""
        w = self.vertex_level_weights
        if w is None:
            return {name: 1.0 / len(levels) for name in levels}
        if isinstance(w, Mapping):
            unknown = set(w) - set(levels)
            if unknown:
                raise MPTLossInputError(f'MPTLoss: vertex_level_weights name {sorted(unknown)}, but the '
                                        f'head predicts {list(levels)}')
            return {name: float(w.get(name, 0.0)) for name in levels}
        if len(w) != len(levels):
            raise MPTLossInputError(f'MPTLoss: vertex_level_weights has {len(w)} values, the head '
                                    f'predicts {len(levels)} levels {list(levels)} (coarse → full)')
        return dict(zip(levels, w))

    @staticmethod
    def _target(targets: Mapping[str, Tensor], key: str, pred: Tensor) -> Tensor:
        if key not in targets:
            raise MPTLossInputError(f'MPTLoss: targets lack {key!r} (have {sorted(targets)})')
        t = targets[key]
        if tuple(t.shape) != tuple(pred.shape):
            raise MPTLossInputError(f'MPTLoss: target {key!r} has shape {tuple(t.shape)}, the '
                                    f'prediction {tuple(pred.shape)}')
        return t

    def forward(self, preds: Mapping[str, Tensor], targets: Mapping[str, Tensor],
                joint_regressor: Optional[Tensor] = None,
                root_regressor: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Compute the weighted loss terms.

        Args:
            preds: head outputs — ``joints_3d`` (B, J, 3), ``vertices*`` (B, V_l, 3) (metres,
                root-relative, camera frame), ``camera`` (B, 3) = (s, tx, ty).
            targets: ``vertices*`` (B, V_l, 3) for every level with a non-zero weight, ``joints_3d``
                (B, J, 3) (root-relative: the pelvis of the ground-truth mesh at the origin),
                ``joints_2d`` (B, J, 2) in normalised crop coordinates; optional masks
                ``has_vertices`` (B,), ``joints_3d_visible`` (B, J), ``joints_2d_visible`` (B, J)
                (> 0 = supervise; absent = all supervised).
            joint_regressor: G (J, V_full) mapping the full predicted mesh to the J target joints
                (L_J^reg: J^reg = G V); None skips the term.
            root_regressor: (V_full,) or (1, V_full) row regressing the root (H36M pelvis) from the
                mesh. Given, the regressed root is subtracted from J^reg — the same root-relative
                handling as the targets, so L_J^reg ignores a global offset of the predicted mesh
                (which L_V penalises). None: J^reg is used as is (the mesh itself is predicted
                root-relative).

        Returns:
            dict of float32 scalars: ``loss_vertices``, ``loss_joints``, [``loss_joints_reg``],
            ``loss_joints_proj``.
        """
        device_type = preds['joints_3d'].device.type
        with torch.autocast(device_type=device_type, enabled=False):
            return self._forward(preds, targets, joint_regressor, root_regressor)

    def _forward(self, preds: Mapping[str, Tensor], targets: Mapping[str, Tensor],
                 joint_regressor: Optional[Tensor],
                 root_regressor: Optional[Tensor]) -> Dict[str, Tensor]:
        losses: Dict[str, Tensor] = {}
        joints = preds['joints_3d'].float()

        levels = self.vertex_levels(preds)
        loss_v = joints.new_zeros(())
        for name, w in self.level_weights(levels).items():
            if w:
                loss_v = loss_v + w * masked_l1(preds[name], self._target(targets, name, preds[name]),
                                                targets.get('has_vertices'))
        losses['loss_vertices'] = self.w_vertices * loss_v

        gt_joints = self._target(targets, 'joints_3d', joints)
        j3d_vis = targets.get('joints_3d_visible')
        losses['loss_joints'] = self.w_joints * masked_l1(joints, gt_joints, j3d_vis)

        if joint_regressor is not None:
            verts = preds['vertices'].float()
            g = joint_regressor.to(device=verts.device, dtype=torch.float32)
            if g.dim() != 2 or g.shape != (joints.shape[1], verts.shape[1]):
                raise MPTLossInputError(f'MPTLoss: joint_regressor must be (J={joints.shape[1]}, '
                                        f'V={verts.shape[1]}), got {tuple(g.shape)}')
            reg = torch.matmul(g, verts)                                   # (B, J, 3)
            if root_regressor is not None:
                r = root_regressor.to(device=verts.device, dtype=torch.float32).reshape(-1)
                if r.shape[0] != verts.shape[1]:
                    raise MPTLossInputError(f'MPTLoss: root_regressor must have V={verts.shape[1]} '
                                            f'entries, got shape {tuple(root_regressor.shape)}')
                reg = reg - torch.matmul(r, verts)[:, None]                # minus (B, 1, 3)
            losses['loss_joints_reg'] = self.w_joints_reg * masked_l1(reg, gt_joints, j3d_vis)

        proj = weak_perspective_project(joints, preds['camera'].float())   # (B, J, 2)
        gt_2d = self._target(targets, 'joints_2d', proj)
        losses['loss_joints_proj'] = self.w_joints_proj * masked_l1(
            proj, gt_2d, targets.get('joints_2d_visible'))
        return losses

"""MPTLoss: L_V + L_J + L_J^reg + L_J^proj (Eq. 2–6 of the paper), with masks for missing ground truth.

Every term is the paper's L1 form: the L1 norm of the per-point error (summed over x, y, z — or x, y for
the projection), averaged over the supervised points of the supervised samples. A term whose ground
truth is missing for the whole batch is an exact 0 that still carries a (zero) gradient, never NaN, so
mixed 2D/3D fine-tuning batches work.
"""
from typing import Dict, Optional, Sequence

import torch
from mmpose.registry import MODELS
from torch import Tensor, nn

from ...cameras import weak_perspective_project


def masked_l1(pred: Tensor, target: Tensor, mask: Optional[Tensor] = None) -> Tensor:
    """Mean over the masked points of ||pred - target||_1.

    Args:
        pred, target: (B, P, C).
        mask: (B,) per sample or (B, P) per point, 1 = supervise; None = all.

    Returns:
        scalar tensor; 0 (with gradient) when nothing is supervised.
    """
    err = (pred.float() - target.float()).abs().sum(-1)           # (B, P)
    if mask is None:
        return err.mean()
    mask = mask.to(err.device) > 0
    if mask.dim() == 1:
        mask = mask[:, None].expand_as(err)
    # where(), not err * mask: missing ground truth may be filled with NaN, and NaN * 0 = NaN.
    err = torch.where(mask, err, err.new_zeros(()))
    return err.sum() / mask.sum().clamp(min=1).to(err.dtype)


@MODELS.register_module()
class MPTLoss(nn.Module):
    """Pre-training / fine-tuning objective of MPT.

    Args:
        loss_weight_vertices: weight of L_V (paper: 1; METRO: 100).
        loss_weight_joints: weight of L_J (paper: 1; METRO: 1000).
        loss_weight_joints_reg: weight of L_J^reg (paper: 1; METRO: 1000, shared with L_J).
        loss_weight_joints_proj: weight of L_J^proj (paper: 1; METRO: 100).
        vertex_level_weights: weights of the mesh levels inside L_V by output key (METRO weights the
            full and the two coarse meshes equally).

    Inputs of :meth:`forward`:
        preds: head outputs — ``joints_3d`` (B, J, 3), ``vertices*`` (B, V_l, 3), ``camera`` (B, 3).
        targets: ``vertices*`` (B, V_l, 3), ``joints_3d`` (B, J, 3), ``joints_2d`` (B, J, 2) in normalised
            crop coordinates, masks ``has_vertices`` (B,), ``joints_3d_visible`` (B, J),
            ``joints_2d_visible`` (B, J).
        joint_regressor: G (J, V) mapping the full predicted mesh to the J evaluation joints (L_J^reg);
            None skips the term.
    """

    def __init__(self,
                 loss_weight_vertices: float = 1.0,
                 loss_weight_joints: float = 1.0,
                 loss_weight_joints_reg: float = 1.0,
                 loss_weight_joints_proj: float = 1.0,
                 vertex_level_weights: Optional[Dict[str, float]] = None):
        super().__init__()
        self.w_vertices = loss_weight_vertices
        self.w_joints = loss_weight_joints
        self.w_joints_reg = loss_weight_joints_reg
        self.w_joints_proj = loss_weight_joints_proj
        self.vertex_level_weights = vertex_level_weights

    def _levels(self, preds: Dict[str, Tensor]) -> Sequence[str]:
        return sorted(k for k in preds if k.startswith('vertices'))

    def forward(self, preds: Dict[str, Tensor], targets: Dict[str, Tensor],
                joint_regressor: Optional[Tensor] = None) -> Dict[str, Tensor]:
        has_vertices = targets.get('has_vertices')
        losses: Dict[str, Tensor] = {}

        loss_v = preds['joints_3d'].new_zeros(()).float()
        for name in self._levels(preds):
            if name not in targets:
                continue
            w = 1.0 if self.vertex_level_weights is None else self.vertex_level_weights.get(name, 0.0)
            if w:
                loss_v = loss_v + w * masked_l1(preds[name], targets[name], has_vertices)
        losses['loss_vertices'] = self.w_vertices * loss_v

        j3d_vis = targets.get('joints_3d_visible')
        losses['loss_joints'] = self.w_joints * masked_l1(preds['joints_3d'], targets['joints_3d'],
                                                          j3d_vis)
        if joint_regressor is not None:
            reg = torch.einsum('jv,bvc->bjc', joint_regressor.to(preds['vertices'].dtype),
                               preds['vertices'])
            losses['loss_joints_reg'] = self.w_joints_reg * masked_l1(reg, targets['joints_3d'],
                                                                      j3d_vis)
        proj = weak_perspective_project(preds['joints_3d'].float(), preds['camera'].float())
        losses['loss_joints_proj'] = self.w_joints_proj * masked_l1(
            proj, targets['joints_2d'], targets.get('joints_2d_visible'))
        return losses

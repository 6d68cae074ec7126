"""MPTLoss: the four L1 terms against hand-computed values; missing ground truth gives exact zeros."""
import torch

from mmpose_mpt.models.losses import MPTLoss, masked_l1


def _preds_targets():
    preds = {'joints_3d': torch.tensor([[[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]]),
             'vertices': torch.tensor([[[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 3.0]]]),
             'camera': torch.tensor([[2.0, 0.5, -0.5]])}
    targets = {'joints_3d': torch.tensor([[[0.0, 0.0, 1.0], [1.0, 2.0, 3.0]]]),
               'vertices': torch.zeros(1, 3, 3),
               'joints_2d': torch.tensor([[[1.0, -1.0], [0.0, 0.0]]])}
    return preds, targets


def test_terms_against_hand_computed_values():
    preds, targets = _preds_targets()
    reg = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])   # G (J=2, V=3)
    losses = MPTLoss()(preds, targets, reg)
    # L_V: per-vertex L1 norms 1, 2, 3 -> mean 2
    assert torch.isclose(losses['loss_vertices'], torch.tensor(2.0))
    # L_J: |(0,0,-1)| = 1, |(0,-1,-2)| = 3 -> 2
    assert torch.isclose(losses['loss_joints'], torch.tensor(2.0))
    # L_J^reg: G V = [(1,0,0), (0,1,1.5)] vs targets: |(1,0,-1)| = 2, |(-1,-1,-1.5)| = 3.5 -> 2.75
    assert torch.isclose(losses['loss_joints_reg'], torch.tensor(2.75))
    # L_J^proj: 2 * ((0,0) + (0.5,-0.5)) = (1,-1) -> 0 ; 2 * ((1,1) + (0.5,-0.5)) = (3,1) -> |(3,1)| = 4
    assert torch.isclose(losses['loss_joints_proj'], torch.tensor(2.0))


def test_weights_and_level_weights():
    preds, targets = _preds_targets()
    preds['vertices_sub'] = torch.ones(1, 2, 3)
    targets['vertices_sub'] = torch.zeros(1, 2, 3)
    losses = MPTLoss(loss_weight_vertices=100.0, loss_weight_joints=1000.0,
                     vertex_level_weights={'vertices': 1.0, 'vertices_sub': 0.5})(preds, targets)
    assert torch.isclose(losses['loss_vertices'], torch.tensor(100.0 * (2.0 + 0.5 * 3.0)))
    assert torch.isclose(losses['loss_joints'], torch.tensor(2000.0))
    assert 'loss_joints_reg' not in losses  # no regressor given


def test_masks_select_points_and_samples():
    pred = torch.zeros(2, 2, 3)
    target = torch.tensor([[[1.0, 0, 0], [0, 0, 5.0]], [[0, 2.0, 0], [0, 0, 0]]])
    assert torch.isclose(masked_l1(pred, target, torch.tensor([[1, 0], [1, 1]])), torch.tensor(1.0))
    assert torch.isclose(masked_l1(pred, target, torch.tensor([0, 1])), torch.tensor(1.0))


def test_fully_masked_terms_are_exact_zero_with_finite_gradients():
    preds, targets = _preds_targets()
    preds = {k: v.clone().requires_grad_(True) for k, v in preds.items()}
    targets['vertices'] = torch.full((1, 3, 3), float('nan'))  # missing gt may hold anything
    targets['has_vertices'] = torch.zeros(1)
    targets['joints_3d_visible'] = torch.zeros(1, 2)
    targets['joints_2d_visible'] = torch.zeros(1, 2)
    targets['joints_2d'] = torch.full((1, 2, 2), float('nan'))
    losses = MPTLoss()(preds, targets, torch.ones(2, 3) / 3)
    for name, value in losses.items():
        assert value.item() == 0.0, name
    sum(losses.values()).backward()
    for v in preds.values():
        assert torch.isfinite(v.grad).all()

"""MPTLoss: the four L1 terms against hand-computed values; masks; missing ground truth gives exact,
finite zeros; float32 under autocast; clear errors."""
import pytest
import torch

from mmpose_mpt.models.losses import MPTLoss, MPTLossInputError, masked_l1


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
    assert set(losses) == {'loss_vertices', 'loss_joints', 'loss_joints_reg', 'loss_joints_proj'}
    # L_V: per-vertex L1 norms 1, 2, 3 -> mean 2
    assert losses['loss_vertices'].item() == pytest.approx(2.0)
    # L_J: |(0,0,-1)| = 1, |(0,-1,-2)| = 3 -> 2
    assert losses['loss_joints'].item() == pytest.approx(2.0)
    # L_J^reg: G V = [(1,0,0), (0,1,1.5)] vs targets: |(1,0,-1)| = 2, |(-1,-1,-1.5)| = 3.5 -> 2.75
    assert losses['loss_joints_reg'].item() == pytest.approx(2.75)
    # L_J^proj: 2 * ((0,0) + (0.5,-0.5)) = (1,-1) -> 0 ; 2 * ((1,1) + (0.5,-0.5)) = (3,1) -> |(3,1)| = 4
    assert losses['loss_joints_proj'].item() == pytest.approx(2.0)


def test_regressed_joints_are_made_root_relative():
    preds, targets = _preds_targets()
    reg = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])
    root = torch.tensor([0.0, 1.0, 0.0])                      # root = vertex 1 = (0, 2, 0)
    losses = MPTLoss()(preds, targets, reg, root)
    # G V - root = [(1,-2,0), (0,-1,1.5)] vs [(0,0,1), (1,2,3)]: |(1,-2,-1)| = 4, |(-1,-3,-1.5)| = 5.5
    assert losses['loss_joints_reg'].item() == pytest.approx(4.75)
    # so L_J^reg ignores a global shift of the predicted mesh
    shifted = dict(preds, vertices=preds['vertices'] + torch.tensor([0.3, -2.0, 7.0]))
    assert MPTLoss()(shifted, targets, reg, root)['loss_joints_reg'].item() == pytest.approx(4.75)
    with pytest.raises(MPTLossInputError, match='root_regressor'):
        MPTLoss()(preds, targets, reg, torch.ones(4))


def test_weights_and_level_weights():
    preds, targets = _preds_targets()
    preds['vertices_sub'] = torch.ones(1, 2, 3)              # L1 norm 3 per vertex
    targets['vertices_sub'] = torch.zeros(1, 2, 3)
    # default: levels averaged (METRO's 0.33 each): (2 + 3) / 2
    assert MPTLoss()(preds, targets)['loss_vertices'].item() == pytest.approx(2.5)
    losses = MPTLoss(loss_weight_vertices=100.0, loss_weight_joints=1000.0, loss_weight_joints_proj=10.0,
                     vertex_level_weights={'vertices': 1.0, 'vertices_sub': 0.5})(preds, targets)
    assert losses['loss_vertices'].item() == pytest.approx(100.0 * (2.0 + 0.5 * 3.0))
    assert losses['loss_joints'].item() == pytest.approx(2000.0)
    assert losses['loss_joints_proj'].item() == pytest.approx(20.0)
    assert 'loss_joints_reg' not in losses                   # no regressor given
    # a sequence goes from the coarsest to the full level
    seq = MPTLoss(vertex_level_weights=[0.0, 1.0])(preds, targets)
    assert seq['loss_vertices'].item() == pytest.approx(2.0)
    # a zero-weight level needs no target
    del targets['vertices_sub']
    assert MPTLoss(vertex_level_weights=[0.0, 1.0])(preds, targets)['loss_vertices'].item() == \
        pytest.approx(2.0)
    with pytest.raises(MPTLossInputError, match="'vertices_sub'"):
        MPTLoss()(preds, targets)
    with pytest.raises(MPTLossInputError, match='vertex_level_weights'):
        MPTLoss(vertex_level_weights=[1.0])(preds, targets)
    with pytest.raises(MPTLossInputError, match='vertices_sub2'):
        MPTLoss(vertex_level_weights={'vertices_sub2': 1.0})(preds, targets)


def test_masks_select_points_and_samples():
    pred = torch.zeros(2, 2, 3)
    target = torch.tensor([[[1.0, 0, 0], [0, 0, 5.0]], [[0, 2.0, 0], [0, 0, 0]]])
    # per point: supervised (0,0)=1, (1,0)=2, (1,1)=0 -> 3 / 3
    assert masked_l1(pred, target, torch.tensor([[1, 0], [1, 1]])).item() == pytest.approx(1.0)
    # per sample: sample 1 only -> (2 + 0) / 2
    assert masked_l1(pred, target, torch.tensor([0, 1])).item() == pytest.approx(1.0)
    assert masked_l1(pred, target).item() == pytest.approx(8.0 / 4)


def test_masks_in_the_loss():
    preds, targets = _preds_targets()
    preds = {k: torch.cat([v, v]) for k, v in preds.items()}               # batch of 2
    targets = {k: torch.cat([v, v + 10.0]) for k, v in targets.items()}    # sample 1 is far off
    targets['has_vertices'] = torch.tensor([1.0, 0.0])
    targets['joints_3d_visible'] = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    targets['joints_2d_visible'] = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    losses = MPTLoss()(preds, targets, torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]]))
    for name, value in (('loss_vertices', 2.0), ('loss_joints', 2.0), ('loss_joints_reg', 2.75),
                        ('loss_joints_proj', 2.0)):
        assert losses[name].item() == pytest.approx(value), name


def test_fully_masked_terms_are_exact_zero_with_finite_gradients():
    preds, targets = _preds_targets()
    preds = {k: v.clone().requires_grad_(True) for k, v in preds.items()}
    nan = float('nan')
    targets['vertices'] = torch.full((1, 3, 3), nan)          # missing ground truth may hold anything
    targets['joints_3d'] = torch.full((1, 2, 3), nan)
    targets['joints_2d'] = torch.full((1, 2, 2), nan)
    targets['has_vertices'] = torch.zeros(1)
    targets['joints_3d_visible'] = torch.zeros(1, 2)
    targets['joints_2d_visible'] = torch.zeros(1, 2)
    losses = MPTLoss()(preds, targets, torch.ones(2, 3) / 3, torch.ones(3) / 3)
    assert len(losses) == 4
    for name, value in losses.items():
        assert value.item() == 0.0 and value.requires_grad, name
    sum(losses.values()).backward()
    for k, v in preds.items():
        assert v.grad is not None and torch.isfinite(v.grad).all() and (v.grad == 0).all(), k


def test_float32_under_bf16_autocast():
    torch.manual_seed(0)
    v = torch.randn(2, 500, 3) * 0.5
    preds = {'vertices': v, 'joints_3d': torch.randn(2, 14, 3) * 0.3,
             'camera': torch.tensor([[1.0, 0.1, 0.0], [0.9, 0.0, -0.1]])}
    g = torch.rand(14, 500).softmax(1)
    targets = {'vertices': v + 1e-3, 'joints_3d': g @ v + 1e-4, 'joints_2d': torch.zeros(2, 14, 2)}
    ref = MPTLoss()(preds, targets, g)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = MPTLoss()(preds, targets, g)
    for k in ref:
        assert out[k].dtype == torch.float32
        assert out[k].item() == pytest.approx(ref[k].item(), rel=1e-6, abs=1e-9), k
    assert ref['loss_joints_reg'].item() == pytest.approx(3e-4, rel=1e-3)   # bf16 could not resolve it


def test_bad_inputs_are_clear_errors():
    preds, targets = _preds_targets()
    with pytest.raises(MPTLossInputError, match='joint_regressor'):
        MPTLoss()(preds, targets, torch.ones(3, 3))
    bad = dict(targets, joints_3d=torch.zeros(1, 3, 3))
    with pytest.raises(MPTLossInputError, match="'joints_3d'"):
        MPTLoss()(preds, bad)
    del targets['joints_2d']
    with pytest.raises(MPTLossInputError, match="'joints_2d'"):
        MPTLoss()(preds, targets)

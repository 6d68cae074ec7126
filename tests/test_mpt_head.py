"""MPTHead: shapes at the paper's sizes, MVM, parameters in use, camera, and that it can learn."""
import pytest
import torch

from mmpose_mpt.models.heads import MPTHead
from mmpose_mpt.models.heads.mpt_head import vertex_level_names
from mmpose_mpt.models.losses import MPTLoss

SMALL = dict(in_channels=5, input_size=(16, 16), patch_size=8, num_joints=4, num_vertices=(6, 12, 24),
             hidden_dims=(32, 16, 8), num_layers=1, num_heads=2)


def test_paper_size_shapes():
    torch.manual_seed(0)
    head = MPTHead().eval()   # 17 x 224 x 224, patch 8, 14 joints, 431/1723/6890, 1024/256/64, 4x4
    assert head.num_input_tokens == 784
    with torch.no_grad():
        out = head(torch.rand(1, 17, 224, 224))
    assert out['joints_3d'].shape == (1, 14, 3)
    assert out['vertices_sub2'].shape == (1, 431, 3)
    assert out['vertices_sub'].shape == (1, 1723, 3)
    assert out['vertices'].shape == (1, 6890, 3)
    assert out['camera'].shape == (1, 3)
    assert sum(len(b) for b in head.blocks) == 12
    assert [b[0].attn.num_heads for b in head.blocks] == [4, 4, 4]
    assert [b[0].norm1.normalized_shape[0] for b in head.blocks] == [1024, 256, 64]
    total, parts = head.flops_per_sample()
    assert 1.0e11 < total < 3.0e11 and parts['attention'] > 0


def test_level_names_and_hand_sizes():
    assert vertex_level_names(3) == ['vertices_sub2', 'vertices_sub', 'vertices']
    assert vertex_level_names(2) == ['vertices_sub', 'vertices']
    head = MPTHead(**dict(SMALL, num_vertices=(7, 21), num_joints=21)).eval()
    out = head(torch.rand(2, 5, 16, 16))
    assert out['vertices_sub'].shape == (2, 7, 3) and out['vertices'].shape == (2, 21, 3)
    assert out['joints_3d'].shape == (2, 21, 3)


def test_coords_mode():
    head = MPTHead(**dict(SMALL, input_mode='coords')).eval()
    out = head(torch.rand(3, 5, 3))
    assert out['vertices'].shape == (3, 24, 3)
    with pytest.raises(ValueError, match='coords input'):
        head(torch.rand(3, 5, 16, 16))


def test_bad_sizes_are_clear_errors():
    with pytest.raises(ValueError, match='multiple of patch_size'):
        MPTHead(**dict(SMALL, input_size=(20, 16)))
    head = MPTHead(**SMALL)
    with pytest.raises(ValueError, match='pose maps must be'):
        head(torch.rand(1, 5, 24, 24))


def test_camera_scale_positive_at_init():
    out = MPTHead(**SMALL).eval()(torch.rand(4, 5, 16, 16))
    assert torch.allclose(out['camera'][:, 0], torch.ones(4), atol=1e-5)
    assert (out['camera'][:, 1:] == 0).all()


def test_mvm_only_in_training():
    torch.manual_seed(0)
    head = MPTHead(**dict(SMALL, mvm_ratio=0.5))
    x = torch.rand(2, 5, 16, 16)
    head.eval()
    a, b = head(x)['vertices'], head(x)['vertices']
    assert torch.equal(a, b)
    head.train()
    torch.manual_seed(1)
    c = head(x)['vertices']
    torch.manual_seed(2)
    d = head(x)['vertices']
    assert not torch.allclose(c, d)
    head_no_mvm = MPTHead(**dict(SMALL, mvm_ratio=0.0))
    head_no_mvm.train()
    assert torch.equal(head_no_mvm(x)['vertices'], head_no_mvm(x)['vertices'])


def test_every_parameter_is_used():
    head = MPTHead(**SMALL)
    head.train()
    out = head(torch.rand(2, 5, 16, 16))
    sum(v.sum() for v in out.values()).backward()
    unused = [n for n, p in head.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert unused == [] or unused == ['mask_embed']  # mask_embed is used only when a query is masked


def test_overfits_a_tiny_batch():
    torch.manual_seed(0)
    head = MPTHead(**dict(SMALL, hidden_dims=(64, 32, 16), mvm_ratio=0.0))
    loss_fn = MPTLoss()
    x = torch.rand(4, 5, 16, 16)
    # Fine meshes are linear in the coarse one (as real meshes are, up to detail), so they are fittable.
    coarse = torch.randn(4, 6, 3) * 0.3
    up1, up2 = torch.rand(12, 6).softmax(1), torch.rand(24, 12).softmax(1)
    sub = up1 @ coarse
    joints = torch.randn(4, 4, 3) * 0.3
    targets = {'joints_3d': joints, 'vertices_sub2': coarse, 'vertices_sub': sub, 'vertices': up2 @ sub,
               'joints_2d': 1.2 * (joints[..., :2] + 0.1)}  # a weak-perspective view of the joints
    opt = torch.optim.Adam(head.parameters(), lr=2e-3)
    first = None
    for _ in range(300):
        loss = sum(loss_fn(head(x), targets).values())
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first / 5, (first, loss.item())

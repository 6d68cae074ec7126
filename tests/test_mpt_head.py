"""MPTHead: shapes at the paper's sizes, parameter count, MVM, parameters in use, camera, fp32 read-out
under bf16 autocast, up-sampling initialisation and that the head can learn a tiny batch."""
import numpy as np
import pytest
import torch

from mmpose_mpt.models.heads import MPTHead
from mmpose_mpt.models.heads.mpt_head import vertex_level_names
from mmpose_mpt.models.losses import MPTLoss

SMALL = dict(in_channels=5, input_size=(16, 16), patch_size=8, num_joints=4, num_vertices=(6, 12, 24),
             hidden_dims=(32, 16, 8), num_layers=1, num_heads=2, dropout=0.0)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models are dominated by thread hand-offs on a busy machine: run them single-threaded."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def expected_num_params(k, size, p, j, verts, dims, layers, mlp_ratio, block_pos=True, pool=7):
    """Parameter count of the documented architecture, written out independently of the module."""
    n_in = (size[0] // p) * (size[1] // p)
    n_tok = 1 + j + verts[0] + n_in
    d0 = dims[0]
    total = (p * p * k * d0 + d0) + (d0 * d0 + d0)                   # patch MLP
    if pool:
        g = k * pool * pool
        total += 2 * g + (g * d0 + d0) + (d0 * d0 + d0)               # global feature: LN + MLP
    total += d0 + j * d0 + verts[0] * d0 + d0                         # camera, queries, mask token
    total += n_tok * (sum(dims) if block_pos else d0)                 # position embeddings
    for i, d in enumerate(dims):
        hid = int(round(mlp_ratio * d))
        per_layer = (3 * d * d + 3 * d) + (d * d + d) + 4 * d + (d * hid + hid) + (hid * d + d)
        total += layers * per_layer
        if i:
            total += 2 * dims[i - 1] + dims[i - 1] * d + d            # LayerNorm + reduction
    total += 2 * dims[-1] + 2 * (3 * dims[-1] + 3)                    # final norm, coords, camera
    total += (j + verts[0]) * 3                                       # per-query template
    total += sum(a * b + b for a, b in zip(verts[:-1], verts[1:]))   # up-sampling
    return total


def test_paper_size_shapes_and_parameter_count():
    torch.manual_seed(0)
    head = MPTHead().eval()   # 17 x 224 x 224, patch 8, 14 joints, 431/1723/6890, 1024/256/64, 4x4
    assert head.num_input_tokens == 784 and head.num_tokens == 1 + 14 + 431 + 784
    with torch.no_grad():
        out = head(torch.rand(2, 17, 224, 224))
    assert list(out) == ['joints_3d', 'camera', 'vertices_sub2', 'vertices_sub', 'vertices']
    assert out['joints_3d'].shape == (2, 14, 3)
    assert out['vertices_sub2'].shape == (2, 431, 3)
    assert out['vertices_sub'].shape == (2, 1723, 3)
    assert out['vertices'].shape == (2, 6890, 3)
    assert out['camera'].shape == (2, 3)
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in out.values())
    assert [len(b) for b in head.blocks] == [4, 4, 4]
    assert [b[0].attn.num_heads for b in head.blocks] == [4, 4, 4]
    assert [b[0].norm1.normalized_shape[0] for b in head.blocks] == [1024, 256, 64]
    assert [b[0].mlp[0].out_features for b in head.blocks] == [2048, 512, 128]
    n = sum(p.numel() for p in head.parameters())
    assert n == expected_num_params(17, (224, 224), 8, 14, (431, 1723, 6890), (1024, 256, 64), 4, 2.0)
    no_global = MPTHead(**dict(SMALL, global_pool=0))
    assert sum(p.numel() for p in no_global.parameters()) == expected_num_params(
        5, (16, 16), 8, 4, (6, 12, 24), (32, 16, 8), 1, 2.0, pool=0)
    assert 45e6 < n < 60e6, n
    total, parts = head.flops_per_sample()
    assert 1.0e11 < total < 1.5e11 and total == sum(parts.values())
    # block 1 dominates: 4 layers x (4 N d^2 + 2 N^2 d + 2 N d 2d) multiply-adds at d = 1024
    n_tok, d = head.num_tokens, 1024
    assert parts['attention_scores_values'] > 4 * 2 * 2 * n_tok * n_tok * d


def test_analytic_flops_match_flop_counter():
    from torch.utils.flop_counter import FlopCounterMode
    head = MPTHead(**SMALL).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        head(torch.rand(1, 5, 16, 16))
    # FlopCounterMode may or may not see the CPU SDPA op: compare with and without the attention mix
    total, parts = head.flops_per_sample()
    assert fc.get_total_flops() in (total, total - parts['attention_scores_values'])


def test_level_names_and_hand_sizes():
    assert vertex_level_names(3) == ['vertices_sub2', 'vertices_sub', 'vertices']
    assert vertex_level_names(2) == ['vertices_sub', 'vertices']
    assert vertex_level_names(1) == ['vertices']
    head = MPTHead(**dict(SMALL, num_vertices=(7, 21), num_joints=21)).eval()   # MANO-like 195 → 778
    out = head(torch.rand(2, 5, 16, 16))
    assert out['vertices_sub'].shape == (2, 7, 3) and out['vertices'].shape == (2, 21, 3)
    assert out['joints_3d'].shape == (2, 21, 3) and 'vertices_sub2' not in out
    one = MPTHead(**dict(SMALL, num_vertices=(9,))).eval()(torch.rand(1, 5, 16, 16))
    assert one['vertices'].shape == (1, 9, 3) and len([k for k in one if 'vert' in k]) == 1


def test_coords_mode():
    head = MPTHead(**dict(SMALL, input_mode='coords')).eval()
    assert head.num_input_tokens == 5
    x = torch.rand(3, 5, 3) * 2 - 1
    x[..., 2] = 1.0
    x[0, 1, 2] = 0.0                                   # joint 1 of sample 0 invisible
    out = head(x)
    assert out['vertices'].shape == (3, 24, 3) and out['joints_3d'].shape == (3, 4, 3)
    y = x.clone()
    y[0, 1, :2] = torch.tensor([5.0, -7.0])            # an invisible joint's coordinates are ignored
    assert torch.equal(head(y)['vertices'], out['vertices'])
    y[1, 1, :2] += 0.5                                 # a visible one's are not
    assert not torch.allclose(head(y)['vertices'][1], out['vertices'][1])
    with pytest.raises(ValueError, match='coords input'):
        head(torch.rand(3, 5, 16, 16))


def test_patch_tokens_follow_the_paper_layout():
    """Token (r, c) holds the 8x8xK values of rows 8r..8r+7 and columns 8c..8c+7 of all K maps."""
    head = MPTHead(**dict(SMALL, input_size=(16, 24))).eval()
    seen = {}
    head.input_embed.register_forward_pre_hook(lambda m, i: seen.update(x=i[0]))
    x = torch.randn(2, 5, 16, 24)
    head(x)
    patches = seen['x']
    assert patches.shape == (2, 2 * 3, 8 * 8 * 5)
    for r in range(2):
        for c in range(3):
            block = x[:, :, 8 * r:8 * r + 8, 8 * c:8 * c + 8]         # (B, K, 8, 8)
            assert torch.equal(patches[:, 3 * r + c], block.permute(0, 2, 3, 1).reshape(2, -1))


def test_bad_sizes_are_clear_errors():
    with pytest.raises(ValueError, match='multiple of patch_size'):
        MPTHead(**dict(SMALL, input_size=(20, 16)))
    with pytest.raises(ValueError, match='num_layers'):
        MPTHead(**dict(SMALL, num_layers=(1, 2)))
    with pytest.raises(ValueError, match='divisible'):
        MPTHead(**dict(SMALL, num_heads=3))
    with pytest.raises(ValueError, match='mvm_ratio'):
        MPTHead(**dict(SMALL, mvm_ratio=1.0))
    with pytest.raises(ValueError, match='input_mode'):
        MPTHead(**dict(SMALL, input_mode='rgb'))
    head = MPTHead(**SMALL)
    with pytest.raises(ValueError, match='pose maps must be'):
        head(torch.rand(1, 5, 24, 24))


def test_global_feature_reaches_every_query_and_sees_where_the_joints_are():
    torch.manual_seed(0)
    head = MPTHead(**dict(SMALL, input_size=(56, 56))).eval()
    seen = {}
    head.blocks[0].register_forward_pre_hook(lambda m, i: seen.update(h=i[0]))
    x = torch.zeros(1, 5, 56, 56)
    x[0, 0, 3, 3] = 1.0
    y = torch.zeros(1, 5, 56, 56)
    y[0, 0, 50, 50] = 1.0                 # the same joint elsewhere: other pooled cell
    head(x)
    hx = seen['h'][0, :1 + head.num_queries]
    head(y)
    hy = seen['h'][0, :1 + head.num_queries]
    # the input reaches every query before any attention, through the global feature only
    g = head.global_feature(x) - head.global_feature(y)
    assert g.abs().max() > 1e-4
    assert torch.allclose(hx - hy, g.expand_as(hx), atol=1e-6)
    off = MPTHead(**dict(SMALL, input_size=(56, 56), global_pool=0)).eval()
    off.blocks[0].register_forward_pre_hook(lambda m, i: seen.update(h=i[0]))
    off(x)
    hx = seen['h'][0, :1 + off.num_queries]
    off(y)
    assert torch.equal(hx, seen['h'][0, :1 + off.num_queries])
    with pytest.raises(ValueError, match='global_pool'):
        MPTHead(**dict(SMALL, global_pool=-1))


def test_pose_map_positions_start_as_sincos_codes():
    from mmpose_mpt.models.heads.mpt_head import sincos_2d
    codes = sincos_2d(3, 4, 10)                                     # 10 % 4 != 0: zero padded
    assert codes.shape == (12, 10) and (codes[:, 8:] == 0).all()
    # row-major: tokens in one row share the row half of the code, tokens in one column the other
    assert torch.equal(codes[0, :4], codes[3, :4]) and not torch.equal(codes[0, 4:8], codes[3, 4:8])
    assert torch.equal(codes[0, 4:8], codes[4, 4:8]) and not torch.equal(codes[0, :4], codes[4, :4])
    assert codes[1, 0] == 0 and torch.allclose(codes[1, 4], torch.sin(torch.tensor(1.0)))  # row 0, col 1
    head = MPTHead(**dict(SMALL, input_size=(16, 24)))
    for pos, d in zip(head.pos_embeds, head.hidden_dims):
        assert torch.equal(pos[0, -6:].detach(), sincos_2d(2, 3, d))
        assert pos.requires_grad
        assert pos[0, :-6].abs().max() < 0.1                        # queries: small random identity


def test_camera_scale_positive_at_init():
    for s0 in (1.0, 0.9):
        head = MPTHead(**dict(SMALL, init_camera_scale=s0)).eval()
        cam = head(torch.rand(4, 5, 16, 16))['camera']
        assert torch.allclose(cam[:, 0], torch.full((4,), s0), atol=1e-6)
        assert (cam[:, 1:] == 0).all()
    # the scale stays positive whatever the weights become (softplus)
    with torch.no_grad():
        head.camera_out.weight.normal_(0, 10.0)
        head.camera_out.bias.fill_(-50.0)
    assert (head(torch.rand(8, 5, 16, 16))['camera'][:, 0] > 0).all()


def test_mvm_only_in_training_and_masked_queries_keep_their_identity():
    torch.manual_seed(0)
    head = MPTHead(**dict(SMALL, mvm_ratio=0.5))
    x = torch.rand(2, 5, 16, 16)
    head.eval()
    assert torch.equal(head(x)['vertices'], head(x)['vertices'])
    head.train()
    torch.manual_seed(1)
    c = head(x)['vertices']
    torch.manual_seed(2)
    d = head(x)['vertices']
    assert not torch.allclose(c, d)
    no_mvm = MPTHead(**dict(SMALL, mvm_ratio=0.0)).train()
    assert torch.equal(no_mvm(x)['vertices'], no_mvm(x)['vertices'])
    # every query masked: the queries share one mask embedding, yet each vertex still gets its own
    # output (the position embedding is not masked, as in METRO)
    head.mvm_ratio = 1.0
    with torch.no_grad():
        head.coord_out.weight.normal_()               # O(1) outputs instead of the near-zero init
    coarse = head(x)['vertices_sub2']                                 # (2, 6, 3)
    assert (coarse[:, 1:] - coarse[:, :1]).abs().amax(dim=(0, 2)).min() > 1e-4


def test_every_parameter_is_used():
    torch.manual_seed(0)
    head = MPTHead(**dict(SMALL, dropout=0.1, mvm_ratio=0.3)).train()
    out = head(torch.rand(4, 5, 16, 16))
    sum(v.sum() for v in out.values()).backward()
    unused = [n for n, p in head.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert unused == []
    # without MVM the mask token is unused: it is frozen (DDP stops at a trainable parameter without a
    # gradient), and kept in the state dict, so checkpoints load either way
    no_mvm = MPTHead(**dict(SMALL, dropout=0.1, mvm_ratio=0.0)).train()
    out = no_mvm(torch.rand(4, 5, 16, 16))
    sum(v.sum() for v in out.values()).backward()
    trainable = [(n, p) for n, p in no_mvm.named_parameters() if p.requires_grad]
    assert [n for n, p in no_mvm.named_parameters() if not p.requires_grad] == ['mask_token']
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for _, p in trainable)
    assert set(no_mvm.state_dict()) == set(head.state_dict())


def test_bf16_autocast_keeps_a_float32_read_out():
    torch.manual_seed(0)
    head = MPTHead(**SMALL).eval()
    x = torch.rand(2, 5, 16, 16)
    ref = head(x)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = head(x)
    for k, v in out.items():
        assert v.dtype == torch.float32 and torch.isfinite(v).all(), k
        assert torch.allclose(v, ref[k], atol=0.1, rtol=0.1), k
    # the up-sampling itself runs in float32: the full mesh is exactly the linear map of the coarse
    up = head.upsampling
    full = up[1](up[0](out['vertices_sub2'].transpose(1, 2))).transpose(1, 2)
    assert torch.allclose(out['vertices'], full, atol=1e-6)


def test_upsampling_init_from_a_mesh_sampling_file(tmp_path):
    from mmpose_mpt.body_models.mesh_sampler import save_mesh_sampling
    rng = np.random.default_rng(0)
    sizes = [24, 12, 6]                                               # file: full mesh first

    def stochastic(rows, cols):
        m = rng.random((rows, cols))
        return m / m.sum(1, keepdims=True)

    sampling = dict(D=[stochastic(12, 24), stochastic(6, 12)], U=[stochastic(24, 12), stochastic(12, 6)],
                    num_vertices=sizes)
    path = str(tmp_path / 'mesh_downsampling.npz')
    save_mesh_sampling(path, sampling)
    head = MPTHead(**dict(SMALL, upsampling_init=path)).eval()
    assert np.allclose(head.upsampling[0].weight.detach().numpy(), sampling['U'][1])   # 6 → 12
    assert np.allclose(head.upsampling[1].weight.detach().numpy(), sampling['U'][0])   # 12 → 24
    out = head(torch.rand(2, 5, 16, 16))
    expected = torch.from_numpy(sampling['U'][0] @ sampling['U'][1]).float() @ out['vertices_sub2']
    assert torch.allclose(out['vertices'], expected, atol=1e-5)
    # a MANO-like head (12 → 24) takes the file's first level pair
    hand = MPTHead(**dict(SMALL, num_vertices=(12, 24), upsampling_init=path))
    assert np.allclose(hand.upsampling[0].weight.detach().numpy(), sampling['U'][0])
    with pytest.raises(ValueError, match='mesh_downsampling.npz'):
        MPTHead(**dict(SMALL, num_vertices=(5, 12, 24), upsampling_init=path))


def test_smooth_vertex_queries_follow_the_coarse_mesh(tmp_path):
    """smooth_vertex_queries: neighbouring coarse vertices start with similar codes (unit variance kept),
    distant ones stay distinct; i.i.d. codes otherwise; it needs the coarse faces of upsampling_init."""
    from mmpose_mpt.body_models.mesh_sampler import save_mesh_sampling
    rng = np.random.default_rng(0)
    n = 40                                                            # a strip of triangles 0-1-2, 1-2-3, ...
    faces = np.array([[i, i + 1, i + 2] for i in range(n - 2)])
    eye = lambda a, b: np.eye(a, b)                                   # noqa: E731
    sampling = dict(D=[eye(n, 2 * n)], U=[eye(2 * n, n)], num_vertices=[2 * n, n],
                    F=[rng.integers(0, 2 * n, (10, 3)), faces])
    path = str(tmp_path / 'mesh_downsampling.npz')
    save_mesh_sampling(path, sampling)
    cfg = dict(SMALL, num_vertices=(n, 2 * n), hidden_dims=(64, 16, 8), upsampling_init=path)

    def neighbour_and_far_cos(head):
        q = head.vertex_queries[0].detach()
        cos = torch.nn.functional.cosine_similarity
        return cos(q[:-1], q[1:]).mean().item(), cos(q[:10], q[-10:]).abs().mean().item()

    torch.manual_seed(0)
    near, far = neighbour_and_far_cos(MPTHead(**cfg))
    assert abs(near) < 0.2
    torch.manual_seed(0)
    head = MPTHead(**dict(cfg, smooth_vertex_queries=3))
    near, far = neighbour_and_far_cos(head)
    assert near > 0.7 and far < 0.35
    q = head.vertex_queries[0].detach()
    assert torch.allclose(q.std(0), torch.ones(q.shape[1]), atol=1e-3)
    with pytest.raises(ValueError, match='upsampling_init'):
        MPTHead(**dict(SMALL, smooth_vertex_queries=3))
    with pytest.raises(ValueError, match='>= 0'):
        MPTHead(**dict(cfg, smooth_vertex_queries=-1))


def test_frozen_upsampling_keeps_its_initialisation(tmp_path):
    """learn_upsampling=False: same state dict, the barycentric U matrices get no gradient."""
    from mmpose_mpt.body_models.mesh_sampler import save_mesh_sampling
    rng = np.random.default_rng(0)
    u = [rng.random((24, 12)), rng.random((12, 6))]
    sampling = dict(D=[rng.random((12, 24)), rng.random((6, 12))], U=[m / m.sum(1, keepdims=True) for m in u],
                    num_vertices=[24, 12, 6])
    path = str(tmp_path / 'mesh_downsampling.npz')
    save_mesh_sampling(path, sampling)
    learned = MPTHead(**dict(SMALL, upsampling_init=path))
    frozen = MPTHead(**dict(SMALL, upsampling_init=path, learn_upsampling=False))
    assert frozen.state_dict().keys() == learned.state_dict().keys()
    frozen(torch.rand(2, 5, 16, 16))['vertices'].square().sum().backward()
    assert all(p.grad is None and not p.requires_grad for p in frozen.upsampling.parameters())
    assert frozen.vertex_queries.grad is not None
    with pytest.raises(ValueError, match='upsampling_init'):
        MPTHead(**dict(SMALL, learn_upsampling=False))


def test_overfits_a_tiny_batch():
    """The head fits 4 samples far better than the best input-independent guess (their mean)."""
    torch.manual_seed(0)
    cfg = dict(in_channels=3, input_size=(16, 16), patch_size=8, num_joints=4, num_vertices=(6, 12, 24),
               hidden_dims=(64, 32, 16), num_layers=1, num_heads=2, mvm_ratio=0.0, dropout=0.0)
    head = MPTHead(**cfg)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(4, 3, 16, 16, generator=g)
    # meshes whose finer levels are linear in the coarse one, joints regressed from the full mesh and
    # 2D joints a weak-perspective view of them: a consistent, fittable set of targets
    coarse = torch.randn(4, 6, 3, generator=g) * 0.3
    sub = torch.rand(12, 6, generator=g).softmax(1) @ coarse
    full = torch.rand(24, 12, generator=g).softmax(1) @ sub
    regressor = torch.rand(4, 24, generator=g).softmax(1)
    joints = regressor @ full
    targets = {'vertices_sub2': coarse, 'vertices_sub': sub, 'vertices': full, 'joints_3d': joints,
               'joints_2d': 1.1 * (joints[..., :2] + torch.tensor([0.1, -0.2]))}
    loss_fn = MPTLoss()
    opt = torch.optim.Adam(head.parameters(), lr=1e-3)
    for _ in range(250):
        loss = sum(loss_fn(head(x), targets, regressor).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        out = head(x)
    for key in ('joints_3d', 'vertices'):
        err = (out[key] - targets[key]).norm(dim=-1).mean()
        mean_guess = (targets[key] - targets[key].mean(0, keepdim=True)).norm(dim=-1).mean()
        assert err < 0.25 * mean_guess, (key, float(err), float(mean_guess))

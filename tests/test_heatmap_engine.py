"""MoCap heatmap engine (Sec. 3.1.1–3.1.2): Eq. 1 rendering, Masked Heatmap Modeling, packing.

Expected values are computed independently (a per-pixel python loop for Eq. 1, sample statistics for
MHM, hand-assembled arrays for PackMeshInputs).
"""
import math

import numpy as np
import pytest
import torch

import mmpose_mpt  # noqa: F401
from mmpose_mpt.models.data_preprocessors import render_heatmaps


def _eq1_loop(kps, size, sigma):
    """Eq. 1 evaluated pixel by pixel: S_j(p) = exp(-||p - x_j||² / σ²), p = (column, row)."""
    h, w = size
    out = np.zeros((len(kps), h, w), np.float64)
    for j, (x, y) in enumerate(kps):
        for row in range(h):
            for col in range(w):
                out[j, row, col] = math.exp(-((col - x) ** 2 + (row - y) ** 2) / sigma ** 2)
    return out


# ------------------------------------------------------------------------------ render_heatmaps
KPS_SMALL = [
    (3.3, 4.7),     # sub-pixel, inside
    (6.0, 2.0),     # integer
    (0.0, 8.0),     # on the border (first column, last row)
    (12.6, -0.4),   # just outside a corner (sub-pixel)
    (-5.0, 20.0),   # well outside the map
    (15.2, 4.1),    # outside on the right
]


@pytest.mark.parametrize('sigma', [3.0, 1.5])
def test_render_matches_per_pixel_loop(sigma):
    size = (9, 13)   # (H, W), deliberately non-square
    kp = torch.tensor([KPS_SMALL], dtype=torch.float32)
    vis = torch.ones(1, len(KPS_SMALL), dtype=torch.bool)
    out = render_heatmaps(kp, vis, size=size, sigma=sigma)
    assert out.shape == (1, len(KPS_SMALL), 9, 13)
    assert out.dtype == torch.float32
    ref = _eq1_loop(KPS_SMALL, size, sigma)
    assert np.abs(out[0].double().numpy() - ref).max() < 1e-6


def test_render_peak_at_rounded_keypoint():
    size = (9, 13)
    kps = [(3.3, 4.7), (6.0, 2.0), (0.0, 8.0), (11.8, 0.2), (7.45, 5.55)]
    out = render_heatmaps(torch.tensor([kps]), torch.ones(1, len(kps)), size=size, sigma=3.0)[0]
    for j, (x, y) in enumerate(kps):
        row, col = divmod(int(out[j].argmax()), size[1])
        assert (col, row) == (round(x), round(y)), (j, col, row)
        d2 = (col - x) ** 2 + (row - y) ** 2
        assert float(out[j, row, col]) == pytest.approx(math.exp(-d2 / 9.0), abs=1e-6)
    assert float(out[1, 2, 6]) == pytest.approx(1.0, abs=1e-7)   # integer keypoint: peak value 1


def test_render_uses_sigma_squared_not_two_sigma_squared():
    sigma = 3.0
    out = render_heatmaps(torch.tensor([[[100.0, 50.0]]]), torch.ones(1, 1), size=(224, 224),
                          sigma=sigma)[0, 0]
    # x = column, y = row
    assert float(out[50, 100]) == pytest.approx(1.0, abs=1e-7)
    for row, col in [(50, 103), (50, 97), (53, 100), (47, 100)]:   # distance σ = 3
        assert float(out[row, col]) == pytest.approx(math.exp(-1.0), abs=1e-6)
        assert abs(float(out[row, col]) - math.exp(-0.5)) > 0.1       # not the 2σ² Gaussian
    assert float(out[53, 103]) == pytest.approx(math.exp(-2.0), abs=1e-6)  # distance σ√2
    assert float(out[56, 100]) == pytest.approx(math.exp(-4.0), abs=1e-6)  # distance 2σ


def test_render_xy_convention_on_a_non_square_map():
    out = render_heatmaps(torch.tensor([[[10.0, 2.0]]]), torch.ones(1, 1), size=(5, 20))[0, 0]
    assert out.shape == (5, 20)
    assert divmod(int(out.argmax()), 20) == (2, 10)   # (row = y, col = x)


def test_render_invisible_joints_are_all_zero():
    kp = torch.tensor([[[5.0, 5.0], [3.0, 4.0], [7.0, 1.0]],
                       [[1.0, 1.0], [2.0, 2.0], [6.0, 6.0]]])
    for vis in (torch.tensor([[True, False, True], [False, False, True]]),
                torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]]),
                torch.tensor([[1, 0, 1], [0, 0, 1]])):
        out = render_heatmaps(kp, vis, size=(9, 13))
        mask = vis.bool()
        assert torch.all(out[~mask] == 0)
        assert torch.all(out[mask].amax(dim=(-2, -1)) > 0.99)
        full = render_heatmaps(kp, torch.ones(2, 3), size=(9, 13))
        torch.testing.assert_close(out[mask], full[mask], rtol=0, atol=0)


def test_render_bf16_close_to_fp32_and_dtype_follows_argument():
    g = torch.Generator().manual_seed(0)
    kp = torch.rand(2, 17, 2, generator=g) * 224
    vis = torch.rand(2, 17, generator=g) > 0.2
    ref = render_heatmaps(kp, vis, size=(224, 224))
    assert ref.dtype == torch.float32
    bf = render_heatmaps(kp, vis, size=(224, 224), dtype=torch.bfloat16)
    assert bf.dtype == torch.bfloat16
    assert (bf.float() - ref).abs().max() < 1e-2
    half = render_heatmaps(kp, vis, size=(224, 224), dtype=torch.float16)
    assert half.dtype == torch.float16
    assert (half.float() - ref).abs().max() < 1e-3
    # default: the keypoints' dtype
    assert render_heatmaps(kp.double(), vis, size=(9, 13)).dtype == torch.float64
    assert render_heatmaps(kp.double(), vis, size=(9, 13), dtype=torch.float32).dtype == torch.float32


def test_render_into_out_buffer_and_denormal_flush():
    g = torch.Generator().manual_seed(1)
    kp = torch.rand(2, 5, 2, generator=g) * 64 - 8
    vis = torch.rand(2, 5, generator=g) > 0.3
    ref = render_heatmaps(kp, vis, size=(64, 48))
    out = torch.full((2, 5, 64, 48), 7.0)                     # stale content must not survive
    got = render_heatmaps(kp, vis, size=(64, 48), out=out)
    assert got.data_ptr() == out.data_ptr()
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    bf = torch.empty(2, 5, 64, 48, dtype=torch.bfloat16)
    render_heatmaps(kp, vis, size=(64, 48), out=bf)
    torch.testing.assert_close(bf, ref.to(torch.bfloat16), rtol=0, atol=0)
    with pytest.raises(ValueError, match='out has shape'):
        render_heatmaps(kp, vis, size=(64, 48), out=torch.empty(2, 5, 48, 64))
    # far from the joint the maps are exactly 0, never float32 denormals (slow on x86): factors below
    # exp(-43.5) are flushed, so products stay >= exp(-87) > the smallest normal float32
    far = render_heatmaps(torch.tensor([[[0.0, 0.0]]]), torch.ones(1, 1), size=(224, 224))
    assert float(far[far > 0].min()) >= torch.finfo(torch.float32).tiny
    assert float(far[0, 0, 0, 40]) == 0.0                      # exp(-1600/9) underflows anyway
    assert float(far[0, 0, 0, 20]) == 0.0                      # exp(-400/9) = 5e-20: flushed
    assert float(far[0, 0, 0, 19]) == pytest.approx(math.exp(-361 / 9), rel=1e-5)
    assert float(far[0, 0, 14, 14]) == pytest.approx(math.exp(-392 / 9), rel=1e-5)   # 2 x exp(-21.8)


@pytest.mark.parametrize('size,sigma', [((224, 224), 3.0), ((112, 112), 3.0), ((224, 224), 1.7),
                                        ((100, 180), 4.2)])
def test_render_windows_equal_full_product(size, sigma):
    """A contiguous float32 ``out`` on the CPU is written as memset + one window per map: bit-equal to
    the full outer product (float64 output = the same float32 products, written everywhere)."""
    from mmpose_mpt.models.data_preprocessors.render_heatmaps import _radius
    h, w = size
    g = torch.Generator().manual_seed(3)
    kp = torch.rand(12, 17, 2, generator=g) * torch.tensor([w + 80.0, h + 80.0]) - 40
    # joints exactly one kept-radius from a pixel, on the borders and in the corners
    r = _radius(sigma)
    kp[:4] = kp[:4].round() + r * torch.sign(torch.rand(4, 17, 2, generator=g) - 0.5)
    kp[4, :4] = torch.tensor([[0.0, 0.0], [w - 1.0, h - 1.0], [-r, 5.0], [w - 1 + r, h - 1 + r]])
    vis = torch.rand(12, 17, generator=g) > 0.2
    full = render_heatmaps(kp, vis, size=size, sigma=sigma, dtype=torch.float64).float()
    out = torch.full((12, 17, h, w), 7.0)                    # stale content must not survive
    got = render_heatmaps(kp, vis, size=size, sigma=sigma, out=out)
    assert got.data_ptr() == out.data_ptr()
    assert torch.equal(got, full)
    assert (full > 0).sum() > 1000                          # the maps are not trivially empty
    # a non-contiguous out takes the full product: same maps
    t_out = torch.full((12, 17, w, h), 7.0).transpose(2, 3)
    assert torch.equal(render_heatmaps(kp, vis, size=size, sigma=sigma, out=t_out), full)


def test_render_windows_fall_back_for_non_finite_keypoints():
    kp = torch.tensor([[[50.0, 60.0], [float('nan'), 3.0]]])
    vis = torch.tensor([[True, False]])
    full = render_heatmaps(kp, vis, size=(224, 224), dtype=torch.float64).float()
    got = render_heatmaps(kp, vis, size=(224, 224), out=torch.empty(1, 2, 224, 224))
    assert torch.equal(got.isnan(), full.isnan()) and torch.equal(got[0, 0], full[0, 0])


@pytest.mark.parametrize('case', ['short', 'narrow', 'neg_sigma', 'tiny_sigma', 'inf_sigma',
                                  'nan_visible', 'neg_visible', 'neg_zero_visible'])
def test_render_windows_only_where_exact(case):
    """Inputs where windows would not give the full product's bits take the full product (found by
    review: maps shorter or narrower than a window, σ ≤ 0 or non-finite, 1/σ² beyond float32,
    visibilities that are NaN/inf or carry a sign)."""
    size, sigma = {'short': ((21, 336), 3.0), 'narrow': ((336, 21), 3.0), 'neg_sigma': ((224, 224), -3.0),
                   'tiny_sigma': ((64, 64), 1e-20), 'inf_sigma': ((64, 64), float('inf'))
                   }.get(case, ((224, 224), 3.0))
    g = torch.Generator().manual_seed(5)
    kp = torch.rand(2, 6, 2, generator=g) * torch.tensor([size[1] + 0.0, size[0] + 0.0])
    kp[0, 0] = torch.tensor([3.0, 2.0])                         # on integer pixels (σ → 0: 0/0)
    vis = torch.ones(2, 6)
    vis[1, 2] = {'nan_visible': float('nan'), 'neg_visible': -1.0,
                 'neg_zero_visible': -0.0}.get(case, 0.0)
    full = render_heatmaps(kp, vis, size=size, sigma=sigma, dtype=torch.float64).float()
    got = render_heatmaps(kp, vis, size=size, sigma=sigma, out=torch.full((2, 6) + size, 7.0))
    # bit-equal, NaN and signed zeros included
    assert torch.equal(got.view(torch.int32), full.view(torch.int32))


def test_zero_fill():
    from mmpose_mpt.models.data_preprocessors.render_heatmaps import zero_fill_
    t = torch.full((3, 1000), 2.5)
    v = t._version
    assert zero_fill_(t) is t and torch.all(t == 0) and t._version > v
    nc = torch.full((10, 6), 3.0)[:, ::2]                  # non-contiguous: zero_(), rest untouched
    zero_fill_(nc)
    assert torch.all(nc == 0) and torch.all(nc._base[:, 1::2] == 3.0)
    with pytest.raises(RuntimeError, match='leaf Variable'):   # autograd's check, as zero_()
        zero_fill_(torch.ones(4, requires_grad=True))
    # an empty batch into an empty buffer
    assert render_heatmaps(torch.zeros(0, 17, 2), torch.zeros(0, 17, dtype=torch.bool),
                           out=torch.empty(0, 17, 224, 224)).shape == (0, 17, 224, 224)


def test_render_batched_shapes_and_per_map_independence():
    g = torch.Generator().manual_seed(1)
    kp = torch.rand(2, 17, 2, generator=g) * 230 - 3     # a few just outside the map
    vis = torch.ones(2, 17)
    vis[0, 3] = vis[1, 16] = 0
    out = render_heatmaps(kp, vis, size=(224, 224), sigma=3.0)
    assert out.shape == (2, 17, 224, 224)
    assert out.min() >= 0 and out.max() <= 1
    # each map only depends on its own keypoint; spot-check against Eq. 1 on a few maps
    rows = torch.arange(224, dtype=torch.float64)[:, None]
    cols = torch.arange(224, dtype=torch.float64)[None, :]
    for b, k in [(0, 0), (0, 5), (1, 9), (1, 15)]:
        x, y = kp[b, k].double()
        ref = torch.exp(-((cols - x) ** 2 + (rows - y) ** 2) / 9.0)
        assert (out[b, k].double() - ref).abs().max() < 1e-6
        single = render_heatmaps(kp[b:b + 1, k:k + 1], torch.ones(1, 1), size=(224, 224))
        torch.testing.assert_close(out[b, k], single[0, 0])
    assert torch.all(out[0, 3] == 0) and torch.all(out[1, 16] == 0)
    assert render_heatmaps(kp, vis, size=(112, 112)).shape == (2, 17, 112, 112)


# ------------------------------------------------------------------------ MaskedHeatmapModeling
def _build(cfg):
    from mmengine.registry import init_default_scope
    from mmpose.registry import TRANSFORMS
    init_default_scope('mmpose')
    return TRANSFORMS.build(cfg)


def _mhm(**kwargs):
    return _build(dict(type='MaskedHeatmapModeling', **kwargs))


def _kp_sample(idx=0, k=17, visible=None):
    rng = np.random.default_rng(1000 + idx)
    vis = np.ones((1, k), np.float32) if visible is None else np.asarray(visible, np.float32)[None]
    return dict(keypoints=rng.uniform(20, 200, (1, k, 2)).astype(np.float32), keypoints_visible=vis,
                sample_idx=idx)


def _run_many(t, n=3000, visible=None):
    masks, jit, noise = [], [], []
    for i in range(n):
        s = _kp_sample(i % 50, visible=visible)
        kp = s['keypoints'].copy()
        out = t(s)
        masks.append(out['mhm_mask'][0])
        jit.append(out['heatmap_keypoints'][0] - kp[0])
        noise.append(out['heatmap_noise_std'])
    return np.array(masks), np.array(jit), np.array(noise)


def test_mhm_statistics_with_global_seed():
    t = _mhm(mask_prob=0.15, jitter_std=2.0, noise_std=0.1, seed=None)
    np.random.seed(0)
    masks, jit, noise = _run_many(t)
    assert masks.shape == (3000, 17) and masks.dtype == bool
    assert abs(masks.mean() - 0.15) < 0.02
    # every joint gets masked about equally often
    assert np.all(np.abs(masks.mean(0) - 0.15) < 0.03)
    assert abs(jit.std() - 2.0) < 0.05 * 2.0
    assert abs(jit.mean()) < 0.05
    assert abs(jit[..., 0].std() - 2.0) < 0.1 and abs(jit[..., 1].std() - 2.0) < 0.1
    assert np.all(noise >= 0) and np.all(noise <= 0.1)
    assert abs(noise.mean() - 0.05) < 0.005          # uniform on [0, noise_std]
    assert noise.min() < 0.005 and noise.max() > 0.095
    # the global generator drives it: same global seed → same draws; different → different
    np.random.seed(0)
    m2, j2, n2 = _run_many(t, n=20)
    np.testing.assert_array_equal(m2, masks[:20])
    np.testing.assert_array_equal(j2, jit[:20])
    np.random.seed(1)
    _, j3, _ = _run_many(t, n=20)
    assert not np.allclose(j3, jit[:20])


@pytest.mark.parametrize('mask_prob', [0.0, 0.5, 1.0])
def test_mhm_mask_prob_extremes_and_middle(mask_prob):
    t = _mhm(mask_prob=mask_prob, jitter_std=0.0, noise_std=0.0)
    np.random.seed(3)
    masks, jit, noise = _run_many(t, n=400)
    assert abs(masks.mean() - mask_prob) < 0.02
    np.testing.assert_array_equal(jit, 0.0)
    np.testing.assert_array_equal(noise, 0.0)


def test_mhm_heatmap_visibility_is_visible_and_not_masked():
    vis = np.ones(17, np.float32)
    vis[[0, 4, 11]] = 0
    t = _mhm(mask_prob=0.3, seed=None)
    np.random.seed(5)
    for i in range(200):
        out = t(_kp_sample(i, visible=vis))
        hv = out['heatmap_keypoints_visible']
        assert hv.shape == (1, 17) and hv.dtype == np.float32
        assert np.all(hv[0, [0, 4, 11]] == 0)                      # invisible stays invisible
        expected = (vis[None] > 0) & ~out['mhm_mask']
        np.testing.assert_array_equal(hv, expected.astype(np.float32))
        np.testing.assert_array_equal(out['keypoints_visible'], vis[None])   # input untouched


@pytest.mark.parametrize('num_masked,allowed', [((2, 2), {2}), ((0, 3), {0, 1, 2, 3}),
                                                 ((17, 17), {17}), ((15, 30), {15, 16, 17})])
def test_mhm_num_masked(num_masked, allowed):
    t = _mhm(num_masked=num_masked, mask_prob=0.9)      # num_masked overrides mask_prob
    np.random.seed(2)
    counts = [int(t(_kp_sample(i))['mhm_mask'].sum()) for i in range(300)]
    assert set(counts) == allowed
    if num_masked == (0, 3):
        hist = np.bincount(counts, minlength=4)
        assert np.all(np.abs(hist - 75) < 30), hist


def test_mhm_num_masked_two_exactly_and_spread_over_joints():
    t = _mhm(num_masked=(2, 2))
    np.random.seed(4)
    masks = []
    for i in range(850):
        out = t(_kp_sample(i))
        assert out['mhm_mask'].sum() == 2
        assert out['heatmap_keypoints_visible'].sum() == 15
        masks.append(out['mhm_mask'][0])
    per_joint = np.array(masks).sum(0)           # expected 850 * 2 / 17 = 100 each
    assert np.all(np.abs(per_joint - 100) < 40), per_joint


def test_mhm_disabled_is_identity():
    t = _mhm(enabled=False, mask_prob=0.5, jitter_std=3.0, noise_std=0.2)
    vis = np.ones(17, np.float32)
    vis[7] = 0
    for i in range(20):
        s = _kp_sample(i, visible=vis)
        kp = s['keypoints'].copy()
        out = t(s)
        np.testing.assert_array_equal(out['heatmap_keypoints'], kp)
        np.testing.assert_array_equal(out['heatmap_keypoints_visible'], vis[None])
        assert not out['mhm_mask'].any() and out['mhm_mask'].shape == (1, 17)
        assert out['heatmap_noise_std'] == 0


def test_mhm_fixed_seed_is_a_function_of_sample_idx():
    t = _mhm(mask_prob=0.3, jitter_std=2.0, noise_std=0.1, seed=7)

    def run(idx, global_seed):
        np.random.seed(global_seed)          # must not matter with a fixed seed
        s = _kp_sample(0)
        s['sample_idx'] = idx
        return t(s)

    a, b = run(11, 0), run(11, 99)
    np.testing.assert_array_equal(a['heatmap_keypoints'], b['heatmap_keypoints'])
    np.testing.assert_array_equal(a['mhm_mask'], b['mhm_mask'])
    assert a['heatmap_noise_std'] == b['heatmap_noise_std']
    c = run(12, 0)
    assert not np.array_equal(a['heatmap_keypoints'], c['heatmap_keypoints'])
    assert a['heatmap_noise_std'] != c['heatmap_noise_std']
    # another seed, same sample → different
    d = _mhm(mask_prob=0.3, jitter_std=2.0, noise_std=0.1, seed=8)(dict(_kp_sample(0), sample_idx=11))
    assert not np.array_equal(a['heatmap_keypoints'], d['heatmap_keypoints'])
    # many sample indices: masks differ across samples
    masks = {tuple(run(i, 0)['mhm_mask'][0]) for i in range(30)}
    assert len(masks) > 10


@pytest.mark.parametrize('kwargs', [dict(mask_prob=-0.1), dict(mask_prob=1.5), dict(num_masked=(3, 2)),
                                    dict(num_masked=(-1, 2)), dict(jitter_std=-1.0),
                                    dict(noise_std=-0.1)])
def test_mhm_invalid_arguments(kwargs):
    from mmpose_mpt.datasets.transforms import MaskedHeatmapModeling
    with pytest.raises(ValueError):
        MaskedHeatmapModeling(**kwargs)


# ---------------------------------------------------------------------------------- PackMeshInputs
# A standing person's COCO-17 joints (z-up, pelvis at the origin), metres.
COCO17_STANDING = np.array([
    [0.00, 0.08, 0.62], [-0.03, 0.06, 0.66], [0.03, 0.06, 0.66], [-0.07, 0.00, 0.64],
    [0.07, 0.00, 0.64], [-0.18, 0.00, 0.45], [0.18, 0.00, 0.45], [-0.22, 0.02, 0.18],
    [0.22, 0.02, 0.18], [-0.24, 0.05, -0.06], [0.24, 0.05, -0.06], [-0.10, 0.00, -0.02],
    [0.10, 0.00, -0.02], [-0.11, 0.02, -0.47], [0.11, 0.02, -0.47], [-0.11, 0.00, -0.86],
    [0.11, 0.00, -0.86],
])


def _pipeline_sample(view_index=1):
    from mmpose_mpt.datasets.transforms import MaskedHeatmapModeling, RandomVirtualCamera
    rng = np.random.default_rng(0)
    results = dict(keypoints_3d=COCO17_STANDING.astype(np.float32), view_index=view_index,
                   smpl_pose=rng.normal(0, 0.2, 72), smpl_betas=rng.normal(0, 1, 10), gender=0,
                   sample_idx=5, seq_name='toy/seq0', frame_index=12, dataset_name='toy')
    results = RandomVirtualCamera(num_views=4, random_view=False)(results)
    vis = results['keypoints_visible'].copy()
    vis[0, 3] = 0
    results['keypoints_visible'] = vis
    return MaskedHeatmapModeling(mask_prob=0.2, seed=3)(results)


def test_pack_mesh_inputs_mocap_sample():
    results = _pipeline_sample()
    ref_kp = results['heatmap_keypoints'][0].copy()
    ref_vis = results['heatmap_keypoints_visible'][0].copy()
    packed = _build(dict(type='PackMeshInputs'))(results)
    assert set(packed) == {'inputs', 'data_samples'}
    inputs = packed['inputs']
    assert isinstance(inputs, torch.Tensor) and inputs.shape == (17, 3) and inputs.dtype == torch.float32
    np.testing.assert_array_equal(inputs[:, :2].numpy(), ref_kp)
    np.testing.assert_array_equal(inputs[:, 2].numpy(), ref_vis)
    assert inputs[3, 2] == 0
    # the heatmap keypoints (jittered), not the clean ones
    assert not np.allclose(inputs[:, :2].numpy(), results['keypoints'][0])

    ds = packed['data_samples']
    gt = ds.gt_instances
    assert len(gt) == 1
    expected_shapes = {
        'keypoints': (1, 17, 2), 'keypoints_visible': (1, 17), 'bboxes': (1, 4),
        'bbox_centers': (1, 2), 'bbox_scales': (1, 2), 'smpl_pose': (1, 72), 'smpl_betas': (1, 10),
        'smpl_gender': (1, ), 'cam_R': (1, 3, 3), 'cam_t': (1, 3), 'cam_f': (1, 2), 'cam_c': (1, 2),
        'warp_mat': (1, 2, 3), 'heatmap_noise_std': (1, ), 'keypoints_3d': (1, 17, 3),
    }
    for field, shape in expected_shapes.items():
        value = getattr(gt, field)
        assert np.asarray(value).shape == shape, (field, np.asarray(value).shape)
        if np.asarray(value).dtype.kind == 'f':
            assert np.asarray(value).dtype == np.float32, field
    np.testing.assert_allclose(gt.smpl_pose[0], results['smpl_pose'], atol=1e-6)
    np.testing.assert_allclose(gt.smpl_betas[0], results['smpl_betas'], atol=1e-6)
    np.testing.assert_array_equal(gt.cam_R[0], results['cam_R'])
    np.testing.assert_array_equal(gt.keypoints, results['keypoints'])      # clean crop keypoints
    np.testing.assert_array_equal(gt.keypoints_visible, results['keypoints_visible'])
    assert gt.heatmap_noise_std[0] == pytest.approx(results['heatmap_noise_std'])
    meta = ds.metainfo
    for key, value in [('view_index', 1), ('sample_idx', 5), ('seq_name', 'toy/seq0'),
                       ('frame_index', 12), ('dataset_name', 'toy'), ('input_size', (224, 224))]:
        assert key in meta, key
        assert meta[key] == value, key


def test_pack_mesh_inputs_without_mhm_uses_clean_keypoints():
    kp = np.arange(34, dtype=np.float32).reshape(1, 17, 2)
    vis = np.ones((1, 17), np.float32)
    vis[0, 16] = 0
    packed = _build(dict(type='PackMeshInputs', meta_keys=('sample_idx', )))(
        dict(keypoints=kp, keypoints_visible=vis, sample_idx=3, keypoints_3d=np.zeros((1, 17, 3))))
    expected = np.concatenate([kp[0], vis[0][:, None]], axis=1)
    np.testing.assert_array_equal(packed['inputs'].numpy(), expected)
    assert packed['data_samples'].gt_instances.keypoints_3d.shape == (1, 17, 3)
    assert packed['data_samples'].metainfo == {'sample_idx': 3}


def test_pack_mesh_inputs_image_sample():
    img = np.random.default_rng(0).integers(0, 255, (224, 224, 3), dtype=np.uint8)
    packed = _build(dict(type='PackMeshInputs'))(
        dict(img=img, keypoints=np.zeros((1, 17, 2), np.float32),
             keypoints_visible=np.ones((1, 17), np.float32), img_path='a.jpg'))
    assert packed['inputs'].shape == (3, 224, 224)
    np.testing.assert_array_equal(packed['inputs'].numpy(), img.transpose(2, 0, 1))
    assert packed['data_samples'].metainfo['img_path'] == 'a.jpg'

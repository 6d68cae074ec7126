"""The MoCap data engine end to end: MoCapHeatmapDataset → RandomVirtualCamera → MaskedHeatmapModeling
→ PackMeshInputs → pseudo_collate → MoCapHeatmapPreprocessor, on toy data generated in a tmp dir.

Geometry is checked against independent re-computations (pinhole projection written out here, scipy
sampling matrices, a separate SMPL instance) and against the per-sample reference pipeline of
tools/benchmark_data.py. Most tests use non-square maps (H, W) = (64, 48) so that (w, h) / (H, W)
orders cannot be mixed up unnoticed.
"""
import os.path as osp
import sys

import numpy as np
import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(REPO, 'tools'))

from benchmark_data import (Bench, build_dataset, build_preprocessor, compare,  # noqa: E402
                            data_paths, prepare_toy_data)

from mmpose_mpt.body_models import SMPL  # noqa: E402
from mmpose_mpt.body_models.joint_regressors import H36M_J17_TO_J14  # noqa: E402
from mmpose_mpt.body_models.mesh_sampler import load_mesh_sampling  # noqa: E402

HW = (64, 48)           # heatmap (H, W); RandomVirtualCamera's input_size is (W, H)
B = 8


def _pipeline(mhm: dict, hw=HW, random_view=False):
    return [dict(type='RandomVirtualCamera', num_views=4, input_size=(hw[1], hw[0]),
                 random_view=random_view),
            dict(type='MaskedHeatmapModeling', **mhm),
            dict(type='PackMeshInputs')]


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('engine_toy'))
    prepare_toy_data(root, num_sequences=3, seconds=1.0, stride_seconds=0.25)
    paths = data_paths(root)
    smpl = SMPL(paths['smpl'], gender='neutral', h36m_regressor=paths['h36m'])
    h36m = smpl.get_regressor('h36m').double().numpy()
    return dict(root=root, paths=paths, smpl=smpl, h36m=h36m,
                down=load_mesh_sampling(paths['sampling'])['D'])


@pytest.fixture(scope='module')
def pp(toy):
    return build_preprocessor(toy['paths'], HW)


def _batch(toy, mhm=None, idx=None, hw=HW):
    from mmengine.dataset import pseudo_collate
    ds = build_dataset(toy['paths']['mocap'], _pipeline(mhm or dict(enabled=False), hw))
    if idx is None:   # spread over the split, cycling through the 4 views
        step = max(1, len(ds) // B)
        idx = [min(i * step + i % 4, len(ds) - 1) for i in range(B)]
    return ds, idx, pseudo_collate([ds[i] for i in idx])


def _gt(batch, field):
    return np.concatenate([np.asarray(getattr(d.gt_instances, field)) for d in batch['data_samples']])


def _world_vertices(toy, batch):
    """Posed vertices centred on the SMPL pelvis joint, from a separate SMPL instance (float64 numpy)."""
    pose = torch.from_numpy(_gt(batch, 'smpl_pose'))
    betas = torch.from_numpy(_gt(batch, 'smpl_betas'))
    with torch.no_grad():
        out = toy['smpl'](betas=betas, body_pose=pose[:, 3:], global_orient=pose[:, :3])
    return (out['vertices'] - out['joints'][:, :1]).double().numpy()


def _project(points_cam, f, c, warp, hw):
    """Pinhole + crop warp + METRO normalisation, written out independently (numpy, float64)."""
    px = f[:, None] * points_cam[..., :2] / points_cam[..., 2:] + c[:, None]
    crop = np.einsum('bij,bkj->bki', warp[..., :2], px) + warp[:, None, :, 2]
    return crop, 2 * crop / np.array([hw[1], hw[0]]) - 1


# ------------------------------------------------------------------------------------------- shapes
def test_shapes_dtypes_ranges(toy, pp):
    _, _, batch = _batch(toy, dict(enabled=True, noise_std=0.0, seed=0))
    out = pp(batch, training=False)
    x, t = out['inputs'], out['targets']
    assert x.shape == (B, 17) + HW and x.dtype == torch.float32
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    expect = dict(vertices=(B, 6890, 3), vertices_sub=(B, 1723, 3), vertices_sub2=(B, 431, 3),
                  joints_3d=(B, 14, 3), joints_2d=(B, 14, 2), has_vertices=(B, ),
                  joints_3d_visible=(B, 14), joints_2d_visible=(B, 14))
    assert set(t) == set(expect)
    for k, shape in expect.items():
        assert tuple(t[k].shape) == shape, k
        assert t[k].dtype == torch.float32 and t[k].device.type == 'cpu', k
        assert torch.isfinite(t[k]).all(), k
    for k in ('has_vertices', 'joints_3d_visible', 'joints_2d_visible'):
        assert set(t[k].unique().tolist()) <= {0.0, 1.0}
    assert bool((t['joints_2d_visible'] == 1).all())        # toy people are in front of every camera
    assert out['data_samples'] is batch['data_samples']


# ------------------------------------------------------------------------------------ 3D targets
def test_targets_root_relative_and_consistent(toy, pp):
    _, _, batch = _batch(toy)
    t = {k: v.double().numpy() for k, v in pp(batch, training=False)['targets'].items()}
    pelvis = np.einsum('v,bvc->bc', toy['h36m'][0], t['vertices'])
    np.testing.assert_allclose(pelvis, 0, atol=1e-5)
    lsp = np.einsum('jv,bvc->bjc', toy['h36m'][H36M_J17_TO_J14], t['vertices'])
    np.testing.assert_allclose(t['joints_3d'], lsp, atol=1e-5)
    sub = np.stack([toy['down'][0] @ v for v in t['vertices']])
    np.testing.assert_allclose(t['vertices_sub'], sub, atol=1e-5)
    np.testing.assert_allclose(t['vertices_sub2'], np.stack([toy['down'][1] @ v for v in sub]), atol=1e-5)
    # camera frame: R @ (SMPL vertices) minus the rotated H36M pelvis, from a separate SMPL instance
    R = _gt(batch, 'cam_R').astype(np.float64)
    v_rot = np.einsum('bij,bvj->bvi', R, _world_vertices(toy, batch))
    v_rel = v_rot - np.einsum('v,bvc->bc', toy['h36m'][0], v_rot)[:, None]
    np.testing.assert_allclose(t['vertices'], v_rel, atol=1e-5)


def test_prepared_keypoints_match_the_mesh(toy, pp):
    """The heatmaps (from the index's COCO joints) and the mesh targets (from the body-model forward)
    describe the same person: COCO joints regressed from the preprocessor's mesh = keypoints_3d."""
    ds, idx, batch = _batch(toy)
    kp3d = np.stack([ds.get_data_info(i)['keypoints_3d'] for i in idx]).astype(np.float64)
    coco = np.einsum('kv,bvc->bkc', toy['smpl'].get_regressor('coco').double().numpy(),
                     _world_vertices(toy, batch))
    np.testing.assert_allclose(coco, kp3d, atol=1e-4)


# ------------------------------------------------------------------------------------ 2D / heatmaps
def test_heatmap_keypoints_are_the_projected_joints(toy, pp):
    ds, idx, batch = _batch(toy)
    kp3d = np.stack([ds.get_data_info(i)['keypoints_3d'] for i in idx]).astype(np.float64)
    R, t = _gt(batch, 'cam_R').astype(np.float64), _gt(batch, 'cam_t').astype(np.float64)
    f, c = _gt(batch, 'cam_f').astype(np.float64), _gt(batch, 'cam_c').astype(np.float64)
    warp = _gt(batch, 'warp_mat').astype(np.float64)
    cam = np.einsum('bij,bkj->bki', R, kp3d) + t[:, None]
    crop, _ = _project(cam, f, c, warp, HW)
    kp = _gt(batch, 'keypoints')
    np.testing.assert_allclose(kp, crop, atol=1e-2)
    inputs = torch.stack(batch['inputs']).numpy()
    np.testing.assert_array_equal(inputs[..., :2], kp)       # MHM off: heatmap keypoints = clean ones
    # the person fills the crop as mmpose's top-down box does: inside, and touching the padded extent
    assert kp[..., 0].min() > 0 and kp[..., 0].max() < HW[1] and kp[..., 1].min() > 0
    assert kp[..., 1].max() < HW[0]
    # argmax of every visible heatmap within 1 px of its keypoint
    hm = pp(batch, training=False)['inputs'].numpy()
    vis = inputs[..., 2] > 0
    assert vis.all()
    flat = hm.reshape(hm.shape[0], hm.shape[1], -1).argmax(-1)
    amax = np.stack([flat % HW[1], flat // HW[1]], -1)
    assert np.abs(amax - kp)[vis].max() <= 1.0
    np.testing.assert_allclose(hm.max(axis=(2, 3))[vis], 1.0, atol=0.2)   # Eq. 1 peak ~1 at the joint


def test_joints_2d_are_the_projected_3d_targets(toy, pp):
    _, _, batch = _batch(toy)
    t = pp(batch, training=False)['targets']
    R, tr = _gt(batch, 'cam_R').astype(np.float64), _gt(batch, 'cam_t').astype(np.float64)
    f, c = _gt(batch, 'cam_f').astype(np.float64), _gt(batch, 'cam_c').astype(np.float64)
    warp = _gt(batch, 'warp_mat').astype(np.float64)
    pelvis = np.einsum('v,bvc->bc', toy['h36m'][0], _world_vertices(toy, batch))
    pelvis_cam = np.einsum('bij,bj->bi', R, pelvis) + tr               # H36M pelvis in the camera
    cam = t['joints_3d'].double().numpy() + pelvis_cam[:, None]
    _, norm = _project(cam, f, c, warp, HW)
    np.testing.assert_allclose(t['joints_2d'].double().numpy(), norm, atol=1e-4)
    assert float(t['joints_2d'].abs().max()) < 1.0                       # inside the crop


def test_mhm_masks_and_jitter_reach_the_heatmaps(toy, pp):
    _, _, batch = _batch(toy, dict(enabled=True, mask_prob=0.3, jitter_std=2.0, noise_std=0.0, seed=1))
    inputs = torch.stack(batch['inputs']).numpy()
    clean = _gt(batch, 'keypoints')
    masked = inputs[..., 2] == 0
    assert masked.any() and (~masked).any()
    assert np.abs(inputs[..., :2] - clean).max() > 0.1                   # jittered
    hm = pp(batch, training=False)['inputs'].numpy()
    assert (hm[masked] == 0).all()
    flat = hm.reshape(hm.shape[0], hm.shape[1], -1).argmax(-1)
    amax = np.stack([flat % HW[1], flat // HW[1]], -1)
    inside = (~masked) & (inputs[..., 0] >= 0) & (inputs[..., 0] <= HW[1] - 1) & \
        (inputs[..., 1] >= 0) & (inputs[..., 1] <= HW[0] - 1)
    assert np.abs(amax - inputs[..., :2])[inside].max() <= 1.0


# ----------------------------------------------------------------------------------- reference
def test_engine_equals_per_sample_reference(toy):
    bench = Bench(toy['root'], heatmap_size=(56, 40))
    idx = bench.indices(0, 6)
    diffs = compare(bench.run_reference(idx), bench.run_engine(idx))
    assert max(diffs.values()) <= 1e-4, diffs


# ------------------------------------------------------------------------------------ modes
def test_coords_mode(toy):
    pp_c = build_preprocessor(toy['paths'], HW, input_mode='coords')
    _, _, batch = _batch(toy, dict(enabled=True, mask_prob=0.3, jitter_std=0.0, noise_std=0.0, seed=2))
    x = pp_c(batch, training=False)['inputs']
    assert x.shape == (B, 17, 3) and x.dtype == torch.float32
    assert float(x.min()) >= -1 and float(x.max()) <= 1
    kp = torch.stack(batch['inputs'])
    vis = kp[..., 2] > 0
    np.testing.assert_array_equal(x[..., 2].numpy(), vis.float().numpy())
    expect = 2 * kp[..., :2] / torch.tensor([HW[1], HW[0]]) - 1
    torch.testing.assert_close(x[..., :2][vis], expect[vis])
    assert bool((x[..., :2][~vis] == 0).all())


def test_training_noise_only_where_requested(toy, pp):
    _, _, batch = _batch(toy, dict(enabled=True, mask_prob=0.2, noise_std=0.1, seed=3))
    for i, ds in enumerate(batch['data_samples']):     # half the samples clean
        if i % 2 == 0:
            ds.gt_instances.heatmap_noise_std = np.zeros(1, np.float32)
    noise = _gt(batch, 'heatmap_noise_std')
    assert (noise[1::2] > 0).all()
    kp3d_before = _gt(batch, 'keypoints_3d').copy()
    torch.manual_seed(0)
    train = pp(batch, training=True)
    # training: no ground truth written into the samples (only eval attaches it)
    np.testing.assert_array_equal(_gt(batch, 'keypoints_3d'), kp3d_before)
    assert not hasattr(batch['data_samples'][0].gt_instances, 'vertices')
    ev = pp(batch, training=False)
    xt, xe = train['inputs'], ev['inputs']
    assert float(xt.min()) >= 0 and float(xt.max()) <= 1
    for i in range(B):
        if noise[i] > 0:
            assert float((xt[i] - xe[i]).abs().max()) > 1e-3, i
        else:
            torch.testing.assert_close(xt[i], xe[i], rtol=0, atol=0)
    for k in train['targets']:
        torch.testing.assert_close(train['targets'][k], ev['targets'][k], rtol=0, atol=0)


def test_eval_attaches_ground_truth(toy, pp):
    _, _, batch = _batch(toy)
    assert _gt(batch, 'keypoints_3d').shape == (B, 17, 3)      # canonical COCO joints as packed
    for ds in batch['data_samples']:                           # one instance: every field (1, ...)
        gt = ds.gt_instances
        assert len(gt) == 1 and all(len(v) == 1 for v in gt.values())
    out = pp(batch, training=False)
    for i, ds in enumerate(batch['data_samples']):
        gt = ds.gt_instances
        assert gt.keypoints_3d.shape == (1, 14, 3) and gt.vertices.shape == (1, 6890, 3)
        assert gt.keypoints_3d_visible.shape == (1, 14) and gt.has_vertices.shape == (1, )
        np.testing.assert_array_equal(gt.keypoints_3d[0], out['targets']['joints_3d'][i].numpy())
        np.testing.assert_array_equal(gt.vertices[0], out['targets']['vertices'][i].numpy())


# ----------------------------------------------------------------------------- recycled buffers
def test_heatmap_buffer_is_recycled_only_when_nothing_holds_it(toy):
    import copy
    pp_r = build_preprocessor(toy['paths'], HW)
    _, _, batch = _batch(toy, dict(enabled=True, noise_std=0.0, seed=0))
    _, _, other = _batch(toy, dict(enabled=True, noise_std=0.0, seed=0), idx=list(range(B)))
    first = pp_r(batch, training=True)['inputs']
    ptr, want = first.data_ptr(), first.clone()
    del first
    again = pp_r(other, training=True)['inputs']
    assert again.data_ptr() == ptr                       # dropped → its memory is reused
    # a held batch, even only through a view, is never overwritten
    view = again[1:3].flatten(2)
    held = view.clone()
    del again
    third = pp_r(batch, training=True)['inputs']
    assert third.data_ptr() != ptr
    torch.testing.assert_close(view, held, rtol=0, atol=0)
    torch.testing.assert_close(third, want, rtol=0, atol=0)
    # training noise is added in place on the recycled buffer, still within [0, 1]
    _, _, noisy = _batch(toy, dict(enabled=True, noise_std=0.2, seed=0))
    del third
    x = pp_r(noisy, training=True)['inputs']
    assert float(x.min()) >= 0 and float(x.max()) <= 1 and float((x - want).abs().max()) > 1e-2
    # copies of the module (EMA, deepcopy) do not carry the buffer
    dup = copy.deepcopy(pp_r)
    assert dup._heatmaps._buf is None and pp_r._heatmaps._buf is not None
    off = build_preprocessor(toy['paths'], HW)
    off.recycle_buffers = False
    off(batch, training=True)
    assert off._heatmaps._buf is None


def test_half_precision_module_casts_leave_the_engine_in_float32(toy, pp):
    """DeepSpeed casts the whole model (preprocessor included) with .bfloat16()/.half(); the engine
    keeps computing in float32 (fp16 would make SMPL's Rodrigues NaN, bf16 round targets by ~1 cm)."""
    _, _, batch = _batch(toy, dict(enabled=True, noise_std=0.0, seed=0))
    ref = pp(batch, training=True)
    for cast in ('half', 'bfloat16'):
        pp_h = getattr(build_preprocessor(toy['paths'], HW), cast)()
        engine = [pp_h.joint_regressor] + list(pp_h.skinning.buffers()) + list(pp_h.mesh_sampler.buffers())
        assert all(b.dtype in (torch.float32, torch.float64, torch.int64) for b in engine), cast
        out = pp_h(batch, training=True)
        assert out['inputs'].dtype == torch.float32
        torch.testing.assert_close(out['inputs'], ref['inputs'], rtol=0, atol=0)
        for k, v in ref['targets'].items():
            assert out['targets'][k].dtype == torch.float32, (cast, k)
            torch.testing.assert_close(out['targets'][k], v, rtol=0, atol=1e-6)


# ----------------------------------------------------------------------------------- devices
def test_to_moves_buffers_and_body_model(toy):
    pp_m = build_preprocessor(toy['paths'], HW)
    assert pp_m.to('cpu') is pp_m and pp_m.device == torch.device('cpu')
    n_cpu = len(list(pp_m.buffers()))
    assert n_cpu > 10
    pp_m.to('meta')                                   # a real device move, without a GPU
    assert pp_m.device == torch.device('meta')
    assert all(b.device.type == 'meta' for b in pp_m.buffers()), \
        [n for n, b in pp_m.named_buffers() if b.device.type != 'meta']
    assert len(list(pp_m.buffers())) == n_cpu
    assert pp_m.joint_regressor.device.type == 'meta'
    assert pp_m.body_models[0].device.type == 'meta'
    assert pp_m.mesh_sampler.D0_val.device.type == 'meta'
    assert pp_m.mesh_sampler.D0_val.dtype == torch.float64        # weights are not rounded by moves


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_matches_cpu(toy, pp):
    pp_g = build_preprocessor(toy['paths'], HW).to('cuda')
    _, _, batch = _batch(toy, dict(enabled=True, noise_std=0.0, seed=0))
    a = pp(batch, training=False)
    g = pp_g(batch, training=False)
    assert g['inputs'].is_cuda
    torch.testing.assert_close(g['inputs'].cpu(), a['inputs'], rtol=0, atol=1e-5)
    for k in a['targets']:
        torch.testing.assert_close(g['targets'][k].cpu(), a['targets'][k], rtol=0, atol=1e-5)


# -------------------------------------------------------------------------------- visualisation
def test_visualize_mocap_heatmaps_writes_a_consistent_grid(toy, tmp_path):
    """tools/visualize_mocap_heatmaps.py on the engine: the PNG is written and its own geometric checks
    (people upright, left/right on the right side, joint labels where the heatmaps peak) hold."""
    import cv2
    from visualize_mocap_heatmaps import visualize
    out = str(tmp_path / 'grid.png')
    res = visualize(toy['root'], out, num=2)
    img = cv2.imread(out)
    assert img is not None and img.shape[0] > 200 and img.shape[1] > 400
    assert len(res['checks']) == 2
    for c in res['checks']:
        assert c['upright'] and c['lr_ok'] and c['labels_ok'], c
        assert c['max_argmax_err_px'] <= 0.75, c        # heatmap peaks at the rounded keypoints


def test_eval_never_adds_heatmap_noise(toy, pp):
    """Samples that ask for noise (an MHM left on in a test pipeline) get clean maps in eval mode:
    exactly the maps of the same batch with every noise std set to 0."""
    _, _, batch = _batch(toy, dict(enabled=True, mask_prob=0.2, noise_std=0.3, seed=4))
    assert (_gt(batch, 'heatmap_noise_std') > 0).all()
    torch.manual_seed(0)
    noisy_request = pp(batch, training=False)['inputs'].clone()
    for ds in batch['data_samples']:
        ds.gt_instances.heatmap_noise_std = np.zeros(1, np.float32)
    clean = pp(batch, training=False)['inputs']
    torch.testing.assert_close(noisy_request, clean, rtol=0, atol=0)


@pytest.mark.parametrize('sigma', [0, -3.0, float('nan'), float('inf'), '3'])
def test_sigma_must_be_finite_and_positive(toy, sigma):
    with pytest.raises(ValueError, match='sigma'):
        build_preprocessor(toy['paths'], HW, sigma=sigma)


def test_per_sample_gender_uses_each_samples_model(toy):
    """per_sample_gender=True: sample i is skinned with the model of its gender code (0 neutral,
    1 male, 2 female), i.e. equals a single-gender engine of that model; the toy models differ, so a
    swapped code -> model mapping fails."""
    from mmengine.registry import init_default_scope
    from mmpose.registry import MODELS
    init_default_scope('mmpose')
    body = dict(model_path=toy['paths']['smpl'], h36m_regressor=toy['paths']['h36m'])

    def engine(**kw):
        return MODELS.build(dict(type='MoCapHeatmapPreprocessor', body_model=dict(body, **kw.pop('bm', {})),
                                 mesh_sampler=toy['paths']['sampling'], heatmap_size=HW, **kw))

    mixed = engine(per_sample_gender=True)
    single = {g: engine(bm=dict(gender=name)) for g, name in enumerate(('neutral', 'male', 'female'))}
    _, _, batch = _batch(toy)
    codes = np.arange(B) % 3
    for ds, g in zip(batch['data_samples'], codes):
        ds.gt_instances.smpl_gender = np.full(1, g, dtype=np.asarray(ds.gt_instances.smpl_gender).dtype)
    got = mixed(batch, training=True)['targets']['vertices']
    per_model = {g: e(batch, training=True)['targets']['vertices'] for g, e in single.items()}
    for i, g in enumerate(codes):
        torch.testing.assert_close(got[i], per_model[g][i], rtol=0, atol=1e-6)
        for other in set(range(3)) - {g}:
            assert float((per_model[other][i] - got[i]).abs().max()) > 1e-3, (i, g, other)

"""Tests for mmpose_mpt.evaluation: mpjpe / pa_align / f_score and MeshMetric.

Every value is checked against an independent computation written here (explicit loops, Horn's
quaternion solution of the absolute-orientation problem, brute-force distances) or against mmpose's
``keypoint_mpjpe``.
"""

import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData
from mmpose.evaluation.functional import keypoint_mpjpe
from mmpose.structures import PoseDataSample

from mmpose_mpt.evaluation import H36M_J17_TO_J14, MeshMetric, MeshMetricError
from mmpose_mpt.evaluation.functional import MetricInputError, f_score, mpjpe, pa_align

# LSP-14 names from the Human3.6M-17 names (contract), to check the index table independently.
H36M_NAMES = ['Pelvis', 'R_Hip', 'R_Knee', 'R_Ankle', 'L_Hip', 'L_Knee', 'L_Ankle', 'Torso', 'Neck',
              'Nose', 'Head', 'L_Shoulder', 'L_Elbow', 'L_Wrist', 'R_Shoulder', 'R_Elbow',
              'R_Wrist']
LSP_NAMES = ['R_Ankle', 'R_Knee', 'R_Hip', 'L_Hip', 'L_Knee', 'L_Ankle', 'R_Wrist', 'R_Elbow',
             'R_Shoulder', 'L_Shoulder', 'L_Elbow', 'L_Wrist', 'Neck', 'Head']


# ----------------------------------------------------------------------------- independent helpers
def rotation(axis, angle):
    """Rodrigues' formula."""
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def horn_similarity(x, y):
    """Horn (1987) closed-form absolute orientation with quaternions: s, R, t minimising
    sum |s R x + t - y|^2 (x, y: (P, 3)). Independent of the SVD route; never reflects."""
    mx, my = x.mean(0), y.mean(0)
    xc, yc = x - mx, y - my
    m = xc.T @ yc
    sxx, sxy, sxz = m[0]
    syx, syy, syz = m[1]
    szx, szy, szz = m[2]
    n = np.array([[sxx + syy + szz, syz - szy, szx - sxz, sxy - syx],
                  [syz - szy, sxx - syy - szz, sxy + syx, szx + sxz],
                  [szx - sxz, sxy + syx, -sxx + syy - szz, syz + szy],
                  [sxy - syx, szx + sxz, syz + szy, -sxx - syy + szz]])
    w, v = np.linalg.eigh(n)
    q0, qx, qy, qz = v[:, np.argmax(w)]
    r = np.array([
        [q0**2 + qx**2 - qy**2 - qz**2, 2 * (qx * qy - q0 * qz), 2 * (qx * qz + q0 * qy)],
        [2 * (qy * qx + q0 * qz), q0**2 - qx**2 + qy**2 - qz**2, 2 * (qy * qz - q0 * qx)],
        [2 * (qz * qx - q0 * qy), 2 * (qz * qy + q0 * qx), q0**2 - qx**2 - qy**2 + qz**2]])
    s = np.sum(yc * (xc @ r.T)) / np.sum(xc**2)
    t = my - s * r @ mx
    return s, r, t


def loop_mean_error(pred, gt, mask=None):
    """Per-sample mean distance with explicit loops."""
    out = []
    for i in range(len(pred)):
        d = [np.sqrt(sum((pred[i][j][c] - gt[i][j][c])**2 for c in range(3)))
             for j in range(len(pred[i])) if mask is None or mask[i][j]]
        out.append(sum(d) / len(d) if d else np.nan)
    return np.array(out)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# ----------------------------------------------------------------------------- functional
def test_mpjpe_hand_computed():
    gt = np.zeros((1, 3, 3))
    pred = np.array([[[1., 0, 0], [0, 2, 0], [0, 0, 3]]])
    np.testing.assert_allclose(mpjpe(pred, gt), [2.0])
    # 3-4-5 triangle
    pred = np.array([[[3., 4, 0], [0, 0, 0], [0, 0, 0]]])
    np.testing.assert_allclose(mpjpe(pred, gt), [5 / 3])
    np.testing.assert_allclose(mpjpe(pred, gt, mask=[[1, 0, 0]]), [5.0])
    np.testing.assert_allclose(mpjpe(pred, gt, mask=[[0, 1, 1]]), [0.0])
    assert np.isnan(mpjpe(pred, gt, mask=[[0, 0, 0]])[0])


def test_mpjpe_root_alignment(rng):
    gt = rng.normal(size=(4, 14, 3))
    shift = rng.normal(size=(4, 1, 3))
    pred = gt + shift
    np.testing.assert_allclose(mpjpe(pred, gt), np.linalg.norm(shift[:, 0], axis=-1))
    np.testing.assert_allclose(mpjpe(pred, gt, 'root', root_index=5), 0, atol=1e-12)
    np.testing.assert_allclose(mpjpe(pred, gt, 'root', root_index=(2, 3)), 0, atol=1e-12)
    # root = mean of indices 2 and 3: compare with explicit subtraction
    pred = pred + rng.normal(scale=0.1, size=pred.shape)
    pr = pred - (pred[:, 2:3] + pred[:, 3:4]) / 2
    gr = gt - (gt[:, 2:3] + gt[:, 3:4]) / 2
    np.testing.assert_allclose(mpjpe(pred, gt, 'root', root_index=[2, 3]), loop_mean_error(pr, gr))


def test_procrustes_recovers_known_similarity(rng):
    gt = rng.normal(size=(3, 20, 3))
    s = np.array([0.5, 1.0, 2.5])
    rs = np.stack([rotation([1, 2, 3], 0.7), rotation([0, 0, 1], -2.0), rotation([1, -1, 0], 3.0)])
    t = rng.normal(size=(3, 3))
    pred = s[:, None, None] * np.einsum('nij,npj->npi', rs, gt) + t[:, None]
    np.testing.assert_allclose(mpjpe(pred, gt, 'procrustes'), 0, atol=1e-10)
    np.testing.assert_allclose(mpjpe(pred, gt), loop_mean_error(pred, gt))
    aligned, s_hat, r_hat, t_hat = pa_align(pred, gt, return_transform=True)
    np.testing.assert_allclose(aligned, gt, atol=1e-10)
    np.testing.assert_allclose(s_hat, 1 / s, rtol=1e-10)
    np.testing.assert_allclose(r_hat, np.swapaxes(rs, 1, 2), atol=1e-10)


def test_procrustes_matches_horn_and_never_reflects(rng):
    gt = rng.normal(size=(5, 30, 3))
    pred = gt + rng.normal(scale=0.3, size=gt.shape)
    pred[0, :, 0] *= -1  # a mirrored prediction: the best *rotation* must not undo it
    aligned, s, r, t = pa_align(pred, gt, return_transform=True)
    np.testing.assert_allclose(np.linalg.det(r), 1, atol=1e-10)
    for i in range(len(gt)):
        s_h, r_h, t_h = horn_similarity(pred[i], gt[i])
        np.testing.assert_allclose(s[i], s_h, rtol=1e-8)
        np.testing.assert_allclose(r[i], r_h, atol=1e-8)
        np.testing.assert_allclose(aligned[i], s_h * pred[i] @ r_h.T + t_h, atol=1e-8)
    assert mpjpe(pred, gt, 'procrustes')[0] > 0.1  # reflection not removable
    np.testing.assert_allclose(mpjpe(pred, gt, 'procrustes'), loop_mean_error(aligned, gt))


def test_procrustes_mask_fits_visible_points_only(rng):
    gt = rng.normal(size=(2, 12, 3))
    r = rotation([0.3, 1, 0.2], 1.1)
    pred = 1.7 * gt @ r.T + 0.4
    pred[:, -2:] += 100.0  # outliers, masked out
    mask = np.ones((2, 12), bool)
    mask[:, -2:] = False
    np.testing.assert_allclose(mpjpe(pred, gt, 'procrustes', mask=mask), 0, atol=1e-9)
    s_h, r_h, t_h = horn_similarity(pred[0, :10], gt[0, :10])
    np.testing.assert_allclose(pa_align(pred, gt, mask)[0], s_h * pred[0] @ r_h.T + t_h,
                               atol=1e-8)


@pytest.mark.parametrize('alignment', ['none', 'procrustes', 'scale', 'root'])
def test_agrees_with_mmpose_keypoint_mpjpe(rng, alignment):
    n, k = 6, 17
    gt = rng.normal(size=(n, k, 3))
    pred = 1.3 * gt @ rotation([1, 1, 0], 0.4).T + rng.normal(scale=0.2, size=gt.shape)
    full = np.ones((n, k), bool)
    if alignment == 'root':
        ref = keypoint_mpjpe(pred - pred[:, :1], gt - gt[:, :1], full, 'none')
        ours = mpjpe(pred, gt, 'root', root_index=0)
    else:
        ref = keypoint_mpjpe(pred, gt, full, alignment)
        ours = mpjpe(pred, gt, alignment)
    assert abs(ours.mean() - ref) < 1e-6
    if alignment == 'none':
        # partial mask: mmpose pools all visible joints -> weight our per-sample means by count
        mask = rng.random((n, k)) > 0.3
        ours = mpjpe(pred, gt, mask=mask)
        assert abs((ours * mask.sum(1)).sum() / mask.sum() - keypoint_mpjpe(pred, gt, mask)) < 1e-6


def test_torch_input_returns_numpy(rng):
    gt = rng.normal(size=(2, 5, 3))
    pred = gt + 1.0
    out = mpjpe(torch.tensor(pred, dtype=torch.float32), torch.tensor(gt), 'none',
                mask=torch.ones(2, 5, dtype=torch.bool))
    assert isinstance(out, np.ndarray) and out.shape == (2, )
    np.testing.assert_allclose(out, np.sqrt(3), rtol=1e-6)
    assert isinstance(pa_align(torch.tensor(pred), torch.tensor(gt)), np.ndarray)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(MetricInputError, match='alignment'):
        mpjpe(np.zeros((1, 2, 3)), np.zeros((1, 2, 3)), 'rigid')
    with pytest.raises(ValueError, match=r'\(N, P, 3\)'):
        mpjpe(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match='does not match'):
        mpjpe(np.zeros((1, 2, 3)), np.zeros((1, 3, 3)))
    with pytest.raises(ValueError, match='mask'):
        mpjpe(np.zeros((1, 2, 3)), np.zeros((1, 2, 3)), mask=np.ones((2, 1)))
    with pytest.raises(ValueError, match='root_index'):
        mpjpe(np.zeros((1, 2, 3)), np.zeros((1, 2, 3)), 'root', root_index=5)


def test_f_score_hand_computed():
    gt = np.array([[[0., 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 0]]])
    pred = np.array([[[0.05, 0, 0], [1.5, 0, 0], [10, 0, 0]]])
    f, p, r = f_score(pred, gt, 0.1, return_precision_recall=True)
    np.testing.assert_allclose(p, [1 / 3])
    np.testing.assert_allclose(r, [1 / 4])
    np.testing.assert_allclose(f, [2 / 7])
    f2 = f_score(pred, gt, [0.1, 0.6, 100])
    np.testing.assert_allclose(f2, [[2 / 7, 2 * (2 / 3) * (3 / 4) / (2 / 3 + 3 / 4), 1.0]])
    np.testing.assert_allclose(f_score(pred, gt, 0.01), [0.0])


def test_f_score_matches_brute_force(rng):
    gt = rng.normal(size=(3, 40, 3))
    pred = gt[:, :35] + rng.normal(scale=0.05, size=(3, 35, 3))
    for th in (0.02, 0.05, 0.1):
        f = f_score(pred, gt, th)
        for i in range(3):
            d = np.linalg.norm(pred[i][:, None] - gt[i][None], axis=-1)  # (35, 40)
            p = (d.min(1) < th).mean()
            r = (d.min(0) < th).mean()
            ref = 0.0 if p + r == 0 else 2 * p * r / (p + r)
            assert abs(f[i] - ref) < 1e-12


# ----------------------------------------------------------------------------- MeshMetric
def test_lsp14_table_matches_joint_names():
    assert [H36M_NAMES[i] for i in H36M_J17_TO_J14] == LSP_NAMES
    assert LSP_NAMES[2:4] == ['R_Hip', 'L_Hip']


def make_sample(pred_j, gt_j, pred_v=None, gt_v=None, vis=None, has_v=None, as_torch=False):
    conv = (lambda a: torch.as_tensor(a, dtype=torch.float32)) if as_torch else np.asarray
    ds = PoseDataSample()
    gt = InstanceData()
    gt.keypoints_3d = conv(gt_j[None])
    gt.keypoints_3d_visible = conv(np.ones(gt_j.shape[0]) if vis is None else vis)[None]
    pred = InstanceData()
    pred.keypoints_3d = conv(pred_j[None])
    if gt_v is not None:
        gt.vertices = conv(gt_v[None])
        gt.has_vertices = conv(np.array([1.0 if has_v is None else has_v]))
    if pred_v is not None:
        pred.vertices = conv(pred_v[None])
    ds.gt_instances = gt
    ds.pred_instances = pred
    return ds


def reference_mpjpe_mm(pred17, gt17, vis17=None):
    """METRO protocol by hand: LSP-14 by name, minus mid-hip, mean over visible joints, mm."""
    sel = [H36M_NAMES.index(name) for name in LSP_NAMES]
    p, g = pred17[:, sel], gt17[:, sel]
    p = p - (p[:, 2:3] + p[:, 3:4]) / 2
    g = g - (g[:, 2:3] + g[:, 3:4]) / 2
    mask = None if vis17 is None else vis17[:, sel]
    return 1000 * np.nanmean(loop_mean_error(p, g, mask))


@pytest.fixture
def body(rng):
    n, v = 5, 60
    gt_j = rng.normal(scale=0.3, size=(n, 17, 3))
    gt_v = rng.normal(scale=0.3, size=(n, v, 3))
    return gt_j, gt_v


def test_mesh_metric_end_to_end_known_values(body, rng):
    gt_j, gt_v = body
    n = len(gt_j)
    # pred = similarity transform of gt -> PA errors 0; MPJPE equals the by-hand METRO protocol
    r = rotation([0.2, 0.5, 1.0], 0.3)
    pred_j = 1.1 * gt_j @ r.T + 0.2
    pred_v = 1.1 * gt_v @ r.T + 0.2
    # METRO's vertex root: Human3.6M pelvis (joint 0); expected MPVE by hand
    pv = pred_v - pred_j[:, :1]
    gv = gt_v - gt_j[:, :1]
    mpve_ref = 1000 * loop_mean_error(pv, gv).mean()
    evaluator = Evaluator(MeshMetric(f_score_thresholds=(5, 15)))
    evaluator.process([make_sample(pred_j[i], gt_j[i], pred_v[i], gt_v[i]) for i in range(3)])
    evaluator.process([make_sample(pred_j[i], gt_j[i], pred_v[i], gt_v[i], as_torch=True)
                       for i in range(3, n)])
    res = evaluator.evaluate(n)
    assert set(res) == {'mpjpe', 'pa_mpjpe', 'mpve', 'pa_mpvpe', 'f@5mm', 'f@15mm'}
    assert abs(res['mpjpe'] - reference_mpjpe_mm(pred_j, gt_j)) < 1e-3  # float32 samples
    assert res['mpjpe'] > 10
    assert res['pa_mpjpe'] < 1e-3 and res['pa_mpvpe'] < 1e-3
    assert abs(res['mpve'] - mpve_ref) < 1e-3
    assert res['f@5mm'] == pytest.approx(1.0) and res['f@15mm'] == pytest.approx(1.0)


def test_mesh_metric_units_and_pelvis(body):
    gt_j, gt_v = body
    n = len(gt_j)
    # translation only -> root-aligned errors 0; 2 cm more on every vertex -> MPVE exactly 20 mm
    pred_j = gt_j + np.array([0.5, -0.1, 2.0])
    pred_v = gt_v + np.array([0.5, -0.1, 2.0]) + np.array([0.0, 0.0, 0.02])
    metric = MeshMetric()
    metric.process({}, [make_sample(pred_j[i], gt_j[i], pred_v[i], gt_v[i]) for i in range(n)])
    res = metric.evaluate(n)
    assert res['mpjpe'] == pytest.approx(0, abs=1e-9)
    assert res['mpve'] == pytest.approx(20.0, rel=1e-9)
    assert res['pa_mpvpe'] == pytest.approx(0, abs=1e-9)


def test_mesh_metric_uses_lsp14_only_and_accepts_14(body, rng):
    gt_j, gt_v = body
    n = len(gt_j)
    pred_j = gt_j + rng.normal(scale=0.02, size=gt_j.shape)
    lsp = list(H36M_J17_TO_J14)
    non_lsp = [i for i in range(17) if i not in lsp]
    assert sorted(non_lsp) == [0, 7, 9]  # pelvis, torso, nose
    garbage = pred_j.copy()
    garbage[:, non_lsp] += 5.0
    results = []
    for pj in (pred_j, garbage, pred_j[:, lsp]):
        metric = MeshMetric(use_vertices=False)
        metric.process({}, [make_sample(pj[i], gt_j[i]).to_dict() for i in range(n)])
        results.append(metric.evaluate(n))
    assert set(results[0]) == {'mpjpe', 'pa_mpjpe'}
    assert results[0]['mpjpe'] == pytest.approx(reference_mpjpe_mm(pred_j, gt_j), rel=1e-9)
    for res in results[1:]:
        assert res['mpjpe'] == pytest.approx(results[0]['mpjpe'], rel=1e-9)
        assert res['pa_mpjpe'] == pytest.approx(results[0]['pa_mpjpe'], rel=1e-9)
    # h36m17 evaluates all 17 joints relative to joint 0: the garbage now counts
    metric = MeshMetric(joint_set='h36m17', metrics=('mpjpe', ), use_vertices=False)
    metric.process({}, [make_sample(garbage[i], gt_j[i]) for i in range(n)])
    ref = 1000 * loop_mean_error(garbage - garbage[:, :1], gt_j - gt_j[:, :1]).mean()
    assert metric.evaluate(n)['mpjpe'] == pytest.approx(ref, rel=1e-9)


def test_mesh_metric_masks_and_missing_vertices(body, rng):
    gt_j, gt_v = body
    n = len(gt_j)
    pred_j = gt_j + rng.normal(scale=0.02, size=gt_j.shape)
    pred_v = gt_v + rng.normal(scale=0.02, size=gt_v.shape)
    vis = np.ones((n, 17))
    vis[0, 13] = 0  # L_Wrist of sample 0 invisible ...
    pred_j[0, 13] += 3.0  # ... and badly predicted: must not count
    vis[1, 1] = 0  # R_Hip (part of the mid-hip pelvis) invisible -> sample 1 out of MPJPE
    vis[3, 0] = 0  # Human3.6M pelvis (root of the vertices, not an LSP joint) -> 3 out of MPVE
    samples = []
    for i in range(n):
        has = 0.0 if i == 2 else 1.0
        gv = gt_v[i] if i != 2 else np.zeros_like(gt_v[i])  # no mesh ground truth for sample 2
        samples.append(make_sample(pred_j[i], gt_j[i], pred_v[i], gv, vis=vis[i], has_v=has))
    metric = MeshMetric(metrics=('mpjpe', 'mpve', 'pa_mpvpe'))
    metric.process({}, samples)
    res = metric.evaluate(n)
    keep = [i for i in range(n) if i != 1]
    assert res['mpjpe'] == pytest.approx(
        reference_mpjpe_mm(pred_j[keep], gt_j[keep], vis[keep]), rel=1e-9)
    keep_v = [0, 1, 4]  # 2: no gt vertices, 3: vertex root (H36M pelvis) invisible
    ref = 1000 * loop_mean_error(pred_v[keep_v] - pred_j[keep_v, :1],
                                 gt_v[keep_v] - gt_j[keep_v, :1]).mean()
    assert res['mpve'] == pytest.approx(ref, rel=1e-9)
    keep_pa = [0, 1, 3, 4]
    ref_pa = 1000 * np.mean([loop_mean_error(pa_align(pred_v[[i]], gt_v[[i]]), gt_v[[i]])[0]
                             for i in keep_pa])
    assert res['pa_mpvpe'] == pytest.approx(ref_pa, rel=1e-9)


def test_mesh_metric_from_config_and_registry(body):
    gt_j, gt_v = body
    with DefaultScope.overwrite_default_scope('mmpose'):
        evaluator = Evaluator(dict(type='MeshMetric', prefix='h36m', use_vertices=False))
    evaluator.process([make_sample(gt_j[i], gt_j[i]) for i in range(2)])
    res = evaluator.evaluate(2)
    assert res == {'h36m/mpjpe': pytest.approx(0, abs=1e-9),
                   'h36m/pa_mpjpe': pytest.approx(0, abs=1e-6)}


def test_mesh_metric_empty_and_bad_config():
    metric = MeshMetric()
    res = metric.compute_metrics([])
    assert set(res) == {'mpjpe', 'pa_mpjpe', 'mpve', 'pa_mpvpe'}
    assert all(np.isnan(v) for v in res.values())
    with pytest.raises(MeshMetricError, match='joint_set'):
        MeshMetric(joint_set='coco')
    with pytest.raises(ValueError, match='metrics'):
        MeshMetric(metrics=('mpjpe', 'auc'))
    with pytest.raises(ValueError, match='use_vertices'):
        MeshMetric(use_vertices=False, f_score_thresholds=(5, ))
    metric = MeshMetric()
    with pytest.raises(ValueError, match='pred_instances.vertices'):
        metric.process({}, [make_sample(np.zeros((17, 3)), np.zeros((17, 3)))])
    with pytest.raises(ValueError, match='needs 17 Human3.6M or 14 LSP'):
        MeshMetric(use_vertices=False).process(
            {}, [make_sample(np.zeros((24, 3)), np.zeros((24, 3)))])


def test_mesh_metric_explicit_vertex_roots_metro_mpve(body, rng):
    """Pred carries 17 joints + its mesh pelvis, gt 14 LSP joints + vertices already centred on their
    own pelvis (vertex_root 0), the image-path layout: MPVE subtracts exactly those roots (METRO's
    run_validate), not the LSP mid-hip; a sample without roots falls back to the mid-hip."""
    gt_j, gt_v = body
    n = len(gt_j)
    lsp = list(H36M_J17_TO_J14)
    pred_j = gt_j + rng.normal(scale=0.03, size=gt_j.shape)
    pred_v = gt_v + rng.normal(scale=0.03, size=gt_v.shape) + 0.4
    g_root = gt_j[:, 0]
    samples = []
    for i in range(n):
        ds = make_sample(pred_j[i], gt_j[i, lsp], pred_v[i], gt_v[i] - g_root[i])
        if i < n - 1:
            ds.pred_instances.vertex_root = pred_j[i:i + 1, 0]
            ds.gt_instances.vertex_root = np.zeros((1, 3))
        samples.append(ds)
    metric = MeshMetric()
    metric.process({}, samples)
    res = metric.evaluate(n)
    ref = [loop_mean_error((pred_v[i] - pred_j[i, 0])[None], (gt_v[i] - g_root[i])[None])[0]
           for i in range(n - 1)]
    # the last sample: both sides' LSP mid-hip
    p_mid = pred_j[n - 1, lsp][2:4].mean(0)
    g_mid = gt_j[n - 1, lsp][2:4].mean(0)
    ref.append(loop_mean_error((pred_v[n - 1] - p_mid)[None],
                               (gt_v[n - 1] - g_root[n - 1] - g_mid)[None])[0])
    assert res['mpve'] == pytest.approx(1000 * np.mean(ref), rel=1e-6)
    bad = make_sample(pred_j[0], gt_j[0, lsp], pred_v[0], gt_v[0])
    bad.pred_instances.vertex_root = np.zeros((1, 4))
    bad.gt_instances.vertex_root = np.zeros((1, 3))
    with pytest.raises(MeshMetricError, match='vertex_root'):
        MeshMetric().process({}, [bad])

"""MeshMetric(protocol='freihand') and evaluation/functional/freihand.py against FreiHAND's eval.py.

The reference below is written after lmb-freiburg/freihand ``eval.py`` (``align_w_scale``,
``calculate_fscore``, the per-sample loop of ``main``) and ``utils/eval_util.py`` (``EvalUtil``):
scipy, numpy and loops only, no project code. Point sets are hand-like (778 / 21 points spread
over ~10 cm) so that the F-scores and AUCs are neither all 0 nor all 1.
"""
import numpy as np
import pytest
from mmengine.structures import InstanceData
from mmpose.structures import PoseDataSample
from scipy.linalg import orthogonal_procrustes

from mmpose_mpt.evaluation import MeshMetric, MeshMetricError
from mmpose_mpt.evaluation.functional import align_w_scale, evaluate_freihand


# ----------------------------------------------------------------------------- reference (eval.py)
def ref_align_w_scale(mtx1, mtx2, fit=None):
    """eval.py's align_w_scale(gt, pred); ``fit``: optional point subset for the fit (an
    extension for masked joints; None = eval.py)."""
    a, b = (mtx1, mtx2) if fit is None else (mtx1[fit], mtx2[fit])
    t1 = a.mean(0)
    t2 = b.mean(0)
    a_t = a - t1
    b_t = b - t2
    s1 = np.linalg.norm(a_t) + 1e-8
    a_t = a_t / s1
    s2 = np.linalg.norm(b_t) + 1e-8
    b_t = b_t / s2
    R, s = orthogonal_procrustes(a_t, b_t)
    out = np.dot((mtx2 - t2) / s2, R.T) * s
    return out * s1 + t1


def ref_fscore(gt, pr, ths):
    """eval.py's calculate_fscore for each threshold, with brute-force nearest neighbours (the full
    distance matrix) instead of open3d."""
    dist = np.sqrt(((gt[:, None, :] - pr[None, :, :])**2).sum(-1))  # (gt, pred)
    d1 = dist.min(1)  # each gt point -> closest pred
    d2 = dist.min(0)  # each pred point -> closest gt
    out = []
    for th in ths:
        recall = float(sum(d < th for d in d2)) / float(len(d2))
        precision = float(sum(d < th for d in d1)) / float(len(d1))
        out.append(2 * recall * precision / (recall + precision) if recall + precision > 0 else 0.0)
    return out


class RefEvalUtil:
    """utils/eval_util.py EvalUtil: per-keypoint lists, pck with <=, np.trapz AUC."""

    def __init__(self, num_kp=21):
        self.data = [[] for _ in range(num_kp)]
        self.num_kp = num_kp

    def feed(self, gt, vis, pred):
        dist = np.sqrt(np.sum(np.square(gt - pred), axis=1))
        for i in range(gt.shape[0]):
            if vis[i]:
                self.data[i].append(dist[i])

    def get_measures(self, val_min, val_max, steps):
        thresholds = np.linspace(val_min, val_max, steps)
        norm = np.trapz(np.ones_like(thresholds), thresholds)
        means, aucs = [], []
        for k in range(self.num_kp):
            if not self.data[k]:
                continue
            data = np.array(self.data[k])
            means.append(np.mean(data))
            pck = (data[:, None] <= thresholds[None]).astype('float').mean(0)  # _get_pck per t
            aucs.append(np.trapz(pck, thresholds) / norm)
        return np.mean(means), np.mean(aucs)


def ref_eval(xyz, verts, xyz_p, verts_p, vis=None):
    """eval.py main(): the scores.txt numbers (means in cm, as there)."""
    ev = {k: RefEvalUtil(21 if k.startswith('xyz') else 778)
          for k in ('xyz', 'xyz_al', 'mesh', 'mesh_al')}
    f, f_al = [], []
    for i in range(len(xyz)):
        v = np.ones(21, bool) if vis is None else vis[i]
        ev['xyz'].feed(xyz[i], v, xyz_p[i])
        ev['mesh'].feed(verts[i], np.ones(778), verts_p[i])
        xyz_al = ref_align_w_scale(xyz[i], xyz_p[i], None if v.all() else v)
        verts_al = ref_align_w_scale(verts[i], verts_p[i])
        ev['xyz_al'].feed(xyz[i], v, xyz_al)
        ev['mesh_al'].feed(verts[i], np.ones(778), verts_al)
        f.append(ref_fscore(verts[i], verts_p[i], (0.005, 0.015)))
        f_al.append(ref_fscore(verts[i], verts_al, (0.005, 0.015)))
    out = {}
    for k, e in ev.items():
        mean, auc = e.get_measures(0.0, 0.05, 100)
        out[f'{k}_mean3d'] = mean * 100
        out[f'{k}_auc3d'] = auc
    f, f_al = np.mean(f, 0), np.mean(f_al, 0)
    out.update(f_score_5=f[0], f_al_score_5=f_al[0], f_score_15=f[1], f_al_score_15=f_al[1])
    return out


def as_mesh_metric_keys(ref):
    """scores.txt -> MeshMetric(protocol='freihand') names (cm -> mm)."""
    return {'mpjpe': ref['xyz_mean3d'] * 10, 'pa_mpjpe': ref['xyz_al_mean3d'] * 10,
            'mpve': ref['mesh_mean3d'] * 10, 'pa_mpvpe': ref['mesh_al_mean3d'] * 10,
            'mpjpe_auc': ref['xyz_auc3d'], 'pa_mpjpe_auc': ref['xyz_al_auc3d'],
            'mpve_auc': ref['mesh_auc3d'], 'pa_mpvpe_auc': ref['mesh_al_auc3d'],
            'f@5mm': ref['f_al_score_5'], 'f@15mm': ref['f_al_score_15'],
            'f@5mm_unaligned': ref['f_score_5'], 'f@15mm_unaligned': ref['f_score_15']}


# ----------------------------------------------------------------------------- data
def rot(axis, angle):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


@pytest.fixture(scope='module')
def gt():
    """5 hands: 778 vertices / 21 joints in a ~10 cm blob, 0.5 m in front of the camera."""
    rng = np.random.default_rng(0)
    n = 5
    verts = rng.normal(size=(n, 778, 3)) * [0.04, 0.025, 0.015] + [0, 0, 0.5]
    joints = rng.normal(size=(n, 21, 3)) * [0.035, 0.02, 0.012] + [0, 0, 0.5]
    return joints, verts


def near_correct(gt_j, gt_v, rng, noise=0.003):
    """similarity transform of gt + a few mm of noise (different for joints and vertices)."""
    r = rot([0.3, -0.2, 1.0], 0.4)
    pj = 0.9 * gt_j @ r.T + [0.01, -0.02, 0.03] + rng.normal(scale=noise, size=gt_j.shape)
    pv = 0.9 * gt_v @ r.T + [0.01, -0.02, 0.03] + rng.normal(scale=noise, size=gt_v.shape)
    return pj, pv


def sample(pj, gj, pv=None, gv=None, vis=None, has_v=1.0):
    ds = PoseDataSample()
    g = InstanceData()
    g.keypoints_3d = gj[None]
    if vis is not None:
        g.keypoints_3d_visible = vis[None].astype(np.float64)
    p = InstanceData()
    p.keypoints_3d = pj[None]
    if gv is not None:
        g.vertices = gv[None]
        g.has_vertices = np.array([has_v])
        p.vertices = pv[None]
    ds.gt_instances, ds.pred_instances = g, p
    return ds


def run_metric(metric, pj, gj, pv=None, gv=None, vis=None, batch=2):
    n = len(pj)
    for s in range(0, n, batch):
        metric.process({}, [sample(pj[i], gj[i], None if pv is None else pv[i],
                                   None if gv is None else gv[i], None if vis is None else vis[i])
                            for i in range(s, min(n, s + batch))])
    return metric.evaluate(n)


def fh_metric(**kw):
    return MeshMetric(joint_set='mano21', protocol='freihand', f_score_thresholds=(5, 15), **kw)


def assert_matches(res, ref, tol=1e-9):
    exp = as_mesh_metric_keys(ref)
    assert set(res) == set(exp)
    for k, v in exp.items():
        assert res[k] == pytest.approx(v, abs=tol, rel=tol), k


# ----------------------------------------------------------------------------- tests
def test_random_predictions_match_eval_py(gt):
    gj, gv = gt
    rng = np.random.default_rng(1)
    # independent random hands: large errors, but nonzero F@15mm / AUC after alignment
    pj = rng.normal(size=gj.shape) * [0.035, 0.02, 0.012] + [0.02, 0, 0.45]
    pv = rng.normal(size=gv.shape) * [0.04, 0.025, 0.015] + [0.02, 0, 0.45]
    ref = ref_eval(gj, gv, pj, pv)
    assert 0 < ref['f_al_score_15'] < 1 and 0 < ref['xyz_al_auc3d'] < 1
    assert_matches(run_metric(fh_metric(), pj, gj, pv, gv), ref)


def test_near_correct_predictions_match_eval_py(gt):
    gj, gv = gt
    pj, pv = near_correct(gj, gv, np.random.default_rng(2))
    ref = ref_eval(gj, gv, pj, pv)
    assert 0.2 < ref['f_al_score_5'] < 0.99 and ref['f_al_score_15'] > 0.95
    res = run_metric(fh_metric(), pj, gj, pv, gv)
    assert_matches(res, ref)
    # PA errors of a few mm; unaligned errors (translation 3.7 cm + scale) far larger
    assert 2 < res['pa_mpjpe'] < 8 and 2 < res['pa_mpvpe'] < 8 and res['mpjpe'] > 30
    # the functional scorer returns eval.py's scores.txt dict
    fh = evaluate_freihand(gj, gv, pj, pv)
    assert set(fh) == set(ref)
    for k in ref:
        assert fh[k] == pytest.approx(ref[k], abs=1e-12), k


def test_reflected_prediction_freihand_admits_reflection_metro_does_not(gt):
    """A mirrored hand: eval.py's orthogonal Procrustes maps it back (reflection), the body
    protocol's det-fixed Procrustes cannot -- the two PA numbers differ, and each is right."""
    gj, gv = gt
    rng = np.random.default_rng(3)
    mirror = np.diag([-1.0, 1.0, 1.0])
    pj = gj @ mirror + rng.normal(scale=0.001, size=gj.shape)
    pv = gv @ mirror + rng.normal(scale=0.001, size=gv.shape)
    ref = ref_eval(gj, gv, pj, pv)
    res = run_metric(fh_metric(), pj, gj, pv, gv)
    assert_matches(res, ref)
    assert res['pa_mpjpe'] < 2.5 and res['pa_mpvpe'] < 2.5 and res['f@15mm'] > 0.99
    metro = run_metric(MeshMetric(joint_set='mano21', f_score_thresholds=(5, 15)), pj, gj, pv, gv)
    assert metro['pa_mpjpe'] > 5 * res['pa_mpjpe'] and metro['pa_mpvpe'] > 5 * res['pa_mpvpe']
    assert metro['f@5mm'] < res['f@5mm']
    # and the scipy rotation really is a reflection there
    _, (r, *_rest) = align_w_scale(gv[0], pv[0], return_trafo=True)
    assert np.linalg.det(r) < 0


def test_body_protocol_unchanged(gt):
    """protocol='metro' (default): wrist-relative MPJPE / MPVE, det-fixed similarity Procrustes
    (checked against a rotation-only solution by Horn's quaternions), F-score of those aligned
    vertices; no FreiHAND keys."""
    gj, gv = gt
    pj, pv = near_correct(gj, gv, np.random.default_rng(4), noise=0.005)
    res = run_metric(MeshMetric(joint_set='mano21', f_score_thresholds=(5, )), pj, gj, pv, gv)
    assert set(res) == {'mpjpe', 'pa_mpjpe', 'mpve', 'pa_mpvpe', 'f@5mm'}
    assert MeshMetric().protocol == 'metro'

    def horn(x, y):  # s, R (det +1), t minimising |s R x + t - y|
        mx, my = x.mean(0), y.mean(0)
        m = (x - mx).T @ (y - my)
        (sxx, sxy, sxz), (syx, syy, syz), (szx, szy, szz) = m
        q = np.linalg.eigh(np.array([
            [sxx + syy + szz, syz - szy, szx - sxz, sxy - syx],
            [syz - szy, sxx - syy - szz, sxy + syx, szx + sxz],
            [szx - sxz, sxy + syx, -sxx + syy - szz, syz + szy],
            [sxy - syx, szx + sxz, syz + szy, -sxx - syy + szz]]))[1][:, -1]
        a, b, c, d = q
        r = np.array([[a*a + b*b - c*c - d*d, 2*(b*c - a*d), 2*(b*d + a*c)],
                      [2*(b*c + a*d), a*a - b*b + c*c - d*d, 2*(c*d - a*b)],
                      [2*(b*d - a*c), 2*(c*d + a*b), a*a - b*b - c*c + d*d]])
        s = np.sum((y - my) * ((x - mx) @ r.T)) / np.sum((x - mx)**2)
        return s * x @ r.T + my - s * r @ mx

    def err(p, g):
        return np.mean([np.linalg.norm(a - b) for a, b in zip(p, g)])

    exp_mpjpe = 1000 * np.mean([err(pj[i] - pj[i, 0], gj[i] - gj[i, 0]) for i in range(len(gj))])
    exp_mpve = 1000 * np.mean([err(pv[i] - pj[i, 0], gv[i] - gj[i, 0]) for i in range(len(gj))])
    exp_pa = 1000 * np.mean([err(horn(pj[i], gj[i]), gj[i]) for i in range(len(gj))])
    al = [horn(pv[i], gv[i]) for i in range(len(gv))]
    exp_pav = 1000 * np.mean([err(al[i], gv[i]) for i in range(len(gv))])
    exp_f5 = np.mean([ref_fscore(gv[i], al[i], (0.005, ))[0] for i in range(len(gv))])
    assert res['mpjpe'] == pytest.approx(exp_mpjpe, rel=1e-9)
    assert res['mpve'] == pytest.approx(exp_mpve, rel=1e-9)
    assert res['pa_mpjpe'] == pytest.approx(exp_pa, rel=1e-7)
    assert res['pa_mpvpe'] == pytest.approx(exp_pav, rel=1e-7)
    assert res['f@5mm'] == pytest.approx(exp_f5, abs=1e-12)


def test_alignment_is_eval_py_bit_for_bit(gt):
    gj, gv = gt
    pj, pv = near_correct(gj, gv, np.random.default_rng(5))
    for i in range(len(gj)):
        np.testing.assert_array_equal(align_w_scale(gv[i], pv[i]), ref_align_w_scale(gv[i], pv[i]))
        np.testing.assert_array_equal(align_w_scale(gj[i], pj[i]), ref_align_w_scale(gj[i], pj[i]))


def test_masked_joints_averaged_per_keypoint_as_eval_util(gt):
    """Invisible gt joints leave the per-keypoint means (EvalUtil.feed's keypoint_vis) and the fit."""
    gj, gv = gt
    pj, pv = near_correct(gj, gv, np.random.default_rng(6))
    vis = np.ones((len(gj), 21), bool)
    vis[0, 3] = vis[1, 3] = vis[2, 7] = False
    vis[3, :] = False                        # a sample without visible joints: out of the joints
    pj = pj.copy()
    pj[0, 3] += 0.5                          # garbage where invisible: must not matter
    ref = ref_eval(np.delete(gj, 3, 0), np.delete(gv, 3, 0), np.delete(pj, 3, 0),
                   np.delete(pv, 3, 0), np.delete(vis, 3, 0))
    ref_all = ref_eval(gj, gv, pj, pv)       # vertices use every sample
    for k in ('mesh_mean3d', 'mesh_al_mean3d', 'mesh_auc3d', 'mesh_al_auc3d', 'f_score_5',
              'f_al_score_5', 'f_score_15', 'f_al_score_15'):
        ref[k] = ref_all[k]
    res = run_metric(fh_metric(), pj, gj, pv, gv, vis=vis.astype(float))
    assert_matches(res, ref)
    assert res['pa_mpjpe'] < 8


def test_samples_without_vertices_and_joint_only(gt):
    gj, gv = gt
    pj, pv = near_correct(gj, gv, np.random.default_rng(7))
    metric = fh_metric()
    metric.process({}, [sample(pj[i], gj[i], pv[i], gv[i], has_v=float(i != 1)) for i in range(5)])
    res = metric.evaluate(5)
    keep = [0, 2, 3, 4]
    ref = ref_eval(gj, gv, pj, pv)
    ref_v = ref_eval(gj[keep], gv[keep], pj[keep], pv[keep])
    for k in ('mesh_mean3d', 'mesh_al_mean3d', 'mesh_auc3d', 'mesh_al_auc3d', 'f_score_5',
              'f_al_score_5', 'f_score_15', 'f_al_score_15'):
        ref[k] = ref_v[k]
    assert_matches(res, ref)
    joints_only = MeshMetric(joint_set='mano21', protocol='freihand', metrics=('pa_mpjpe', ),
                             use_vertices=False)
    res = run_metric(joints_only, pj, gj)
    assert set(res) == {'pa_mpjpe', 'pa_mpjpe_auc'}
    assert res['pa_mpjpe'] == pytest.approx(ref['xyz_al_mean3d'] * 10, rel=1e-9)


def test_bad_configuration():
    with pytest.raises(MeshMetricError, match='protocol'):
        MeshMetric(joint_set='mano21', protocol='frei')
    with pytest.raises(MeshMetricError, match='mano21'):
        MeshMetric(protocol='freihand')
    metric = MeshMetric(joint_set='mano21', protocol='freihand', use_vertices=False)
    rng = np.random.default_rng(8)
    with pytest.raises(MeshMetricError, match='21 joints'):
        metric.process({}, [sample(rng.normal(size=(17, 3)), rng.normal(size=(17, 3)))])


def test_strict_fscore_and_inclusive_pck_thresholds():
    """F-scores count d < th (eval.py), PCK counts d <= t (EvalUtil): exact boundary cases."""
    from mmpose_mpt.evaluation.functional import calculate_fscore
    gv = np.zeros((778, 3))
    gv[:, 0] = np.arange(778) * 0.1  # points 10 cm apart: the nearest neighbour is the moved copy
    gj = gv[:21].copy()
    step = 2.0**-8  # 3.90625 mm, exact in binary (and so is its square and its root)
    pv = gv + [0.0, step, 0.0]
    assert calculate_fscore(gv, pv, step)[0] == 0.0
    assert calculate_fscore(gv, pv, np.nextafter(step, 1))[0] == 1.0
    metric = MeshMetric(joint_set='mano21', protocol='freihand', f_score_thresholds=(3.90625, 4.0))
    res = run_metric(metric, gj[None], gj[None], pv[None], gv[None])
    assert res['f@3.90625mm_unaligned'] == 0.0 and res['f@4mm_unaligned'] == 1.0
    assert res['mpjpe'] == 0.0 and res['mpjpe_auc'] == 1.0  # d = 0 counts at t = 0
    assert res['mpve'] == pytest.approx(3.90625, abs=1e-12)
    t = np.linspace(0, 0.05, 100)
    assert res['mpve_auc'] == pytest.approx(np.trapz((t >= step).astype(float), t) / 0.05, abs=1e-12)

"""FreiHAND's official evaluation (lmb-freiburg/freihand ``eval.py`` + ``utils/eval_util.py``).

What the Codalab scorer does, per evaluation sample (ground truth ``xyz`` (21, 3) / ``verts``
(778, 3), prediction ``xyz_p`` / ``verts_p``, all metres):

* unaligned errors: the Euclidean distance of every keypoint / vertex as given (no root
  alignment);
* aligned errors: :func:`align_w_scale` of the prediction onto the ground truth -- joints on joints,
  vertices on vertices, *separately* (each with its own similarity transform);
* F-scores on the vertices only, unaligned and aligned, at 5 mm and 15 mm, strict ``<``
  (:func:`calculate_fscore`), then averaged over samples;
* ``EvalUtil.get_measures(0.0, 0.05, 100)``: per keypoint (resp. vertex) the mean error over the
  samples where it is visible and the AUC of its PCK curve (``d <= t``, 100 thresholds
  ``np.linspace(0, 0.05, 100)`` metres = 0-50 mm, trapezoidal rule, normalised by the range);
  the reported mean / AUC are the averages over keypoints (resp. vertices).

``scores.txt`` then has ``xyz_mean3d``, ``xyz_auc3d``, ``xyz_al_mean3d``, ``xyz_al_auc3d``,
``mesh_mean3d``, ``mesh_auc3d``, ``mesh_al_mean3d``, ``mesh_al_auc3d`` (means in **cm**) and
``f_score_5``, ``f_al_score_5``, ``f_score_15``, ``f_al_score_15``; :func:`evaluate_freihand`
returns exactly that dict. The paper numbers (MPT Table 6, METRO) are the aligned ones:
PA-MPJPE = ``xyz_al_mean3d`` x 10 mm, PA-MPVPE = ``mesh_al_mean3d`` x 10 mm,
F@5 / F@15 = ``f_al_score_5`` / ``f_al_score_15``.

Not reproduced: eval.py's branch for predictions with another vertex count than MANO's 778 (it
aligns those vertices with the joints' transform through ``align_by_trafo``, which drops the
prediction's 1/s2 normalisation); here the vertex counts must match.

Point sets are numpy arrays or torch tensors (converted to float64 numpy).
"""
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np

from .mpjpe import ArrayLike, MetricInputError, to_numpy

# eval.py: f_threshs = [0.005, 0.015]; EvalUtil.get_measures(0.0, 0.05, 100)
FREIHAND_F_THRESHOLDS = (0.005, 0.015)  # metres
FREIHAND_AUC_RANGE = (0.0, 0.05)  # metres: PCK thresholds 0-50 mm
FREIHAND_AUC_STEPS = 100

_trapz = getattr(np, 'trapezoid', None) or np.trapz  # numpy 2 renamed trapz


def _points(x: ArrayLike, name: str) -> np.ndarray:
    arr = to_numpy(x, name)
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] == 0:
        raise MetricInputError(f'freihand.py: {name} must have shape (P, 3) with P > 0, got {arr.shape}')
    return arr


def align_w_scale(gt: ArrayLike,
                  pred: ArrayLike,
                  mask: Optional[ArrayLike] = None,
                  return_trafo: bool = False):
    """FreiHAND's ``align_w_scale(mtx1=gt, mtx2=pred)``: similarity alignment of ``pred`` onto ``gt``.

    Both sets are centred and scaled to unit Frobenius norm (``+ 1e-8``), then
    ``R, s = scipy.linalg.orthogonal_procrustes(gt_n, pred_n)`` (``R`` minimises
    ``|gt_n R - pred_n|``; any orthogonal matrix, **reflections included**, unlike the det-fixed
    Procrustes of :func:`~mmpose_mpt.evaluation.functional.pa_align`) and
    ``aligned = pred_n @ R.T * s * s1 + t1``.

    Args:
        gt: (P, 3) ground-truth points (metres).
        pred: (P, 3) predicted points.
        mask: optional (P,) points the transform is fitted on (all points are transformed). eval.py
            always fits on all points; with ``mask`` None or all true this is exactly eval.py.
        return_trafo: also return ``(R (3, 3), s, s1, s2, t1 (3,), t2 (3,))``.

    Returns:
        np.ndarray: (P, 3) aligned prediction (float64); plus the transform if ``return_trafo``.
    """
    from scipy.linalg import orthogonal_procrustes
    gt = _points(gt, 'gt')
    pred = _points(pred, 'pred')
    if gt.shape != pred.shape:
        raise MetricInputError(f'freihand.py: gt {gt.shape} and pred {pred.shape} differ in shape')
    if mask is None:
        g, p = gt, pred
    else:
        m = to_numpy(mask, 'mask').reshape(-1) > 0
        if m.shape != (gt.shape[0], ):
            raise MetricInputError(f'freihand.py: mask must have shape ({gt.shape[0]},), got {m.shape}')
        if not m.any():
            raise MetricInputError('freihand.py: align_w_scale needs at least one masked-in point')
        g, p = gt[m], pred[m]
    # the same operations in the same order as eval.py, so the result is bit-identical there
    t1 = g.mean(0)
    t2 = p.mean(0)
    g_t = g - t1
    p_t = p - t2
    s1 = np.linalg.norm(g_t) + 1e-8
    g_t /= s1
    s2 = np.linalg.norm(p_t) + 1e-8
    p_t /= s2
    r, s = orthogonal_procrustes(g_t, p_t)
    out = (pred - t2) / s2
    out = np.dot(out, r.T) * s
    out = out * s1 + t1
    if return_trafo:
        return out, (r, s, s1, s2, t1, t2)
    return out


def point_distances(gt: ArrayLike, pred: ArrayLike) -> np.ndarray:
    """``EvalUtil.feed``'s per-point error ``sqrt(sum((gt - pred)**2, axis=-1))``: (..., P, 3) -> (..., P)."""
    gt = to_numpy(gt, 'gt')
    pred = to_numpy(pred, 'pred')
    if gt.shape != pred.shape or gt.shape[-1] != 3:
        raise MetricInputError(f'freihand.py: gt {gt.shape} and pred {pred.shape} must be equal (..., P, 3)')
    return np.sqrt(np.sum(np.square(gt - pred), axis=-1))


def auc_thresholds(val_min: float = FREIHAND_AUC_RANGE[0], val_max: float = FREIHAND_AUC_RANGE[1],
                   steps: int = FREIHAND_AUC_STEPS) -> np.ndarray:
    """``EvalUtil.get_measures``' thresholds: ``np.linspace(val_min, val_max, steps)`` (metres)."""
    return np.linspace(val_min, val_max, steps)


def pck_auc(distances: ArrayLike, thresholds: Optional[np.ndarray] = None) -> np.ndarray:
    """Area under the PCK curve of single distances: ``trapz(d <= t, t) / trapz(1, t)``.

    The AUC of a point over a set of samples is the mean of these values over the samples
    (PCK is a mean of indicators, and the trapezoidal rule is linear), which is how
    :class:`~mmpose_mpt.evaluation.MeshMetric` accumulates it sample by sample.

    Args:
        distances: (...) distances in metres.
        thresholds: (T,) increasing thresholds; default :func:`auc_thresholds` (0-50 mm, 100 steps).

    Returns:
        np.ndarray: (...) values in [0, 1].
    """
    t = auc_thresholds() if thresholds is None else np.asarray(thresholds, np.float64)
    d = to_numpy(distances, 'distances')
    pck = (d[..., None] <= t).astype(np.float64)  # eval_util._get_pck: data <= threshold
    return _trapz(pck, t, axis=-1) / _trapz(np.ones_like(t), t)


def calculate_fscore(gt: ArrayLike, pred: ArrayLike,
                     threshold: Union[float, Sequence[float]]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """eval.py's ``calculate_fscore(gt, pr, th)`` (open3d point-cloud distances = nearest-neighbour
    Euclidean distances, here by ``scipy.spatial.cKDTree``).

    ``precision = mean(d(gt -> pred) < th)``, ``recall = mean(d(pred -> gt) < th)`` (eval.py's names),
    ``F = 2 P R / (P + R)``, 0 when ``P + R = 0``; strict ``<``.

    Args:
        gt: (Q, 3) ground-truth vertices; pred: (P, 3) predicted vertices (metres).
        threshold: a distance or a sequence of T distances (metres).

    Returns:
        (f, precision, recall): floats for a scalar threshold, (T,) arrays for a sequence.
    """
    from scipy.spatial import cKDTree
    gt = _points(gt, 'gt')
    pred = _points(pred, 'pred')
    scalar = np.ndim(threshold) == 0
    th = np.atleast_1d(np.asarray(threshold, np.float64))
    d1 = cKDTree(pred).query(gt, k=1)[0]  # closest distance for each gt point
    d2 = cKDTree(gt).query(pred, k=1)[0]  # closest distance for each predicted point
    recall = (d2[:, None] < th).mean(axis=0)
    precision = (d1[:, None] < th).mean(axis=0)
    denom = recall + precision
    f = np.divide(2 * recall * precision, denom, out=np.zeros_like(denom), where=denom > 0)
    if scalar:
        return f[0], precision[0], recall[0]
    return f, precision, recall


def evaluate_freihand(xyz_gt: ArrayLike, verts_gt: ArrayLike, xyz_pred: ArrayLike,
                      verts_pred: ArrayLike) -> Dict[str, float]:
    """eval.py's ``main`` on arrays: the ``scores.txt`` values of a whole submission.

    Args:
        xyz_gt, xyz_pred: (N, 21, 3) keypoints, metres (``evaluation_xyz.json`` / ``pred.json[0]``).
        verts_gt, verts_pred: (N, 778, 3) MANO vertices, metres (``evaluation_verts.json`` /
            ``pred.json[1]``).

    Returns:
        dict with eval.py's keys: ``xyz_mean3d``, ``xyz_al_mean3d``, ``mesh_mean3d``,
        ``mesh_al_mean3d`` (cm, as scores.txt), ``xyz_auc3d``, ``xyz_al_auc3d``, ``mesh_auc3d``,
        ``mesh_al_auc3d`` (0-50 mm), ``f_score_5``, ``f_al_score_5``, ``f_score_15``,
        ``f_al_score_15``.
    """
    xyz_gt, xyz_pred = to_numpy(xyz_gt, 'xyz_gt'), to_numpy(xyz_pred, 'xyz_pred')
    verts_gt, verts_pred = to_numpy(verts_gt, 'verts_gt'), to_numpy(verts_pred, 'verts_pred')
    n = len(xyz_gt)
    if not (xyz_gt.shape == xyz_pred.shape and xyz_gt.ndim == 3 and verts_gt.shape == verts_pred.shape
            and verts_gt.ndim == 3 and len(verts_gt) == n and n > 0):
        raise MetricInputError(
            f'freihand.py: expected xyz (N, 21, 3) and verts (N, 778, 3) of equal N on both sides, got '
            f'xyz gt {xyz_gt.shape} / pred {xyz_pred.shape}, verts gt {verts_gt.shape} / pred '
            f'{verts_pred.shape}')
    d = {k: [] for k in ('xyz', 'xyz_al', 'mesh', 'mesh_al')}
    f, f_al = [], []
    for i in range(n):
        d['xyz'].append(point_distances(xyz_gt[i], xyz_pred[i]))
        d['mesh'].append(point_distances(verts_gt[i], verts_pred[i]))
        xyz_al = align_w_scale(xyz_gt[i], xyz_pred[i])
        verts_al = align_w_scale(verts_gt[i], verts_pred[i])
        d['xyz_al'].append(point_distances(xyz_gt[i], xyz_al))
        d['mesh_al'].append(point_distances(verts_gt[i], verts_al))
        f.append(calculate_fscore(verts_gt[i], verts_pred[i], FREIHAND_F_THRESHOLDS)[0])
        f_al.append(calculate_fscore(verts_gt[i], verts_al, FREIHAND_F_THRESHOLDS)[0])
    out: Dict[str, float] = {}
    for key in ('xyz', 'xyz_al', 'mesh', 'mesh_al'):
        dist = np.stack(d[key])  # (N, P): all points visible, as eval.py feeds them
        out[f'{key}_mean3d'] = float(dist.mean(axis=0).mean() * 100.0)  # cm, as scores.txt
        out[f'{key}_auc3d'] = float(pck_auc(dist).mean(axis=0).mean())
    f, f_al = np.mean(f, axis=0), np.mean(f_al, axis=0)
    for k, t in enumerate(FREIHAND_F_THRESHOLDS):
        out[f'f_score_{round(t * 1000)}'] = float(f[k])
        out[f'f_al_score_{round(t * 1000)}'] = float(f_al[k])
    return out

"""MeshMetric: MPJPE, PA-MPJPE, MPVE, PA-MPVPE (and F@k mm) for human / hand mesh recovery.

The protocol follows METRO (which MPT uses for Human3.6M / 3DPW):

* evaluation joints: LSP-14. Predictions or ground truth with 17 Human3.6M joints are reduced with
  ``H36M_J17_TO_J14``; 14 joints are used as they are;
* MPJPE: pred and gt each minus its own pelvis, the mid-hip of LSP-14 (mean of right hip 2 and left
  hip 3);
* PA-MPJPE: Procrustes (scale, rotation, translation) of pred joints onto gt joints;
* MPVE: vertices each minus its own pelvis: the ``vertex_root`` both sides carry (METRO: the
  Human3.6M pelvis regressed from each mesh; :class:`MeshEstimator` and the data preprocessors fill
  it), else the Human3.6M pelvis (joint 0) when both sides carry the 17 Human3.6M joints, else the
  LSP-14 mid-hip;
* PA-MPVPE: Procrustes of pred vertices onto gt vertices (FreiHAND);
* F@k mm: F-score of the Procrustes-aligned vertex sets (FreiHAND).

``protocol='freihand'`` (with ``joint_set='mano21'``) instead reproduces FreiHAND's official scorer
(lmb-freiburg/freihand ``eval.py``, see :mod:`~mmpose_mpt.evaluation.functional.freihand`): no root
alignment for MPJPE / MPVE (eval.py's unaligned ``xyz_mean3d`` / ``mesh_mean3d``: meaningful only for
camera-frame predictions), per-sample similarity alignment by eval.py's ``align_w_scale``
(``scipy.linalg.orthogonal_procrustes``, reflections admitted) of joints on joints and of vertices on
vertices separately for PA-MPJPE / PA-MPVPE, F@k mm on vertices (strict ``<``, averaged over
samples) of the aligned (``f@5mm``) and of the unaligned (``f@5mm_unaligned``) prediction, and the
AUCs eval.py reports (``<metric>_auc``: PCK ``d <= t`` at ``np.linspace(0, 50 mm, 100)``, area
normalised to [0, 1], averaged over keypoints / vertices). Joint means and AUCs are averaged per
keypoint over the samples where it is visible, then over keypoints (eval.py's ``EvalUtil``).

Inputs are metres, reported errors millimetres (F-scores are fractions in [0, 1]). Per-sample errors
are computed in :meth:`MeshMetric.process` (so whole meshes are never kept for the whole test set)
and averaged over samples in :meth:`MeshMetric.compute_metrics`.
"""
import logging
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmpose.registry import METRICS

from ..body_models.joint_regressors import H36M_J17_TO_J14  # METRO's LSP-14 from H36M-17
from .functional.freihand import align_w_scale, calculate_fscore, pck_auc, point_distances
from .functional.mpjpe import MetricInputError, f_score, mpjpe, pa_align, to_numpy

H36M_PELVIS_INDEX = 0
LSP14_PELVIS_INDICES = (2, 3)  # right hip, left hip: their mean is METRO's pelvis

METRES_TO_MM = 1000.0
JOINT_SETS = ('lsp14', 'h36m17', 'mano21')
ERROR_METRICS = ('mpjpe', 'pa_mpjpe', 'mpve', 'pa_mpvpe')
VERTEX_METRICS = ('mpve', 'pa_mpvpe')
VERTEX_ROOTS = ('auto', 'none')
PROTOCOLS = ('metro', 'freihand')


class MeshMetricError(MetricInputError):
    """Raised by MeshMetric for a bad configuration or data samples lacking required fields."""


def _get(container: Any, key: str, default: Any = None) -> Any:
    """``container[key]`` for dicts and mmengine data elements (both have ``.get``)."""
    if container is None:
        return default
    getter = getattr(container, 'get', None)
    if getter is None:
        raise MeshMetricError(
            f'mesh_metric.py: expected a dict or a data element, got {type(container).__name__}')
    return getter(key, default)


def _format_threshold(th: float) -> str:
    return f'f@{th:g}mm'


@METRICS.register_module()
class MeshMetric(BaseMetric):
    """Mesh recovery errors in millimetres: MPJPE, PA-MPJPE, MPVE, PA-MPVPE, F@k mm.

    Each data sample (a ``PoseDataSample`` or its ``to_dict()``) must hold

    * ``pred_instances.keypoints_3d``: (n, J, 3) or (J, 3) metres;
    * ``pred_instances.vertices``: (n, V, 3) or (V, 3) metres (vertex metrics only);
    * ``gt_instances.keypoints_3d``: (n, J, 3) (or (n, J, 4) with the visibility last) metres;
    * optional ``gt_instances.keypoints_3d_visible`` (n, J) (0 = ignore the joint; default all 1);
    * ``gt_instances.vertices`` (n, V, 3) metres and ``gt_instances.has_vertices`` (n,) (default 1
      if vertices are present, else 0). A sample without gt vertices is left out of the vertex
      metrics;
    * optional ``pred_instances.vertex_root`` / ``gt_instances.vertex_root`` (n, 3) metres: the point
      each side's vertices are centred on for MPVE (used when both sides have it).

    Values may be numpy arrays or torch tensors (any device/dtype). ``n`` is the number of instances
    (1 in this project); pred and gt must have the same ``n``.

    Joint sets: ``'lsp14'`` (METRO; J = 17 Human3.6M joints are reduced to LSP-14, J = 14 is used as
    is; root = mid-hip), ``'h36m17'`` (J = 17; root = pelvis, joint 0), ``'mano21'`` (J = 21 hand
    joints; root = wrist, joint 0). Masked-out gt joints are excluded from the averages and from the
    Procrustes fit; a sample whose gt root joint(s) are masked is left out of MPJPE (and of MPVE
    when ``vertex_root='auto'``).

    Args:
        joint_set: evaluation joint set, see above.
        metrics: subset of ``('mpjpe', 'pa_mpjpe', 'mpve', 'pa_mpvpe')``.
        use_vertices: compute the vertex metrics (``mpve``, ``pa_mpvpe``, F-scores); when False
            those are skipped and vertices are not read.
        vertex_root: ``'auto'``: vertices are root-aligned before MPVE with the pelvis described
            in the module docstring; ``'none'``: used as given (already root-relative).
        f_score_thresholds: F-score thresholds in millimetres (e.g. ``(5, 15)`` for FreiHAND),
            reported as ``'f@5mm'`` ...; needs ``use_vertices``.
        protocol: ``'metro'`` (default; the body protocol above) or ``'freihand'`` (FreiHAND's
            eval.py, see the module docstring; needs ``joint_set='mano21'``; ``vertex_root`` is
            not used). It adds ``'<metric>_auc'`` for every metric and ``'f@5mm_unaligned'`` ...
            for every threshold; pred and gt vertices must both be the 778 MANO vertices.
        collect_device, prefix: see :class:`mmengine.evaluator.BaseMetric`.

    ``compute_metrics`` returns ``{'mpjpe': float, 'pa_mpjpe': ..., 'mpve': ..., 'pa_mpvpe': ...,
    'f@5mm': ...}``: the mean over samples of the per-sample mean error (mm). A metric with no valid
    sample is NaN and a warning says why.
    """

    default_prefix: Optional[str] = None

    def __init__(self,
                 joint_set: str = 'lsp14',
                 metrics: Sequence[str] = ERROR_METRICS,
                 use_vertices: bool = True,
                 vertex_root: str = 'auto',
                 f_score_thresholds: Sequence[float] = (),
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 protocol: str = 'metro') -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if protocol not in PROTOCOLS:
            raise MeshMetricError(
                f'mesh_metric.py: protocol must be one of {PROTOCOLS}, got {protocol!r}')
        if protocol == 'freihand' and joint_set != 'mano21':
            raise MeshMetricError(
                f'mesh_metric.py: protocol="freihand" evaluates the 21 FreiHAND hand joints: it '
                f'needs joint_set="mano21", got {joint_set!r}')
        self.protocol = protocol
        if joint_set not in JOINT_SETS:
            raise MeshMetricError(
                f'mesh_metric.py: joint_set must be one of {JOINT_SETS}, got {joint_set!r}')
        if isinstance(metrics, str):
            metrics = (metrics, )
        unknown = [m for m in metrics if m not in ERROR_METRICS]
        if unknown or not metrics:
            raise MeshMetricError(
                f'mesh_metric.py: metrics must be a non-empty subset of {ERROR_METRICS}, '
                f'got {tuple(metrics)}')
        if vertex_root not in VERTEX_ROOTS:
            raise MeshMetricError(
                f'mesh_metric.py: vertex_root must be one of {VERTEX_ROOTS}, got {vertex_root!r}')
        thresholds = tuple(float(t) for t in f_score_thresholds)
        if any(t <= 0 for t in thresholds):
            raise MeshMetricError(
                f'mesh_metric.py: f_score_thresholds must be positive (mm), got {thresholds}')
        if thresholds and not use_vertices:
            raise MeshMetricError(
                'mesh_metric.py: f_score_thresholds need use_vertices=True (F-scores use vertices)')
        self.joint_set = joint_set
        self.use_vertices = bool(use_vertices)
        self.metrics = tuple(m for m in metrics if self.use_vertices or m not in VERTEX_METRICS)
        self.vertex_root = vertex_root
        self.f_score_thresholds = thresholds
        self._need_vertices = self.use_vertices and (
            any(m in VERTEX_METRICS for m in self.metrics) or bool(thresholds))

    # ------------------------------------------------------------------ helpers
    @property
    def result_keys(self) -> Tuple[str, ...]:
        """Names of the reported values (without prefix)."""
        if self.protocol == 'freihand':
            return (self.metrics + tuple(f'{m}_auc' for m in self.metrics) +
                    tuple(_format_threshold(t) for t in self.f_score_thresholds) +
                    tuple(f'{_format_threshold(t)}_unaligned' for t in self.f_score_thresholds))
        return self.metrics + tuple(_format_threshold(t) for t in self.f_score_thresholds)

    def _eval_joints(self, joints: np.ndarray, visible: np.ndarray,
                     name: str) -> Tuple[np.ndarray, np.ndarray]:
        """(n, J, 3), (n, J) -> evaluation joints (n, Je, 3) and visibility (n, Je)."""
        num = joints.shape[1]
        if self.joint_set == 'lsp14':
            if num == 17:
                idx = list(H36M_J17_TO_J14)
                return joints[:, idx], visible[:, idx]
            if num == 14:
                return joints, visible
            raise MeshMetricError(
                f'mesh_metric.py: joint_set="lsp14" needs 17 Human3.6M or 14 LSP joints, but '
                f'{name} has {num}')
        expected = 17 if self.joint_set == 'h36m17' else 21
        if num != expected:
            raise MeshMetricError(
                f'mesh_metric.py: joint_set="{self.joint_set}" needs {expected} joints, but {name} '
                f'has {num}')
        return joints, visible

    def _root_index(self) -> Tuple[int, ...]:
        """Root of the evaluation joint set (indices averaged)."""
        return LSP14_PELVIS_INDICES if self.joint_set == 'lsp14' else (0, )

    @staticmethod
    def _instances(sample: Any, index: int) -> Tuple[Any, Any]:
        pred = _get(sample, 'pred_instances')
        gt = _get(sample, 'gt_instances')
        if pred is None or gt is None:
            missing = 'pred_instances' if pred is None else 'gt_instances'
            raise MeshMetricError(
                f'mesh_metric.py: data sample {index} has no {missing} (MeshMetric needs the '
                'model predictions in pred_instances and the ground truth in gt_instances)')
        return pred, gt

    @staticmethod
    def _points(container: Any, key: str, where: str, index: int,
                last_dims: Tuple[int, ...] = (3, )) -> Optional[np.ndarray]:
        value = _get(container, key)
        if value is None:
            return None
        arr = to_numpy(value, f'{where}.{key}')
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3 or arr.shape[-1] not in last_dims:
            raise MeshMetricError(
                f'mesh_metric.py: data sample {index}: {where}.{key} must have shape (n, P, 3) '
                f'or (P, 3), got {arr.shape}')
        return arr

    # ------------------------------------------------------------------ mmengine API
    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        """Compute the per-sample errors of a batch and store them in ``self.results``.

        Args:
            data_batch: unused (mmengine passes the data loader batch).
            data_samples: ``PoseDataSample`` objects or their ``to_dict()`` (what mmengine's
                ``Evaluator`` passes), see the class docstring for the fields.
        """
        pj, gj, gvis, pv, gv, hasv, roots = [], [], [], [], [], [], []
        for i, sample in enumerate(data_samples):
            pred, gt = self._instances(sample, i)
            p_joints = self._points(pred, 'keypoints_3d', 'pred_instances', i)
            g_joints = self._points(gt, 'keypoints_3d', 'gt_instances', i, last_dims=(3, 4))
            if p_joints is None or g_joints is None:
                where = 'pred_instances' if p_joints is None else 'gt_instances'
                raise MeshMetricError(
                    f'mesh_metric.py: data sample {i} has no {where}.keypoints_3d')
            vis = _get(gt, 'keypoints_3d_visible')
            if vis is not None:
                vis = to_numpy(vis, 'gt_instances.keypoints_3d_visible').reshape(
                    g_joints.shape[:2]) > 0
            elif g_joints.shape[-1] == 4:
                vis = g_joints[..., 3] > 0
            else:
                vis = np.ones(g_joints.shape[:2], dtype=bool)
            g_joints = g_joints[..., :3]
            n = p_joints.shape[0]
            if g_joints.shape[0] != n:
                raise MeshMetricError(
                    f'mesh_metric.py: data sample {i}: {n} predicted instances but '
                    f'{g_joints.shape[0]} ground-truth instances')
            pj.append(p_joints)
            gj.append(g_joints)
            gvis.append(vis)
            if self._need_vertices:
                p_verts = self._points(pred, 'vertices', 'pred_instances', i)
                if p_verts is None:
                    raise MeshMetricError(
                        f'mesh_metric.py: data sample {i} has no pred_instances.vertices; set '
                        'use_vertices=False to evaluate joints only')
                g_verts = self._points(gt, 'vertices', 'gt_instances', i)
                has = _get(gt, 'has_vertices')
                if g_verts is None:
                    g_verts = np.zeros_like(p_verts)
                    has = np.zeros(n, dtype=bool)
                elif has is None:
                    has = np.ones(n, dtype=bool)
                else:
                    has = to_numpy(has, 'gt_instances.has_vertices').reshape(-1) > 0
                    if has.size == 1 and n > 1:
                        has = np.repeat(has, n)
                if g_verts.shape != p_verts.shape or has.shape != (n, ):
                    raise MeshMetricError(
                        f'mesh_metric.py: data sample {i}: gt vertices {g_verts.shape} / '
                        f'has_vertices {has.shape} do not match pred vertices {p_verts.shape}')
                pv.append(p_verts)
                gv.append(g_verts)
                hasv.append(has)
                roots.append(self._roots(pred, gt, i, n))
        if not pj:
            return
        try:
            p_joints, g_joints, vis = (np.concatenate(x) for x in (pj, gj, gvis))
        except ValueError:
            raise MeshMetricError(
                'mesh_metric.py: the data samples of one batch have different joint counts: '
                f'{sorted({x.shape[1] for x in pj + gj})}') from None
        verts = None
        if self._need_vertices:
            try:
                verts = tuple(np.concatenate(x) for x in (pv, gv, hasv))
                # (2, N, 3); NaN rows where a sample has no explicit roots (its fallback root is used)
                verts += (np.concatenate(roots, axis=1), )
            except ValueError:
                raise MeshMetricError(
                    'mesh_metric.py: the data samples of one batch have different vertex counts: '
                    f'{sorted({x.shape[1] for x in pv})}') from None
        self.results.extend(self._errors(p_joints, g_joints, vis, verts))

    @staticmethod
    def _roots(pred: Any, gt: Any, index: int, n: int) -> Optional[np.ndarray]:
        """(2, n, 3) explicit vertex roots (pred, gt) when both sides carry ``vertex_root``, else NaN."""
        p, g = _get(pred, 'vertex_root'), _get(gt, 'vertex_root')
        if p is None or g is None:
            return np.full((2, n, 3), np.nan)
        p = to_numpy(p, 'pred_instances.vertex_root')
        g = to_numpy(g, 'gt_instances.vertex_root')
        if p.size != 3 * n or g.size != 3 * n:
            raise MeshMetricError(
                f'mesh_metric.py: data sample {index}: vertex_root must be (n={n}, 3) on both sides, '
                f'got pred {p.shape}, gt {g.shape}')
        return np.stack([p.reshape(n, 3), g.reshape(n, 3)])

    def _errors(self, p_joints: np.ndarray, g_joints: np.ndarray, vis: np.ndarray,
                verts: Optional[Tuple[np.ndarray, ...]]) -> List[Dict]:
        """Per-instance errors (metres; NaN = excluded), batched over the instances."""
        n = p_joints.shape[0]
        out: Dict[str, np.ndarray] = {}
        # Human3.6M pelvis for the vertices only when both sides carry the 17 Human3.6M joints
        # (METRO); otherwise the root of the evaluation joint set on both sides.
        both_h36m = p_joints.shape[1] == 17 and g_joints.shape[1] == 17
        p_pelvis17 = p_joints[:, H36M_PELVIS_INDEX] if both_h36m else None
        g_pelvis17 = g_joints[:, H36M_PELVIS_INDEX] if both_h36m else None
        g_pelvis17_ok = vis[:, H36M_PELVIS_INDEX] if both_h36m else None
        p_joints, _ = self._eval_joints(p_joints, np.ones(p_joints.shape[:2], bool),
                                        'the prediction')
        g_joints, vis = self._eval_joints(g_joints, vis, 'the ground truth')
        if p_joints.shape != g_joints.shape:
            raise MeshMetricError(
                f'mesh_metric.py: predicted joints {p_joints.shape} and ground-truth joints '
                f'{g_joints.shape} differ after selecting the {self.joint_set} joints')
        if self.protocol == 'freihand':
            return self._errors_freihand(p_joints, g_joints, vis, verts)
        root = list(self._root_index())
        root_ok = vis[:, root].all(axis=1)
        if 'mpjpe' in self.metrics:
            err = mpjpe(p_joints, g_joints, 'root', root_index=root, mask=vis)
            out['mpjpe'] = np.where(root_ok, err, np.nan)
        if 'pa_mpjpe' in self.metrics:
            out['pa_mpjpe'] = mpjpe(p_joints, g_joints, 'procrustes', mask=vis)
        if verts is not None:
            p_verts, g_verts, has, explicit = verts
            if 'mpve' in self.metrics:
                if self.vertex_root == 'none':
                    ok = has
                    err = mpjpe(p_verts, g_verts, 'none')
                else:
                    if both_h36m:
                        p_root, g_root, ok = p_pelvis17, g_pelvis17, has & g_pelvis17_ok
                    else:
                        p_root = p_joints[:, root].mean(axis=1)
                        g_root = g_joints[:, root].mean(axis=1)
                        ok = has & root_ok
                    given = np.isfinite(explicit).all(axis=(0, 2))          # (N,)
                    p_root = np.where(given[:, None], explicit[0], p_root)
                    g_root = np.where(given[:, None], explicit[1], g_root)
                    ok = np.where(given, has, ok)
                    err = mpjpe(p_verts - p_root[:, None], g_verts - g_root[:, None], 'none')
                out['mpve'] = np.where(ok, err, np.nan)
            aligned = None
            if 'pa_mpvpe' in self.metrics or self.f_score_thresholds:
                aligned = pa_align(p_verts, g_verts)
            if 'pa_mpvpe' in self.metrics:
                err = np.linalg.norm(aligned - g_verts, axis=-1).mean(axis=1)
                out['pa_mpvpe'] = np.where(has, err, np.nan)
            if self.f_score_thresholds:
                th_m = np.asarray(self.f_score_thresholds) / METRES_TO_MM
                f = np.full((n, len(th_m)), np.nan)
                if has.any():
                    f[has] = f_score(aligned[has], g_verts[has], th_m)
                for k, t in enumerate(self.f_score_thresholds):
                    out[_format_threshold(t)] = f[:, k]
        return [{k: float(v[i]) for k, v in out.items()} for i in range(n)]

    def _errors_freihand(self, p_joints: np.ndarray, g_joints: np.ndarray, vis: np.ndarray,
                         verts: Optional[Tuple[np.ndarray, ...]]) -> List[Dict]:
        """Per-instance values of FreiHAND's eval.py (metres; NaN = excluded).

        Joints: the per-keypoint distances (21,) unaligned / aligned and the visibility are kept
        (eval.py averages per keypoint first); vertices (all 778 count): per-sample means, AUCs and
        F-scores. The alignment is fitted on the visible joints (eval.py: all, always visible).
        """
        results = []
        for i in range(p_joints.shape[0]):
            res: Dict[str, Any] = {'_fh_vis': vis[i].copy()}
            if 'mpjpe' in self.metrics:
                res['_fh_xyz'] = point_distances(g_joints[i], p_joints[i])
            if 'pa_mpjpe' in self.metrics:
                if vis[i].any():
                    mask = None if vis[i].all() else vis[i]  # None: exactly eval.py's call
                    res['_fh_xyz_al'] = point_distances(
                        g_joints[i], align_w_scale(g_joints[i], p_joints[i], mask))
                else:
                    res['_fh_xyz_al'] = np.full(vis.shape[1], np.nan)
            if verts is not None:
                p_verts, g_verts, has = verts[:3]
                ok = bool(has[i])
                gv, pv = g_verts[i], p_verts[i]
                aligned = align_w_scale(gv, pv) if ok and (
                    'pa_mpvpe' in self.metrics or self.f_score_thresholds) else None
                for name, pts in (('mpve', pv), ('pa_mpvpe', aligned)):
                    if name in self.metrics:
                        d = point_distances(gv, pts) if ok else np.full(1, np.nan)
                        res[name] = float(d.mean())
                        res[f'{name}_auc'] = float(pck_auc(d).mean()) if ok else float('nan')
                if self.f_score_thresholds:
                    th_m = np.asarray(self.f_score_thresholds) / METRES_TO_MM
                    f_al = calculate_fscore(gv, aligned, th_m)[0] if ok else np.full(len(th_m), np.nan)
                    f_raw = calculate_fscore(gv, pv, th_m)[0] if ok else np.full(len(th_m), np.nan)
                    for k, t in enumerate(self.f_score_thresholds):
                        res[_format_threshold(t)] = float(f_al[k])
                        res[f'{_format_threshold(t)}_unaligned'] = float(f_raw[k])
            results.append(res)
        return results

    def _compute_freihand(self, results: List[Dict]) -> Dict[str, float]:
        """eval.py's aggregation: joints per keypoint over its visible samples, then over keypoints;
        vertex values and F-scores over samples (mm for errors, [0, 1] for AUCs and F-scores)."""
        metrics: Dict[str, float] = {}
        counts = []
        for name, key in (('mpjpe', '_fh_xyz'), ('pa_mpjpe', '_fh_xyz_al')):
            if name not in self.metrics:
                continue
            means, aucs = [], []
            if results:
                dist = np.stack([r[key] for r in results])  # (N, 21)
                valid = np.stack([r['_fh_vis'] for r in results]) & np.isfinite(dist)
                for k in range(dist.shape[1]):
                    if valid[:, k].any():  # eval.py skips a keypoint without measurements
                        means.append(dist[valid[:, k], k].mean())
                        aucs.append(pck_auc(dist[valid[:, k], k]).mean())
                counts.append(f'{name}: {int(valid.any(axis=1).sum())}/{len(results)}')
            if not means:
                if results:
                    print_log(f'MeshMetric: no visible joint for {name!r}; reporting NaN.',
                              logger='current', level=logging.WARNING)
                metrics[name] = metrics[f'{name}_auc'] = float('nan')
                continue
            metrics[name] = float(np.mean(means) * METRES_TO_MM)
            metrics[f'{name}_auc'] = float(np.mean(aucs))
        for key in self.result_keys:
            if key in metrics:
                continue
            values = np.array([r.get(key, np.nan) for r in results], dtype=np.float64)
            valid = ~np.isnan(values)
            counts.append(f'{key}: {int(valid.sum())}/{len(values)}')
            if not valid.any():
                if results:
                    print_log(f'MeshMetric: no valid sample for {key!r} (missing ground-truth '
                              'vertices, has_vertices=0); reporting NaN.',
                              logger='current', level=logging.WARNING)
                metrics[key] = float('nan')
                continue
            scale = METRES_TO_MM if key in VERTEX_METRICS else 1.0
            metrics[key] = float(values[valid].mean() * scale)
        print_log(f'MeshMetric ({self.joint_set}, FreiHAND eval.py): evaluated samples ' +
                  ', '.join(counts), logger='current')
        return {k: metrics[k] for k in self.result_keys}

    def compute_metrics(self, results: List[Dict]) -> Dict[str, float]:
        """Average the per-sample errors; errors in mm, F-scores in [0, 1].

        Args:
            results: the per-sample dicts stored by :meth:`process` (all ranks).

        Returns:
            dict: one float per name in :attr:`result_keys`; NaN (with a warning) where no sample
            was valid.
        """
        metrics: Dict[str, float] = {}
        counts = []
        if not results:
            print_log(
                'MeshMetric: no samples were evaluated (empty results); every metric is NaN. '
                'Check that the evaluation data loader is not empty and that the model returns '
                'data samples.',
                logger='current',
                level=logging.WARNING)
        if self.protocol == 'freihand':
            return self._compute_freihand(results)
        for key in self.result_keys:
            values = np.array([r.get(key, np.nan) for r in results], dtype=np.float64)
            valid = ~np.isnan(values)
            counts.append(f'{key}: {int(valid.sum())}/{len(values)}')
            if not valid.any():
                if results:
                    print_log(
                        f'MeshMetric: no valid sample for {key!r} (missing ground truth '
                        '(has_vertices=0) or masked root joints); reporting NaN.',
                        logger='current',
                        level=logging.WARNING)
                metrics[key] = float('nan')
                continue
            scale = 1.0 if key.startswith('f@') else METRES_TO_MM
            metrics[key] = float(values[valid].mean() * scale)
        print_log(
            f'MeshMetric ({self.joint_set}): evaluated samples ' + ', '.join(counts),
            logger='current')
        return metrics

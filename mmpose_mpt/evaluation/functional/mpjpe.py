"""Point-set errors for mesh recovery: MPJPE / PA-MPJPE / MPVE and the F-score.

All functions take batched point sets ``(N, P, 3)`` (``P`` joints or vertices) as numpy arrays or
torch tensors (converted to float64 numpy, so results never depend on the model's dtype/device) and
return numpy arrays. Errors are in the units of the input (metres in this project; the metric class
converts to millimetres).
"""
from typing import Optional, Sequence, Tuple, Union

import numpy as np

try:  # torch is optional here: only used to recognise tensors.
    import torch
except ImportError:  # pragma: no cover
    torch = None

ArrayLike = Union[np.ndarray, 'torch.Tensor']
RootIndex = Union[int, Sequence[int]]

ALIGNMENTS = ('none', 'root', 'scale', 'procrustes')


class MetricInputError(ValueError):
    """Raised when the inputs of an evaluation function have the wrong shape or values."""


def to_numpy(x: ArrayLike, name: str = 'input', dtype=np.float64) -> np.ndarray:
    """Convert a numpy array / torch tensor / sequence to a numpy array of ``dtype``."""
    if torch is not None and isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        # bf16 has no numpy equivalent; go through float32.
        x = x.float().numpy() if x.is_floating_point() else x.numpy()
    try:
        return np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as e:
        raise MetricInputError(f'mpjpe.py: cannot convert {name} to a numpy array: {e}') from None


def _check_points(pred: ArrayLike, gt: ArrayLike,
                  mask: Optional[ArrayLike]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate and convert ``pred``/``gt`` (N, P, 3) and ``mask`` (N, P) (bool; None = all)."""
    pred = to_numpy(pred, 'pred')
    gt = to_numpy(gt, 'gt')
    if pred.ndim != 3 or pred.shape[-1] != 3:
        raise MetricInputError(f'mpjpe.py: pred must have shape (N, P, 3), got {pred.shape}')
    if gt.shape != pred.shape:
        raise MetricInputError(
            f'mpjpe.py: gt shape {gt.shape} does not match pred shape {pred.shape}')
    if mask is None:
        mask = np.ones(pred.shape[:2], dtype=bool)
    else:
        mask = to_numpy(mask, 'mask', dtype=np.float64) > 0
        if mask.shape != pred.shape[:2]:
            raise MetricInputError(
                f'mpjpe.py: mask must have shape {pred.shape[:2]} (N, P), got {mask.shape}')
    return pred, gt, mask


def _root_indices(root_index: RootIndex, num_points: int) -> np.ndarray:
    idx = np.atleast_1d(np.asarray(root_index))
    if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
        raise MetricInputError(
            'mpjpe.py: root_index must be an int or a non-empty sequence of ints, '
            f'got {root_index!r}')
    if idx.min() < -num_points or idx.max() >= num_points:
        raise MetricInputError(
            f'mpjpe.py: root_index {root_index!r} out of range for {num_points} points')
    return idx


def root_align(points: ArrayLike, root_index: RootIndex = 0) -> np.ndarray:
    """Subtract the root point from every point.

    Args:
        points: (N, P, 3).
        root_index: index of the root point, or a sequence of indices whose mean is the root
            (e.g. ``(2, 3)`` = mid-hip of LSP-14, the pelvis used by METRO).

    Returns:
        np.ndarray: (N, P, 3) root-relative points (float64).
    """
    points = to_numpy(points, 'points')
    if points.ndim != 3 or points.shape[-1] != 3:
        raise MetricInputError(f'mpjpe.py: points must have shape (N, P, 3), got {points.shape}')
    idx = _root_indices(root_index, points.shape[1])
    return points - points[:, idx].mean(axis=1, keepdims=True)


def pa_align(pred: ArrayLike,
             gt: ArrayLike,
             mask: Optional[ArrayLike] = None,
             return_transform: bool = False):
    """Procrustes (similarity) alignment of ``pred`` onto ``gt`` (Umeyama 1991), batched.

    Finds per sample the scale ``s``, rotation ``R`` (det = +1, reflections excluded) and
    translation ``t`` minimising ``sum_p w_p |s R x_p + t - y_p|^2`` with ``x = pred``, ``y = gt``
    and weights ``w = mask``; only the masked-in points drive the fit (mmpose's ``keypoint_mpjpe``
    always fits on all points; the two agree when the mask is all true).

    Args:
        pred: (N, P, 3) predicted points.
        gt: (N, P, 3) ground-truth points.
        mask: (N, P) points used for the fit (bool or 0/1); None = all.
        return_transform: also return ``(s (N,), R (N, 3, 3), t (N, 3))``.

    Returns:
        np.ndarray: (N, P, 3) aligned prediction ``s * pred @ R.T + t`` (all points are transformed,
        also masked-out ones); plus the transform if ``return_transform``.
    """
    pred, gt, mask = _check_points(pred, gt, mask)
    w = mask.astype(np.float64)[..., None]  # (N, P, 1)
    n = np.maximum(w.sum(axis=1, keepdims=True), 1.0)  # avoid 0/0 for empty masks
    mu_x = (w * pred).sum(axis=1, keepdims=True) / n
    mu_y = (w * gt).sum(axis=1, keepdims=True) / n
    x = (pred - mu_x) * w
    y = (gt - mu_y) * w
    var_x = (x**2).sum(axis=(1, 2))  # (N,)
    # Cross-covariance K = X^T Y (3 x 3); the optimal rotation is V diag(1, 1, sign) U^T.
    k = np.einsum('npi,npj->nij', x, y)
    u, _, vh = np.linalg.svd(k)
    v = np.swapaxes(vh, 1, 2)
    z = np.tile(np.eye(3), (pred.shape[0], 1, 1))
    # Reflection fix: force det(R) = +1.
    z[:, 2, 2] = np.sign(np.linalg.det(np.einsum('nij,nkj->nik', u, v)))
    r = np.einsum('nij,njk,nlk->nil', v, z, u)  # V Z U^T
    trace_rk = np.einsum('nij,nji->n', r, k)
    # Degenerate prediction (all points equal): no scale information, collapse onto the gt centroid.
    s = np.divide(trace_rk, var_x, out=np.zeros_like(var_x), where=var_x > 0)
    t = mu_y[:, 0] - s[:, None] * np.einsum('nij,nj->ni', r, mu_x[:, 0])
    aligned = s[:, None, None] * np.einsum('nij,npj->npi', r, pred) + t[:, None]
    if return_transform:
        return aligned, s, r, t
    return aligned


def mpjpe(pred: ArrayLike,
          gt: ArrayLike,
          alignment: str = 'none',
          root_index: RootIndex = 0,
          mask: Optional[ArrayLike] = None) -> np.ndarray:
    """Per-sample mean Euclidean point error (MPJPE; MPVE when the points are vertices).

    Args:
        pred: (N, P, 3) predicted points.
        gt: (N, P, 3) ground-truth points.
        alignment: ``'none'``; ``'root'`` (pred and gt each minus its own root point, see
            ``root_index``); ``'scale'`` (least-squares scale of pred, as mmpose's N-MPJPE);
            ``'procrustes'`` (similarity transform of pred onto gt, PA-MPJPE, see :func:`pa_align`).
        root_index: for ``'root'``: the root point index or a sequence of indices averaged into the
            root (e.g. ``(2, 3)``: LSP-14 mid-hip). The root points must be valid.
        mask: (N, P) valid points (bool or 0/1); None = all. Masked-out points are neither averaged
            nor used for scale/Procrustes fitting.

    Returns:
        np.ndarray: (N,) float64 mean error over each sample's valid points, in the input's units;
        NaN for a sample without valid points.
    """
    if alignment not in ALIGNMENTS:
        raise MetricInputError(
            f'mpjpe.py: alignment must be one of {ALIGNMENTS}, got {alignment!r}')
    pred, gt, mask = _check_points(pred, gt, mask)
    if alignment == 'root':
        pred = root_align(pred, root_index)
        gt = root_align(gt, root_index)
    elif alignment == 'scale':
        w = mask[..., None]
        pp = (w * pred * pred).sum(axis=(1, 2))
        pg = (w * pred * gt).sum(axis=(1, 2))
        scale = np.divide(pg, pp, out=np.zeros_like(pp), where=pp > 0)
        pred = pred * scale[:, None, None]
    elif alignment == 'procrustes':
        pred = pa_align(pred, gt, mask)
    err = np.linalg.norm(pred - gt, axis=-1)  # (N, P)
    count = mask.sum(axis=1)
    total = np.where(mask, err, 0.0).sum(axis=1)
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def nearest_neighbour_distances(src: ArrayLike, dst: ArrayLike) -> np.ndarray:
    """For every point of ``src`` the distance to its nearest point of ``dst`` (cKDTree).

    Args:
        src: (N, P, 3); dst: (N, Q, 3).

    Returns:
        np.ndarray: (N, P) distances in the input's units.
    """
    from scipy.spatial import cKDTree
    src = to_numpy(src, 'src')
    dst = to_numpy(dst, 'dst')
    if src.ndim != 3 or dst.ndim != 3 or src.shape[0] != dst.shape[0] or src.shape[-1] != 3 \
            or dst.shape[-1] != 3:
        raise MetricInputError(
            f'mpjpe.py: point sets must be (N, P, 3) and (N, Q, 3), got {src.shape}, {dst.shape}')
    if src.shape[1] == 0 or dst.shape[1] == 0:
        raise MetricInputError('mpjpe.py: F-score needs non-empty point sets')
    return np.stack([cKDTree(d).query(s, k=1)[0] for s, d in zip(src, dst)])


def f_score(pred_verts: ArrayLike,
            gt_verts: ArrayLike,
            threshold: Union[float, Sequence[float]],
            return_precision_recall: bool = False):
    """F-score of point sets at a distance threshold (FreiHAND's F@5mm / F@15mm).

    precision = fraction of predicted points closer than ``threshold`` to the gt set,
    recall = fraction of gt points closer than ``threshold`` to the predicted set,
    ``F = 2 P R / (P + R)`` (0 when ``P + R = 0``). As in FreiHAND the comparison is strict (``<``)
    and the point sets are used as given (FreiHAND aligns them by Procrustes first, see
    :func:`pa_align`).

    Args:
        pred_verts: (N, P, 3) predicted points.
        gt_verts: (N, Q, 3) ground-truth points (``Q`` may differ from ``P``).
        threshold: a distance in the input's units, or a sequence of T distances.
        return_precision_recall: also return precision and recall.

    Returns:
        np.ndarray: F-score (N,) for a scalar threshold, (N, T) for a sequence; with
        ``return_precision_recall`` the tuple ``(f, precision, recall)`` of equal shapes.
    """
    scalar = np.ndim(threshold) == 0
    th = np.atleast_1d(to_numpy(threshold, 'threshold'))
    if th.ndim != 1 or np.any(th <= 0):
        raise MetricInputError(f'mpjpe.py: threshold must be positive, got {threshold!r}')
    d_pred = nearest_neighbour_distances(pred_verts, gt_verts)  # (N, P) pred -> gt
    d_gt = nearest_neighbour_distances(gt_verts, pred_verts)  # (N, Q) gt -> pred
    precision = (d_pred[:, :, None] < th).mean(axis=1)  # (N, T)
    recall = (d_gt[:, :, None] < th).mean(axis=1)
    denom = precision + recall
    f = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)
    if scalar:
        f, precision, recall = f[:, 0], precision[:, 0], recall[:, 0]
    if return_precision_recall:
        return f, precision, recall
    return f

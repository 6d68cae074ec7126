"""From a crop's weak-perspective camera (s, tx, ty) to a perspective translation in the full image.

MPT (as METRO) predicts, per person crop, root-relative vertices ``X`` (camera frame, metres; the
crop's origin is the Human3.6M pelvis) and a weak-perspective camera ``(s, tx, ty)`` that maps them to
*normalised crop coordinates*: ``x_n = s (X_xy + t)``, where ``x_n = 2 x_crop / S - 1`` spans the S x S
crop ([-1, 1]; :class:`~mmpose_mpt.datasets.transforms.MeshImageCrop`). The crop is a square box of side
``side`` image pixels centred at ``c_box`` (no rotation at test time), so ``x_crop = S / side (p - c_box)
+ S / 2`` and therefore

    p = c_box + side / 2 * s (X_xy + t)                                  (1)  weak perspective, image px

A pinhole camera (focal ``f`` px, principal point ``c`` px) sees the person at translation
``T = (Tx, Ty, Tz)`` as ``p = f (X_xy + T_xy) / (X_z + Tz) + c``. Where the person's depth extent is small
against ``Tz`` (the weak-perspective assumption itself), ``X_z + Tz ~ Tz`` and matching (1) term by term:

    Tz   = 2 f / (s * side)                                                 (2)
    T_xy = t + 2 (c_box - c) / (s * side)                                   (3)

(SPIN / PARE's ``convert_crop_cam_to_orig_img`` with the crop's own focal replaced by the full image's.)
Every person of an image then lives in one camera, at a depth that scales with their apparent size, so
the overlays land on them and several people stand at plausible relative depths. With ``fx != fy`` the
mean focal gives ``Tz`` and each axis its own offset: ``T_x = t_x + 2 (c_box_x - c_x) / (s side)`` and
``T_y = t_y + 2 (c_box_y - c_y) fx / (fy s side)`` keep (1) exact at the root for both axes.

**Default focal length**: ``sqrt(W^2 + H^2)`` (CLIFF's / BEDLAM's convention for unknown cameras: a
~53 degree diagonal field of view, typical of phone and consumer cameras). A per-crop focal such as
SPIN's ``5000 / 224 * side`` would give every person its own camera, so people could not be rendered
together; an image-size focal is one camera per image. The absolute depth scales with the focal (a
wrong focal moves everybody closer / further by the same factor, the overlay in the image is
unchanged), so pass the real ``focal_length`` when it is known (the toy images' is known and the round
trip test uses it). Principal point default: the image centre ``(W / 2, H / 2)``.
"""
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from ..utils.cli import MPTUserError

__all__ = ['FullImageCameraError', 'default_focal_length', 'default_principal_point', 'resolve_focal_length',
           'crop_box_of_bbox', 'crop_to_full_camera', 'full_to_crop_camera', 'fit_weak_perspective',
           'project_points', 'BOX_PADDING']

# the crop side of a detected box: 1.2 x its longer side (3DPW's / the toy labels' scale convention,
# ``scale = 1.2 max(w, h) / 200``), square, as MeshImageCrop's METRO / SPIN boxes are
BOX_PADDING = 1.2

FocalLike = Union[None, float, Sequence[float]]


class FullImageCameraError(MPTUserError, ValueError):
    """Bad camera / box input (non-finite values, non-positive scale or focal length)."""


def default_focal_length(image_size: Sequence[int]) -> Tuple[float, float]:
    """``(f, f)`` with ``f = sqrt(W^2 + H^2)`` pixels for an image of ``image_size = (W, H)``."""
    w, h = float(image_size[0]), float(image_size[1])
    f = float(np.hypot(w, h))
    return f, f


def default_principal_point(image_size: Sequence[int]) -> Tuple[float, float]:
    """The image centre ``(W / 2, H / 2)`` pixels."""
    return float(image_size[0]) / 2.0, float(image_size[1]) / 2.0


def resolve_focal_length(focal_length: FocalLike, image_size: Sequence[int]) -> Tuple[float, float]:
    """(fx, fy) px from f, (fx, fy) or None (:func:`default_focal_length`)."""
    if focal_length is None:
        return default_focal_length(image_size)
    f = np.asarray(focal_length, np.float64).reshape(-1)
    if f.size == 1:
        f = np.repeat(f, 2)
    if f.size != 2 or not np.isfinite(f).all() or (f <= 0).any():
        raise FullImageCameraError(f'focal_length must be one or two positive numbers (pixels), got '
                                   f'{focal_length!r}')
    return float(f[0]), float(f[1])


def crop_box_of_bbox(bboxes: np.ndarray, padding: float = BOX_PADDING) -> Tuple[np.ndarray, np.ndarray]:
    """Square crop boxes around detected boxes.

    Args:
        bboxes: (N, 4) x1, y1, x2, y2 image pixels.
        padding: crop side = ``padding * max(w, h)``.

    Returns:
        ``center`` (N, 2) px and ``side`` (N,) px (the ``center`` / ``200 * scale`` of MeshImageCrop).
    """
    b = np.asarray(bboxes, np.float64).reshape(-1, 4)
    if not np.isfinite(b).all():
        raise FullImageCameraError(f'boxes must be finite x1 y1 x2 y2 pixels, got {b.tolist()}')
    center = (b[:, :2] + b[:, 2:]) / 2.0
    side = padding * np.maximum(np.abs(b[:, 2] - b[:, 0]), np.abs(b[:, 3] - b[:, 1]))
    return center, np.maximum(side, 1.0)   # a degenerate box still gives a usable (1 px) crop


def crop_to_full_camera(camera: np.ndarray, center: np.ndarray, side: np.ndarray,
                        image_size: Sequence[int], focal_length: FocalLike = None,
                        principal_point: Optional[Sequence[float]] = None) -> np.ndarray:
    """Eq. (2)-(3) of the module docstring: perspective translations of N crops' people.

    Args:
        camera: (N, 3) weak perspective (s, tx, ty) of each crop (``pred_instances.camera``).
        center: (N, 2) crop box centres, image px.
        side: (N,) crop box sides, image px.
        image_size: (W, H) of the full image.
        focal_length: f or (fx, fy) px; None: :func:`default_focal_length`.
        principal_point: (cx, cy) px; None: the image centre.

    Returns:
        (N, 3) float64 ``T``, metres: ``vertices + T`` are in the image's camera frame (x right, y down,
        z forward).

    Raises:
        FullImageCameraError: non-finite input or ``s <= 0`` (a camera that puts the person behind it).
    """
    cam = np.asarray(camera, np.float64).reshape(-1, 3)
    c_box = np.asarray(center, np.float64).reshape(-1, 2)
    sd = np.asarray(side, np.float64).reshape(-1)
    if not (len(cam) == len(c_box) == len(sd)):
        raise FullImageCameraError(f'camera {cam.shape}, center {c_box.shape} and side {sd.shape} must '
                                   'have the same number of crops')
    for name, v in (('camera', cam), ('center', c_box), ('side', sd)):
        if not np.isfinite(v).all():
            raise FullImageCameraError(f'{name} has non-finite values: {v.tolist()}')
    if (cam[:, 0] <= 0).any() or (sd <= 0).any():
        raise FullImageCameraError(f'weak-perspective scale s and crop side must be > 0, got s = '
                                   f'{cam[:, 0].tolist()}, side = {sd.tolist()}')
    fx, fy = resolve_focal_length(focal_length, image_size)
    cx, cy = principal_point if principal_point is not None else default_principal_point(image_size)
    f = (fx + fy) / 2.0
    k = cam[:, 0] * sd                                   # s * side: image px per metre at the root, x 2
    tz = 2.0 * f / k
    # p = f_a (X + T_a) / Tz + c_a must equal c_box + side / 2 s (X + t) for both axes a
    tx = (c_box[:, 0] - cx + k / 2.0 * cam[:, 1]) * tz / fx
    ty = (c_box[:, 1] - cy + k / 2.0 * cam[:, 2]) * tz / fy
    return np.stack([tx, ty, tz], 1)


def full_to_crop_camera(transl: np.ndarray, center: np.ndarray, side: np.ndarray,
                        image_size: Sequence[int], focal_length: FocalLike = None,
                        principal_point: Optional[Sequence[float]] = None) -> np.ndarray:
    """The inverse of :func:`crop_to_full_camera`: (N, 3) translations (Tz > 0) → (N, 3) (s, tx, ty)."""
    T = np.asarray(transl, np.float64).reshape(-1, 3)
    c_box = np.asarray(center, np.float64).reshape(-1, 2)
    sd = np.asarray(side, np.float64).reshape(-1)
    if not np.isfinite(T).all() or (T[:, 2] <= 0).any():
        raise FullImageCameraError(f'translations must be finite with Tz > 0, got {T.tolist()}')
    fx, fy = resolve_focal_length(focal_length, image_size)
    cx, cy = principal_point if principal_point is not None else default_principal_point(image_size)
    f = (fx + fy) / 2.0
    s = 2.0 * f / (T[:, 2] * sd)
    k = s * sd
    tx = (T[:, 0] * fx / T[:, 2] - c_box[:, 0] + cx) * 2.0 / k
    ty = (T[:, 1] * fy / T[:, 2] - c_box[:, 1] + cy) * 2.0 / k
    return np.stack([s, tx, ty], 1)


def fit_weak_perspective(points: np.ndarray, normalised_2d: np.ndarray) -> np.ndarray:
    """Least-squares (s, tx, ty) with ``s (X_xy + t) ~ x_n``: the weak-perspective camera that best
    explains 2D points (normalised crop coordinates) of known root-relative 3D points.

    Args:
        points: (N, P, 3) root-relative 3D points, metres.
        normalised_2d: (N, P, 2) their image positions in normalised crop coordinates.

    Returns:
        (N, 3) float64.
    """
    X = np.asarray(points, np.float64)[..., :2]
    x = np.asarray(normalised_2d, np.float64)
    # x = s X + (s t): linear in (s, u = s t); centre both sides
    Xm, xm = X.mean(1, keepdims=True), x.mean(1, keepdims=True)
    s = ((X - Xm) * (x - xm)).sum((1, 2)) / np.maximum(((X - Xm) ** 2).sum((1, 2)), 1e-12)
    u = xm[:, 0] - s[:, None] * Xm[:, 0]
    return np.concatenate([s[:, None], u / s[:, None]], 1)


def project_points(points: np.ndarray, focal_length: Sequence[float],
                   principal_point: Sequence[float]) -> np.ndarray:
    """Pinhole projection of (..., 3) camera-frame points → (..., 2) pixels."""
    P = np.asarray(points, np.float64)
    z = np.maximum(P[..., 2:], 1e-6)
    return P[..., :2] / z * np.asarray(focal_length, np.float64) + np.asarray(principal_point, np.float64)

"""The crop box around a projected person, with mmpose's top-down convention.

The box is the one mmpose's top-down pipeline makes for a detected box: tight xyxy box of the keypoints
→ ``bbox_xyxy2cs(padding=1.25)`` (``GetBBoxCenterScale``) → ``TopdownAffine._fix_aspect_ratio`` →
``get_warp_matrix(center, scale, rot=0, output_size)``. Synthetic crops therefore look like the real
224×224 crops the model sees at test time.

Those steps are written out in closed form (for rot = 0 the warp is a uniform scale ``w / scale_w`` and
a shift) because this runs once per training sample and mmpose's general versions (three-point
``cv2.getAffineTransform``) cost ~0.1 ms each; tests compare the result with mmpose's own pipeline.
"""
from typing import Dict, Sequence

import numpy as np

from .virtual_camera_rig import VirtualCameraError

# Only guards a degenerate box (all keypoints on one pixel): any real person box is larger, so the
# result is mmpose's for every practical input.
MIN_BOX_SIDE = 1.0


def topdown_crop(keypoints_px: np.ndarray, input_size: Sequence[int] = (224, 224),
                 padding: float = 1.25) -> Dict[str, np.ndarray]:
    """Crop around keypoints.

    Args:
        keypoints_px: (N, 2) image pixels (pass the visible ones), N ≥ 1, finite.
        input_size: (w, h) of the crop (= heatmap size), pixels.
        padding: box enlargement of mmpose's ``GetBBoxCenterScale``.

    Returns:
        ``bbox`` (4,) xyxy tight box (image pixels), ``center`` (2,), ``scale`` (2,) (padded,
        aspect-fixed, image pixels), ``warp_mat`` (2, 3) float32 mapping image pixels to crop pixels.
    """
    kp = np.asarray(keypoints_px, dtype=np.float32)
    if kp.ndim != 2 or kp.shape[1] != 2 or len(kp) == 0 or not np.isfinite(kp).all():
        raise VirtualCameraError(
            f'mmpose_mpt/cameras/topdown_crop.py: keypoints_px must be a finite (N>=1, 2) array, got '
            f'shape {kp.shape}')
    lo, hi = kp.min(0), kp.max(0)
    return crop_from_box(float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]), input_size, padding)


def crop_from_box(x1: float, y1: float, x2: float, y2: float, input_size: Sequence[int] = (224, 224),
                  padding: float = 1.25) -> Dict[str, np.ndarray]:
    """:func:`topdown_crop` from the tight box (x1, y1, x2, y2) (finite, image pixels, float32
    values as mmpose's boxes are) — for callers that already have the keypoints' extent."""
    # scalar arithmetic: a batch of one through crop_from_boxes costs 3x the numpy calls; the two
    # compute the same float64 operations (tested equal)
    w, h = int(input_size[0]), int(input_size[1])
    # bbox_xyxy2cs
    cx, cy = (x1 + x2) * 0.5, (y1 + y2) * 0.5
    sw = max((x2 - x1) * padding, MIN_BOX_SIDE * padding)
    sh = max((y2 - y1) * padding, MIN_BOX_SIDE * padding)
    # TopdownAffine._fix_aspect_ratio: grow the short side to the input's aspect ratio
    aspect = w / h
    if sw > sh * aspect:
        sh = sw / aspect
    else:
        sw = sh * aspect
    # get_warp_matrix(center, scale, rot=0, output_size=(w, h)): scale w / scale_w on both axes
    k = w / sw
    warp = np.array([[k, 0.0, w * 0.5 - k * cx], [0.0, k, h * 0.5 - k * cy]], np.float32)
    return dict(bbox=np.array([x1, y1, x2, y2], np.float32), center=np.array([cx, cy], np.float32),
                scale=np.array([sw, sh], np.float32), warp_mat=warp)


def crop_from_boxes(boxes: np.ndarray, input_size: Sequence[int] = (224, 224),
                    padding: float = 1.25) -> Dict[str, np.ndarray]:
    """:func:`crop_from_box` for a batch: ``boxes`` (B, 4) xyxy, float64 holding float32 values.

    Returns ``bbox`` (B, 4), ``center`` (B, 2), ``scale`` (B, 2), ``warp_mat`` (B, 2, 3), float32
    (element-wise float64 arithmetic: the same numbers for a box whatever the batch).
    """
    w, h = int(input_size[0]), int(input_size[1])
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    cx, cy = (x1 + x2) * 0.5, (y1 + y2) * 0.5
    sw = np.maximum((x2 - x1) * padding, MIN_BOX_SIDE * padding)
    sh = np.maximum((y2 - y1) * padding, MIN_BOX_SIDE * padding)
    aspect = w / h
    wide = sw > sh * aspect
    sh, sw = np.where(wide, sw / aspect, sh), np.where(wide, sw, sh * aspect)
    k = w / sw
    warp = np.zeros((len(boxes), 2, 3), np.float32)
    warp[:, 0, 0] = warp[:, 1, 1] = k
    warp[:, 0, 2] = w * 0.5 - k * cx
    warp[:, 1, 2] = h * 0.5 - k * cy
    return dict(bbox=boxes.astype(np.float32), center=np.stack([cx, cy], 1).astype(np.float32),
                scale=np.stack([sw, sh], 1).astype(np.float32), warp_mat=warp)


def apply_warp(points: np.ndarray, warp_mat: np.ndarray) -> np.ndarray:
    """Map (..., N, 2) points through (..., 2, 3) affine matrices (as ``cv2.transform`` does) →
    (..., N, 2). Element-wise (no matrix product), so a batch gives each sample's numbers exactly."""
    m = warp_mat[..., None, :, :]
    x, y = points[..., 0:1], points[..., 1:2]
    return x * m[..., 0] + y * m[..., 1] + m[..., 2]

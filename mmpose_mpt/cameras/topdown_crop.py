"""The crop box around a projected person, with mmpose's top-down convention.

The box is computed exactly as mmpose's top-down pipeline does for a detected box, by calling its own
functions: tight xyxy box of the keypoints → ``bbox_xyxy2cs(padding=1.25)`` (``GetBBoxCenterScale``)
→ ``TopdownAffine._fix_aspect_ratio`` → ``get_warp_matrix(center, scale, 0, input_size)``. Synthetic
crops therefore look like the real 224×224 crops the model sees at test time.
"""
from typing import Dict, Sequence

import numpy as np
from mmpose.datasets.transforms import TopdownAffine
from mmpose.structures.bbox import bbox_xyxy2cs, get_warp_matrix

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
    w, h = (int(v) for v in input_size)
    bbox = np.concatenate([kp.min(0), kp.max(0)]).astype(np.float32)
    center, scale = bbox_xyxy2cs(bbox[None], padding=padding)
    scale = np.maximum(scale, MIN_BOX_SIDE * padding)
    scale = TopdownAffine._fix_aspect_ratio(scale, aspect_ratio=w / h)
    warp = get_warp_matrix(center[0], scale[0], 0.0, output_size=(w, h))
    return dict(bbox=bbox, center=center[0].astype(np.float32), scale=scale[0].astype(np.float32),
                warp_mat=warp.astype(np.float32))


def apply_warp(points: np.ndarray, warp_mat: np.ndarray) -> np.ndarray:
    """Map (N, 2) points through a (2, 3) affine matrix (as ``cv2.transform`` does) → (N, 2)."""
    return points @ warp_mat[:, :2].T + warp_mat[:, 2]

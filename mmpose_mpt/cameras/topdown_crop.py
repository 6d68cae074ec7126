"""The crop box around a projected person, with mmpose's top-down convention.

The box is computed exactly as mmpose's top-down pipeline does for a detected box
(``GetBBoxCenterScale`` with ``padding=1.25`` → ``TopdownAffine``'s aspect-ratio fix →
``get_warp_matrix``), so synthetic crops look like the real 224×224 crops seen at test time.
"""
from typing import Dict, Sequence

import numpy as np
from mmpose.datasets.transforms import TopdownAffine
from mmpose.structures.bbox import bbox_xyxy2cs, get_warp_matrix


def topdown_crop(keypoints_px: np.ndarray, input_size: Sequence[int] = (224, 224),
                 padding: float = 1.25) -> Dict[str, np.ndarray]:
    """Crop around keypoints.

    Args:
        keypoints_px: (N, 2) image pixels (the visible ones).
        input_size: (w, h) of the crop (= heatmap size).
        padding: box enlargement of mmpose's ``GetBBoxCenterScale``.

    Returns:
        ``bbox`` (4,) xyxy tight box, ``center`` (2,), ``scale`` (2,) (aspect-fixed, padded), and
        ``warp_mat`` (2, 3) mapping image pixels to crop pixels.
    """
    kp = np.asarray(keypoints_px, dtype=np.float32)
    bbox = np.concatenate([kp.min(0), kp.max(0)]).astype(np.float32)
    center, scale = bbox_xyxy2cs(bbox[None], padding=padding)
    w, h = input_size
    scale = TopdownAffine._fix_aspect_ratio(scale, aspect_ratio=w / h)
    warp = get_warp_matrix(center[0], scale[0], 0.0, output_size=(w, h))
    return dict(bbox=bbox, center=center[0], scale=scale[0], warp_mat=warp.astype(np.float32))


def apply_warp(points: np.ndarray, warp_mat: np.ndarray) -> np.ndarray:
    """(N, 2) pixels → (N, 2) through a (2, 3) affine matrix."""
    return points @ warp_mat[:, :2].T + warp_mat[:, 2]

"""Perspective (pinhole) projection of camera-frame points.

Lens distortion is not applied: the heatmaps are synthetic, and the crop around the person (mmpose's
top-down box) is where real and synthetic inputs are made alike.
"""
from typing import Union

import numpy as np
import torch

Array = Union[np.ndarray, torch.Tensor]


def project_points(points_cam: Array, f: Array, c: Array, eps: float = 1e-6) -> Array:
    """Pixels of camera-frame points: ``x = f * X[..., :2] / Z + c``.

    Args:
        points_cam: (..., N, 3) metres, camera frame (x right, y down, z forward).
        f: (..., 2) focal lengths, c: (..., 2) principal points, in pixels (broadcast over N).

    Returns:
        (..., N, 2) pixels (numpy in → numpy out, torch in → torch out). Points at or behind the camera
        (Z ≤ eps) are divided by eps; mark them invisible with ``points_cam[..., 2] > 0``.
    """
    if isinstance(points_cam, torch.Tensor):
        z = points_cam[..., 2:].clamp(min=eps)
    else:
        z = np.maximum(points_cam[..., 2:], eps)
    return f[..., None, :] * points_cam[..., :2] / z + c[..., None, :]

"""Weak-perspective camera of METRO / MPT (Appendix E): the model predicts (s, tx, ty)."""
from torch import Tensor


def weak_perspective_project(points: Tensor, camera: Tensor) -> Tensor:
    """Project 3D points with a weak-perspective camera (METRO's ``orthographic_projection``).

    Args:
        points: (B, N, 3) metres, root-relative, camera frame.
        camera: (B, 3) = (s, tx, ty).

    Returns:
        (B, N, 2) = s · (X[..., :2] + t), in normalised crop coordinates ([-1, 1] spans the crop).
    """
    return camera[:, None, :1] * (points[..., :2] + camera[:, None, 1:])

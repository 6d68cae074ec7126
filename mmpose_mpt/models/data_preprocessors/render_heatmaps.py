"""MoCap-generated heatmaps, Eq. 1 of the paper: S_j(p) = exp(-||p - x_j||² / σ²)."""
from typing import Optional, Sequence

import torch
from torch import Tensor


def render_heatmaps(keypoints: Tensor, visible: Tensor, size: Sequence[int] = (224, 224),
                    sigma: float = 3.0, dtype: Optional[torch.dtype] = None) -> Tensor:
    """Render one Gaussian heatmap per joint, batched on the keypoints' device.

    Args:
        keypoints: (B, K, 2) float (x, y) in heatmap pixels; p runs over integer pixel coordinates
            (x = column, y = row).
        visible: (B, K) bool (or 0/1); masked / invisible joints give all-zero maps.
        size: (H, W) of the maps.
        sigma: σ of Eq. 1 (note: divided by σ², not 2σ²).
        dtype: output dtype (default: the keypoints' dtype); the exponent is evaluated in float32.

    Returns:
        (B, K, H, W) heatmaps.

    The Gaussian is separable, exp(-(dx² + dy²)/σ²) = exp(-dx²/σ²)·exp(-dy²/σ²), so it is built as an
    outer product of a row and a column profile: exact, and H + W exponentials per joint instead of H·W.
    """
    h, w = int(size[0]), int(size[1])
    dtype = dtype or keypoints.dtype
    kp = keypoints.float()
    xs = torch.arange(w, device=kp.device, dtype=torch.float32)
    ys = torch.arange(h, device=kp.device, dtype=torch.float32)
    inv = 1.0 / (float(sigma) ** 2)
    gx = torch.exp(-(xs - kp[..., 0:1]) ** 2 * inv)                   # (B, K, W)
    gy = torch.exp(-(ys - kp[..., 1:2]) ** 2 * inv)                   # (B, K, H)
    gy = gy * visible.to(gy.dtype)[..., None]                        # zero maps for masked joints
    return (gy[..., :, None] * gx[..., None, :]).to(dtype)

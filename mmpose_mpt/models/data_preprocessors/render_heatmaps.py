"""MoCap-generated heatmaps, Eq. 1 of the paper: S_j(p) = exp(-||p - x_j||² / σ²)."""
from typing import Optional, Sequence

import torch
from torch import Tensor


# half of log(float32's smallest normal number) = log(1.18e-38) / 2: products of two kept factors are
# normal numbers
_MIN_EXPONENT = -43.5


def _profile(grid: Tensor, centre: Tensor, inv_sigma2: float) -> Tensor:
    """exp(-(grid - centre)² / σ²), flushed to 0 where it would be denormal."""
    e = (grid - centre).square_().mul_(-inv_sigma2)
    keep = e >= _MIN_EXPONENT
    return e.clamp_(min=_MIN_EXPONENT).exp_().mul_(keep)


def render_heatmaps(keypoints: Tensor, visible: Tensor, size: Sequence[int] = (224, 224),
                    sigma: float = 3.0, dtype: Optional[torch.dtype] = None,
                    out: Optional[Tensor] = None) -> Tensor:
    """Render one Gaussian heatmap per joint, batched on the keypoints' device.

    Args:
        keypoints: (B, K, 2) float (x, y) in heatmap pixels; p runs over integer pixel coordinates
            (x = column, y = row).
        visible: (B, K) bool (or 0/1); masked / invisible joints give all-zero maps.
        size: (H, W) of the maps.
        sigma: σ of Eq. 1 (note: divided by σ², not 2σ²).
        dtype: output dtype (default: the keypoints' dtype, or ``out``'s); the exponent is evaluated
            in float32.
        out: optional (B, K, H, W) tensor to write into (its dtype wins). A batch of 224² maps is
            hundreds of MB; on the CPU a fresh allocation of that size costs more page faults than
            the rendering itself, so the data preprocessor recycles its buffer through this.

    Returns:
        (B, K, H, W) heatmaps.

    The Gaussian is separable, exp(-(dx² + dy²)/σ²) = exp(-dx²/σ²)·exp(-dy²/σ²), so it is built as an
    outer product of a row and a column profile: exact, and H + W exponentials per joint instead of H·W.
    Profile values below exp(-43.5) ≈ 1.3e-19 are flushed to zero, so that neither the profiles nor
    their products (≥ exp(-87) > 1.18e-38) are float32 denormals: x86 CPUs compute with denormals ~8×
    slower (measured on ``exp``), here and in whatever consumes the maps, and they carry no signal.
    A map value differs from Eq. 1 by at most 1.3e-19.
    """
    h, w = int(size[0]), int(size[1])
    dtype = out.dtype if out is not None else (dtype or keypoints.dtype)
    kp = keypoints.float()
    xs = torch.arange(w, device=kp.device, dtype=torch.float32)
    ys = torch.arange(h, device=kp.device, dtype=torch.float32)
    inv = 1.0 / (float(sigma) ** 2)
    gx = _profile(xs, kp[..., 0:1], inv)                               # (B, K, W)
    gy = _profile(ys, kp[..., 1:2], inv)                               # (B, K, H)
    gy = gy * visible.to(gy.dtype)[..., None]                        # zero maps for masked joints
    if out is not None:
        if tuple(out.shape) != tuple(kp.shape[:2]) + (h, w):
            raise ValueError(f'out has shape {tuple(out.shape)}, expected {tuple(kp.shape[:2]) + (h, w)}')
        if out.dtype == torch.float32:
            return torch.mul(gy[..., :, None], gx[..., None, :], out=out)
        return out.copy_(gy[..., :, None] * gx[..., None, :])
    return (gy[..., :, None] * gx[..., None, :]).to(dtype)

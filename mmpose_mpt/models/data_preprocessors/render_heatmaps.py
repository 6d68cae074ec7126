"""MoCap-generated heatmaps, Eq. 1 of the paper: S_j(p) = exp(-||p - x_j||² / σ²)."""
import ctypes
import ctypes.util
import math
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


def _load_memset():
    try:
        return ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6').memset
    except (OSError, AttributeError):
        return None


_MEMSET = _load_memset()


def zero_fill_(t: Tensor) -> Tensor:
    """``t.zero_()`` for a contiguous CPU tensor through the C library's ``memset``, which writes
    large blocks with non-temporal stores: no read of the old cache lines, ~2× faster than
    ``zero_`` on a 200 MB heatmap batch (8 vs 15 ms on the 2-core machine, where memory bandwidth is
    the limit). Any other tensor, or without a C library: ``zero_()``."""
    if (_MEMSET is not None and t.device.type == 'cpu' and t.is_contiguous() and t.numel()
            and not t.requires_grad):      # zero_() keeps autograd's checks for those
        # as an in-place torch op would (first: where torch refuses, e.g. an inference tensor
        # outside inference mode, nothing is written)
        torch.autograd.graph.increment_version(t)
        _MEMSET(ctypes.c_void_p(t.data_ptr()), 0, ctypes.c_size_t(t.numel() * t.element_size()))
        return t
    return t.zero_()


def _radius(sigma: float) -> float:
    """Profile values are kept (not flushed to 0) where |p - x| ≤ σ·√43.5 (6.6σ)."""
    return float(sigma) * math.sqrt(-_MIN_EXPONENT)


def _window_size(sigma: float) -> int:
    """Pixels per side of a window starting at ceil(x - r) - 1 that reaches past x + r (r =
    :func:`_radius`): it holds every pixel within r of x, and a float rounding of the exponent at
    distance ~r cannot put a kept value outside it."""
    return int(math.floor(2 * _radius(sigma))) + 3


def _render_windows(kp: Tensor, visible: Tensor, sigma: float, inv: float, out: Tensor,
                    win: int) -> Tensor:
    """CPU path of :func:`render_heatmaps`: zero ``out`` (float32, contiguous) with ``memset`` and
    write each map's (win, win) window around its joint, the only place its outer product is not 0.

    The values are those of the full outer product (the same profile values at the same integer
    pixels, multiplied the same way), so the maps are bit-identical to it; the full product writes
    every pixel with ordinary stores and is ~1.5× slower on the CPU, bound by memory bandwidth.
    """
    B, K, H, W = out.shape
    M, r = B * K, _radius(sigma)
    ar = torch.arange(win, device=kp.device)
    # first window pixel, moved inside the map where the window sticks out (it then still holds
    # every kept pixel of the map: it only moves away from the side that lies outside)
    x0 = (torch.ceil(kp[..., 0] - r) - 1).clamp_(0, W - win).long()                  # (B, K)
    y0 = (torch.ceil(kp[..., 1] - r) - 1).clamp_(0, H - win).long()
    gx = _profile((x0[..., None] + ar).float(), kp[..., 0:1], inv)                  # (B, K, win)
    gy = _profile((y0[..., None] + ar).float(), kp[..., 1:2], inv)
    gy.mul_(visible.to(gy.dtype)[..., None])
    vals = (gy[..., :, None] * gx[..., None, :]).view(M * win, win)
    # window row i of map m starts at element m·H·W + (y0 + i)·W + x0 of the flat buffer. ``rows``
    # is a view with one length-win row starting at every element; the rows written never overlap
    # (windows lie inside their own map, and W ≥ win), so one index_copy_ writes all windows.
    starts = ((torch.arange(M, device=kp.device) * (H * W) + y0.reshape(-1) * W
               + x0.reshape(-1))[:, None] + ar * W).reshape(-1)
    zero_fill_(out)
    flat = out.view(-1)
    rows = flat.as_strided((flat.numel() - win + 1, win), (1, 1))
    rows.index_copy_(0, starts, vals)
    return out


def _windows_apply(kp: Tensor, visible: Tensor, sigma: float, inv: float,
                   out: Optional[Tensor]) -> int:
    """The window size when :func:`_render_windows` gives exactly the full product's maps, else 0.

    Only into a recycled CPU buffer: into fresh memory one thread's ``memset`` takes all the page
    faults (2× slower than the full product's two threads). Both sides of the map must hold a window
    (it is then inside its map, and its rows never overlap). Non-finite inputs would spread NaN/inf
    along whole rows and columns of the full product: they take that path, as do buffers torch
    would refuse to write (an inference tensor outside inference mode: before the ``memset``).
    """
    if (out is None or out.device.type != 'cpu' or out.dtype != torch.float32
            or not out.is_contiguous() or not out.numel() or out.requires_grad
            or (out.is_inference() and not torch.is_inference_mode_enabled())
            or not (0 < float(sigma) < math.inf) or not inv <= torch.finfo(torch.float32).max
            or (torch.is_grad_enabled() and kp.requires_grad)):
        return 0
    win = _window_size(sigma)
    h, w = out.shape[-2:]
    if h < win or w < win or 4 * win * win > h * w:
        return 0
    if not bool(torch.isfinite(kp).all()):
        return 0
    if visible.is_floating_point() and not bool((torch.isfinite(visible)
                                                 & ~torch.signbit(visible)).all()):
        return 0                    # (a negative visibility would make the full product's 0s -0.0)
    return win


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
    A map value differs from Eq. 1 by at most 1.3e-19. A map is therefore 0 outside a window of
    ~2·6.6σ pixels around its joint: a contiguous float32 ``out`` on the CPU is written as a
    ``memset`` plus those windows (bit-identical to the full product, tested).
    """
    h, w = int(size[0]), int(size[1])
    dtype = out.dtype if out is not None else (dtype or keypoints.dtype)
    kp = keypoints.float()
    inv = 1.0 / (float(sigma) ** 2)
    if out is not None and tuple(out.shape) != tuple(kp.shape[:2]) + (h, w):
        raise ValueError(f'out has shape {tuple(out.shape)}, expected {tuple(kp.shape[:2]) + (h, w)}')
    win = _windows_apply(kp, visible, sigma, inv, out)
    if win:
        return _render_windows(kp, visible, sigma, inv, out, win)
    xs = torch.arange(w, device=kp.device, dtype=torch.float32)
    ys = torch.arange(h, device=kp.device, dtype=torch.float32)
    gx = _profile(xs, kp[..., 0:1], inv)                               # (B, K, W)
    gy = _profile(ys, kp[..., 1:2], inv)                               # (B, K, H)
    gy = gy * visible.to(gy.dtype)[..., None]                        # zero maps for masked joints
    if out is not None:
        if out.dtype == torch.float32:
            return torch.mul(gy[..., :, None], gx[..., None, :], out=out)
        return out.copy_(gy[..., :, None] * gx[..., None, :])
    return (gy[..., :, None] * gx[..., None, :]).to(dtype)

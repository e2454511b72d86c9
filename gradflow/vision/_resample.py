"""Bicubic resampling in torch with Pillow's convention (private).

The SR backbones add the bicubic upsampling of their input to their output; the SR baseline
(:func:`gradflow.vision.data.bicubic_resize`) is Pillow's bicubic resize. Both must be the same map for an
untrained network to score exactly the baseline, and torch's ``interpolate(mode="bicubic")`` is not that
map (cubic coefficient -0.75 and replicated borders, where Pillow uses -0.5 and renormalises the kernel
over the pixels inside the image). This module computes Pillow's map as a separable sum of taps.
"""

from __future__ import annotations

import math

import torch

from .._validation import check_finite, check_positive_int

__all__ = ["bicubic_upsample"]

_A = -0.5  # Pillow's (Keys') cubic coefficient
_SUPPORT = 2.0


def _cubic(t: torch.Tensor) -> torch.Tensor:
    """Keys' cubic kernel with a = -0.5: (a+2)|t|^3 - (a+3)|t|^2 + 1 on |t| < 1,
    a(|t|^3 - 5|t|^2 + 8|t| - 4) on 1 <= |t| < 2, 0 beyond."""
    t = t.abs()
    inner = ((_A + 2.0) * t - (_A + 3.0)) * t * t + 1.0
    outer = (((t - 5.0) * t + 8.0) * t - 4.0) * _A
    return torch.where(t < 1.0, inner, torch.where(t < 2.0, outer, torch.zeros_like(t)))


def _taps(n_in: int, n_out: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(index (n_out, K), weight (n_out, K)) in float64: output i = sum_k weight[i, k] * input[index[i, k]].

    Pillow's rule: centre c = (i + 0.5) n_in / n_out; the kernel, widened by f = max(n_in / n_out, 1) when
    reducing, covers the input pixels j with int(c - 2f + 0.5) <= j < int(c + 2f + 0.5) clipped to the image,
    takes weights cubic((j - c + 0.5) / f) and is normalised to sum 1 over them. Unused taps have weight 0.
    """
    ratio = n_in / n_out
    f = max(ratio, 1.0)
    support = _SUPPORT * f
    k = math.ceil(support) * 2 + 1
    centre = (torch.arange(n_out, dtype=torch.float64) + 0.5) * ratio
    low = torch.clamp((centre - support + 0.5).trunc(), min=0.0)
    high = torch.clamp((centre + support + 0.5).trunc(), max=float(n_in))
    index = low[:, None] + torch.arange(k, dtype=torch.float64)
    weight = _cubic((index - centre[:, None] + 0.5) / f)
    weight = torch.where(index < high[:, None], weight, torch.zeros_like(weight))
    total = weight.sum(1, keepdim=True)
    weight = torch.where(total != 0, weight / torch.where(total != 0, total, torch.ones_like(total)), weight)
    return index.clamp(max=n_in - 1).long(), weight


_CACHE: dict = {}


def _cached_taps(n_in: int, n_out: int, dtype: torch.dtype, device: torch.device):
    key = (n_in, n_out, dtype, device)
    taps = _CACHE.get(key)
    if taps is None:
        index, weight = _taps(n_in, n_out)
        taps = (index.to(device), weight.to(device=device, dtype=dtype))
        if len(_CACHE) > 64:  # patch sizes in training, a few image sizes in evaluation: keep it bounded
            _CACHE.clear()
        _CACHE[key] = taps
    return taps


def _resample_last(x: torch.Tensor, n_out: int) -> torch.Tensor:
    """Resample the last dimension of x to ``n_out`` samples."""
    index, weight = _cached_taps(x.shape[-1], n_out, x.dtype, x.device)
    gathered = x[..., index]  # (..., n_out, K)
    return (gathered * weight).sum(-1)


def bicubic_upsample(x: torch.Tensor, scale: int) -> torch.Tensor:
    r"""Pillow's bicubic resize of a batch of images by an integer factor, differentiable, in torch.

    Separable: along each axis, y_i = sum_j w_ij x_j with w_ij = cubic((j - c_i + 0.5)) / sum_j' cubic(...)
    over the pixels j inside the image near the centre c_i = (i + 0.5) / scale, cubic being Keys'
    kernel with a = -0.5. No clamping to [0, 1].

    Shapes: (B, C, H, W) -> (B, C, scale H, scale W), in x's dtype and on its device.

    Example:
        >>> bicubic_upsample(torch.ones(1, 1, 3, 4), 2).shape
        torch.Size([1, 1, 6, 8])
        >>> bool(torch.allclose(bicubic_upsample(torch.ones(1, 1, 3, 4), 2), torch.ones(1, 1, 6, 8)))
        True
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim != 4 or x.numel() == 0:
        kind = f"dtype {x.dtype}, shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a non-empty floating-point tensor of shape (B, C, H, W), got {kind}")
    check_finite(x, "x")
    return _upsample(x, check_positive_int(scale, "scale"))


def _upsample(x: torch.Tensor, scale: int) -> torch.Tensor:
    """:func:`bicubic_upsample` without the input checks (the backbones' forward pass)."""
    height, width = x.shape[-2:]
    out = _resample_last(x, scale * width)
    return _resample_last(out.transpose(-1, -2), scale * height).transpose(-1, -2)

"""Image quality metrics: PSNR and SSIM per image (private)."""

from __future__ import annotations

import torch

from ._checks import check_image

__all__ = ["psnr", "ssim"]


def _pair(x, reference):
    check_image(x, "x")
    check_image(reference, "reference")
    if x.shape != reference.shape:
        raise ValueError(f"x and reference must have the same shape, got {tuple(x.shape)} and {tuple(reference.shape)}")


def psnr(x: torch.Tensor, reference: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio per image, 10 log10(data_range^2 / mean((x - reference)^2)) dB, shape (B,).

    Example:
        >>> ref = torch.zeros(1, 1, 4, 4)
        >>> float(psnr(ref + 0.1, ref))
        20.0
    """
    _pair(x, reference)
    mse = (x - reference).square().flatten(1).mean(1)
    return 10 * torch.log10(data_range**2 / mse.clamp_min(torch.finfo(mse.dtype).tiny))


def ssim(x: torch.Tensor, reference: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Structural similarity per image (``skimage.metrics.structural_similarity``, Gaussian-free 7x7
    windows, channels averaged), shape (B,). Images must be at least 7x7. Needs scikit-image."""
    _pair(x, reference)
    try:
        from skimage.metrics import structural_similarity
    except ImportError as err:  # pragma: no cover - optional dependency
        raise ImportError("ssim needs scikit-image: pip install 'gradflow[data]'") from err
    if min(x.shape[-2:]) < 7:
        raise ValueError(f"ssim needs images of at least 7x7 pixels, got {tuple(x.shape[-2:])}")
    a = x.detach().cpu().double().numpy()
    b = reference.detach().cpu().double().numpy()
    values = [structural_similarity(ai, bi, data_range=data_range, channel_axis=0) for ai, bi in zip(a, b)]
    return torch.tensor(values, dtype=torch.float64)

"""Image quality metrics: PSNR (gradflow's one PSNR, shared with gradflow.vision) and SSIM per image (private)."""

from __future__ import annotations

import torch

from .._imaging import check_image_pair, psnr
from .._validation import check_number

__all__ = ["psnr", "ssim"]


def ssim(x: torch.Tensor, reference: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Structural similarity per image (``skimage.metrics.structural_similarity`` with its defaults:
    uniform 7x7 windows, sample covariance, channels averaged), shape (B,) for images (B, C, H, W).
    Images must be at least 7x7 and finite; ``data_range`` (the peak value) a finite number > 0.
    Needs scikit-image.

    Note: :func:`gradflow.vision.ssim` is Wang et al.'s Gaussian-window SSIM (11x11, sigma 1.5), a
    different number for the same pair.
    """
    data_range = check_number(data_range, "data_range", minimum=0.0, strict=True)
    check_image_pair(x, reference)
    if x.ndim != 4:
        raise ValueError(f"x must have shape (B, C, H, W) (rank 4), got shape {tuple(x.shape)}")
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

"""Image quality metrics: gradflow's one PSNR and one SSIM (:mod:`gradflow._imaging`), shared with
gradflow.vision (private)."""

from __future__ import annotations

from .._imaging import psnr, ssim

__all__ = ["psnr", "ssim"]

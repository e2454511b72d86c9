"""Image metrics: PSNR (gradflow's one PSNR, shared with gradflow.inverse), Gaussian SSIM, both with the
super-resolution options (border crop, luma), accuracy, mean IoU (private)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .._imaging import check_image_pair, psnr, rgb_to_y
from .._validation import check_finite, check_number, check_positive_int

__all__ = ["accuracy", "mean_iou", "psnr", "rgb_to_y", "ssim"]


def _gaussian_window(size: int, sigma: float, dtype, device) -> torch.Tensor:
    t = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    w = torch.exp(-0.5 * (t / sigma) ** 2)
    return w / w.sum()


def ssim(x: torch.Tensor, y: torch.Tensor, *, data_range: float = 1.0, crop: int = 0, channel: str = "all",
         window: int = 11, sigma: float = 1.5):
    """Structural similarity (Wang et al. 2004) per image, shape (B,) for images (B, C, H, W): the mean over
    valid positions and channels of ((2 mu_x mu_y + C1)(2 s_xy + C2)) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2))
    with Gaussian-weighted local statistics (``window`` x ``window``, ``sigma``), C1 = (0.01 L)^2,
    C2 = (0.03 L)^2, L = ``data_range`` (a finite number > 0); as ``skimage.metrics.structural_similarity(
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``. ``crop`` and ``channel`` (``"all"``
    or the luma ``"y"``, the SR convention) as in :func:`psnr`; computed in float64.

    Note: :func:`gradflow.inverse.ssim` is scikit-image's default (uniform 7x7) SSIM, a different number.
    """
    data_range = check_number(data_range, "data_range", minimum=0.0, strict=True)
    check_positive_int(window, "window")
    sigma = check_number(sigma, "sigma", minimum=0.0, strict=True)
    if isinstance(x, torch.Tensor) and x.ndim != 4:
        raise ValueError(f"x must have shape (B, C, H, W), got shape {tuple(x.shape)}")
    x, y = check_image_pair(x, y, crop=crop, channel=channel, reference_name="y")
    if min(x.shape[-2:]) < window:
        raise ValueError(f"images of size {tuple(x.shape[-2:])} are smaller than the {window}-pixel SSIM window")
    channels = x.shape[1]
    w = _gaussian_window(window, sigma, x.dtype, x.device)
    kernel = (w[:, None] * w[None, :]).expand(channels, 1, window, window)

    def filt(t):
        return F.conv2d(t, kernel, groups=channels)

    mu_x, mu_y = filt(x), filt(y)
    var_x = filt(x * x) - mu_x.square()
    var_y = filt(y * y) - mu_y.square()
    cov = filt(x * y) - mu_x * mu_y
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x.square() + mu_y.square() + c1) * (var_x + var_y + c2))
    return s.mean((1, 2, 3))


def _check_labels(labels: torch.Tensor, shape, name="labels"):
    if not isinstance(labels, torch.Tensor) or labels.dtype not in (torch.int64, torch.int32, torch.uint8):
        raise ValueError(f"{name} must be an integer tensor")
    if tuple(labels.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(labels.shape)}")
    if labels.numel() == 0:
        raise ValueError(f"{name} is empty")


def _check_logits(logits: torch.Tensor, shape: str, ndim: int | None = None) -> None:
    if (not isinstance(logits, torch.Tensor) or not logits.is_floating_point() or logits.ndim < 2
            or (ndim is not None and logits.ndim != ndim)):
        desc = f"shape {tuple(logits.shape)}, dtype {logits.dtype}" if isinstance(logits, torch.Tensor) else type(
            logits).__name__
        raise ValueError(f"logits must be a floating-point tensor of shape {shape}, got {desc}")
    if logits.shape[1] == 0:
        raise ValueError(f"logits must have at least one class in dim 1, got shape {tuple(logits.shape)}")
    check_finite(logits, "logits")


def _check_label_range(labels: torch.Tensor, k: int) -> None:
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= k:
        raise ValueError(f"labels must lie in 0..{k - 1} (the class indices), got values in {low}..{high}")


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows whose arg-max over dim 1 equals the label: logits (N, K, ...) (finite), labels
    (N, ...) integers in 0..K-1."""
    _check_logits(logits, "(N, K, ...)")
    _check_labels(labels, logits.shape[:1] + logits.shape[2:])
    _check_label_range(labels, logits.shape[1])
    return float((logits.argmax(1) == labels).double().mean())


def mean_iou(logits: torch.Tensor, labels: torch.Tensor, num_classes: int | None = None) -> float:
    """Mean intersection-over-union over the classes present in ``labels`` or in the prediction:
    logits (N, K, H, W) (finite; prediction = arg-max over K), labels (N, H, W) integers in
    0..num_classes-1 (``num_classes`` >= K, default K). Classes absent from both are skipped (their IoU
    is undefined)."""
    _check_logits(logits, "(N, K, H, W)", ndim=4)
    _check_labels(labels, logits.shape[:1] + logits.shape[2:])
    k = logits.shape[1] if num_classes is None else check_positive_int(num_classes, "num_classes")
    if k < logits.shape[1]:
        raise ValueError(f"num_classes must be >= the {logits.shape[1]} classes of the logits, got {num_classes}")
    _check_label_range(labels, k)
    pred = logits.argmax(1).flatten()
    labels = labels.flatten().long()
    confusion = torch.bincount(labels * k + pred, minlength=k * k).reshape(k, k).double()
    intersection = confusion.diag()
    union = confusion.sum(0) + confusion.sum(1) - intersection
    present = union > 0
    return float((intersection[present] / union[present]).mean()) if bool(present.any()) else math.nan

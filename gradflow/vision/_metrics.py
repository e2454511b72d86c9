"""Image metrics: PSNR on the luma channel with a border crop, SSIM, accuracy, mean IoU (private)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .._validation import check_positive_int

__all__ = ["accuracy", "mean_iou", "psnr", "rgb_to_y", "ssim"]


def rgb_to_y(image: torch.Tensor) -> torch.Tensor:
    """ITU-R BT.601 luma of (B, 3, H, W) RGB in [0, 1], as MATLAB's rgb2ycbcr (the SR convention):
    Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255, shape (B, 1, H, W). One-channel input is returned."""
    if image.shape[-3] == 1:
        return image
    if image.shape[-3] != 3:
        raise ValueError(f"expected 1 or 3 channels in dim -3, got shape {tuple(image.shape)}")
    weights = image.new_tensor([65.481, 128.553, 24.966]).view(3, 1, 1)
    return (16.0 + (image * weights).sum(-3, keepdim=True)) / 255.0


def _prepare(x: torch.Tensor, y: torch.Tensor, crop: int, y_channel: bool):
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.ndim != 4:
            desc = f"shape {tuple(t.shape)}, dtype {t.dtype}" if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"{name} must be a float tensor of shape (B, C, H, W), got {desc}")
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    check_positive_int(crop, "crop", minimum=0)
    if crop and min(x.shape[-2:]) <= 2 * crop:
        raise ValueError(f"a {crop}-pixel border crop leaves nothing of a {tuple(x.shape[-2:])} image")
    if y_channel:
        x, y = rgb_to_y(x), rgb_to_y(y)
    if crop:
        x, y = x[..., crop:-crop, crop:-crop], y[..., crop:-crop, crop:-crop]
    return x.double(), y.double()


def psnr(x: torch.Tensor, y: torch.Tensor, crop: int = 0, y_channel: bool = True, data_range: float = 1.0):
    """Peak signal-to-noise ratio per image, 10 log10(data_range^2 / MSE), in dB: shape (B,).

    The SR convention: ``crop`` = the scale (that many border pixels are ignored), on the Y channel of
    RGB (``y_channel=True``). Inputs (B, C, H, W) in [0, data_range]; computed in float64.

    Example:
        >>> hr = torch.rand(2, 3, 32, 32); psnr(hr.clamp(0.1, 0.9), hr, crop=2).shape
        torch.Size([2])
    """
    x, y = _prepare(x, y, crop, y_channel)
    mse = (x - y).square().mean((1, 2, 3))
    return 10.0 * torch.log10(data_range**2 / mse)


def _gaussian_window(size: int, sigma: float, dtype, device) -> torch.Tensor:
    t = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    w = torch.exp(-0.5 * (t / sigma) ** 2)
    return w / w.sum()


def ssim(x: torch.Tensor, y: torch.Tensor, crop: int = 0, y_channel: bool = True, data_range: float = 1.0,
         window: int = 11, sigma: float = 1.5):
    """Structural similarity (Wang et al. 2004) per image, shape (B,): the mean over valid positions and
    channels of ((2 mu_x mu_y + C1)(2 s_xy + C2)) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2)) with
    Gaussian-weighted local statistics (``window`` x ``window``, ``sigma``), C1 = (0.01 L)^2,
    C2 = (0.03 L)^2; as ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False)``. ``crop`` and ``y_channel`` as in :func:`psnr`.
    """
    x, y = _prepare(x, y, crop, y_channel)
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


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows whose arg-max over dim 1 equals the label: logits (N, K, ...), labels (N, ...)."""
    if not isinstance(logits, torch.Tensor) or logits.ndim < 2:
        raise ValueError("logits must be a tensor of shape (N, K, ...)")
    _check_labels(labels, logits.shape[:1] + logits.shape[2:])
    return float((logits.argmax(1) == labels).double().mean())


def mean_iou(logits: torch.Tensor, labels: torch.Tensor, num_classes: int | None = None) -> float:
    """Mean intersection-over-union over the classes present in ``labels`` or in the prediction:
    logits (N, K, H, W) (prediction = arg-max over K), labels (N, H, W). Classes absent from both are
    skipped (their IoU is undefined)."""
    if not isinstance(logits, torch.Tensor) or logits.ndim != 4:
        raise ValueError("logits must be a tensor of shape (N, K, H, W)")
    _check_labels(labels, logits.shape[:1] + logits.shape[2:])
    k = logits.shape[1] if num_classes is None else check_positive_int(num_classes, "num_classes")
    pred = logits.argmax(1).flatten()
    labels = labels.flatten().long()
    if int(labels.max()) >= k or int(labels.min()) < 0:
        raise ValueError(f"labels must lie in 0..{k - 1}")
    confusion = torch.bincount(labels * k + pred, minlength=k * k).reshape(k, k).double()
    intersection = confusion.diag()
    union = confusion.sum(0) + confusion.sum(1) - intersection
    present = union > 0
    return float((intersection[present] / union[present]).mean()) if bool(present.any()) else math.nan

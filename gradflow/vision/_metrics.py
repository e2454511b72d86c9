"""Image metrics: gradflow's one PSNR and one SSIM (:mod:`gradflow._imaging`, shared with gradflow.inverse),
both with the super-resolution options (border crop, luma), accuracy, mean IoU (private)."""

from __future__ import annotations

import math

import torch

from .._imaging import psnr, rgb_to_y, ssim
from .._validation import check_finite, check_positive_int

__all__ = ["accuracy", "mean_iou", "psnr", "rgb_to_y", "ssim"]


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

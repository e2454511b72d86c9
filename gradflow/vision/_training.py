"""Training and evaluation of the vision backbones through :func:`gradflow.train.fit` (private)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._validation import check_finite
from ..train import FitResult, fit
from ._metrics import accuracy, mean_iou, psnr, ssim

__all__ = ["evaluate_classifier", "evaluate_segmenter", "evaluate_sr", "super_resolve", "train_classifier",
           "train_segmenter", "train_sr"]


#: how far outside [0, 1] a float image given to :func:`super_resolve` may reach (resampling overshoot)
_RANGE_SLACK = 0.1


def _l1(model, batch):
    lr, hr = batch
    return F.l1_loss(model(lr), hr)


def _cross_entropy(model, batch):
    x, y = batch
    return F.cross_entropy(model(x), y)


def _check_model(model, task: str) -> None:
    if not isinstance(model, nn.Module) or getattr(model, "task", None) != task:
        raise ValueError(f"model must be a {task} backbone from create_backbone, got {type(model).__name__}")


def train_sr(model: nn.Module, data, *, val_data=None, steps: int = 1000, batch_size: int = 16, lr: float = 1e-4,
             **fit_kwargs) -> FitResult:
    """Train a super-resolution backbone on (LR, HR) pairs with the L1 loss (EDSR's recipe: Adam, lr 1e-4)
    by :func:`gradflow.train.fit`; ``data``/``val_data`` are e.g. :class:`~gradflow.vision.data.SRPatchDataset`;
    ``fit_kwargs`` go to ``fit`` (seed, device, max_time, scheduler, checkpoint_dir, callbacks, ...)."""
    _check_model(model, "sr")
    return fit(model, _l1, data, val_data=val_data, steps=steps, batch_size=batch_size, lr=lr, **fit_kwargs)


def train_classifier(model: nn.Module, data, *, val_data=None, epochs: int = 10, batch_size: int = 64,
                     lr: float = 1e-3, **fit_kwargs) -> FitResult:
    """Train a classifier on ``(images (N, C, H, W), labels (N,))`` with cross-entropy by
    :func:`gradflow.train.fit` (Adam by default; ``fit_kwargs`` go to ``fit``)."""
    _check_model(model, "classification")
    return fit(model, _cross_entropy, data, val_data=val_data, epochs=epochs, batch_size=batch_size, lr=lr,
               **fit_kwargs)


def train_segmenter(model: nn.Module, data, *, val_data=None, epochs: int = 10, batch_size: int = 32,
                    lr: float = 1e-3, **fit_kwargs) -> FitResult:
    """Train a segmenter on ``(images (N, C, H, W), labels (N, H, W))`` with per-pixel cross-entropy by
    :func:`gradflow.train.fit` (``fit_kwargs`` go to ``fit``)."""
    _check_model(model, "segmentation")
    return fit(model, _cross_entropy, data, val_data=val_data, epochs=epochs, batch_size=batch_size, lr=lr,
               **fit_kwargs)


def _device(model):
    return next(model.parameters()).device


@torch.no_grad()
def super_resolve(model: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """The model's output for one (C, h, w) image (eval mode, no grad), on the CPU.

    The models work on intensities in [0, 1]. A floating-point ``image`` must hold values in [0, 1]
    (finite; a small overshoot from resampling is tolerated) and the output is a float image clamped to
    [0, 1] in the model's dtype. An 8-bit ``image`` (uint8, 0..255) is divided by 255 and the output
    is converted back to uint8 (rounded), so 8-bit in gives 8-bit out. Other integer dtypes and float
    images on a 0..255 scale raise ValueError.

    Example:
        >>> from gradflow.vision import create_backbone
        >>> model = create_backbone("sedsr", scale=2)
        >>> super_resolve(model, torch.zeros(3, 8, 8, dtype=torch.uint8)).dtype
        torch.uint8
    """
    _check_model(model, "sr")
    if not isinstance(image, torch.Tensor) or image.ndim != 3:
        raise ValueError(f"image must be a tensor of shape (C, h, w), got {getattr(image, 'shape', type(image))}")
    eight_bit = image.dtype == torch.uint8
    if not (eight_bit or image.is_floating_point()):
        raise ValueError(f"image must be floating-point with values in [0, 1] or uint8 (0..255), "
                         f"got dtype {image.dtype}")
    if image.numel() == 0:
        raise ValueError(f"image is empty: shape {tuple(image.shape)}")
    if not eight_bit:
        check_finite(image, "image")
        low, high = float(image.min()), float(image.max())
        if low < -_RANGE_SLACK or high > 1.0 + _RANGE_SLACK:
            raise ValueError(f"a floating-point image must hold values in [0, 1], got values in [{low:g}, {high:g}]"
                             + ("; for 0..255 values divide by 255 or pass a uint8 tensor" if high > 1.5 else ""))
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters())
        x = image.to(param.device, param.dtype)
        out = model((x / 255.0 if eight_bit else x).unsqueeze(0))[0]
    finally:
        model.train(was_training)
    out = out.clamp(0.0, 1.0).cpu()
    return (out * 255.0).round().to(torch.uint8) if eight_bit else out


def evaluate_sr(model: nn.Module | None, pairs, scale: int) -> dict:
    """Mean luma PSNR and SSIM (the SR convention: ``psnr(..., crop=scale, channel="y")``, i.e. PSNR-Y with
    a ``scale``-pixel border crop) over full (LR, HR) image ``pairs`` of the model's outputs, or of bicubic
    upsampling for ``model=None`` (the floor). Returns ``{"psnr": dB, "ssim": value, "psnr_per_image": [...]}``
    (both on the Y channel)."""
    from .data import bicubic_resize

    if len(pairs) == 0:
        raise ValueError("pairs is empty")
    values, structural = [], []
    for lr_image, hr in pairs:
        if model is None:
            sr = bicubic_resize(lr_image, tuple(hr.shape[-2:]))
        else:
            sr = super_resolve(model, lr_image)
        if sr.shape != hr.shape:
            raise ValueError(f"output {tuple(sr.shape)} does not match the HR image {tuple(hr.shape)}")
        values.append(float(psnr(sr[None], hr[None], crop=scale, channel="y")))
        structural.append(float(ssim(sr[None], hr[None], crop=scale, channel="y")))
    return {"psnr": sum(values) / len(values), "ssim": sum(structural) / len(structural), "psnr_per_image": values}


@torch.no_grad()
def _logits(model, images, batch_size):
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters())
        return torch.cat([model(chunk.to(param.device, param.dtype)).cpu() for chunk in images.split(batch_size)])
    finally:
        model.train(was_training)


def evaluate_classifier(model: nn.Module, data, batch_size: int = 256) -> dict:
    """``{"accuracy": fraction}`` of the classifier on ``(images, labels)`` (eval mode)."""
    _check_model(model, "classification")
    images, labels = data
    return {"accuracy": accuracy(_logits(model, images, batch_size), labels)}


def evaluate_segmenter(model: nn.Module, data, batch_size: int = 64) -> dict:
    """``{"miou": mean IoU, "pixel_accuracy": fraction}`` of the segmenter on ``(images, labels)``."""
    _check_model(model, "segmentation")
    images, labels = data
    logits = _logits(model, images, batch_size)
    return {"miou": mean_iou(logits, labels, model.num_classes), "pixel_accuracy": accuracy(logits, labels)}

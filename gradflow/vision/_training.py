"""Training and evaluation of the vision backbones through :func:`gradflow.train.fit` (private)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..train import FitResult, fit
from ._metrics import accuracy, mean_iou, psnr, ssim

__all__ = ["evaluate_classifier", "evaluate_segmenter", "evaluate_sr", "super_resolve", "train_classifier",
           "train_segmenter", "train_sr"]


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
    """The model's output for one (C, h, w) image (eval mode, no grad), clamped to [0, 1], on the CPU."""
    _check_model(model, "sr")
    if not isinstance(image, torch.Tensor) or image.ndim != 3:
        raise ValueError(f"image must be a tensor of shape (C, h, w), got {getattr(image, 'shape', type(image))}")
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters())
        out = model(image.to(param.device, param.dtype).unsqueeze(0))[0]
    finally:
        model.train(was_training)
    return out.clamp(0.0, 1.0).cpu()


def evaluate_sr(model: nn.Module | None, pairs, scale: int) -> dict:
    """Mean PSNR and SSIM (Y channel, ``scale``-pixel border crop) over full (LR, HR) image ``pairs`` of the
    model's outputs, or of bicubic upsampling for ``model=None`` (the floor). Returns
    ``{"psnr": dB, "ssim": value, "psnr_per_image": [...]}``."""
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
        values.append(float(psnr(sr[None], hr[None], crop=scale)))
        structural.append(float(ssim(sr[None], hr[None], crop=scale)))
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

"""Backbones by name (timm-style ``create_backbone`` / ``list_backbones``) (private)."""

from __future__ import annotations

import inspect

from torch import nn

from .._validation import check_choice
from ._backbones import EDSR, ResNet, UNet

__all__ = ["create_backbone", "list_backbones"]

# name -> (constructor, default keyword arguments); users may override any of them
_BACKBONES = {
    "edsr": (EDSR, {"n_blocks": 16, "channels": 64, "res_scale": 0.1, "alpha_init": -3.0}),
    "sedsr": (EDSR, {"n_blocks": 4, "channels": 32, "res_scale": 1.0, "alpha_init": 3.0}),
    "resnet20": (ResNet, {"stages": [(16, 3), (32, 3), (64, 3)]}),
    "resnet56": (ResNet, {"stages": [(16, 9), (32, 9), (64, 9)]}),
    "resnet18": (ResNet, {"stages": [(64, 2), (128, 2), (256, 2), (512, 2)]}),
    "unet": (UNet, {"width": 32, "depth": 3}),
}


def list_backbones(task: str | None = None) -> list[str]:
    """Names accepted by :func:`create_backbone`, optionally only those of one ``task`` (``"sr"``,
    ``"classification"`` or ``"segmentation"``)."""
    if task is not None:
        check_choice(task, "task", {cls.task for cls, _ in _BACKBONES.values()})
    return sorted(name for name, (cls, _) in _BACKBONES.items() if task is None or cls.task == task)


def create_backbone(name: str, **kwargs) -> nn.Module:
    """Build the backbone ``name`` with its defaults overridden by ``kwargs``.

    ========== ============================================================== ==================
    name       architecture (defaults)                                        task
    ========== ============================================================== ==================
    edsr       EDSR-baseline: 16 blocks x 64 channels, res_scale 0.1,          sr (``scale``)
               PixelShuffle, alpha_init -3
    sedsr      small EDSR: 4 blocks x 32 channels, res_scale 1, alpha_init +3   sr (``scale``)
    resnet20   CIFAR ResNet-20: 3 stages (16, 32, 64) x 3 blocks              classification
    resnet56   CIFAR ResNet-56: 3 stages (16, 32, 64) x 9 blocks              classification
    resnet18   ResNet-18 with a CIFAR stem: (64, 128, 256, 512) x 2 blocks     classification
    unet       residual U-Net: width 32, depth 3                              segmentation
    ========== ============================================================== ==================

    Every backbone takes ``residual`` (one of :data:`RESIDUALS`: ``"identity"`` for the baseline,
    ``"convex"`` for the gradient residual, ``"gradnet"`` for the GradNet residual, ...), ``alpha_init``,
    ``learn_alpha``, ``normalize``, ``second_order`` and ``in_channels`` (default 3); SR models take
    ``scale`` in {2, 3, 4} and start at the bicubic upsampling of their input (``bicubic_skip=True`` with a
    zero-initialised tail, see :class:`EDSR`; ``bicubic_skip=False`` for the literal EDSR); classifiers and
    segmenters take ``num_classes``. Unknown names or keyword arguments raise ValueError listing the valid ones.

    Example:
        >>> import torch
        >>> model = create_backbone("sedsr", scale=2, residual="convex")
        >>> model(torch.rand(1, 3, 16, 16)).shape
        torch.Size([1, 3, 32, 32])
    """
    check_choice(name, "backbone name", list(_BACKBONES))
    cls, defaults = _BACKBONES[name]
    valid = [p for p in inspect.signature(cls).parameters if p != "self"]
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise ValueError(f"unknown argument(s) {', '.join(unknown)} for backbone {name!r}; valid: {', '.join(valid)}")
    return cls(**{**defaults, **kwargs})

"""Vision: gradient residual connections, backbones for super-resolution, classification and
segmentation, offline image data (:mod:`gradflow.vision.data`) and image metrics (:func:`psnr` is gradflow's
one PSNR, the same function as :func:`gradflow.inverse.psnr`: every channel by default; the SR results are
luma PSNR, ``psnr(sr, hr, crop=scale, channel="y")``, as :func:`evaluate_sr` computes them).

Example:
    >>> from gradflow.vision import create_backbone
    >>> baseline = create_backbone("sedsr", scale=2)                      # identity residual
    >>> gradres = create_backbone("sedsr", scale=2, residual="convex")     # gradient residual
"""

from ._backbones import EDSR, RESIDUALS, SR_SCALES, PixelShuffleUpsampler, ResNet, UNet, residual_block
from ._gradnet import ConvGradNet, GradNetResidual
from ._metrics import accuracy, mean_iou, psnr, rgb_to_y, ssim
from ._registry import create_backbone, list_backbones
from ._residual import BRANCH_ACTIVATIONS, NORMALIZATIONS, RESIDUAL_MODES, ConvBranch, GradResidual, normalize_field
from ._training import (
    evaluate_classifier,
    evaluate_segmenter,
    evaluate_sr,
    super_resolve,
    train_classifier,
    train_segmenter,
    train_sr,
)

__all__ = [
    "BRANCH_ACTIVATIONS",
    "EDSR",
    "NORMALIZATIONS",
    "RESIDUALS",
    "RESIDUAL_MODES",
    "SR_SCALES",
    "ConvBranch",
    "ConvGradNet",
    "GradNetResidual",
    "GradResidual",
    "PixelShuffleUpsampler",
    "ResNet",
    "UNet",
    "accuracy",
    "create_backbone",
    "evaluate_classifier",
    "evaluate_segmenter",
    "evaluate_sr",
    "list_backbones",
    "mean_iou",
    "normalize_field",
    "psnr",
    "residual_block",
    "rgb_to_y",
    "ssim",
    "super_resolve",
    "train_classifier",
    "train_segmenter",
    "train_sr",
]

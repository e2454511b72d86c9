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
from ._baselines import linear_classifier_baseline, threshold_segmenter_baseline
from ._gradnet import ConvGradNet, GradNetResidual
from ._metrics import accuracy, mean_iou, psnr, rgb_to_y, ssim
from ._registry import create_backbone, list_backbones
from ._resample import bicubic_upsample
from ._residual import BRANCH_ACTIVATIONS, NORMALIZATIONS, RESIDUAL_MODES, ConvBranch, GradResidual, normalize_field
from ._training import (
    auto_gate_lr,
    evaluate_classifier,
    evaluate_segmenter,
    evaluate_sr,
    gate_parameters,
    super_resolve,
    train_classifier,
    train_segmenter,
    train_sr,
    warmup_cosine,
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
    "auto_gate_lr",
    "bicubic_upsample",
    "create_backbone",
    "evaluate_classifier",
    "evaluate_segmenter",
    "evaluate_sr",
    "gate_parameters",
    "linear_classifier_baseline",
    "list_backbones",
    "mean_iou",
    "normalize_field",
    "psnr",
    "residual_block",
    "rgb_to_y",
    "ssim",
    "super_resolve",
    "threshold_segmenter_baseline",
    "train_classifier",
    "train_segmenter",
    "train_sr",
    "warmup_cosine",
]

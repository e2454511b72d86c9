"""Image quality metrics shared by the domains (private): one PSNR, re-exported by gradflow.inverse and
gradflow.vision, and the luma conversion it can score on."""

from __future__ import annotations

import math

import torch

from ._validation import check_choice, check_finite, check_number, check_positive_int

__all__ = ["CHANNELS", "check_image_pair", "psnr", "rgb_to_y"]

#: what :func:`psnr` scores: every channel as given, or the BT.601 luma of RGB (the super-resolution convention)
CHANNELS = ("all", "y")


def rgb_to_y(image: torch.Tensor) -> torch.Tensor:
    """ITU-R BT.601 luma of (..., 3, H, W) RGB in [0, 1], as MATLAB's rgb2ycbcr (the SR convention):
    Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255, shape (..., 1, H, W). One-channel input is
    returned as it is (taken to be luma already).

    Example:
        >>> round(255 * rgb_to_y(torch.ones(1, 3, 1, 1)).item(), 3)  # white: Y = 235 / 255
        235.0
    """
    if not isinstance(image, torch.Tensor) or not image.is_floating_point() or image.ndim < 3:
        desc = (f"shape {tuple(image.shape)}, dtype {image.dtype}" if isinstance(image, torch.Tensor)
                else type(image).__name__)
        raise ValueError(f"image must be a float tensor of shape (..., C, H, W), got {desc}")
    if image.shape[-3] == 1:
        return image
    if image.shape[-3] != 3:
        raise ValueError(f"expected 1 or 3 channels in dim -3, got shape {tuple(image.shape)}")
    weights = image.new_tensor([65.481, 128.553, 24.966]).view(3, 1, 1)
    return (16.0 + (image * weights).sum(-3, keepdim=True)) / 255.0


def check_image_pair(x, reference, *, crop: int = 0, channel: str = "all", x_name: str = "x",
                     reference_name: str = "reference") -> tuple[torch.Tensor, torch.Tensor]:
    """Validate two image batches of one shape (..., C, H, W) for a full-reference metric and return them
    in float64, on the ``channel`` selection ("all" or "y", see :data:`CHANNELS`), with ``crop`` border
    pixels removed. Raises ValueError naming the argument for a non-tensor, a non-floating dtype, fewer
    than 3 dimensions, an empty image, a shape or device mismatch, NaN/inf, a bad crop or channel."""
    for name, t in ((x_name, x), (reference_name, reference)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.ndim < 3:
            desc = f"shape {tuple(t.shape)}, dtype {t.dtype}" if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"{name} must be a floating-point tensor of shape (B, C, H, W) (or (..., C, H, W)), "
                             f"got {desc}")
        if t.numel() == 0:
            raise ValueError(f"{name} is empty: shape {tuple(t.shape)}")
    if x.shape != reference.shape:
        raise ValueError(f"{x_name} and {reference_name} must have the same shape, got {tuple(x.shape)} and "
                         f"{tuple(reference.shape)}")
    if x.device != reference.device:
        raise ValueError(f"{x_name} is on {x.device} but {reference_name} is on {reference.device}; move one of them")
    check_finite(x, x_name)
    check_finite(reference, reference_name)
    check_positive_int(crop, "crop", minimum=0)
    check_choice(channel, "channel", CHANNELS)
    if crop and min(x.shape[-2:]) <= 2 * crop:
        raise ValueError(f"a {crop}-pixel border crop leaves nothing of a {tuple(x.shape[-2:])} image")
    if channel == "y":
        x, reference = rgb_to_y(x), rgb_to_y(reference)
    if crop:
        x, reference = x[..., crop:-crop, crop:-crop], reference[..., crop:-crop, crop:-crop]
    return x.double(), reference.double()


def psnr(x: torch.Tensor, reference: torch.Tensor, *, data_range: float = 1.0, crop: int = 0,
         channel: str = "all") -> torch.Tensor:
    r"""Peak signal-to-noise ratio per image, 10 log10(data_range^2 / MSE) dB, shape (...) for images
    (..., C, H, W) (one value per image of a (B, C, H, W) batch).

    The MSE is the mean over the scored pixels, computed in float64; the result has the promoted dtype
    of the inputs. Identical images give +inf (the perfect score).

    Args:
        x, reference: the estimate and the ground truth, same shape, finite, values in [0, data_range].
        data_range: the peak value, a finite number > 0 (1 for images in [0, 1], 255 for 8-bit values).
        crop: border pixels ignored on each side (the super-resolution convention is ``crop = scale``).
        channel: ``"all"`` (default): every channel as given; ``"y"``: the BT.601 luma of RGB
            (:func:`rgb_to_y`, the super-resolution convention, "PSNR-Y"; one-channel images are used as
            they are).

    Example:
        >>> ref = torch.zeros(1, 1, 4, 4)
        >>> float(psnr(ref + 0.1, ref))
        20.0
        >>> rgb = torch.rand(2, 3, 32, 32)
        >>> psnr(rgb.clamp(0.1, 0.9), rgb, crop=2, channel="y").shape
        torch.Size([2])
    """
    data_range = check_number(data_range, "data_range", minimum=0.0, strict=True)
    dtype = torch.promote_types(x.dtype, reference.dtype) if isinstance(x, torch.Tensor) and isinstance(
        reference, torch.Tensor) else None
    a, b = check_image_pair(x, reference, crop=crop, channel=channel)
    mse = (a - b).square().flatten(-3).mean(-1)
    return (20.0 * math.log10(data_range) - 10.0 * torch.log10(mse)).to(dtype)

"""Images shared by the domains (private): one PSNR and one SSIM, re-exported by gradflow.inverse and
gradflow.vision, the luma conversion they can score on, and the one image-file reader, with its pixel cap."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ._validation import check_choice, check_finite, check_number, check_positive_int

__all__ = ["CHANNELS", "DEFAULT_MAX_PIXELS", "check_image_pair", "psnr", "read_image", "rgb_to_y", "ssim",
           "write_image"]

#: the largest image (width x height) :func:`read_image` decodes unless told otherwise: 4096 x 4096 pixels
#: (a float32 RGB copy of it is 201 MB; the CLI's ``--max-pixels`` overrides it)
DEFAULT_MAX_PIXELS = 4096 * 4096

#: Pillow modes of single-channel (grey) images: what ``read_image(..., channels=None)`` reads as one channel
_GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")

#: what :func:`psnr` scores: every channel as given, or the BT.601 luma of RGB (the super-resolution convention)
CHANNELS = ("all", "y")


def rgb_to_y(image: torch.Tensor) -> torch.Tensor:
    """ITU-R BT.601 luma of (..., 3, H, W) RGB in [0, 1], as MATLAB's rgb2ycbcr (the SR convention):
    Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255, shape (..., 1, H, W). One-channel input is
    returned as it is (taken to be luma already). Raises ValueError naming ``image`` for a non-float
    tensor, fewer than 3 dimensions, another channel count in dim -3, or NaN/inf values.

    Example:
        >>> round(255 * rgb_to_y(torch.ones(1, 3, 1, 1)).item(), 3)  # white: Y = 235 / 255
        235.0
    """
    if not isinstance(image, torch.Tensor) or not image.is_floating_point() or image.ndim < 3:
        desc = (f"shape {tuple(image.shape)}, dtype {image.dtype}" if isinstance(image, torch.Tensor)
                else type(image).__name__)
        raise ValueError(f"image must be a float tensor of shape (..., C, H, W), got {desc}")
    if image.shape[-3] not in (1, 3):
        raise ValueError(f"image must have 1 or 3 channels in dim -3, got shape {tuple(image.shape)}")
    check_finite(image, "image")
    return _luma(image)


def _luma(image: torch.Tensor) -> torch.Tensor:
    """:func:`rgb_to_y` of an image already checked (1 or 3 channels in dim -3)."""
    if image.shape[-3] == 1:
        return image
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
        for name, t in ((x_name, x), (reference_name, reference)):
            if t.shape[-3] not in (1, 3):
                raise ValueError(f"channel='y' scores the luma of RGB: {name} must have 1 or 3 channels in dim -3, "
                                 f"got shape {tuple(t.shape)}")
        x, reference = _luma(x), _luma(reference)
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


def ssim(x: torch.Tensor, reference: torch.Tensor, *, data_range: float = 1.0, crop: int = 0, channel: str = "all",
         window: int = 11, sigma: float | None = 1.5) -> torch.Tensor:
    r"""Structural similarity (Wang et al. 2004) per image, shape (...) for images (..., C, H, W), float64:
    the mean over the valid window positions and the channels of

        ((2 mu_x mu_r + C1) (2 s_xr + C2)) / ((mu_x^2 + mu_r^2 + C1) (s_x^2 + s_r^2 + C2)),

    C1 = (0.01 L)^2, C2 = (0.03 L)^2, L = ``data_range``, with local statistics over a ``window`` x
    ``window`` window. Defaults (the paper's): a Gaussian window, 11 x 11, ``sigma`` 1.5, population
    (co)variances, i.e. ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False)``. ``sigma=None`` takes a uniform window with sample (co)variances,
    scikit-image's default with ``window=7``. Computed in float64.

    Args:
        x, reference: the estimate and the ground truth, same shape, finite, at least ``window`` pixels
            on each side after the crop.
        data_range: the peak value, a finite number > 0 (1 for images in [0, 1]).
        crop, channel: as in :func:`psnr` (``channel="y"``: the luma of RGB, the SR convention).
        window: the odd or even window side, an integer >= 2; sigma: the Gaussian's standard deviation
            in pixels (> 0), or None for a uniform window.

    Example:
        >>> ref = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
        >>> ssim(ref, ref)
        tensor([1., 1.], dtype=torch.float64)
        >>> bool(ssim(ref.flip(-1), ref, window=7, sigma=None)[0] < 0.5)
        True
    """
    data_range = check_number(data_range, "data_range", minimum=0.0, strict=True)
    window = check_positive_int(window, "window", minimum=2)
    if sigma is not None:
        sigma = check_number(sigma, "sigma", minimum=0.0, strict=True)
    a, b = check_image_pair(x, reference, crop=crop, channel=channel)
    if min(a.shape[-2:]) < window:
        raise ValueError(f"ssim needs images of at least {window}x{window} pixels (the window), got "
                         f"{tuple(a.shape[-2:])}{f' after a {crop}-pixel crop' if crop else ''}")
    batch, (channels, height, width) = a.shape[:-3], a.shape[-3:]
    a, b = a.reshape(-1, channels, height, width), b.reshape(-1, channels, height, width)
    if sigma is None:
        w = torch.full((window,), 1.0 / window, dtype=a.dtype, device=a.device)
        cov_norm = window * window / (window * window - 1.0)
    else:
        t = torch.arange(window, dtype=a.dtype, device=a.device) - (window - 1) / 2
        w = torch.exp(-0.5 * (t / sigma) ** 2)
        w, cov_norm = w / w.sum(), 1.0
    kernel = (w[:, None] * w[None, :]).expand(channels, 1, window, window)

    def local_mean(t):
        return F.conv2d(t, kernel, groups=channels)

    mu_a, mu_b = local_mean(a), local_mean(b)
    var_a = cov_norm * (local_mean(a * a) - mu_a.square())
    var_b = cov_norm * (local_mean(b * b) - mu_b.square())
    cov = cov_norm * (local_mean(a * b) - mu_a * mu_b)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a.square() + mu_b.square() + c1) * (var_a + var_b + c2))
    return s.mean((1, 2, 3)).reshape(batch)


def read_image(path: str | os.PathLike, *, channels: int | None = 3,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> torch.Tensor:
    """Read an image file (PNG, JPEG, any format Pillow reads) as a float32 tensor (channels, H, W) in [0, 1]
    (``channels`` 1: grayscale, Pillow's "L" luma; 3: RGB; None: the file's own kind, 1 for a grey file
    and 3 for any other, alpha dropped).

    The size is read from the file's header before any pixel is decoded: an image of more than
    ``max_pixels`` pixels (W x H; default :data:`DEFAULT_MAX_PIXELS` = 4096 x 4096) raises ValueError
    naming ``max_pixels`` (the CLI's ``--max-pixels``), so a small file that decodes to a huge image
    cannot exhaust memory. Raises OSError naming ``path`` for a missing or unreadable file.
    """
    try:
        from PIL import Image
    except ImportError as err:  # pragma: no cover - optional dependency
        raise ImportError("reading images needs Pillow: pip install 'gradflow[data]'") from err
    if channels not in (1, 3, None) or isinstance(channels, bool):
        raise ValueError(f"channels must be 1, 3 or None (the file's own kind), got {channels!r}")
    check_positive_int(max_pixels, "max_pixels")
    path = _check_path(path)
    if not path.is_file():
        raise OSError(f"no such image file at path {str(path)!r}")
    try:
        with Image.open(path) as image:
            width, height = image.size
            if channels is None:
                channels = 1 if image.mode in _GREY_MODES else 3
            array = None if width * height > max_pixels else np.asarray(image.convert("RGB" if channels == 3 else "L"))
    except Image.DecompressionBombError as err:
        raise ValueError(f"image {path} is larger than Pillow decodes ({err}); max_pixels cannot lift "
                         "Pillow's own limit") from err
    except Exception as err:  # Pillow raises many types for unreadable files
        raise OSError(f"cannot read image file at path {str(path)!r}: {err}") from err
    if array is None:
        raise ValueError(f"image {path} is {width}x{height} = {width * height} pixels, above max_pixels={max_pixels}; "
                         "pass a larger max_pixels (gradflow --max-pixels N) to read it")
    tensor = torch.from_numpy(np.array(array, dtype=np.float32) / 255.0)
    return tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1).contiguous()


def write_image(path: str | os.PathLike, image: torch.Tensor, *, name: str = "image") -> Path:
    """Write a (C, H, W) image (C = 1 or 3; float values clipped to [0, 1]) as an 8-bit file, its format from
    the suffix of ``path`` (e.g. .png), atomically: a temporary file renamed over ``path``, so never a torn
    file, and a symlink at ``path`` is replaced, not followed. Returns the path. Raises ValueError naming
    ``name`` for a bad image, and naming ``path`` for a non-path or a suffix Pillow does not write."""
    from PIL import Image

    from .train._checkpoint import atomic_write

    path = _check_path(path)
    if not isinstance(image, torch.Tensor) or not image.is_floating_point() or image.ndim != 3 \
            or image.shape[0] not in (1, 3) or image.numel() == 0:
        desc = f"shape {tuple(image.shape)}, dtype {image.dtype}" if isinstance(image, torch.Tensor) else \
            type(image).__name__
        raise ValueError(f"{name} must be a non-empty floating-point tensor (C, H, W) with C = 1 or 3, got {desc}")
    check_finite(image, name)
    image_format = Image.registered_extensions().get(path.suffix.lower())
    if image_format is None:
        raise ValueError(f"path {path} has no image suffix Pillow writes (e.g. .png)")
    pixels = (image.detach().cpu().clamp(0, 1).numpy().transpose(1, 2, 0) * 255.0).round().astype(np.uint8)
    picture = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
    return atomic_write(path, lambda f: picture.save(f, format=image_format))


def _check_path(path) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path must be a path (str or os.PathLike), got {type(path).__name__}")
    return Path(path)

"""Images bundled with scikit-image / scikit-learn, patch datasets with a fixed split, image files (private)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .. import _imaging
from .._validation import check_choice, check_positive_int, check_seed
from ._checks import check_image

__all__ = ["TEST_IMAGES", "TRAIN_IMAGES", "VALIDATION_IMAGES", "list_images", "load_image", "patch_dataset",
           "read_image", "write_image"]

#: scikit-image images that priors are trained on
TRAIN_IMAGES = ("astronaut", "brick", "coffee", "grass", "gravel", "hubble_deep_field", "moon", "page", "rocket",
                "text")
#: held-out images: never trained on (the scikit-learn photographs "china" and "flower" are test-only
#: everywhere in gradflow)
TEST_IMAGES = ("camera", "coins", "chelsea", "china", "flower")
#: neither trained on nor tested on: where regularisation weights are calibrated ("motorcycle": the left
#: view of scikit-image's stereo pair, a natural photograph with the test images' level of detail)
VALIDATION_IMAGES = ("motorcycle",)
_SKLEARN = ("china", "flower")


def list_images() -> list[str]:
    """Names accepted by :func:`load_image`: the training, the held-out, then the validation images."""
    return [*TRAIN_IMAGES, *TEST_IMAGES, *VALIDATION_IMAGES]


def _to_float_image(array: np.ndarray, gray: bool) -> torch.Tensor:
    a = np.asarray(array)
    if a.dtype == np.uint8:
        a = a.astype(np.float64) / 255.0
    elif a.dtype == np.uint16:
        a = a.astype(np.float64) / 65535.0
    else:
        a = a.astype(np.float64)
        if a.max() > 1.0:
            a = a / 255.0
    if a.ndim == 3 and a.shape[-1] == 4:  # drop alpha
        a = a[..., :3]
    if a.ndim == 3:
        a = a @ np.array([0.2125, 0.7154, 0.0721]) if gray else np.moveaxis(a, -1, 0)
    if a.ndim == 2:
        a = a[None]
    return torch.from_numpy(np.clip(a, 0.0, 1.0)).float().unsqueeze(0)


def _check_size(size) -> tuple[int, int]:
    """``size`` (an int or an (h, w) pair of ints >= 1) as (h, w)."""
    if isinstance(size, (tuple, list)) and len(size) == 2:
        return check_positive_int(size[0], "size"), check_positive_int(size[1], "size")
    if isinstance(size, int) and not isinstance(size, bool):
        return (check_positive_int(size, "size"),) * 2
    raise ValueError(f"size must be an integer >= 1 or an (h, w) pair of them, got {size!r}")


def _center_crop(x: torch.Tensor, size) -> torch.Tensor:
    h, w = _check_size(size)
    H, W = x.shape[-2:]
    if h > H or w > W:
        raise ValueError(f"size {h}x{w} is larger than the image {H}x{W}")
    top, left = (H - h) // 2, (W - w) // 2
    return x[..., top:top + h, left:left + w].contiguous()


def load_image(name: str, *, size=None, gray: bool = True) -> torch.Tensor:
    """A bundled image as a float32 tensor (1, C, H, W) in [0, 1] (C = 1 with ``gray``, luminance
    0.2125 R + 0.7154 G + 0.0721 B), centre-cropped to ``size`` (int or (h, w)) if given.

    Names: :data:`TRAIN_IMAGES`, :data:`TEST_IMAGES` and :data:`VALIDATION_IMAGES` (scikit-image; "china" and
    "flower" come from scikit-learn). Needs scikit-image (and scikit-learn for the two photographs).

    Example:
        >>> load_image("camera", size=64).shape
        torch.Size([1, 1, 64, 64])
    """
    check_choice(name, "image name", list_images())
    if size is not None:
        _check_size(size)
    try:
        if name in _SKLEARN:
            from sklearn.datasets import load_sample_image

            array = load_sample_image(f"{name}.jpg")
        else:
            import skimage.data

            array = skimage.data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skimage.data, name)()
    except ImportError as err:  # pragma: no cover - optional dependency
        raise ImportError("bundled images need scikit-image and scikit-learn: pip install 'gradflow[data]'") from err
    x = _to_float_image(array, gray)
    return x if size is None else _center_crop(x, size)


def patch_dataset(names=TRAIN_IMAGES, *, patch_size: int = 40, n_patches: int = 4000, seed: int = 0,
                  gray: bool = True) -> torch.Tensor:
    """Random square patches (n_patches, C, p, p) cut from the named training images, the same number
    from each image (seeded). The held-out photographs "china" and "flower" are refused.

    Example:
        >>> patch_dataset(["brick", "moon"], patch_size=16, n_patches=10).shape
        torch.Size([10, 1, 16, 16])
    """
    if not isinstance(names, (list, tuple)):
        raise ValueError(f"names must be a list or tuple of image names, got {type(names).__name__}")
    if not names:
        raise ValueError("names is empty")
    for name in names:
        check_choice(name, "image name in names", list_images())
        if name in _SKLEARN:
            raise ValueError(f"{name!r} is a test image: gradflow never trains on the scikit-learn photographs")
    p = check_positive_int(patch_size, "patch_size")
    n = check_positive_int(n_patches, "n_patches")
    check_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    patches = []
    for i, name in enumerate(names):
        image = load_image(name, gray=gray)[0]
        H, W = image.shape[-2:]
        if p > min(H, W):
            raise ValueError(f"patch_size {p} is larger than image {name!r} ({H}x{W})")
        count = n // len(names) + (1 if i < n % len(names) else 0)
        tops = torch.randint(0, H - p + 1, (count,), generator=gen)
        lefts = torch.randint(0, W - p + 1, (count,), generator=gen)
        patches += [image[:, t:t + p, l:l + p] for t, l in zip(tops.tolist(), lefts.tolist())]
    return torch.stack(patches)


def read_image(path, *, gray: bool | None = True, max_pixels: int = _imaging.DEFAULT_MAX_PIXELS) -> torch.Tensor:
    """Read a PNG/JPEG (any format Pillow reads) as a float32 tensor (1, C, H, W) in [0, 1]: C = 1 (luminance)
    with ``gray=True``, C = 3 (RGB) with ``gray=False``, and with ``gray=None`` the file's own kind (a grey file
    gives C = 1, any other C = 3, dropping alpha).

    The one image reader of gradflow, :func:`gradflow._imaging.read_image`: an image of more than
    ``max_pixels`` pixels (default 4096 x 4096; the CLI's ``--max-pixels``) raises ValueError before it is
    decoded; a missing or unreadable file raises OSError naming ``path``."""
    if gray not in (True, False, None):
        raise ValueError(f"gray must be True, False or None (the file's own kind), got {gray!r}")
    channels = None if gray is None else (1 if gray else 3)
    return _imaging.read_image(path, channels=channels, max_pixels=max_pixels).unsqueeze(0)


def write_image(path: str | os.PathLike, x: torch.Tensor) -> Path:
    """Write an image (1, C, H, W) or (C, H, W) (C = 1 or 3, finite; values clipped to [0, 1]) as an 8-bit
    PNG/JPEG (format from the suffix of ``path``), atomically (:func:`gradflow._imaging.write_image`: never a
    torn file, a symlink at ``path`` is replaced, not followed). Returns the path."""
    if isinstance(x, torch.Tensor) and x.ndim == 3:
        x = x.unsqueeze(0)
    check_image(x, "x")
    if x.shape[0] != 1 or x.shape[1] not in (1, 3):
        raise ValueError(f"x must be one image with 1 or 3 channels, got shape {tuple(x.shape)}")
    return _imaging.write_image(path, x[0], name="x")

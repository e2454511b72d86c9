"""Images bundled with scikit-image / scikit-learn, patch datasets with a fixed split, image files (private)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .._validation import check_choice, check_positive_int
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
#: Pillow modes of single-channel (grey) images
_GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


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


def _center_crop(x: torch.Tensor, size) -> torch.Tensor:
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    H, W = x.shape[-2:]
    if h > H or w > W:
        raise ValueError(f"crop {h}x{w} is larger than the image {H}x{W}")
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
    check_choice(name, "image", list_images())
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
    names = list(names)
    if not names:
        raise ValueError("names is empty")
    for name in names:
        if name in _SKLEARN:
            raise ValueError(f"{name!r} is a test image: gradflow never trains on the scikit-learn photographs")
    p = check_positive_int(patch_size, "patch_size")
    n = check_positive_int(n_patches, "n_patches")
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


def read_image(path, *, gray: bool | None = True) -> torch.Tensor:
    """Read a PNG/JPEG (any format Pillow reads) as a float32 tensor (1, C, H, W) in [0, 1]: C = 1 (luminance)
    with ``gray=True``, C = 3 (RGB) with ``gray=False``, and with ``gray=None`` the file's own kind (a grey file
    gives C = 1, any other C = 3, dropping alpha)."""
    try:
        from PIL import Image
    except ImportError as err:  # pragma: no cover - optional dependency
        raise ImportError("reading images needs Pillow: pip install 'gradflow[data]'") from err
    path = Path(path)
    if not path.is_file():
        raise OSError(f"no such image file: {path}")
    try:
        with Image.open(path) as im:
            if gray is None:
                gray = im.mode in _GREY_MODES
            array = np.asarray(im.convert("L" if gray else "RGB"))
    except Exception as err:  # Pillow raises many types for unreadable files
        raise OSError(f"cannot read image {path}: {err}") from err
    return _to_float_image(array, gray)


def write_image(path, x: torch.Tensor) -> Path:
    """Write an image (1, C, H, W) or (C, H, W), values clipped to [0, 1], as an 8-bit PNG/JPEG."""
    from PIL import Image

    if isinstance(x, torch.Tensor) and x.ndim == 3:
        x = x.unsqueeze(0)
    check_image(x, "x")
    if x.shape[0] != 1 or x.shape[1] not in (1, 3):
        raise ValueError(f"write_image needs one image with 1 or 3 channels, got shape {tuple(x.shape)}")
    a = (x[0].detach().cpu().clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    path = Path(path)
    Image.fromarray(a[0] if a.shape[0] == 1 else np.moveaxis(a, 0, -1)).save(path)
    return path

"""Offline image data for the vision backbones: super-resolution patches from the images bundled with
scikit-image (or a folder of the user's own high-resolution images), digits classification
(scikit-learn) and a digits-on-canvas segmentation set.

Images are float tensors in [0, 1] of shape (C, H, W). Low-resolution images are made by bicubic
downsampling with antialiasing (Pillow's ``resize``, whose bicubic kernel is widened by the factor when
reducing, as MATLAB's ``imresize`` that SR benchmarks use). The SR split is fixed by image: no test image
(nor a copy of it) is ever used for training. The scikit-learn photographs china and flower are reserved for
tests and are not used here.

Example:
    >>> train = SRPatchDataset(load_sr_images("train"), scale=2, patch_size=24, n_patches=512, seed=0)
    >>> lr, hr = train[0]; lr.shape, hr.shape
    (torch.Size([3, 24, 24]), torch.Size([3, 48, 48]))
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .._imaging import DEFAULT_MAX_PIXELS
from .._imaging import read_image as _read_image
from .._imaging import write_image as _write_image
from .._validation import check_choice, check_positive_int, check_seed
from ._backbones import SR_SCALES

__all__ = [
    "IMAGE_EXTENSIONS",
    "SR_IMAGES",
    "SRPatchDataset",
    "bicubic_resize",
    "digit_segmentation",
    "digits_classification",
    "image_folder_classification",
    "load_image",
    "load_image_folder",
    "load_sr_images",
    "read_image",
    "save_image",
    "sr_pairs",
]

#: the fixed by-image split of the scikit-image pictures used for super-resolution (``cat`` is a copy of
#: ``chelsea`` and is left out; grayscale pictures are replicated to three channels)
SR_IMAGES = {
    "train": ("astronaut", "coffee", "rocket", "hubble_deep_field", "brick", "grass", "gravel", "moon", "page",
              "text", "clock"),
    "test": ("chelsea", "camera", "coins", "immunohistochemistry"),
}
#: file types :func:`load_image_folder` reads
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def _check_channels(channels) -> None:
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")


def _to_tensor(array: np.ndarray, channels: int) -> torch.Tensor:
    """(H, W) or (H, W, C) uint8/bool/float array -> (channels, H, W) float32 in [0, 1]."""
    array = np.asarray(array)
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.0
    else:
        array = array.astype(np.float32)
    if array.ndim == 2:
        array = array[..., None]
    array = array[..., :3]  # drop alpha
    if channels == 3 and array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    elif channels == 1 and array.shape[-1] == 3:
        array = array @ np.array([0.299, 0.587, 0.114], dtype=np.float32)[:, None]
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))).clamp_(0.0, 1.0)


def load_image(name: str, channels: int = 3) -> torch.Tensor:
    """A scikit-image bundled picture (e.g. ``"astronaut"``) as a (channels, H, W) float32 tensor in [0, 1];
    ``channels`` is 3 (gray replicated) or 1 (luma of colour pictures)."""
    try:
        import skimage.data
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("the bundled images need scikit-image: pip install 'gradflow[vision]'") from err
    _check_channels(channels)
    valid = sorted({n for names in SR_IMAGES.values() for n in names})
    check_choice(name, "image", valid)
    return _to_tensor(getattr(skimage.data, name)(), channels)


def load_sr_images(split: str = "train", channels: int = 3) -> list[torch.Tensor]:
    """The high-resolution images of the fixed ``"train"`` or ``"test"`` split (:data:`SR_IMAGES`)."""
    check_choice(split, "split", SR_IMAGES)
    return [load_image(name, channels) for name in SR_IMAGES[split]]


def load_image_folder(root, channels: int = 3, max_images: int | None = None) -> list[torch.Tensor]:
    """The images in directory ``root`` (sorted by name; :data:`IMAGE_EXTENSIONS`), e.g. DIV2K's
    ``DIV2K_train_HR``, as (channels, H, W) float32 tensors in [0, 1]. Raises OSError for a missing or
    empty directory or an unreadable file."""
    _check_channels(channels)
    root = Path(root)
    if not root.is_dir():
        raise OSError(f"image folder {root} does not exist or is not a directory")
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if max_images is not None:
        files = files[: check_positive_int(max_images, "max_images")]
    if not files:
        raise OSError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {root}")
    return [read_image(path, channels) for path in files]


def read_image(path, channels: int = 3, max_pixels: int = DEFAULT_MAX_PIXELS) -> torch.Tensor:
    """One image file as a (channels, H, W) float32 tensor in [0, 1]: :func:`gradflow._imaging.read_image`
    (OSError if it cannot be read, ValueError above ``max_pixels`` pixels, default 4096 x 4096)."""
    return _read_image(path, channels=channels, max_pixels=max_pixels)


def save_image(image: torch.Tensor, path) -> None:
    """Write a (C, H, W) image in [0, 1] (C = 1 or 3) as an 8-bit file (format from the suffix), atomically
    (a temporary file renamed over ``path``: never a torn file, and a symlink at ``path`` is replaced, not
    followed): :func:`gradflow._imaging.write_image`."""
    _write_image(path, image)


def _check_image(image, name: str = "image") -> None:
    if not isinstance(image, torch.Tensor) or image.ndim != 3 or not image.is_floating_point():
        desc = f"shape {tuple(image.shape)}, dtype {image.dtype}" if isinstance(image, torch.Tensor) else type(image)
        raise ValueError(f"{name} must be a float tensor of shape (C, H, W), got {desc}")


def bicubic_resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bicubic resize of a (C, H, W) image to (C, *size) with Pillow (antialiased when reducing), in float
    (no 8-bit rounding), clamped to [0, 1]."""
    from PIL import Image

    _check_image(image)
    height, width = (check_positive_int(s, "size") for s in size)
    channels = [
        np.asarray(Image.fromarray(c.numpy().astype(np.float32)).resize((width, height), Image.BICUBIC))
        for c in image.detach().cpu()
    ]
    return torch.from_numpy(np.stack(channels)).to(image.dtype).clamp_(0.0, 1.0)


def _crop_to_multiple(hr: torch.Tensor, scale: int) -> torch.Tensor:
    h, w = hr.shape[-2:]
    return hr[..., : h - h % scale, : w - w % scale]


def sr_pairs(images, scale: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(low-resolution, high-resolution) pairs: each HR image cropped to a multiple of ``scale`` and its
    bicubic downsampling by ``scale``."""
    if scale not in SR_SCALES:
        raise ValueError(f"scale must be one of {SR_SCALES}, got {scale!r}")
    if len(images) == 0:
        raise ValueError("images is empty")
    pairs = []
    for i, image in enumerate(images):
        _check_image(image, f"images[{i}]")
        hr = _crop_to_multiple(image, scale)
        pairs.append((bicubic_resize(hr, (hr.shape[-2] // scale, hr.shape[-1] // scale)), hr))
    return pairs


class SRPatchDataset(Dataset):
    """Aligned (LR, HR) training patches: ``n_patches`` LR patches of ``patch_size`` (HR: ``scale`` times
    larger) at positions drawn once from ``seed``, uniformly over the images' pixels, each with a random
    flip/transpose (8 dihedral augmentations). Item i is ``(lr (C, p, p), hr (C, s p, s p))``.

    Example:
        >>> data = SRPatchDataset(load_sr_images("train"), scale=2, patch_size=16, n_patches=64)
        >>> len(data), data[3][1].shape
        (64, torch.Size([3, 32, 32]))
    """

    def __init__(self, images, scale: int = 2, patch_size: int = 24, n_patches: int = 4096, seed: int = 0,
                 augment: bool = True):
        check_positive_int(patch_size, "patch_size")
        check_positive_int(n_patches, "n_patches")
        self.scale, self.patch_size, self.augment = scale, patch_size, augment
        self.pairs = [p for p in sr_pairs(images, scale) if min(p[0].shape[-2:]) >= patch_size]
        if not self.pairs:
            raise ValueError(f"no image is at least {patch_size * scale} pixels on each side")
        gen = torch.Generator().manual_seed(seed)
        areas = torch.tensor([float(lr.shape[-2] * lr.shape[-1]) for lr, _ in self.pairs])
        which = torch.multinomial(areas, n_patches, replacement=True, generator=gen)
        self.index = []
        for i in which.tolist():
            h, w = self.pairs[i][0].shape[-2:]
            top = int(torch.randint(h - patch_size + 1, (1,), generator=gen))
            left = int(torch.randint(w - patch_size + 1, (1,), generator=gen))
            self.index.append((i, top, left, int(torch.randint(8, (1,), generator=gen))))

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int):
        i, top, left, op = self.index[item]
        lr, hr = self.pairs[i]
        p, s = self.patch_size, self.scale
        lr = lr[:, top: top + p, left: left + p]
        hr = hr[:, s * top: s * (top + p), s * left: s * (left + p)]
        if self.augment:
            lr, hr = _dihedral(lr, op), _dihedral(hr, op)
        return lr.contiguous(), hr.contiguous()


def _dihedral(x: torch.Tensor, op: int) -> torch.Tensor:
    if op & 4:
        x = x.transpose(-1, -2)
    return torch.flip(x, [d for bit, d in ((1, -1), (2, -2)) if op & bit]) if op & 3 else x


def _digits():
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("the digits data need scikit-learn: pip install 'gradflow[vision]'") from err
    digits = load_digits()
    images = torch.from_numpy(digits.images.astype(np.float32) / 16.0)
    labels = torch.from_numpy(digits.target.astype(np.int64))
    # a fixed split (independent of any user seed): 80% train, 20% test
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(20260522))
    n_train = int(0.8 * len(labels))
    return images, labels, {"train": order[:n_train], "test": order[n_train:]}


def digits_classification(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 8x8 handwritten digits: ``(images (N, 1, 8, 8) in [0, 1], labels (N,) in 0..9)`` of a
    fixed 80/20 split (1437 train, 360 test)."""
    check_choice(split, "split", ("train", "test"))
    images, labels, index = _digits()
    return images[index[split]].unsqueeze(1), labels[index[split]]


def image_folder_classification(root, size: tuple[int, int] = (32, 32), channels: int = 3,
                                test_fraction: float = 0.2, seed: int = 0, max_pixels: int = DEFAULT_MAX_PIXELS):
    """A classification set from a folder with one sub-folder of images per class (``root/<class>/*.png``,
    the layout of torchvision's ImageFolder): every image read in ``channels`` (1 or 3), resized bicubically
    to ``size`` (H, W) and split per class, ``test_fraction`` of each class's images (at least one, if it
    has two or more) going to the test part, drawn from ``seed``.

    Returns ``(train, test, classes)``: ``train`` and ``test`` are ``(images (N, channels, H, W) in [0, 1],
    labels (N,) int64)``, label k standing for ``classes[k]`` (the sub-folder names, sorted). Raises OSError
    for a missing folder or one without two classes of images, ValueError for bad arguments.

    Example:
        >>> import tempfile, os
        >>> root = tempfile.mkdtemp()
        >>> for name in ("cat", "dog"):
        ...     os.mkdir(os.path.join(root, name))
        ...     for i in range(3):
        ...         save_image(torch.rand(3, 10, 12), os.path.join(root, name, f"{i}.png"))
        >>> (x, y), (x_test, y_test), classes = image_folder_classification(root, size=(8, 8))
        >>> x.shape, classes, len(y_test)
        (torch.Size([4, 3, 8, 8]), ['cat', 'dog'], 2)
    """
    _check_channels(channels)
    check_seed(seed)
    height, width = (check_positive_int(s, "size") for s in size)
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)) or not 0 <= test_fraction < 1:
        raise ValueError(f"test_fraction must be a number in [0, 1), got {test_fraction!r}")
    root = Path(root)
    if not root.is_dir():
        raise OSError(f"image folder {root} does not exist or is not a directory")
    folders = {d.name: sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
               for d in sorted(root.iterdir()) if d.is_dir()}
    classes = [name for name, files in folders.items() if files]
    if len(classes) < 2:
        raise OSError(f"{root} must hold at least two sub-folders of images (one per class), found "
                      f"{len(classes)} with images")
    gen = torch.Generator().manual_seed(seed)
    parts = {"train": ([], []), "test": ([], [])}
    for label, name in enumerate(classes):
        files = folders[name]
        order = torch.randperm(len(files), generator=gen).tolist()
        n_test = 0 if len(files) < 2 else max(1, round(test_fraction * len(files))) if test_fraction > 0 else 0
        for rank, index in enumerate(order):
            image = bicubic_resize(read_image(files[index], channels, max_pixels=max_pixels), (height, width))
            images, labels = parts["test" if rank < n_test else "train"]
            images.append(image)
            labels.append(label)

    def stack(images, labels):
        if not images:
            return torch.zeros(0, channels, height, width), torch.zeros(0, dtype=torch.int64)
        return torch.stack(images), torch.tensor(labels, dtype=torch.int64)

    return stack(*parts["train"]), stack(*parts["test"]), classes


def digit_segmentation(n: int, split: str = "train", canvas: int = 32, digit_size: int = 12,
                       max_digits: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A segmentation set: ``n`` canvases (1, canvas, canvas) with 1..``max_digits`` digits of the given
    split, upscaled bicubically to ``digit_size`` pixels and pasted (maximum blend) at random places, and
    per-pixel labels (n, canvas, canvas): 0 for background, 1 + d where the ink of digit d exceeds 0.3
    (the digit pasted last wins overlaps). 11 classes. Deterministic in ``seed``.

    Example:
        >>> x, y = digit_segmentation(4, canvas=24); x.shape, y.shape, int(y.max()) <= 10
        (torch.Size([4, 1, 24, 24]), torch.Size([4, 24, 24]), True)
    """
    check_positive_int(n, "n")
    check_positive_int(max_digits, "max_digits")
    check_positive_int(digit_size, "digit_size")
    if canvas < digit_size:
        raise ValueError(f"canvas ({canvas}) must be at least digit_size ({digit_size})")
    images, labels = digits_classification(split)
    gen = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 1, canvas, canvas)
    y = torch.zeros(n, canvas, canvas, dtype=torch.int64)
    cache = {}
    for k in range(n):
        for _ in range(int(torch.randint(1, max_digits + 1, (1,), generator=gen))):
            j = int(torch.randint(len(labels), (1,), generator=gen))
            if j not in cache:
                cache[j] = bicubic_resize(images[j], (digit_size, digit_size))[0]
            digit = cache[j]
            top, left = (int(torch.randint(canvas - digit_size + 1, (1,), generator=gen)) for _ in range(2))
            window = (slice(top, top + digit_size), slice(left, left + digit_size))
            x[k, 0][window] = torch.maximum(x[k, 0][window], digit)
            y[k][window] = torch.where(digit > 0.3, 1 + labels[j], y[k][window])
    return x, y

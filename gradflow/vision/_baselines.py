"""Reference scores a trained vision model should beat: a linear classifier and a trivial segmenter
(private; the SR baseline is bicubic upsampling, :func:`gradflow.vision.evaluate_sr` with ``model=None``)."""

from __future__ import annotations

import torch

from .._validation import check_finite, check_number, check_positive_int
from ._metrics import accuracy, mean_iou

__all__ = ["linear_classifier_baseline", "threshold_segmenter_baseline"]


def _check_pair(data, name: str, per_pixel: bool):
    """``data`` as (images (N, C, H, W) float, labels (N,) or (N, H, W) integer), N >= 1 (ValueError naming
    ``name`` otherwise)."""
    if not (isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data)):
        raise ValueError(f"{name} must be a pair (images, labels) of tensors, got {type(data).__name__}")
    images, labels = data
    if images.ndim != 4 or not images.is_floating_point() or len(images) == 0:
        raise ValueError(f"{name} images must be a non-empty floating-point tensor (N, C, H, W), got shape "
                         f"{tuple(images.shape)}, dtype {images.dtype}")
    check_finite(images, f"{name} images")
    shape = (images.shape[0], *images.shape[2:]) if per_pixel else (images.shape[0],)
    if labels.is_floating_point() or labels.dtype == torch.bool or tuple(labels.shape) != tuple(shape):
        raise ValueError(f"{name} labels must be an integer tensor of shape {tuple(shape)}, got shape "
                         f"{tuple(labels.shape)}, dtype {labels.dtype}")
    return images, labels.long()


def linear_classifier_baseline(train, test, max_iter: int = 2000) -> dict:
    r"""Test accuracy of multinomial logistic regression (scikit-learn, L2 penalty C = 1) on the flattened
    pixels: p(y = k | x) = softmax(W vec(x) + b)_k, fitted on ``train`` and scored on ``test``.

    ``train`` and ``test`` are ``(images (N, C, H, W), labels (N,))`` with the same image shape.
    Returns ``{"accuracy": fraction on test, "train_accuracy": fraction on train}``.

    Example:
        >>> x = torch.rand(40, 1, 4, 4); y = (x.mean((1, 2, 3)) > 0.5).long()
        >>> linear_classifier_baseline((x, y), (x, y))["accuracy"] > 0.8
        True
    """
    train_x, train_y = _check_pair(train, "train", per_pixel=False)
    test_x, test_y = _check_pair(test, "test", per_pixel=False)
    if train_x.shape[1:] != test_x.shape[1:]:
        raise ValueError(f"train and test images must have the same shape, got {tuple(train_x.shape[1:])} and "
                         f"{tuple(test_x.shape[1:])}")
    check_positive_int(max_iter, "max_iter")
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("the linear baseline needs scikit-learn: pip install 'gradflow[vision]'") from err
    if len(torch.unique(train_y)) < 2:
        majority = int(train_y[0])
        return {"accuracy": float((test_y == majority).double().mean()), "train_accuracy": 1.0}
    model = LogisticRegression(max_iter=max_iter).fit(train_x.flatten(1).double().numpy(), train_y.numpy())
    return {"accuracy": float(model.score(test_x.flatten(1).double().numpy(), test_y.numpy())),
            "train_accuracy": float(model.score(train_x.flatten(1).double().numpy(), train_y.numpy()))}


def threshold_segmenter_baseline(train, test, num_classes: int, threshold: float = 0.3) -> dict:
    r"""Scores of two trivial segmenters on ``test``: the majority class everywhere (the most frequent
    training label), and a threshold: pixels whose mean intensity over channels is <= ``threshold`` get the
    most frequent training label among such pixels, the others the most frequent training label among
    theirs.

    ``train`` and ``test`` are ``(images (N, C, H, W), labels (N, H, W))`` with labels in
    0..num_classes-1. Returns ``{"miou": ..., "pixel_accuracy": ...}`` of the threshold segmenter and
    ``{"majority_miou": ..., "majority_pixel_accuracy": ...}`` of the majority one (mean IoU as
    :func:`~gradflow.vision.mean_iou`).

    Example:
        >>> x = torch.zeros(2, 1, 4, 4); x[:, :, :2] = 1.0; y = (x[:, 0] > 0.5).long()
        >>> threshold_segmenter_baseline((x, y), (x, y), num_classes=2)["miou"]
        1.0
    """
    train_x, train_y = _check_pair(train, "train", per_pixel=True)
    test_x, test_y = _check_pair(test, "test", per_pixel=True)
    k = check_positive_int(num_classes, "num_classes")
    threshold = check_number(threshold, "threshold")
    for name, labels in (("train", train_y), ("test", test_y)):
        if labels.numel() and not 0 <= int(labels.min()) <= int(labels.max()) < k:
            raise ValueError(f"{name} labels must lie in 0..{k - 1}, got values in {int(labels.min())}.."
                             f"{int(labels.max())}")

    def most_frequent(labels):
        return int(torch.bincount(labels.flatten(), minlength=k).argmax()) if labels.numel() else 0

    def scores(prediction):
        logits = torch.nn.functional.one_hot(prediction, k).permute(0, 3, 1, 2).double()
        return mean_iou(logits, test_y, k), accuracy(logits, test_y)

    majority = most_frequent(train_y)
    ink = train_x.mean(1) > threshold
    dark, bright = most_frequent(train_y[~ink]), most_frequent(train_y[ink])
    test_ink = test_x.mean(1) > threshold
    miou, pixel = scores(torch.where(test_ink, bright, dark))
    majority_miou, majority_pixel = scores(torch.full_like(test_y, majority))
    return {"miou": miou, "pixel_accuracy": pixel, "majority_miou": majority_miou,
            "majority_pixel_accuracy": majority_pixel}

"""Training and evaluation of the vision backbones through :func:`gradflow.train.fit` (private)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .._validation import check_finite, check_number, check_positive_int
from ..train import FitResult, fit
from ._metrics import accuracy, mean_iou, psnr, ssim
from ._residual import _GatedSkip

__all__ = ["auto_gate_lr", "evaluate_classifier", "evaluate_segmenter", "evaluate_sr", "gate_parameters",
           "super_resolve", "train_classifier", "train_segmenter", "train_sr", "warmup_cosine"]


#: how far outside [0, 1] a float image given to :func:`super_resolve` may reach (resampling overshoot)
_RANGE_SLACK = 0.1


def _l1(model, batch):
    lr, hr = batch
    return F.l1_loss(model(lr), hr)


def _cross_entropy(model, batch):
    x, y = batch
    return F.cross_entropy(model(x), y)


def _check_model(model, task: str) -> None:
    if not isinstance(model, nn.Module) or getattr(model, "task", None) != task:
        raise ValueError(f"model must be a {task} backbone from create_backbone, got {type(model).__name__}")


def _is_tensor_pair(data) -> bool:
    return isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data)


def _check_labelled(data, name: str, model: nn.Module, per_pixel: bool) -> None:
    """For ``(images, labels)`` tensors: ValueError naming ``name`` unless images are (N, C, H, W) floating
    with the model's channels and labels integers of shape (N,) (``per_pixel``: (N, H, W)) in
    0..num_classes-1. Other data (Datasets, samplers) are left to :func:`gradflow.train.fit`."""
    if not _is_tensor_pair(data):
        return
    images, labels = data
    if images.ndim != 4 or not images.is_floating_point() or images.shape[1] != model.in_channels:
        raise ValueError(f"{name} images must be a floating-point tensor (N, {model.in_channels}, H, W), got "
                         f"shape {tuple(images.shape)}, dtype {images.dtype}")
    shape = tuple(images.shape[:1] + images.shape[2:]) if per_pixel else tuple(images.shape[:1])
    if labels.dtype not in (torch.int64, torch.int32, torch.uint8) or tuple(labels.shape) != shape:
        raise ValueError(f"{name} labels must be class indices, an integer tensor of shape {shape}, got shape "
                         f"{tuple(labels.shape)}, dtype {labels.dtype}")
    if labels.numel() and not 0 <= int(labels.min()) <= int(labels.max()) < model.num_classes:
        raise ValueError(f"{name} labels must lie in 0..{model.num_classes - 1} (the model's classes), got values "
                         f"in {int(labels.min())}..{int(labels.max())}")


def gate_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The learnable gate logits a of ``model``'s gated residual blocks (``residual="convex"``, ``"gradmag"``,
    ``"gradnet"``), in module order; empty if it has none.

    Example:
        >>> from gradflow.vision import create_backbone
        >>> len(gate_parameters(create_backbone("sedsr", residual="convex")))
        4
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return [m.alpha for m in model.modules()
            if isinstance(m, _GatedSkip) and isinstance(m.alpha, nn.Parameter) and m.alpha.requires_grad]


def auto_gate_lr(model: nn.Module, lr: float) -> float:
    r"""The gate learning rate at which a gate logit a moves at the speed of the branch weights:

        gate_lr = lr / rms(W),   rms(W) = sqrt(mean of w^2 over the weights of the residual branches),

    measured on ``model`` as it is (call it before training). Adam changes every parameter by about its
    learning rate per step whatever the gradient's scale, so a weight of typical size rms(W) changes by a
    fraction lr / rms(W) of itself per step; a gate logit, whose natural unit is 1 (the width of the
    sigmoid), then changes by the same fraction. Returns ``lr`` for models without gates.

    Example:
        >>> from gradflow.vision import create_backbone
        >>> model = create_backbone("sedsr", residual="convex")
        >>> auto_gate_lr(model, 1e-4) > 10 * 1e-4
        True
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    lr = check_number(lr, "lr", minimum=0.0, strict=True)
    gated = [m for m in model.modules() if isinstance(m, _GatedSkip) and isinstance(m.alpha, nn.Parameter)]
    weights = [p for m in gated for name, p in m.named_parameters()
               if name != "alpha" and name.endswith("weight") and p.ndim > 1]
    if not weights:
        return lr
    square = sum(float(w.detach().double().square().sum()) for w in weights)
    rms = (square / sum(w.numel() for w in weights)) ** 0.5
    return lr if rms == 0 else lr / rms


def _adam_with_gate_group(model: nn.Module, lr: float, gate_lr: float | None, weight_decay: float):
    """fit's ``optimizer`` callable: Adam with the gate logits in their own group (learning rate ``gate_lr``,
    default :func:`auto_gate_lr`, no weight decay) and every other parameter at ``lr``."""
    gates = {id(p) for p in gate_parameters(model)}
    if gate_lr is None:
        gate_lr = auto_gate_lr(model, lr)

    def build(params):
        rest = [p for p in params if id(p) not in gates]
        groups = [{"params": rest}] if rest else []
        own = [p for p in params if id(p) in gates]
        if own:
            groups.append({"params": own, "lr": gate_lr, "weight_decay": 0.0})
        return torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay)

    return build


def warmup_cosine(total_steps: int, warmup_steps: int):
    r"""A learning-rate schedule for :func:`gradflow.train.fit` (its ``scheduler`` argument): a linear warm-up
    over ``warmup_steps`` steps, then a cosine decay to 0 at ``total_steps``; the factor applied to each
    group's learning rate after t optimizer steps is

        min(1, (t + 1) / w) * (1 + cos(pi * min(t, T) / T)) / 2,   w = warmup_steps, T = total_steps.

    Returns ``callable(optimizer) -> LambdaLR``.

    Example:
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        >>> schedule = warmup_cosine(100, 10)(opt)
        >>> round(opt.param_groups[0]["lr"], 3)
        0.1
    """
    total = check_positive_int(total_steps, "total_steps")
    warm = check_positive_int(warmup_steps, "warmup_steps", minimum=0)

    def factor(t: int) -> float:
        ramp = 1.0 if warm == 0 else min(1.0, (t + 1) / warm)
        return ramp * 0.5 * (1.0 + math.cos(math.pi * min(t, total) / total))

    return lambda optimizer: torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _recipe_steps(data, batch_size, epochs) -> int | None:
    """Optimizer steps of ``epochs`` epochs over tensor pairs or a sized Dataset (None if unknown);
    ValueError naming ``epochs`` or ``batch_size`` unless they are integers >= 1 (batch_size: or None)."""
    check_positive_int(epochs, "epochs")
    if batch_size is not None:
        check_positive_int(batch_size, "batch_size")
    try:
        n = len(data[0]) if _is_tensor_pair(data) else len(data)
    except TypeError:
        return None
    return epochs * (1 if batch_size is None else math.ceil(n / batch_size))


def _gate_recorder(model: nn.Module):
    """(callback for fit, record {step: [s(a) per gated block]}) for models with gates, else (None, {})."""
    blocks = [m for m in model.modules() if isinstance(m, _GatedSkip) and m.alpha is not None]
    record: dict[int, list[float]] = {}
    if not blocks:
        return None, record

    def callback(info):
        record[info["step"]] = [float(torch.sigmoid(m.alpha.detach())) for m in blocks]

    return callback, record


def _fit_vision(model, loss, data, *, lr: float, gate_lr: float | None, warmup: float | None, total: int | None,
                **fit_kwargs) -> FitResult:
    """fit with the vision recipe: gates in their own Adam group (unless ``optimizer`` is given), a
    warm-up + cosine schedule over ``total`` steps when ``warmup`` is a fraction (unless ``scheduler`` is
    given), and each history entry's ``gates`` (s(a) per gated block after that step)."""
    if gate_lr is not None:
        gate_lr = check_number(gate_lr, "gate_lr", minimum=0.0, strict=True)
    if "optimizer" in fit_kwargs:
        if gate_lr is not None:
            raise ValueError("gate_lr sets the gates' group of the default Adam; with your own optimizer, put the "
                             "gates (gate_parameters(model)) in a group of it instead")
    else:
        check_number(lr, "lr", minimum=0.0, strict=True)
        fit_kwargs["optimizer"] = _adam_with_gate_group(model, lr, gate_lr, fit_kwargs.pop("weight_decay", 0.0))
    if warmup is not None:
        warmup = check_number(warmup, "warmup", minimum=0.0)
        if warmup >= 1:
            raise ValueError(f"warmup must be a fraction of the run in [0, 1), got {warmup}")
        if "scheduler" not in fit_kwargs and total is not None:
            fit_kwargs["scheduler"] = warmup_cosine(total, round(warmup * total))
    callback, record = _gate_recorder(model)
    if callback is not None:
        fit_kwargs["callbacks"] = [*fit_kwargs.get("callbacks", ()), callback]
    result = fit(model, loss, data, lr=lr, **fit_kwargs)
    for entry in result.history:
        if entry["step"] in record:
            entry["gates"] = record[entry["step"]]
    return result


_RECIPE_DOC = """The gate logits a of gated residuals train in their own Adam group at ``gate_lr`` (default
    :func:`auto_gate_lr`: the speed of the branch weights; ``gate_lr=lr`` is one group for all), unless
    ``fit_kwargs`` holds an ``optimizer``. Each entry of ``result.history`` logged in this call holds
    ``gates``: s(a) of every gated block after that step (not in ``history_path``)."""


def train_sr(model: nn.Module, data, *, val_data=None, steps: int = 1000, batch_size: int = 16, lr: float = 1e-4,
             gate_lr: float | None = None, **fit_kwargs) -> FitResult:
    """Train a super-resolution backbone on (LR, HR) pairs with the L1 loss (EDSR's recipe: Adam, lr 1e-4,
    constant) by :func:`gradflow.train.fit`; ``data``/``val_data`` are e.g.
    :class:`~gradflow.vision.data.SRPatchDataset`; ``batch_size`` None takes the full data set per step (as
    in ``fit``); ``fit_kwargs`` go to ``fit`` (seed, device, max_time, scheduler, checkpoint_dir,
    callbacks, ...). {recipe}
    """
    _check_model(model, "sr")
    return _fit_vision(model, _l1, data, lr=lr, gate_lr=gate_lr, warmup=None, total=None, val_data=val_data,
                       steps=steps, batch_size=batch_size, **fit_kwargs)


def train_classifier(model: nn.Module, data, *, val_data=None, epochs: int = 10, batch_size: int = 64,
                     lr: float = 1e-3, gate_lr: float | None = None, warmup: float | None = 0.05,
                     **fit_kwargs) -> FitResult:
    """Train a classifier on ``(images (N, C, H, W), labels (N,))`` with cross-entropy by
    :func:`gradflow.train.fit` (Adam; ``batch_size`` None: full batch, as in ``fit``; ``fit_kwargs`` go to
    ``fit``). Schedule: :func:`warmup_cosine` with a warm-up over the fraction ``warmup`` of the
    ``epochs`` (None, or a ``scheduler`` in ``fit_kwargs``: not used). {recipe}
    """
    _check_model(model, "classification")
    _check_labelled(data, "data", model, per_pixel=False)
    if val_data is not None:
        _check_labelled(val_data, "val_data", model, per_pixel=False)
    return _fit_vision(model, _cross_entropy, data, lr=lr, gate_lr=gate_lr, warmup=warmup,
                       total=_recipe_steps(data, batch_size, epochs), val_data=val_data, epochs=epochs,
                       batch_size=batch_size, **fit_kwargs)


def train_segmenter(model: nn.Module, data, *, val_data=None, epochs: int = 10, batch_size: int = 32,
                    lr: float = 1e-3, gate_lr: float | None = None, warmup: float | None = 0.05,
                    **fit_kwargs) -> FitResult:
    """Train a segmenter on ``(images (N, C, H, W), labels (N, H, W))`` with per-pixel cross-entropy by
    :func:`gradflow.train.fit` (the recipe of :func:`train_classifier`: Adam, warm-up + cosine over the
    ``epochs``; ``batch_size`` None: full batch; ``fit_kwargs`` go to ``fit``). {recipe}
    """
    _check_model(model, "segmentation")
    _check_labelled(data, "data", model, per_pixel=True)
    if val_data is not None:
        _check_labelled(val_data, "val_data", model, per_pixel=True)
    return _fit_vision(model, _cross_entropy, data, lr=lr, gate_lr=gate_lr, warmup=warmup,
                       total=_recipe_steps(data, batch_size, epochs), val_data=val_data, epochs=epochs,
                       batch_size=batch_size, **fit_kwargs)


for _function in (train_sr, train_classifier, train_segmenter):
    _function.__doc__ = _function.__doc__.replace("{recipe}", _RECIPE_DOC)


def _device(model):
    return next(model.parameters()).device


def receptive_radius(model: nn.Module) -> int:
    """A bound on how far (in input pixels) an output pixel of a convolutional ``model`` can see: the sum of
    dilation * (kernel - 1) // 2 over its Conv2d layers (exact for stride-1 'same' convolutions at the input's
    resolution; convolutions after upsampling see less, so this over-covers them)."""
    return sum(max(c.dilation[i] * (c.kernel_size[i] - 1) // 2 for i in range(2))
               for c in model.modules() if isinstance(c, nn.Conv2d))


@torch.no_grad()
def super_resolve(model: nn.Module, image: torch.Tensor, *, tile: int | None = None,
                  overlap: int | None = None) -> torch.Tensor:
    """The model's output for one (C, h, w) image (eval mode, no grad), on the CPU.

    The models work on intensities in [0, 1]. A floating-point ``image`` must hold values in [0, 1]
    (finite; a small overshoot from resampling is tolerated) and the output is a float image clamped to
    [0, 1] in the model's dtype. An 8-bit ``image`` (uint8, 0..255) is divided by 255 and the output
    is converted back to uint8 (rounded), so 8-bit in gives 8-bit out. Other integer dtypes and float
    images on a 0..255 scale raise ValueError.

    Tiles bound the memory: with ``tile`` (an integer >= 1) the image is cut into ``tile`` x ``tile``
    blocks, each run with ``overlap`` pixels of context on every side (default :func:`receptive_radius` of
    the model), and the blocks' outputs are stitched. For a model whose output pixel depends only on the
    input within ``overlap`` pixels (``residual="identity"``, or gradient residuals with
    ``normalize="position"`` or None) the result equals the untiled one up to rounding; the SR backbones'
    default ``normalize="sample"`` normalises each gradient term over the whole input, so their tiled
    output differs slightly from the untiled one.

    Example:
        >>> from gradflow.vision import create_backbone
        >>> model = create_backbone("sedsr", scale=2)
        >>> super_resolve(model, torch.zeros(3, 8, 8, dtype=torch.uint8)).dtype
        torch.uint8
        >>> super_resolve(model, torch.rand(3, 20, 12), tile=8).shape
        torch.Size([3, 40, 24])
    """
    _check_model(model, "sr")
    if not isinstance(image, torch.Tensor) or image.ndim != 3:
        raise ValueError(f"image must be a tensor of shape (C, h, w), got {getattr(image, 'shape', type(image))}")
    eight_bit = image.dtype == torch.uint8
    if not (eight_bit or image.is_floating_point()):
        raise ValueError(f"image must be floating-point with values in [0, 1] or uint8 (0..255), "
                         f"got dtype {image.dtype}")
    if image.numel() == 0:
        raise ValueError(f"image is empty: shape {tuple(image.shape)}")
    in_channels = getattr(model, "in_channels", image.shape[0])
    if image.shape[0] != in_channels:
        raise ValueError(f"image must have the model's {in_channels} channel(s) in dim 0, got shape "
                         f"{tuple(image.shape)}")
    if tile is not None:
        check_positive_int(tile, "tile")
    overlap = receptive_radius(model) if overlap is None else check_positive_int(overlap, "overlap", minimum=0)
    if not eight_bit:
        check_finite(image, "image")
        low, high = float(image.min()), float(image.max())
        if low < -_RANGE_SLACK or high > 1.0 + _RANGE_SLACK:
            raise ValueError(f"a floating-point image must hold values in [0, 1], got values in [{low:g}, {high:g}]"
                             + ("; for 0..255 values divide by 255 or pass a uint8 tensor" if high > 1.5 else ""))
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters())
        x = image.to(param.device, param.dtype)
        out = _tiled(model, x / 255.0 if eight_bit else x, tile, overlap)
    finally:
        model.train(was_training)
    out = out.clamp(0.0, 1.0).cpu()
    return (out * 255.0).round().to(torch.uint8) if eight_bit else out


def _tiled(model: nn.Module, x: torch.Tensor, tile: int | None, overlap: int) -> torch.Tensor:
    """model(x) for one (C, h, w) image, block by block: ``tile``-pixel blocks with ``overlap`` pixels of
    context, each block's output cropped to the block's own pixels (times the model's scale)."""
    h, w = x.shape[-2:]
    if tile is None or (h <= tile and w <= tile):
        return model(x.unsqueeze(0))[0]
    s = model.scale
    out = None
    for top in range(0, h, tile):
        for left in range(0, w, tile):
            bottom, right = min(top + tile, h), min(left + tile, w)
            t0, l0 = max(top - overlap, 0), max(left - overlap, 0)
            piece = model(x[None, :, t0:min(bottom + overlap, h), l0:min(right + overlap, w)])[0]
            if out is None:
                out = piece.new_empty(piece.shape[0], s * h, s * w)
            out[:, s * top:s * bottom, s * left:s * right] = piece[:, s * (top - t0):s * (bottom - t0),
                                                                    s * (left - l0):s * (right - l0)]
    return out


def evaluate_sr(model: nn.Module | None, pairs, scale: int) -> dict:
    """Mean luma PSNR and SSIM (the SR convention: ``psnr(..., crop=scale, channel="y")``, i.e. PSNR-Y with
    a ``scale``-pixel border crop) over full (LR, HR) image ``pairs`` of the model's outputs, or of bicubic
    upsampling for ``model=None`` (the floor). Returns ``{"psnr": dB, "ssim": value, "psnr_per_image": [...]}``
    (both on the Y channel)."""
    from .data import bicubic_resize

    check_positive_int(scale, "scale")
    if model is not None:
        _check_model(model, "sr")
        if scale != model.scale:
            raise ValueError(f"scale {scale} differs from the model's scale {model.scale}")
    if not isinstance(pairs, (list, tuple)) or not all(_is_tensor_pair(p) for p in pairs):
        raise ValueError(f"pairs must be a list of (LR, HR) image tensor pairs, got {type(pairs).__name__}")
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
        values.append(float(psnr(sr[None], hr[None], crop=scale, channel="y")))
        structural.append(float(ssim(sr[None], hr[None], crop=scale, channel="y")))
    return {"psnr": sum(values) / len(values), "ssim": sum(structural) / len(structural), "psnr_per_image": values}


def _check_evaluation(model, task: str, data, batch_size, per_pixel: bool):
    """The checks of the evaluate functions: a ``task`` backbone, ``data`` a pair (images, labels) of tensors
    (:func:`_check_labelled`) and ``batch_size`` an integer >= 1; returns (images, labels)."""
    _check_model(model, task)
    if not _is_tensor_pair(data):
        raise ValueError(f"data must be a pair (images, labels) of tensors, got {type(data).__name__}")
    _check_labelled(data, "data", model, per_pixel)
    check_positive_int(batch_size, "batch_size")
    return data


@torch.no_grad()
def _logits(model, images, batch_size):
    """The model's logits for ``images``, ``batch_size`` images at a time (eval mode, no grad), on the CPU."""
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters())
        return torch.cat([model(chunk.to(param.device, param.dtype)).cpu() for chunk in images.split(batch_size)])
    finally:
        model.train(was_training)


def evaluate_classifier(model: nn.Module, data, batch_size: int = 256) -> dict:
    """``{"accuracy": fraction}`` of the classifier on ``(images, labels)`` (eval mode)."""
    images, labels = _check_evaluation(model, "classification", data, batch_size, per_pixel=False)
    return {"accuracy": accuracy(_logits(model, images, batch_size), labels)}


def evaluate_segmenter(model: nn.Module, data, batch_size: int = 64) -> dict:
    """``{"miou": mean IoU, "pixel_accuracy": fraction}`` of the segmenter on ``(images, labels)``."""
    images, labels = _check_evaluation(model, "segmentation", data, batch_size, per_pixel=True)
    logits = _logits(model, images, batch_size)
    return {"miou": mean_iou(logits, labels, model.num_classes), "pixel_accuracy": accuracy(logits, labels)}

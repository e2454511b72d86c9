"""Fit a model's field to a known gradient field by mean squared error, through gradflow.train."""

from __future__ import annotations

import torch

from .._validation import check_float_dtype, check_positive_int, check_seed
from ..train import FitResult, fit
from .targets import FieldTarget

__all__ = ["fit_field", "gradient_loss"]


def gradient_loss(model, batch) -> torch.Tensor:
    """mean_n ||model(x_n) - g_n||^2 for a batch (x, g) of points and target gradients (the paper's loss)."""
    x, g = batch
    return (model(x) - g).square().sum(-1).mean()


def fit_field(
    model: torch.nn.Module,
    target: FieldTarget,
    *,
    n_train: int = 100_000,
    n_val: int = 10_000,
    epochs: int = 200,
    batch_size: int = 1000,
    lr: float = 5e-3,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    **fit_options,
) -> FitResult:
    """Train ``model`` so that model(x) ~ grad F(x) for the target F, with the GradNets paper's protocol.

    ``n_train`` and ``n_val`` uniform points are drawn from the target's box (seeded by ``seed``); the
    model is trained with Adam on the gradient MSE for ``epochs`` epochs of ``batch_size`` and the best
    validation weights are kept. Other keyword arguments go to :func:`gradflow.train.fit` (``max_time``,
    ``checkpoint_dir``, ``resume``, ``device``, ``progress``, ...).

    Example:
        >>> from gradflow.potentials import MGradNetC
        >>> from gradflow.potentials.targets import create_target, gradient_error_db
        >>> target = create_target("convex_2d")
        >>> _ = torch.manual_seed(0)
        >>> result = fit_field(MGradNetC(2, width=7), target, n_train=5000, epochs=5, batch_size=250,
        ...                    progress=False)
        >>> gradient_error_db(result.model, target, target.grid(20)) < 0
        True
    """
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be a torch.nn.Module (e.g. a gradflow potential), got {type(model).__name__}")
    if not isinstance(target, FieldTarget):
        hint = f" (for a target by name: create_target({target!r}))" if isinstance(target, str) else ""
        raise ValueError(f"target must be a FieldTarget, got {type(target).__name__}{hint}")
    check_positive_int(n_train, "n_train")
    check_positive_int(n_val, "n_val")
    check_seed(seed)
    check_float_dtype(dtype)
    generator = torch.Generator().manual_seed(seed)
    x_train = target.sample(n_train, generator=generator, dtype=dtype)
    x_val = target.sample(n_val, generator=generator, dtype=dtype)
    model = model.to(dtype)
    return fit(
        model,
        gradient_loss,
        (x_train, target.gradient(x_train)),
        val_data=(x_val, target.gradient(x_val)),
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        **fit_options,
    )

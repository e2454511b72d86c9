"""Optimizers and learning-rate schedules by name (private)."""

from __future__ import annotations

import torch
from torch.optim import lr_scheduler

from .._validation import check_choice

__all__ = ["make_optimizer", "make_scheduler"]

_OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}

# name -> factory(optimizer, total_steps); stepped once per optimizer step, except "plateau" (per evaluation).
_SCHEDULERS = {
    "cosine": lambda opt, total: lr_scheduler.CosineAnnealingLR(opt, T_max=total),
    "step": lambda opt, total: lr_scheduler.StepLR(opt, step_size=max(1, total // 3), gamma=0.1),
    "plateau": lambda opt, total: lr_scheduler.ReduceLROnPlateau(opt),
}


def make_optimizer(spec, params: list[torch.Tensor], lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """``spec``: a name in ``_OPTIMIZERS`` (built with lr, weight_decay), an Optimizer or a callable."""
    if isinstance(spec, torch.optim.Optimizer):
        return spec
    if isinstance(spec, str):
        check_choice(spec, "optimizer", _OPTIMIZERS)
        return _OPTIMIZERS[spec](params, lr=lr, weight_decay=weight_decay)
    if callable(spec):
        opt = spec(params)
        if not isinstance(opt, torch.optim.Optimizer):
            raise ValueError(f"optimizer callable must return a torch.optim.Optimizer, got {type(opt).__name__}")
        return opt
    raise ValueError(
        f"optimizer must be one of {sorted(_OPTIMIZERS)}, a torch.optim.Optimizer or a callable(params), got {spec!r}"
    )


def make_scheduler(spec, optimizer: torch.optim.Optimizer, total_steps: int):
    """``spec``: None, a name in ``_SCHEDULERS`` or ``callable(optimizer) -> scheduler``."""
    if spec is None:
        return None
    if isinstance(spec, str):
        check_choice(spec, "scheduler", _SCHEDULERS)
        return _SCHEDULERS[spec](optimizer, total_steps)
    if callable(spec):
        return spec(optimizer)
    raise ValueError(f"scheduler must be None, one of {sorted(_SCHEDULERS)} or a callable(optimizer), got {spec!r}")


def is_plateau(scheduler) -> bool:
    """Whether ``scheduler`` is stepped with a validation loss (at evaluations) rather than once per step."""
    return isinstance(scheduler, lr_scheduler.ReduceLROnPlateau)

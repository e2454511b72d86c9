"""Create potentials by name, optionally sized to a parameter budget (private)."""

from __future__ import annotations

import torch

from .._validation import check_choice, check_positive_int
from ._baselines import ICNN, MLPField, MLPPotential
from ._cascaded import GradNetC, MGradNetC
from ._modular import GradNetM, MGradNetM

__all__ = ["count_parameters", "create_potential", "list_potentials"]

_POTENTIALS = {
    "gradnet_c": GradNetC,
    "mgradnet_c": MGradNetC,
    "gradnet_m": GradNetM,
    "mgradnet_m": MGradNetM,
    "icnn": ICNN,
    "mlp_potential": MLPPotential,
    "mlp_field": MLPField,
}
_WIDTHS_MODELS = {"icnn", "mlp_potential", "mlp_field"}


def list_potentials() -> list[str]:
    """Names accepted by :func:`create_potential`."""
    return sorted(_POTENTIALS)


def count_parameters(model: torch.nn.Module) -> int:
    """Number of trainable scalars in ``model``."""
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _build(name, dim, width, n_hidden, kwargs):
    if name in _WIDTHS_MODELS and "depth" not in kwargs:
        return _POTENTIALS[name](dim, width=width, depth=n_hidden, **kwargs)
    return _POTENTIALS[name](dim, width=width, **kwargs)


#: module counts create_potential(n_params=...) tries for "gradnet_m", most first, and the smallest module width
#: it accepts (chosen in benchmarks/results/defaults.md)
_GRADNET_M_MODULES = (16, 8, 4)
_MIN_MODULE_WIDTH = 8


def create_potential(name: str, dim: int, *, n_params: int | None = None, n_hidden: int = 2, **kwargs):
    """Create the potential ``name`` (see :func:`list_potentials`) on R^dim.

    Every kind is sized by ``width`` (units per layer or module) and ``depth`` (layers; ``n_modules`` for the
    modular nets); the MLP-style baselines also take ``widths``, one per hidden layer. With ``n_params``, the
    width is chosen so that the parameter count is as close as possible to ``n_params`` (the baselines get
    ``depth`` hidden layers, default ``n_hidden``); other keyword arguments go to the constructor. A
    ``"gradnet_m"`` sized this way without ``n_modules`` gets the most modules of 16, 8, 4 whose width is still
    at least 8 (4 when none is), the choice of benchmarks/results/defaults.md.

    Example:
        >>> net = create_potential("mgradnet_c", 2, n_params=100, depth=4)
        >>> count_parameters(net)
        100
        >>> create_potential("gradnet_m", 8, n_params=2000).n_modules
        16
    """
    check_choice(name, "potential name", _POTENTIALS)
    check_positive_int(n_hidden, "n_hidden")
    if n_params is None:
        return _POTENTIALS[name](dim, **kwargs)
    check_positive_int(n_params, "n_params")
    if "width" in kwargs or "widths" in kwargs:
        raise ValueError("pass either n_params or an explicit width/widths, not both")
    if name == "gradnet_m" and "n_modules" not in kwargs:
        for n_modules in _GRADNET_M_MODULES:
            net = create_potential(name, dim, n_params=n_params, n_hidden=n_hidden, n_modules=n_modules, **kwargs)
            if net.width >= _MIN_MODULE_WIDTH or n_modules == _GRADNET_M_MODULES[-1]:
                return net

    def size(width):
        with torch.device("meta"):
            return count_parameters(_build(name, dim, width, n_hidden, kwargs))

    lo, hi = 1, 1
    while size(hi) < n_params:
        lo, hi = hi, hi * 2
    while hi - lo > 1:  # smallest width whose count reaches n_params lies in (lo, hi]
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if size(mid) < n_params else (lo, mid)
    width = min((lo, hi), key=lambda w: (abs(size(w) - n_params), w))
    return _build(name, dim, width, n_hidden, kwargs)

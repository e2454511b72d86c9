"""Bad inputs per argument kind, for the conformance suite (tests/test_conformance.py).

Each kind maps a good value of an argument to ``(label, bad value)`` pairs that every public gradflow entry
point must refuse with a gradflow error naming the argument.
"""

from __future__ import annotations

import torch

NAN, INF = float("nan"), float("inf")


def _poison(good: torch.Tensor, value: float) -> torch.Tensor:
    bad = good.detach().clone()
    bad.view(-1)[0] = value
    return bad


def bad_tensors(good: torch.Tensor):
    """A tensor argument: a nested list, a wrong shape (another rank), integers, NaN, inf, empty."""
    wrong_shape = good.flatten() if good.ndim > 1 else good.reshape(1, -1, 1)
    return [
        ("list", good.tolist()),
        ("wrong-shape", wrong_shape),
        ("integer", good.round().long()),
        ("nan", _poison(good, NAN)),
        ("inf", _poison(good, INF)),
        ("empty", good.new_zeros(0)),
        ("none", None),
    ]


def _scalars(*, zero: bool, huge: bool = False, fraction: bool = False):
    cases = [("None", None), ("str", "a"), ("bool", True), ("nan", NAN), ("inf", INF), ("negative", -1.0)]
    if zero:
        cases.append(("zero", 0.0))
    if huge:
        cases.append(("2**70", 2**70))
    if fraction:
        cases.append(("1.5", 1.5))
    return cases


def _counts(*, zero: bool):
    cases = [("None", None), ("str", "a"), ("bool", True), ("float", 1.5), ("negative", -1), ("2**70", 2**70)]
    if zero:
        cases.append(("zero", 0))
    return cases


#: kind -> function(good value) -> [(label, bad value)]
KINDS = {
    "tensor": bad_tensors,
    # a number > 0 (a step size, a tolerance, a scale)
    "positive": lambda good: _scalars(zero=True),
    # a number >= 0
    "nonneg": lambda good: _scalars(zero=False),
    # a number in (0, 1) or (0, 1]
    "fraction": lambda good: _scalars(zero=True, fraction=True),
    # an integer >= 1 (a size, a count)
    "count": lambda good: _counts(zero=True),
    # an integer >= 0
    "count0": lambda good: _counts(zero=False),
    # a seed: an integer in [0, 2**63)
    "seed": lambda good: _counts(zero=False),
    # a name chosen from a registry / a fixed set
    "name": lambda good: [("unknown", "no-such-name"), ("None", None), ("int", 3)],
    # a torch.nn.Module (or a gradflow model)
    "module": lambda good: [("str", "x"), ("int", 3), ("None", None)],
    # a callable
    "callable": lambda good: [("str", "x"), ("int", 3)],
    # a floating dtype gradflow computes in
    "dtype": lambda good: [("int64", torch.int64), ("float16", torch.float16), ("str", "float32")],
    # a file to read
    "path": lambda good: [("missing", "/nonexistent/gradflow-conformance/file.pt"), ("int", 3)],
}

"""Known gradient fields to fit: the 2-D targets and the PolyMax family of the GradNets paper.

Each target is a scalar function F on a box [low, high]^d with its exact gradient; ``sample`` draws
uniform points, and :func:`gradient_error_db` scores a model by 10 log10(mean ||N(x) - grad F(x)||^2).

Example:
    >>> target = create_target("convex_2d")
    >>> x = target.sample(4, generator=torch.Generator().manual_seed(0))
    >>> target.gradient(x).shape
    torch.Size([4, 2])
"""

from __future__ import annotations

import math

import torch

from .._validation import check_choice, check_field_input, check_positive_int

__all__ = [
    "Convex2D",
    "FieldTarget",
    "NonConvex2D",
    "PolyMax",
    "create_target",
    "gradient_error_db",
    "gradient_mse",
    "list_targets",
]


class FieldTarget:
    """A scalar function F on the box [low, high]^dim with its exact gradient."""

    name: str = "target"
    is_convex: bool = False
    low: float = 0.0
    high: float = 1.0

    def __init__(self, dim: int):
        self.dim = check_positive_int(dim, "dim")

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        """F(x): (..., d) -> (...)."""
        check_field_input(x, self.dim)
        return self._energy(x)

    def gradient(self, x: torch.Tensor) -> torch.Tensor:
        """grad F(x): (..., d) -> (..., d)."""
        check_field_input(x, self.dim)
        return self._gradient(x)

    def sample(self, n: int, generator: torch.Generator | None = None, dtype=torch.float32,
               device=None) -> torch.Tensor:
        """n points drawn uniformly from the box: (n, d)."""
        check_positive_int(n, "n")
        u = torch.rand(n, self.dim, generator=generator, dtype=dtype)
        return (self.low + (self.high - self.low) * u).to(device)

    def grid(self, n_per_axis: int = 100, dtype=torch.float32) -> torch.Tensor:
        """A regular n_per_axis^d grid over the box (the paper's 100 x 100 test grid in 2-D): (n^d, d)."""
        check_positive_int(n_per_axis, "n_per_axis")
        axis = torch.linspace(self.low, self.high, n_per_axis, dtype=dtype)
        return torch.cartesian_prod(*[axis] * self.dim).reshape(-1, self.dim)

    def _energy(self, x):
        raise NotImplementedError

    def _gradient(self, x):
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}(dim={self.dim})"


class Convex2D(FieldTarget):
    """F(x) = x1^4 + x1^2/2 + x1 x2/2 + 3 x2^2/2 - x2^3/3 on [0, 1]^2 (convex there)."""

    name, is_convex = "convex_2d", True

    def __init__(self):
        super().__init__(2)

    def _energy(self, x):
        x1, x2 = x.unbind(-1)
        return x1**4 + x1**2 / 2 + x1 * x2 / 2 + 1.5 * x2**2 - x2**3 / 3

    def _gradient(self, x):
        x1, x2 = x.unbind(-1)
        return torch.stack([4 * x1**3 + x1 + x2 / 2, x1 / 2 + 3 * x2 - x2**2], dim=-1)


class NonConvex2D(FieldTarget):
    """G(x) = sin(2 pi x1) cos(pi x2) / 4 + x1 x2 / 2 - x2^2 / 2 on [0, 1]^2."""

    name = "nonconvex_2d"

    def __init__(self):
        super().__init__(2)

    def _energy(self, x):
        x1, x2 = x.unbind(-1)
        return torch.sin(2 * math.pi * x1) * torch.cos(math.pi * x2) / 4 + x1 * x2 / 2 - x2**2 / 2

    def _gradient(self, x):
        x1, x2 = x.unbind(-1)
        g1 = math.pi / 2 * torch.cos(2 * math.pi * x1) * torch.cos(math.pi * x2) + x2 / 2
        g2 = -math.pi / 4 * torch.sin(2 * math.pi * x1) * torch.sin(math.pi * x2) + x1 / 2 - x2
        return torch.stack([g1, g2], dim=-1)


class PolyMax(FieldTarget):
    r"""F(x) = max_{A in {S, P, Q}} (x - 1/2)^T A (x - 1/2) / c on [0, 1]^d, d >= 2 (the paper's PolyMax).

    With a_ij = (i + j - 2)/(2d - 2) and ``D_ij = log(d) (1 + |i - j|)`` (1-based i, j):
    S_ij = (2 + sin(4 pi a_ij)) / D_ij, P_ij = (1 + 2 a_ij) / D_ij, Q_ij = (3 - 2 a_ij) / D_ij, and c the
    mean gradient norm of the unnormalised F over 10,000 uniform points drawn with seed ``seed``. The
    gradient 2 A*(x - 1/2)/c (A* the maximiser) is discontinuous where the maximiser changes.
    """

    name, is_convex = "polymax", True

    def __init__(self, dim: int, seed: int = 0):
        super().__init__(dim)
        if dim < 2:
            raise ValueError(f"PolyMax needs dim >= 2 (log(d) normalises it), got {dim}")
        i = torch.arange(dim, dtype=torch.float64)
        a = (i[:, None] + i[None, :]) / (2 * dim - 2)
        D = math.log(dim) * (1 + (i[:, None] - i[None, :]).abs())
        self.matrices = torch.stack([(2 + torch.sin(4 * math.pi * a)) / D, (1 + 2 * a) / D, (3 - 2 * a) / D])
        self.scale = 1.0
        x = self.sample(10_000, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        self.scale = float(self._gradient(x).norm(dim=-1).mean())

    def _energy(self, x):
        c = x - 0.5
        return torch.einsum("...i,kij,...j->...k", c, self.matrices.to(x), c).amax(-1) / self.scale

    def _gradient(self, x):
        c = x - 0.5
        Ac = torch.einsum("kij,...j->...ki", self.matrices.to(x), c)  # (..., 3, d): A c for each A
        best = (Ac * c.unsqueeze(-2)).sum(-1).argmax(-1)  # the maximising quadratic form
        return 2 * Ac.gather(-2, best[..., None, None].expand(*best.shape, 1, self.dim)).squeeze(-2) / self.scale


_TARGETS = {"convex_2d": Convex2D, "nonconvex_2d": NonConvex2D, "polymax": PolyMax}


def list_targets() -> list[str]:
    """Names accepted by :func:`create_target`."""
    return sorted(_TARGETS)


def create_target(name: str, dim: int | None = None) -> FieldTarget:
    """The target ``name``; ``dim`` is required for "polymax" and must be 2 (or None) for the 2-D ones."""
    check_choice(name, "target", _TARGETS)
    if name == "polymax":
        if dim is None:
            raise ValueError("the polymax target needs dim (an integer >= 2)")
        return PolyMax(dim)
    if dim not in (None, 2):
        raise ValueError(f"the {name} target is 2-dimensional, got dim={dim}")
    return _TARGETS[name]()


def gradient_mse(field, target: FieldTarget, x: torch.Tensor) -> float:
    """mean_n ||field(x_n) - grad F(x_n)||^2 over the points x (n, d); a module ``field`` is evaluated on the
    device of its parameters (so a model trained on the GPU is scored on CPU points as it is).

    ``x`` must hold at least one finite point: an empty set of points has no mean error (ValueError)."""
    if not isinstance(target, FieldTarget):
        raise ValueError(f"target must be a FieldTarget (see create_target), got {type(target).__name__}")
    check_field_input(x, target.dim, name="x")
    if x.numel() == 0:
        raise ValueError(f"x must hold at least one point of shape (n, {target.dim}) with n >= 1, "
                         f"got shape {tuple(x.shape)}")
    reference = next(field.parameters(), None) if isinstance(field, torch.nn.Module) else None
    with torch.no_grad():
        values = field(x if reference is None else x.to(reference.device)).to(x.device)
        return float((values - target.gradient(x)).square().sum(-1).mean())


def gradient_error_db(field, target: FieldTarget, x: torch.Tensor) -> float:
    """10 log10(mean_n ||field(x_n) - grad F(x_n)||^2) in dB (lower is better), the paper's metric.

    ``x`` must be a non-empty (n, d) set of points (ValueError otherwise, see :func:`gradient_mse`).
    """
    return 10.0 * math.log10(max(gradient_mse(field, target, x), 1e-300))

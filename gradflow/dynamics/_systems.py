"""Known Hamiltonian systems, their high-accuracy simulation and trajectory data sets (private)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import partial
from typing import ClassVar

import numpy as np
import torch

from .._numerics import symplectic_form
from .._validation import (
    check_choice,
    check_field_input,
    check_finite,
    check_float_dtype,
    check_number,
    check_positive_int,
    check_seed,
)

__all__ = [
    "SYSTEMS",
    "DampedMassSpring",
    "DoublePendulum",
    "FPUTChain",
    "HamiltonianSystem",
    "HenonHeiles",
    "MassSpring",
    "NBody",
    "Pendulum",
    "PendulumChain",
    "PortHamiltonianSystem",
    "ThreeBody",
    "TodaLattice",
    "TrajectoryData",
    "TwoBody",
    "create_system",
    "list_systems",
    "symplectic_form",
]


def hamiltonian_field(grad: torch.Tensor) -> torch.Tensor:
    """J grad H = (dH/dp, -dH/dq) for gradients (..., 2n)."""
    n = grad.shape[-1] // 2
    return torch.cat([grad[..., n:], -grad[..., :n]], -1)


@dataclass(frozen=True)
class TrajectoryData:
    """Sampled trajectories of a system.

    Attributes:
        t: (T,) sample times, shared by every trajectory.
        states: (N, T, 2n) observed states (the clean states plus Gaussian noise of std ``noise_std``).
        derivatives: (N, T, 2n) exact time derivatives dz/dt at the clean states (the training targets of
            derivative matching, as in the HNN reference protocol); for a user's data
            (:func:`~gradflow.dynamics.trajectory_data`) the given or estimated derivatives.
        clean_states: (N, T, 2n) the noise-free states (for a user's data: the observed states).
    """

    t: torch.Tensor
    states: torch.Tensor
    derivatives: torch.Tensor
    clean_states: torch.Tensor

    def __len__(self) -> int:
        return self.states.shape[0]

    @property
    def initial_states(self) -> torch.Tensor:
        """(N, 2n) noise-free initial states."""
        return self.clean_states[:, 0]

    def pairs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(states, derivatives) flattened over trajectories and times: two (N T, 2n) tensors."""
        d = self.states.shape[-1]
        return self.states.reshape(-1, d), self.derivatives.reshape(-1, d)

    def subset(self, index) -> TrajectoryData:
        """The trajectories selected by ``index`` (indices, slice or boolean mask)."""
        return replace(self, states=self.states[index], derivatives=self.derivatives[index],
                       clean_states=self.clean_states[index])

    def to(self, *args, **kwargs) -> TrajectoryData:
        """Every tensor converted with ``Tensor.to(*args, **kwargs)`` (dtype and/or device)."""
        return TrajectoryData(*(x.to(*args, **kwargs) for x in (self.t, self.states, self.derivatives,
                                                                 self.clean_states)))


class HamiltonianSystem:
    r"""A Hamiltonian system dz/dt = J grad H(z) on z = (q, p) in R^{2n}, J = [[0, I], [-I, 0]].

    Args:
        hamiltonian: H as a torch function (..., 2n) -> (...), differentiable by autograd.
        dim: the state size 2n (even).

    ``vector_field(z)`` is J grad H by autograd; ``simulate(z0, t)`` integrates with scipy's DOP853
    (rtol = atol = 1e-10 by default; relative error ~1e-9); ``dataset(...)`` samples trajectories and
    exact derivatives with the HNN reference protocol's defaults where the subclass defines them
    (:attr:`protocol`), split by trajectory.

    Example:
        >>> system = HamiltonianSystem(lambda z: (z ** 2).sum(-1), 2)   # H = q^2 + p^2
        >>> system.vector_field(torch.tensor([1.0, 0.0]))
        tensor([ 0., -2.])
        >>> train, test = system.dataset(10, (0, 3), 30, seed=0, initial_state=torch.rand(10, 2))
        >>> train.states.shape, test.states.shape
        (torch.Size([5, 30, 2]), torch.Size([5, 30, 2]))
    """

    #: default arguments of :meth:`dataset` (the reference protocol's, where one exists)
    protocol: ClassVar[dict] = {"n_trajectories": 50, "t_span": (0.0, 3.0), "n_points": 30, "noise_std": 0.0,
                      "test_fraction": 0.5}

    def __init__(self, hamiltonian, dim: int):
        if not callable(hamiltonian):
            raise ValueError(f"hamiltonian must be a callable (..., {dim}) -> (...), got {type(hamiltonian).__name__}")
        self.dim = check_positive_int(dim, "dim")
        if dim % 2:
            raise ValueError(f"dim is the state size 2n of z = (q, p) and must be even, got {dim}")
        self.hamiltonian = hamiltonian

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim})"

    def energy(self, z: torch.Tensor) -> torch.Tensor:
        """H(z): (..., 2n) -> (...)."""
        check_field_input(z, self.dim, name="z")
        return self.hamiltonian(z)

    def gradient(self, z: torch.Tensor) -> torch.Tensor:
        """grad H(z): (..., 2n) -> (..., 2n), by autograd (differentiable when z requires grad)."""
        check_field_input(z, self.dim, name="z")
        keep_graph = z.requires_grad and torch.is_grad_enabled()
        with torch.enable_grad():
            z_ = z if z.requires_grad else z.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.hamiltonian(z_).sum(), z_, create_graph=keep_graph)
        return grad

    def vector_field(self, z: torch.Tensor) -> torch.Tensor:
        """dz/dt = J grad H(z): (..., 2n) -> (..., 2n)."""
        return hamiltonian_field(self.gradient(z))

    __call__ = vector_field

    def sample_initial_states(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """(n, 2n) float64 initial states of the reference protocol, n >= 1, drawn with ``generator``
        (subclasses define them in ``_initial_states``)."""
        check_positive_int(n, "n")
        if not isinstance(generator, torch.Generator):
            raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        return self._initial_states(n, generator)

    def _initial_states(self, n: int, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no default initial states; pass initial_state")

    def simulate(self, z0: torch.Tensor, t, *, rtol: float = 1e-10, atol: float = 1e-10,
                 chunk_size: int = 64) -> torch.Tensor:
        """Integrate from z0 (..., 2n) over the times ``t`` (1-D, monotone) with scipy's DOP853.

        Returns (len(t), \\*z0.shape) in z0's dtype and device. The integration runs in float64 on the
        CPU, ``chunk_size`` initial states per solver call (one error control per chunk, so a hard
        trajectory does not slow down the others). Raises RuntimeError if scipy fails.
        """
        check_positive_int(chunk_size, "chunk_size")
        from scipy.integrate import solve_ivp

        from ._integrate import _check_state_and_time

        check_field_input(z0, self.dim, name="z0")
        t = _check_state_and_time(z0, t)
        batch_shape = z0.shape[:-1]
        y0 = z0.detach().to("cpu", torch.float64).reshape(-1)
        times = t.detach().to("cpu", torch.float64).numpy()
        if len(times) == 1:
            return z0.detach().clone().unsqueeze(0)

        def rhs(_, y):
            with torch.no_grad():
                return self.vector_field(torch.from_numpy(y).view(-1, self.dim)).reshape(-1).numpy()

        pieces = []
        for chunk in y0.split(chunk_size * self.dim):
            sol = solve_ivp(rhs, (times[0], times[-1]), chunk.numpy(), method="DOP853", t_eval=times,
                            rtol=rtol, atol=atol)
            if not sol.success:
                raise RuntimeError(f"{type(self).__name__}.simulate failed: {sol.message}")
            pieces.append(torch.from_numpy(np.ascontiguousarray(sol.y.T)))
        out = torch.cat(pieces, -1).reshape(len(times), *batch_shape, self.dim)
        return out.to(dtype=z0.dtype, device=z0.device)

    def dataset(self, n_trajectories: int | None = None, t_span=None, n_points: int | None = None,
                noise_std: float | None = None, seed: int = 0, *, initial_state=None,
                test_fraction: float | None = None, dtype: torch.dtype = torch.float32
                ) -> tuple[TrajectoryData, TrajectoryData]:
        """Sample trajectories and split them by trajectory into (train, test).

        ``n_trajectories`` trajectories start from ``initial_state`` ((N, 2n) tensor, or a callable
        ``(n, generator) -> (n, 2n)``; default :meth:`sample_initial_states`), are simulated on
        ``n_points`` equally spaced times in ``t_span``; the targets are the exact derivatives at the clean
        states and the observed states get Gaussian noise of std ``noise_std``. The first
        ``round((1 - test_fraction) N)`` trajectories train, the rest test. Unset arguments take
        :attr:`protocol`'s values; everything is seeded by ``seed``. ``dtype`` is the data's dtype,
        torch.float32 or torch.float64 (the simulation always runs in float64).
        """
        check_float_dtype(dtype)
        p = self.protocol
        n_trajectories = check_positive_int(p["n_trajectories"] if n_trajectories is None else n_trajectories,
                                            "n_trajectories")
        n_points = check_positive_int(p["n_points"] if n_points is None else n_points, "n_points")
        noise_std = check_number(p["noise_std"] if noise_std is None else noise_std, "noise_std", minimum=0.0)
        test_fraction = check_number(p["test_fraction"] if test_fraction is None else test_fraction, "test_fraction",
                                     minimum=0.0, strict=True, maximum=1.0)
        if test_fraction == 1.0:
            raise ValueError("test_fraction must lie in (0, 1), got 1.0")
        check_seed(seed)
        t_span = p["t_span"] if t_span is None else t_span
        if isinstance(t_span, (str, bytes)) or not hasattr(t_span, "__len__") or len(t_span) != 2:
            raise ValueError(f"t_span must be a pair (t0, t1) of finite numbers with t0 < t1, got {t_span!r}")
        t0, t1 = (check_number(v, "t_span") for v in t_span)
        if not t1 > t0:
            raise ValueError(f"t_span must be (t0, t1) with t0 < t1, got {(t0, t1)}")
        n_train = round((1.0 - test_fraction) * n_trajectories)
        if not 0 < n_train < n_trajectories:
            raise ValueError(f"{n_trajectories} trajectories cannot be split with test_fraction={test_fraction}")
        generator = torch.Generator().manual_seed(seed)
        if initial_state is None:
            z0 = self.sample_initial_states(n_trajectories, generator)
        elif callable(initial_state):
            z0 = initial_state(n_trajectories, generator)
        else:
            z0 = initial_state
        check_field_input(z0, self.dim, name="initial_state")
        if z0.shape != (n_trajectories, self.dim):
            raise ValueError(f"initial_state must have shape ({n_trajectories}, {self.dim}), got {tuple(z0.shape)}")
        t = torch.linspace(t0, t1, n_points, dtype=torch.float64)
        clean = self.simulate(z0.to(torch.float64), t).transpose(0, 1)  # (N, T, 2n)
        with torch.no_grad():
            derivatives = self.vector_field(clean)
        states = clean + noise_std * torch.randn(clean.shape, generator=generator, dtype=torch.float64)
        data = TrajectoryData(t, states, derivatives, clean).to(dtype)
        return data.subset(slice(0, n_train)), data.subset(slice(n_train, None))


class PortHamiltonianSystem(HamiltonianSystem):
    r"""A dissipative (port-Hamiltonian, no input) system dz/dt = (J - R) grad H(z) with R PSD constant.

    dH/dt = -grad H^T R grad H <= 0: energy decays. ``dissipation`` is R, a (2n, 2n) PSD matrix.
    """

    def __init__(self, hamiltonian, dim: int, dissipation: torch.Tensor):
        super().__init__(hamiltonian, dim)
        if not isinstance(dissipation, torch.Tensor) or not dissipation.is_floating_point():
            got = f"dtype {dissipation.dtype}" if isinstance(dissipation, torch.Tensor) else type(dissipation).__name__
            raise ValueError(f"dissipation must be a floating-point torch.Tensor of shape ({dim}, {dim}), got {got}")
        if dissipation.shape != (dim, dim):
            raise ValueError(f"dissipation must be a ({dim}, {dim}) matrix, got {tuple(dissipation.shape)}")
        R = dissipation.detach().to("cpu", torch.float64)
        check_finite(R, "dissipation")
        if not torch.allclose(R, R.T) or float(torch.linalg.eigvalsh(R).min()) < -1e-12:
            raise ValueError("dissipation must be symmetric positive semidefinite")
        self.dissipation = R

    def vector_field(self, z):
        grad = self.gradient(z)
        return hamiltonian_field(grad) - grad @ self.dissipation.to(grad.dtype)

    __call__ = vector_field


def _uniform(generator, n, low, high):
    return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)


def _on_circle(generator, n, radius_low, radius_high):
    """HNN's 1-D initial states: a uniform direction scaled to a radius uniform in [low, high]."""
    direction = 2 * torch.rand(n, 2, generator=generator, dtype=torch.float64) - 1
    radius = _uniform(generator, n, radius_low, radius_high)
    return direction / direction.norm(dim=-1, keepdim=True) * radius.unsqueeze(-1)


class MassSpring(HamiltonianSystem):
    """Ideal mass-spring, H = p^2 / (2 m) + k q^2 / 2; the defaults m = 1/2, k = 2 give HNN's H = q^2 + p^2.

    Reference protocol: 50 trajectories on [0, 3] with 30 points, initial radius uniform in [0.1, 1],
    state noise std 0.1, half of the trajectories for testing.
    """

    protocol: ClassVar[dict] = {"n_trajectories": 50, "t_span": (0.0, 3.0), "n_points": 30, "noise_std": 0.1,
                                "test_fraction": 0.5}

    def __init__(self, mass: float = 0.5, stiffness: float = 2.0):
        self.mass = check_number(mass, "mass", minimum=0.0, strict=True)
        self.stiffness = check_number(stiffness, "stiffness", minimum=0.0, strict=True)
        super().__init__(self._hamiltonian, 2)

    def _hamiltonian(self, z):
        return z[..., 1] ** 2 / (2 * self.mass) + 0.5 * self.stiffness * z[..., 0] ** 2

    def _initial_states(self, n, generator):
        return _on_circle(generator, n, 0.1, 1.0)


class Pendulum(HamiltonianSystem):
    """Ideal pendulum, H = p^2 / (2 m l^2) + m g l (1 - cos q); the defaults (m, l, g) = (1/2, 1, 6) give
    HNN's H = 3 (1 - cos q) + p^2.

    Reference protocol: 50 trajectories on [0, 3] with 45 points, initial radius uniform in [1.3, 2.3],
    state noise std 0.1, half for testing.
    """

    protocol: ClassVar[dict] = {"n_trajectories": 50, "t_span": (0.0, 3.0), "n_points": 45, "noise_std": 0.1,
                                "test_fraction": 0.5}

    def __init__(self, mass: float = 0.5, length: float = 1.0, gravity: float = 6.0):
        self.mass = check_number(mass, "mass", minimum=0.0, strict=True)
        self.length = check_number(length, "length", minimum=0.0, strict=True)
        self.gravity = check_number(gravity, "gravity", minimum=0.0)
        super().__init__(self._hamiltonian, 2)

    def _hamiltonian(self, z):
        m, l, g = self.mass, self.length, self.gravity
        return z[..., 1] ** 2 / (2 * m * l * l) + m * g * l * (1 - torch.cos(z[..., 0]))

    def _initial_states(self, n, generator):
        return _on_circle(generator, n, 1.3, 2.3)


class DoublePendulum(HamiltonianSystem):
    r"""Planar double pendulum (non-separable: the kinetic energy depends on q1 - q2), z = (q1, q2, p1, p2):

        H = [m2 l2^2 p1^2 + (m1 + m2) l1^2 p2^2 - 2 m2 l1 l2 p1 p2 cos(q1 - q2)]
            / [2 m2 l1^2 l2^2 (m1 + m2 sin^2(q1 - q2))] - (m1 + m2) g l1 cos q1 - m2 g l2 cos q2.

    Default data: 50 trajectories on [0, 10] with 100 points, angles uniform in [-1, 1], momenta uniform
    in [-0.5, 0.5], no noise, half for testing (HNN has no double-pendulum protocol).
    """

    protocol: ClassVar[dict] = {"n_trajectories": 50, "t_span": (0.0, 10.0), "n_points": 100, "noise_std": 0.0,
                "test_fraction": 0.5}

    def __init__(self, masses=(1.0, 1.0), lengths=(1.0, 1.0), gravity: float = 1.0):
        for name, pair in (("masses", masses), ("lengths", lengths)):
            if isinstance(pair, (str, bytes)) or not hasattr(pair, "__len__") or len(pair) != 2:
                raise ValueError(f"{name} must be a pair of finite numbers > 0, got {pair!r}")
        self.m1, self.m2 = (check_number(m, "masses", minimum=0.0, strict=True) for m in masses)
        self.l1, self.l2 = (check_number(length, "lengths", minimum=0.0, strict=True) for length in lengths)
        self.gravity = check_number(gravity, "gravity", minimum=0.0)
        super().__init__(self._hamiltonian, 4)

    def _hamiltonian(self, z):
        q1, q2, p1, p2 = z.unbind(-1)
        m1, m2, l1, l2, g = self.m1, self.m2, self.l1, self.l2, self.gravity
        c = torch.cos(q1 - q2)
        s2 = torch.sin(q1 - q2) ** 2
        kinetic = (m2 * l2**2 * p1**2 + (m1 + m2) * l1**2 * p2**2 - 2 * m2 * l1 * l2 * p1 * p2 * c) / (
            2 * m2 * l1**2 * l2**2 * (m1 + m2 * s2))
        return kinetic - (m1 + m2) * g * l1 * torch.cos(q1) - m2 * g * l2 * torch.cos(q2)

    def _initial_states(self, n, generator):
        q = 2 * torch.rand(n, 2, generator=generator, dtype=torch.float64) - 1
        p = torch.rand(n, 2, generator=generator, dtype=torch.float64) - 0.5
        return torch.cat([q, p], -1)


class NBody(HamiltonianSystem):
    r"""Planar gravitational n-body problem with unit masses and G = 1, z = (q_1, .., q_n, p_1, .., p_n),
    q_i, p_i in R^2 (state size 4n), optionally with Plummer softening eps >= 0:

        ``H = sum_i |p_i|^2 / 2 - sum_{i<j} 1 / sqrt(|q_i - q_j|^2 + eps^2)``.

    H is invariant under translations, so the total momentum sum_i p_i is conserved. A ring of more than
    a few bodies is unstable and close encounters make the unsoftened flow stiff (simulating it slows
    down by orders of magnitude); ``softening`` bounds the forces (the registered "n_body" uses 0.1).

    Default data: 200 trajectories on [0, 5] with 50 points; the bodies start on a regular n-gon of
    radius uniform in [0.9, 1.2] (random orientation) with the unsoftened circular-orbit velocities,
    each velocity component scaled by a factor uniform in [0.9, 1.1]; no noise; 20% for testing.

    Example:
        >>> NBody(8, softening=0.1).dim
        32
    """

    protocol: ClassVar[dict] = {"n_trajectories": 200, "t_span": (0.0, 5.0), "n_points": 50, "noise_std": 0.0,
                                "test_fraction": 0.2}

    def __init__(self, n_bodies: int = 4, softening: float = 0.0):
        self.n_bodies = check_positive_int(n_bodies, "n_bodies", minimum=2)
        self.softening = check_number(softening, "softening", minimum=0.0)
        pairs = torch.triu_indices(n_bodies, n_bodies, offset=1)
        self._pairs = (pairs[0], pairs[1])
        super().__init__(self._hamiltonian, 4 * n_bodies)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_bodies={self.n_bodies}, softening={self.softening:g})"

    def _hamiltonian(self, z):
        k = 2 * self.n_bodies
        q = z[..., :k].unflatten(-1, (self.n_bodies, 2))
        i, j = self._pairs
        squared = (q[..., i, :] - q[..., j, :]).square().sum(-1) + self.softening**2
        return 0.5 * z[..., k:].square().sum(-1) - squared.rsqrt().sum(-1)

    def gradient(self, z):
        # closed form (faster than autograd inside scipy's solver):
        # dH/dq_i = sum_j (q_i - q_j) / (|q_i - q_j|^2 + eps^2)^(3/2)
        check_field_input(z, self.dim, name="z")
        k = 2 * self.n_bodies
        q = z[..., :k].unflatten(-1, (self.n_bodies, 2))
        diff = q.unsqueeze(-2) - q.unsqueeze(-3)  # (..., n, n, 2): q_i - q_j
        eye = torch.eye(self.n_bodies, dtype=z.dtype, device=z.device).unsqueeze(-1)
        inv_cube = (diff.square().sum(-1, keepdim=True) + self.softening**2 + eye).pow(-1.5) * (1 - eye)
        return torch.cat([(diff * inv_cube).sum(-2).flatten(-2), z[..., k:]], -1)

    def _initial_states(self, n, generator):
        return _ring_states(generator, n, self.n_bodies, 0.1)


def _rotate(v, angle):
    c, s = math.cos(angle), math.sin(angle)
    return torch.stack([c * v[..., 0] - s * v[..., 1], s * v[..., 0] + c * v[..., 1]], -1)


def _ring_states(generator, n, n_bodies, perturbation):
    """(n, 4 n_bodies) states of n_bodies unit masses on a regular polygon of radius r uniform in [0.9, 1.2]
    (random orientation) moving on the circular orbit, each velocity component then scaled by a factor
    uniform in [1 - perturbation, 1 + perturbation]. The circular speed: the pull towards the centre is
    S / (4 r^2) with S = sum_{k=1}^{n_bodies-1} 1 / sin(pi k / n_bodies), so v = sqrt(S / (4 r))."""
    direction = 2 * torch.rand(n, 2, generator=generator, dtype=torch.float64) - 1
    r = 0.9 + 0.3 * torch.rand(n, 1, generator=generator, dtype=torch.float64)
    q1 = direction / direction.norm(dim=-1, keepdim=True) * r
    pull = sum(1.0 / math.sin(math.pi * k / n_bodies) for k in range(1, n_bodies)) / 4
    v1 = _rotate(q1, math.pi / 2) / r * (pull / r).sqrt()
    angles = [2 * math.pi * k / n_bodies for k in range(n_bodies)]
    positions = [_rotate(q1, a) for a in angles]
    velocities = [_rotate(v1, a) * (1 + perturbation * (2 * torch.rand(n, 2, generator=generator,
                                                                       dtype=torch.float64) - 1))
                  for a in angles]
    return torch.cat([*positions, *velocities], -1)


class TwoBody(NBody):
    """Two bodies on near-circular orbits (HNN's two-body task), z = (q1, q2, p1, p2) in R^8.

    Reference protocol: 1000 trajectories on [0, 20] with 50 points; body 1 at a position with
    coordinates uniform in [0.5, 1.5], body 2 opposite, circular-orbit velocities scaled by
    (1 + 0.05 N(0, 1)); no noise; 20% of the trajectories for testing.
    """

    protocol: ClassVar[dict] = {"n_trajectories": 1000, "t_span": (0.0, 20.0), "n_points": 50, "noise_std": 0.0,
                "test_fraction": 0.2}

    def __init__(self):
        super().__init__(2)

    def _initial_states(self, n, generator):
        pos = 0.5 + torch.rand(n, 2, generator=generator, dtype=torch.float64)
        r = pos.norm(dim=-1, keepdim=True)
        vel = _rotate(pos, math.pi / 2) / (2 * r**1.5)
        vel = vel * (1 + 0.05 * torch.randn(n, 1, generator=generator, dtype=torch.float64))
        return torch.cat([pos, -pos, vel, -vel], -1)


class ThreeBody(NBody):
    """Three bodies near the circular Lagrange configuration (HNN's three-body task), z in R^12.

    Reference protocol: 5000 trajectories on [0, 5] with 20 points; bodies at 120 degrees on a circle of
    radius uniform in [0.9, 1.2], circular-orbit velocities perturbed by factors uniform in [0.8, 1.2]
    per component; no noise; 20% for testing.
    """

    protocol: ClassVar[dict] = {"n_trajectories": 5000, "t_span": (0.0, 5.0), "n_points": 20, "noise_std": 0.0,
                "test_fraction": 0.2}

    def __init__(self):
        super().__init__(3)

    def _initial_states(self, n, generator):
        return _ring_states(generator, n, 3, 0.2)


class HenonHeiles(HamiltonianSystem):
    """Henon-Heiles, H = (px^2 + py^2) / 2 + (x^2 + y^2) / 2 + lam (x^2 y - y^3 / 3), z = (x, y, px, py).

    Default data: 50 bounded trajectories on [0, 20] with 100 points at energies uniform in [0.02, 0.15]
    (below the escape energy 1 / (6 lam^2) for lam = 1), no noise, half for testing.
    """

    protocol: ClassVar[dict] = {"n_trajectories": 50, "t_span": (0.0, 20.0), "n_points": 100, "noise_std": 0.0,
                "test_fraction": 0.5}

    def __init__(self, coupling: float = 1.0):
        self.coupling = check_number(coupling, "coupling")
        super().__init__(self._hamiltonian, 4)

    def _hamiltonian(self, z):
        x, y, px, py = z.unbind(-1)
        return 0.5 * (px**2 + py**2 + x**2 + y**2) + self.coupling * (x**2 * y - y**3 / 3)

    def _initial_states(self, n, generator):
        energy = _uniform(generator, n, 0.02, 0.15) / max(self.coupling, 1.0) ** 2
        q = torch.zeros(n, 2, dtype=torch.float64)
        todo = torch.ones(n, dtype=torch.bool)
        while bool(todo.any()):  # rejection: positions with V(q) < E
            trial = 0.6 * (2 * torch.rand(int(todo.sum()), 2, generator=generator, dtype=torch.float64) - 1)
            x, y = trial.unbind(-1)
            ok = 0.5 * (x**2 + y**2) + self.coupling * (x**2 * y - y**3 / 3) < energy[todo]
            index = todo.nonzero().squeeze(-1)[ok]
            q[index] = trial[ok]
            todo[index] = False
        x, y = q.unbind(-1)
        speed = (2 * (energy - 0.5 * (x**2 + y**2) - self.coupling * (x**2 * y - y**3 / 3))).sqrt()
        angle = 2 * math.pi * torch.rand(n, generator=generator, dtype=torch.float64)
        return torch.cat([q, torch.stack([speed * angle.cos(), speed * angle.sin()], -1)], -1)


class DampedMassSpring(PortHamiltonianSystem):
    """Mass-spring with linear friction on the momentum: dq/dt = p / m, dp/dt = -k q - gamma p / m, i.e.
    (J - R) grad H with H = p^2 / (2 m) + k q^2 / 2 and R = diag(0, gamma). Default data as
    :class:`MassSpring` (noise-free)."""

    protocol: ClassVar[dict] = {"n_trajectories": 50, "t_span": (0.0, 3.0), "n_points": 30, "noise_std": 0.0,
                                "test_fraction": 0.5}

    def __init__(self, damping: float = 0.1, mass: float = 0.5, stiffness: float = 2.0):
        self.damping = check_number(damping, "damping", minimum=0.0)
        self.spring = MassSpring(mass, stiffness)
        super().__init__(self.spring.hamiltonian, 2, torch.diag(torch.tensor([0.0, self.damping])))

    def _initial_states(self, n, generator):
        return self.spring.sample_initial_states(n, generator)


class _Chain(HamiltonianSystem):
    r"""A chain of n unit masses with nearest-neighbour bonds, z = (q_1..q_n, p_1..p_n) in R^{2n}:

        H = sum_i p_i^2 / 2 + sum_i U(q_i) + sum_bonds V(r),  r = q_{i+1} - q_i,

    with ``boundary`` "fixed" (walls q_0 = q_{n+1} = 0: n + 1 bonds), "periodic" (q_{n+1} = q_1: n bonds)
    or "free" (n - 1 bonds). Subclasses give the bond force V'(r) (``_bond``, returning (V, V')) and the
    on-site potential U (``_site``, returning (U, U'), or None). The gradient is closed form:
    dH/dq_i = U'(q_i) + V'(r_{i-1}) - V'(r_i). Initial states: q_i uniform in [-a, a] and p_i uniform in
    [-b, b] with (a, b) = ``amplitudes``.
    """

    boundary: ClassVar[str] = "fixed"
    #: (a, b): half-widths of the uniform initial positions and momenta
    amplitudes: ClassVar[tuple[float, float]] = (0.5, 0.5)
    protocol: ClassVar[dict] = {"n_trajectories": 50, "t_span": (0.0, 10.0), "n_points": 100, "noise_std": 0.0,
                                "test_fraction": 0.2}

    def __init__(self, n_particles: int):
        self.n_particles = check_positive_int(n_particles, "n_particles", minimum=2)
        super().__init__(self._hamiltonian, 2 * n_particles)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_particles={self.n_particles})"

    def _bond(self, r):
        raise NotImplementedError

    def _site(self, q):
        return None

    def _bond_lengths(self, q):
        if self.boundary == "fixed":
            q = torch.nn.functional.pad(q, (1, 1))
        elif self.boundary == "periodic":
            q = torch.cat([q, q[..., :1]], -1)
        return q[..., 1:] - q[..., :-1]

    def _hamiltonian(self, z):
        q, p = z[..., : self.n_particles], z[..., self.n_particles:]
        energy = 0.5 * p.square().sum(-1) + self._bond(self._bond_lengths(q))[0].sum(-1)
        site = self._site(q)
        return energy if site is None else energy + site[0].sum(-1)

    def gradient(self, z):
        check_field_input(z, self.dim, name="z")
        q, p = z[..., : self.n_particles], z[..., self.n_particles:]
        force = self._bond(self._bond_lengths(q))[1]  # V'(r_b) for every bond b
        if self.boundary == "free":
            force = torch.nn.functional.pad(force, (1, 1))
        elif self.boundary == "periodic":
            force = torch.cat([force[..., -1:], force], -1)
        grad_q = force[..., :-1] - force[..., 1:]  # V'(r_{i-1}) - V'(r_i)
        site = self._site(q)
        if site is not None:
            grad_q = grad_q + site[1]
        return torch.cat([grad_q, p], -1)

    def _initial_states(self, n, generator):
        a, b = self.amplitudes
        q = a * (2 * torch.rand(n, self.n_particles, generator=generator, dtype=torch.float64) - 1)
        p = b * (2 * torch.rand(n, self.n_particles, generator=generator, dtype=torch.float64) - 1)
        return torch.cat([q, p], -1)


class FPUTChain(_Chain):
    r"""Fermi-Pasta-Ulam-Tsingou chain with fixed ends, z = (q, p) in R^{2n}:

        H = sum_{i=1}^n p_i^2 / 2 + sum_{i=0}^n [r_i^2 / 2 + alpha r_i^3 / 3 + beta r_i^4 / 4],
        r_i = q_{i+1} - q_i, q_0 = q_{n+1} = 0.

    ``alpha`` gives the alpha-FPUT chain ("fput_alpha": alpha = 0.25, beta = 0), ``beta`` (>= 0, so that
    H is bounded below) the beta-FPUT chain ("fput_beta": alpha = 0, beta = 1); alpha = beta = 0 is the
    harmonic chain with normal-mode frequencies 2 sin(k pi / (2 (n + 1))), k = 1..n.

    Default data: 50 trajectories on [0, 10] with 100 points, q_i and p_i uniform in [-0.5, 0.5]
    (``|r| <= 1``, far below the alpha chain's barrier at r = -1 / alpha), no noise, 20% for testing.

    Example:
        >>> FPUTChain(16, beta=1.0).dim
        32
    """

    def __init__(self, n_particles: int = 16, alpha: float = 0.25, beta: float = 0.0):
        self.alpha = check_number(alpha, "alpha")
        self.beta = check_number(beta, "beta", minimum=0.0)
        super().__init__(n_particles)

    def _bond(self, r):
        r2 = r * r
        return (r2 * (0.5 + r * (self.alpha / 3 + self.beta / 4 * r)),
                r * (1 + r * (self.alpha + self.beta * r)))


class TodaLattice(_Chain):
    r"""Periodic Toda lattice, z = (q, p) in R^{2n}:

        H = sum_i p_i^2 / 2 + sum_i [exp(-r_i) + r_i - 1],  r_i = q_{i+1} - q_i,  q_{n+1} = q_1.

    Integrable; H is invariant under q -> q + c, so the total momentum sum_i p_i is conserved. The linear
    terms sum to zero around the ring; they make each bond energy >= 0 with its minimum at r = 0.

    Default data: 50 trajectories on [0, 10] with 100 points, q_i and p_i uniform in [-0.5, 0.5], no
    noise, 20% for testing.
    """

    boundary: ClassVar[str] = "periodic"

    def __init__(self, n_particles: int = 16):
        super().__init__(n_particles)

    def _bond(self, r):
        e = torch.exp(-r)
        return e + r - 1, 1 - e


class PendulumChain(_Chain):
    r"""A chain of pendulums (unit mass and length) coupled by torsion springs, free ends, z = (q, p):

        H = sum_i [p_i^2 / 2 + gravity (1 - cos q_i)] + coupling / 2 sum_{i=1}^{n-1} (q_{i+1} - q_i)^2

    (the discrete sine-Gordon / Frenkel-Kontorova chain). Default data: 50 trajectories on [0, 10] with
    100 points, angles uniform in [-1, 1], momenta uniform in [-0.5, 0.5], no noise, 20% for testing.
    """

    boundary: ClassVar[str] = "free"
    amplitudes: ClassVar[tuple[float, float]] = (1.0, 0.5)

    def __init__(self, n_pendulums: int = 16, coupling: float = 1.0, gravity: float = 1.0):
        self.coupling = check_number(coupling, "coupling", minimum=0.0)
        self.gravity = check_number(gravity, "gravity", minimum=0.0)
        super().__init__(check_positive_int(n_pendulums, "n_pendulums", minimum=2))

    def _bond(self, r):
        return 0.5 * self.coupling * r * r, self.coupling * r

    def _site(self, q):
        return self.gravity * (1 - torch.cos(q)), self.gravity * torch.sin(q)


#: name -> system class (or a constructor with preset parameters), for :func:`create_system` and the command line
SYSTEMS = {
    "mass_spring": MassSpring,
    "pendulum": Pendulum,
    "double_pendulum": DoublePendulum,
    "two_body": TwoBody,
    "three_body": ThreeBody,
    "n_body": partial(NBody, softening=0.1),
    "henon_heiles": HenonHeiles,
    "damped_mass_spring": DampedMassSpring,
    "fput_alpha": partial(FPUTChain, alpha=0.25, beta=0.0),
    "fput_beta": partial(FPUTChain, alpha=0.0, beta=1.0),
    "toda": TodaLattice,
    "pendulum_chain": PendulumChain,
}


def list_systems() -> list[str]:
    """Names accepted by :func:`create_system`."""
    return sorted(SYSTEMS)


def create_system(name: str, **kwargs) -> HamiltonianSystem:
    """The system ``name`` (see :func:`list_systems`) built with ``kwargs``.

    Example:
        >>> create_system("pendulum", gravity=9.81).dim
        2
    """
    check_choice(name, "system name", SYSTEMS)
    return SYSTEMS[name](**kwargs)

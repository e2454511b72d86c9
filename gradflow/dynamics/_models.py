"""Learned dynamics: Hamiltonian networks, separable and port-Hamiltonian variants, the neural ODE (private)."""

from __future__ import annotations

import torch
from torch import nn

from .._validation import check_choice, check_field_input, check_positive_int
from ..potentials import (
    FastGradientField,
    GradNetC,
    MGradNetC,
    Potential,
    count_parameters,
    create_potential,
    identity_scale_init,
)
from ._systems import hamiltonian_field

__all__ = ["HamiltonianNet", "NeuralODE", "PortHamiltonianNet", "SeparableHamiltonianNet",
           "create_dynamics_model", "list_dynamics_models"]


def _check_state(z, model: nn.Module) -> None:
    """Type, dtype, device and shape of a state batch z (..., 2n): free checks, as forward runs at every solver
    stage. Finiteness (a device sync) is checked by the potentials' own forward and by the entry points."""
    check_field_input(z, model.dim, next(model.parameters(), None), "z", finite=False)


def _check_potential(module, name: str, dim: int | None = None) -> Potential:
    if not isinstance(module, Potential):
        raise ValueError(f"{name} must be a gradflow Potential (e.g. GradNetC), got {type(module).__name__}")
    if not module.is_conservative:
        raise ValueError(f"{name} must be conservative (a gradient field); {type(module).__name__} is not")
    if dim is not None and module.dim != dim:
        raise ValueError(f"{name} must act on R^{dim}, got dim={module.dim}")
    return module


class HamiltonianNet(nn.Module):
    r"""dz/dt = J grad H(z) with grad H from a gradflow potential on z = (q, p) in R^{2n}.

    Gradient networks (GradNetC, GradNetM, their monotone variants) give grad H in one forward pass, so
    the field is exactly Hamiltonian by construction and training needs a single backward;
    ``MLPPotential`` gives the Hamiltonian Neural Network (Greydanus et al. 2019) baseline (grad H by
    autograd: a double backward in training); ``ICNN`` works too.

    Args:
        potential: a conservative :class:`~gradflow.potentials.Potential` on R^{2n}.
        fast: compute grad H with :class:`~gradflow.potentials.FastGradientField` (gradient networks only:
            a hand-written backward around compiled elementwise kernels). Same values and first-order
            gradients; losses that differentiate the field twice need ``fast=False``.
        compile: with ``fast``, compile the elementwise kernels with ``torch.compile`` (first call: seconds).

    Example:
        >>> from gradflow.potentials import GradNetC
        >>> model = HamiltonianNet(GradNetC(2, width=16))
        >>> z = torch.randn(5, 2)
        >>> model(z).shape, model.hamiltonian(z).shape
        (torch.Size([5, 2]), torch.Size([5]))
    """

    def __init__(self, potential: Potential, *, fast: bool = False, compile: bool = True):
        super().__init__()
        self.potential = _check_potential(potential, "potential")
        if potential.dim % 2:
            raise ValueError(f"the potential must act on the phase space R^(2n), got dim={potential.dim}")
        self.dim = potential.dim
        self.fast = bool(fast)
        # kept outside the module tree: it shares the potential's parameters and adds no state of its own
        self.__dict__["_gradient"] = FastGradientField(potential, compile=compile) if fast else potential

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """J grad H(z): (..., 2n) -> (..., 2n)."""
        _check_state(z, self)
        return hamiltonian_field(self._gradient(z))

    def hamiltonian(self, z: torch.Tensor) -> torch.Tensor:
        """The learned energy H(z) (up to a constant): (..., 2n) -> (...)."""
        return self.potential.energy(z)


class SeparableHamiltonianNet(nn.Module):
    r"""H(q, p) = T(p) + V(q), so dz/dt = (grad T(p), -grad V(q)); suits the symplectic splitting integrators.

    Args:
        kinetic: potential T on R^n; by default a monotone cascaded net (convex kinetic energy,
            ``identity_scale_init(MGradNetC(n, width=32))``); pass any conservative Potential to override.
        potential: potential V on R^n (any conservative Potential).

    Example:
        >>> from gradflow.potentials import GradNetC
        >>> model = SeparableHamiltonianNet(potential=GradNetC(1, width=16))
        >>> model(torch.randn(4, 2)).shape
        torch.Size([4, 2])
    """

    def __init__(self, kinetic: Potential | None = None, potential: Potential | None = None):
        super().__init__()
        if potential is None:
            raise ValueError("potential (the network for V(q)) is required")
        self.potential = _check_potential(potential, "potential")
        n = potential.dim
        self.kinetic = identity_scale_init(MGradNetC(n, width=32)) if kinetic is None else _check_potential(
            kinetic, "kinetic", n)
        if next(self.kinetic.parameters()).dtype != next(self.potential.parameters()).dtype:
            raise ValueError("kinetic and potential must have the same dtype")
        self.dim = 2 * n

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(grad T(p), -grad V(q)): (..., 2n) -> (..., 2n)."""
        _check_state(z, self)
        n = self.dim // 2
        return torch.cat([self.velocity(z[..., n:]), self.force(z[..., :n])], -1)

    def velocity(self, p: torch.Tensor) -> torch.Tensor:
        """dq/dt = grad T(p): (..., n) -> (..., n). The splitting integrators of :func:`odeint` call the two halves
        of the field separately (a drift needs only this one)."""
        return self.kinetic(p)

    def force(self, q: torch.Tensor) -> torch.Tensor:
        """dp/dt = -grad V(q): (..., n) -> (..., n) (a kick of the splitting integrators needs only this one)."""
        return -self.potential(q)

    def hamiltonian(self, z: torch.Tensor) -> torch.Tensor:
        """T(p) + V(q): (..., 2n) -> (...)."""
        check_field_input(z, self.dim, name="z")
        n = self.dim // 2
        return self.kinetic.energy(z[..., n:]) + self.potential.energy(z[..., :n])


class NeuralODE(nn.Module):
    """An unstructured learned field dz/dt = f(z) (the neural ODE baseline), e.g. around ``MLPField``.

    It has no Hamiltonian: ``hamiltonian`` raises TypeError.

    Example:
        >>> from gradflow.potentials import MLPField
        >>> NeuralODE(MLPField(2, widths=(16,)))(torch.randn(3, 2)).shape
        torch.Size([3, 2])
    """

    def __init__(self, field: nn.Module):
        super().__init__()
        if not isinstance(field, nn.Module) or not isinstance(getattr(field, "dim", None), int):
            raise ValueError(f"field must be an nn.Module with an integer dim (e.g. MLPField), got {field!r}")
        self.field = field
        self.dim = field.dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.field(z)

    def hamiltonian(self, z):
        raise TypeError("NeuralODE learns an unstructured field and has no Hamiltonian")


class PortHamiltonianNet(nn.Module):
    r"""Port-Hamiltonian dynamics dz/dt = (J - R) grad H(z) + [0; G(q) u] with R = L L^T PSD (learned).

    ``dH/dt = -grad H^T R grad H + grad_p H^T G(q) u``: without input the learned energy never increases.

    Args:
        potential: a conservative Potential on R^{2n} giving grad H (as in :class:`HamiltonianNet`).
        n_inputs: size m of the control u (0: no input term); G(q) is an n x m matrix from an MLP of q.
        dissipation: ``"full"`` (R on all of z), ``"momentum"`` (R acts on p only, friction) or ``"none"``.
        gain_width: hidden width of the MLP giving G(q).

    ``forward(z, u=None)``: z (..., 2n), u (..., m) (zero when omitted). ``dissipation_matrix()`` is R.

    Example:
        >>> from gradflow.potentials import GradNetC
        >>> model = PortHamiltonianNet(GradNetC(2, width=8), n_inputs=1)
        >>> model(torch.randn(5, 2), torch.randn(5, 1)).shape
        torch.Size([5, 2])
    """

    def __init__(self, potential: Potential, n_inputs: int = 0, dissipation: str = "momentum",
                 gain_width: int = 32):
        super().__init__()
        self.potential = _check_potential(potential, "potential")
        if potential.dim % 2:
            raise ValueError(f"the potential must act on the phase space R^(2n), got dim={potential.dim}")
        self.dim = potential.dim
        n = self.dim // 2
        self.n_inputs = check_positive_int(n_inputs, "n_inputs", minimum=0)
        self.dissipation = check_choice(dissipation, "dissipation", ("full", "momentum", "none"))
        gain_width = check_positive_int(gain_width, "gain_width")  # checked even when unused (n_inputs=0)
        reference = next(potential.parameters())
        size = {"full": self.dim, "momentum": n, "none": 0}[dissipation]
        # small initial damping: L = 0.1 I
        self.dissipation_factor = nn.Parameter(0.1 * torch.eye(size, dtype=reference.dtype, device=reference.device))
        if self.n_inputs:
            self.gain = nn.Sequential(nn.Linear(n, gain_width), nn.Tanh(), nn.Linear(gain_width, n * self.n_inputs))
            self.gain.to(dtype=reference.dtype, device=reference.device)

    def dissipation_matrix(self) -> torch.Tensor:
        """R = L L^T (2n x 2n), symmetric PSD by construction (zero outside the damped block)."""
        R = torch.zeros(self.dim, self.dim, dtype=self.dissipation_factor.dtype, device=self.dissipation_factor.device)
        L = self.dissipation_factor.tril()
        k = L.shape[0]
        R[self.dim - k:, self.dim - k:] = L @ L.T
        return R

    def forward(self, z: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
        _check_state(z, self)
        grad = self.potential(z)
        out = hamiltonian_field(grad) - grad @ self.dissipation_matrix()
        if u is None or not self.n_inputs:
            if u is not None:
                raise ValueError("this model has no input (n_inputs=0) but u was given")
            return out
        check_field_input(u, self.n_inputs, next(self.potential.parameters()), "u")
        n = self.dim // 2
        G = self.gain(z[..., :n]).unflatten(-1, (n, self.n_inputs))
        force = (G @ u.unsqueeze(-1)).squeeze(-1)
        return out + torch.cat([torch.zeros_like(force), force], -1)

    def hamiltonian(self, z: torch.Tensor) -> torch.Tensor:
        return self.potential.energy(z)


#: modules of the modular nets built by create_dynamics_model: with the foundation's default of 4 (wide
#: softmax modules) GradNet-M fits the two-body field 22 dB worse than with 16 at the same parameter count
#: (benchmarks/results/hamiltonian.md)
_N_MODULES = 16


def _potential(name: str, dim: int, n_params: int) -> Potential:
    """The potential ``name`` of gradflow.potentials on R^dim with about ``n_params`` parameters: modular nets
    with :data:`_N_MODULES` modules, cascaded ones from :func:`identity_scale_init`."""
    options = {"n_modules": _N_MODULES} if name in ("gradnet_m", "mgradnet_m") else {}
    net = create_potential(name, dim, n_params=n_params, **options)
    return identity_scale_init(net) if isinstance(net, (GradNetC, MGradNetC)) else net


def _hamiltonian(potential: str):
    """Builder of HamiltonianNet(potential) on R^dim."""
    return lambda dim, n_params: HamiltonianNet(_potential(potential, dim, n_params))


def _separable(kinetic: str, potential: str):
    """Builder of SeparableHamiltonianNet(T = kinetic, V = potential) on R^dim, the budget split evenly."""

    def build(dim: int, n_params: int) -> SeparableHamiltonianNet:
        T = _potential(kinetic, dim // 2, n_params // 2)
        return SeparableHamiltonianNet(T, _potential(potential, dim // 2, n_params - count_parameters(T)))

    return build


#: name -> (one-line description, builder(dim, n_params)) of the models create_dynamics_model builds
_MODELS = {
    "hnn": ("HamiltonianNet(MLPPotential): the HNN baseline (grad H by autograd)", _hamiltonian("mlp_potential")),
    "gradnet_c": ("HamiltonianNet(GradNetC)", _hamiltonian("gradnet_c")),
    "gradnet_m": ("HamiltonianNet(GradNetM)", _hamiltonian("gradnet_m")),
    "mgradnet_c": ("HamiltonianNet(MGradNetC): convex H", _hamiltonian("mgradnet_c")),
    "icnn": ("HamiltonianNet(ICNN): convex H by autograd", _hamiltonian("icnn")),
    "separable_c": ("SeparableHamiltonianNet(MGradNetC kinetic, GradNetC potential)",
                    _separable("mgradnet_c", "gradnet_c")),
    "separable_m": ("SeparableHamiltonianNet(MGradNetM kinetic, GradNetM potential)",
                    _separable("mgradnet_m", "gradnet_m")),
    "separable_hnn": ("SeparableHamiltonianNet(MLPPotential kinetic, MLPPotential potential): the separable "
                      "HNN baseline of the separable gradient networks", _separable("mlp_potential", "mlp_potential")),
    "neural_ode": ("NeuralODE(MLPField): unstructured baseline",
                   lambda dim, n_params: NeuralODE(create_potential("mlp_field", dim, n_params=n_params))),
}


def list_dynamics_models() -> dict[str, str]:
    """Names accepted by :func:`create_dynamics_model` with a one-line description each."""
    return {name: description for name, (description, _) in _MODELS.items()}


def create_dynamics_model(name: str, dim: int, n_params: int = 2000) -> nn.Module:
    """A dynamics model on R^dim (dim = 2n) by name (see :func:`list_dynamics_models`), sized to about
    ``n_params`` trainable parameters (split evenly between T and V for the separable models). Cascaded
    gradient networks start from :func:`~gradflow.potentials.identity_scale_init`; modular ones have 16 modules.

    Example:
        >>> model = create_dynamics_model("gradnet_c", 2, n_params=500)
        >>> abs(count_parameters(model) - 500) < 20
        True
    """
    check_choice(name, "dynamics model name", _MODELS)
    check_positive_int(dim, "dim")
    check_positive_int(n_params, "n_params", minimum=10)
    if dim % 2:
        raise ValueError(f"dim is the phase-space size 2n and must be even, got {dim}")
    return _MODELS[name][1](dim, n_params)

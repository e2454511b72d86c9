"""Learn Hamiltonian systems from trajectories with gradient networks.

* Integrators: :func:`odeint` with every torchdiffeq method (and its adjoint) plus symplectic methods
  ("leapfrog", "yoshida4" for separable fields; "implicit_midpoint" for any field).
* Systems and data: :class:`HamiltonianSystem` (any H as a torch function) with high-accuracy
  ``simulate`` and ``dataset``; :class:`MassSpring`, :class:`Pendulum`, :class:`DoublePendulum`,
  :class:`TwoBody`, :class:`ThreeBody`, :class:`HenonHeiles`, and the damped :class:`DampedMassSpring`.
* Models: :class:`HamiltonianNet` (J grad H from any gradflow potential), :class:`SeparableHamiltonianNet`,
  :class:`PortHamiltonianNet`, :class:`NeuralODE`; :func:`create_dynamics_model` by name (cascaded nets
  start from :func:`gradflow.potentials.identity_scale_init`).
* Training through gradflow.train: :func:`fit_derivatives` (HNN derivative matching) and
  :func:`fit_trajectories` (multi-step rollouts through any integrator); metrics :func:`derivative_mse`,
  :func:`error_db`, :func:`rollout_metrics`, :func:`energy_drift`.
"""

from ._integrate import SPLITTING_METHODS, TORCHDIFFEQ_METHODS, SplittingTableau, list_methods, odeint
from ._metrics import derivative_mse, energy_drift, error_db, rollout_metrics
from ._models import (
    HamiltonianNet,
    NeuralODE,
    PortHamiltonianNet,
    SeparableHamiltonianNet,
    create_dynamics_model,
    list_dynamics_models,
)
from ._systems import (
    SYSTEMS,
    DampedMassSpring,
    DoublePendulum,
    HamiltonianSystem,
    HenonHeiles,
    MassSpring,
    NBody,
    Pendulum,
    PortHamiltonianSystem,
    ThreeBody,
    TrajectoryData,
    TwoBody,
    create_system,
    list_systems,
    symplectic_form,
)
from ._training import TrajectoryLoss, derivative_loss, fit_derivatives, fit_trajectories, trajectory_windows

__all__ = [
    "SPLITTING_METHODS",
    "SYSTEMS",
    "TORCHDIFFEQ_METHODS",
    "DampedMassSpring",
    "DoublePendulum",
    "HamiltonianNet",
    "HamiltonianSystem",
    "HenonHeiles",
    "MassSpring",
    "NBody",
    "NeuralODE",
    "Pendulum",
    "PortHamiltonianNet",
    "PortHamiltonianSystem",
    "SeparableHamiltonianNet",
    "SplittingTableau",
    "ThreeBody",
    "TrajectoryData",
    "TrajectoryLoss",
    "TwoBody",
    "create_dynamics_model",
    "create_system",
    "derivative_loss",
    "derivative_mse",
    "energy_drift",
    "error_db",
    "fit_derivatives",
    "fit_trajectories",
    "list_dynamics_models",
    "list_methods",
    "list_systems",
    "odeint",
    "rollout_metrics",
    "symplectic_form",
    "trajectory_windows",
]

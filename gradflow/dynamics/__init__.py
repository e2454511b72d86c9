"""Learn Hamiltonian systems from trajectories with gradient networks.

* Integrators: :func:`odeint` with every torchdiffeq method (and its adjoint) plus symplectic methods
  ("leapfrog", "yoshida4" for separable fields; "implicit_midpoint" for any field).
* Systems and data: :class:`HamiltonianSystem` (any H as a torch function) with high-accuracy
  ``simulate`` and ``dataset``; :class:`MassSpring`, :class:`Pendulum`, :class:`DoublePendulum`,
  :class:`TwoBody`, :class:`ThreeBody`, planar :class:`NBody`, :class:`HenonHeiles`, the damped
  :class:`DampedMassSpring`, and lattices of any size: :class:`FPUTChain` (alpha and beta), :class:`TodaLattice`,
  :class:`PendulumChain`.
* Models: :class:`HamiltonianNet` (J grad H from any gradflow potential), :class:`SeparableHamiltonianNet`,
  :class:`PortHamiltonianNet`, :class:`NeuralODE`; :func:`create_dynamics_model` by name (cascaded nets
  start from :func:`gradflow.potentials.identity_scale_init`).
* Training through gradflow.train: :func:`fit_derivatives` (HNN derivative matching) and
  :func:`fit_trajectories` (multi-step rollouts through any integrator); metrics :func:`derivative_mse`,
  :func:`error_db`, :func:`rollout_metrics`, :func:`energy_drift`.
* Users' own trajectories: :func:`trajectory_data` (arrays t (T,), z (N, T, 2n), optional dz; missing
  derivatives estimated by :func:`estimate_derivatives`), :func:`load_trajectories` (.npz with keys
  t, z, dz), :func:`split_trajectories` (by trajectory), :func:`rollout_error` and :func:`plot_rollouts`.
"""

from ._data import (
    DERIVATIVE_SCHEMES,
    NPZ_KEYS,
    estimate_derivatives,
    load_trajectories,
    plot_rollouts,
    split_trajectories,
    trajectory_data,
)
from ._integrate import SPLITTING_METHODS, TORCHDIFFEQ_METHODS, SplittingTableau, list_methods, odeint
from ._metrics import derivative_mse, energy_drift, error_db, rollout_error, rollout_metrics
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
    FPUTChain,
    HamiltonianSystem,
    HenonHeiles,
    MassSpring,
    NBody,
    Pendulum,
    PendulumChain,
    PortHamiltonianSystem,
    ThreeBody,
    TodaLattice,
    TrajectoryData,
    TwoBody,
    create_system,
    list_systems,
    symplectic_form,
)
from ._training import TrajectoryLoss, derivative_loss, fit_derivatives, fit_trajectories, trajectory_windows

__all__ = [
    "DERIVATIVE_SCHEMES",
    "NPZ_KEYS",
    "SPLITTING_METHODS",
    "SYSTEMS",
    "TORCHDIFFEQ_METHODS",
    "DampedMassSpring",
    "DoublePendulum",
    "FPUTChain",
    "HamiltonianNet",
    "HamiltonianSystem",
    "HenonHeiles",
    "MassSpring",
    "NBody",
    "NeuralODE",
    "Pendulum",
    "PendulumChain",
    "PortHamiltonianNet",
    "PortHamiltonianSystem",
    "SeparableHamiltonianNet",
    "SplittingTableau",
    "ThreeBody",
    "TodaLattice",
    "TrajectoryData",
    "TrajectoryLoss",
    "TwoBody",
    "create_dynamics_model",
    "create_system",
    "derivative_loss",
    "derivative_mse",
    "energy_drift",
    "error_db",
    "estimate_derivatives",
    "fit_derivatives",
    "fit_trajectories",
    "list_dynamics_models",
    "list_methods",
    "list_systems",
    "load_trajectories",
    "odeint",
    "plot_rollouts",
    "rollout_error",
    "rollout_metrics",
    "split_trajectories",
    "symplectic_form",
    "trajectory_data",
    "trajectory_windows",
]

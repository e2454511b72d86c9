"""``gradflow hamiltonian``: learn a Hamiltonian system from its trajectories (CLI layer over the library)."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["register"]


def _hamiltonian(args) -> int:
    import torch

    from ..report import Report, require_matplotlib
    from ..train import save_checkpoint
    from ._systems import create_system
    from .demo import plot_energy, plot_phase_portraits, train_and_evaluate

    if not args.lr > 0:
        raise ValueError(f"--lr must be > 0, got {args.lr}")
    system = create_system(args.system)
    train, test = system.dataset(args.n_trajectories, seed=args.seed)
    t0, t1 = (float(v) for v in test.t[[0, -1]])
    t = torch.linspace(t0, t0 + args.horizon * (t1 - t0), 100 * args.horizon, dtype=torch.float64)
    out = Path(args.out)
    model, metrics, rollout = train_and_evaluate(
        args.model, system, train, test, n_params=args.n_params, steps=args.steps, lr=args.lr, seed=args.seed,
        device=args.device, max_time=args.max_time, rollout_t=t, batch_size=args.batch_size,
        checkpoint_dir=out / "checkpoints", resume=args.resume, history_path=out / "history.jsonl")
    metrics["system"] = args.system
    save_checkpoint(out / "model.pt", state_dict=model.state_dict(), name=args.model, system=args.system,
                    n_params=args.n_params)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    report = Report(out, f"hamiltonian: {args.model} on {args.system}")
    report.table(list(metrics), [list(metrics.values())])
    plt = require_matplotlib()
    if system.dim == 2:
        report.figure(plot_phase_portraits(plt, system, {args.model: model}, {args.model: rollout}), "phase-portrait",
                      "field and rollouts (learned solid, true dashed)")
    report.figure(plot_energy(plt, system, {args.model: rollout}, t), "energy", "true energy along the rollout")
    report.write()
    print(f"{args.model} on {args.system}: test derivative MSE {metrics['test_mse']:.3g} "
          f"({metrics['test_db']:.1f} dB), rollout energy MSE {metrics['energy_mse']:.3g} after "
          f"{metrics['steps']} steps; model, metrics and report in {out}")
    return 0


def register(commands, common_options) -> None:
    from ..cli import positive_int
    from ._models import list_dynamics_models
    from ._systems import list_systems

    parser = commands.add_parser("hamiltonian", help="learn a Hamiltonian system from trajectories")
    common_options(parser, "hamiltonian-out")
    parser.add_argument("--system", choices=list_systems(), default="pendulum")
    parser.add_argument("--model", choices=list(list_dynamics_models()), default="gradnet_c")
    parser.add_argument("--n-params", type=positive_int, default=2000, help="parameter budget (default: 2000)")
    parser.add_argument("--n-trajectories", type=positive_int, default=None,
                        help="trajectories to simulate (default: the system's reference protocol)")
    parser.add_argument("--steps", type=positive_int, default=2000)
    parser.add_argument("--batch-size", type=positive_int, default=None, help="default: full batch")
    parser.add_argument("--lr", type=float, default=5e-3, help="Adam learning rate (default: 5e-3)")
    parser.add_argument("--horizon", type=positive_int, default=5,
                        help="rollout length in multiples of the data's time span (default: 5)")
    parser.add_argument("--resume", action="store_true", help="resume from OUT/checkpoints if present")
    parser.set_defaults(run=_hamiltonian)

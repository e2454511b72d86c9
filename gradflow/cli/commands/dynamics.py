"""``gradflow hamiltonian``: learn a Hamiltonian system from its trajectories (CLI layer over the library)."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["register"]


def _hamiltonian(args) -> int:
    import torch

    from ...dynamics import create_system
    from ...train import save_checkpoint
    from ..demo.dynamics import plot_energy, plot_phase_portraits, train_and_evaluate
    from ..report import Report, require_matplotlib

    if not args.lr > 0:
        raise ValueError(f"--lr must be > 0, got {args.lr}")
    if args.data is not None:
        return _hamiltonian_data(args)
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


def _hamiltonian_data(args) -> int:
    """``--data FILE.npz``: learn from a user's trajectories (keys t, z, optional dz; see NPZ_KEYS)."""
    import time
    import zipfile

    import torch

    from ...dynamics import (
        create_dynamics_model,
        derivative_mse,
        error_db,
        fit_derivatives,
        fit_trajectories,
        load_trajectories,
        plot_rollouts,
        rollout_error,
        split_trajectories,
    )
    from ...potentials import count_parameters
    from ...train import save_checkpoint
    from ..report import Report, require_matplotlib

    data = load_trajectories(args.data, scheme=args.derivatives)
    with zipfile.ZipFile(args.data) as archive:
        given = "dz.npy" in archive.namelist()
    train, test = split_trajectories(data, args.test_fraction, args.seed)
    torch.manual_seed(args.seed)
    model = create_dynamics_model(args.model, data.states.shape[-1], args.n_params)
    out = Path(args.out)
    options = {"steps": args.steps, "lr": args.lr, "seed": args.seed, "device": args.device,
               "max_time": args.max_time, "progress": False, "batch_size": args.batch_size,
               "checkpoint_dir": out / "checkpoints", "resume": args.resume, "history_path": out / "history.jsonl"}
    start = time.perf_counter()
    if args.loss == "derivatives":
        result = fit_derivatives(model, train, **options)
    else:
        result = fit_trajectories(model, train, horizon=args.window, **options)
    seconds = time.perf_counter() - start
    model = result.model.cpu()
    mse = derivative_mse(model, test)
    rollout = rollout_error(model, test)
    metrics = {"model": args.model, "params": count_parameters(model), "data": str(args.data),
               "trajectories": f"{len(train)} train, {len(test)} test", "loss": args.loss,
               "derivatives": "given (dz)" if given else f"estimated ({args.derivatives})", "steps": result.steps,
               "test_mse": mse, "test_db": error_db(mse), "rollout_state_mse": rollout["state_mse"], "train_s": seconds}
    save_checkpoint(out / "model.pt", state_dict=model.state_dict(), name=args.model, data=str(args.data),
                    n_params=args.n_params)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    report = Report(out, f"hamiltonian: {args.model} on {Path(args.data).name}")
    report.table(list(metrics), [list(metrics.values())])
    report.figure(plot_rollouts(require_matplotlib(), test.t, test.states, rollout["model_trajectory"]), "rollout",
                  "test trajectories: observed states (dots) and the learned rollout from the first state (lines)")
    report.write()
    print(f"{args.model} on {args.data}: test derivative MSE {mse:.3g} ({metrics['test_db']:.1f} dB, derivatives "
          f"{metrics['derivatives']}), test rollout state MSE {rollout['state_mse']:.3g} after {result.steps} "
          f"steps; model, metrics and report in {out}")
    return 0


def register(commands, common_options) -> None:
    from ...dynamics import DERIVATIVE_SCHEMES, list_dynamics_models, list_systems
    from .. import positive_int

    parser = commands.add_parser("hamiltonian", help="learn a Hamiltonian system from trajectories")
    common_options(parser, "hamiltonian-out")
    parser.add_argument("--system", choices=list_systems(), default="pendulum",
                        help="simulated system to learn (default: pendulum; ignored with --data)")
    parser.add_argument("--data", default=None, metavar="FILE.npz",
                        help="learn from your own trajectories instead: a .npz with t (T,), z (N, T, 2n) and "
                        "optionally dz (N, T, 2n) (numpy.savez(path, t=t, z=z))")
    parser.add_argument("--derivatives", choices=sorted(DERIVATIVE_SCHEMES), default="central4",
                        help="with --data and no dz: how to estimate dz/dt (default: central4, uniform t)")
    parser.add_argument("--loss", choices=["derivatives", "trajectories"], default="derivatives",
                        help="with --data: derivative matching, or multi-step rollouts (for noisy states; needs "
                        "no derivatives) (default: derivatives)")
    parser.add_argument("--window", type=positive_int, default=4,
                        help="with --loss trajectories: sample intervals per rollout window (default: 4)")
    parser.add_argument("--test-fraction", type=float, default=0.2,
                        help="with --data: fraction of the trajectories held out for testing (default: 0.2)")
    parser.add_argument("--model", choices=list(list_dynamics_models()), default="gradnet_c")
    parser.add_argument("--n-params", type=positive_int, default=2000, help="parameter budget (default: 2000)")
    parser.add_argument("--n-trajectories", type=positive_int, default=None,
                        help="trajectories to simulate (default: the system's reference protocol)")
    parser.add_argument("--steps", type=positive_int, default=2000)
    parser.add_argument("--batch-size", type=positive_int, default=None, help="default: full batch")
    parser.add_argument("--lr", type=float, default=5e-3, help="Adam learning rate (default: 5e-3)")
    parser.add_argument("--horizon", type=positive_int, default=5,
                        help="rollout length in multiples of the data's time span (default: 5; "
                        "with --data the rollout covers the test trajectories' times)")
    parser.add_argument("--resume", action="store_true", help="resume from OUT/checkpoints if present")
    parser.set_defaults(run=_hamiltonian)

"""``gradflow fit-field``: fit a potential to a known gradient field (CLI layer over :func:`fit_field`)."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["register"]


def _fit_field(args) -> int:
    import torch

    from ...potentials import count_parameters, create_potential
    from ...potentials.fitting import fit_field
    from ...potentials.targets import create_target, gradient_error_db
    from ...train import save_checkpoint
    from ...train._checkpoint import atomic_write_text
    from ..demo.potentials import plot_fields
    from ..report import Report, require_matplotlib

    target = create_target(args.target, args.dim)
    torch.manual_seed(args.seed)
    model = create_potential(args.model, target.dim, n_params=args.n_params)
    out = Path(args.out)
    result = fit_field(
        model, target, n_train=args.n_train, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        seed=args.seed, device=args.device, max_time=args.max_time, checkpoint_dir=out / "checkpoints",
        resume=args.resume, history_path=out / "history.jsonl",
    )
    model = result.model.cpu()
    if target.dim == 2:
        test_points = target.grid(100)
    else:
        test_points = target.sample(10_000, generator=torch.Generator().manual_seed(args.seed + 1))
    db = gradient_error_db(model, target, test_points)
    metrics = {"target": args.target, "model": args.model, "params": count_parameters(model), "error_db": db,
               "steps": result.steps, "stop_reason": result.stop_reason, "best_val_loss": result.best_val_loss}
    save_checkpoint(out / "model.pt", state_dict=model.state_dict(), name=args.model, dim=target.dim)
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    report = Report(out, f"fit-field: {args.model} on {args.target}")
    report.table(list(metrics), [list(metrics.values())])
    if target.dim == 2:
        report.figure(plot_fields(require_matplotlib(), target, {args.model: model}, args.target),
                      "field", "true and learned field, error map")
    report.write()
    print(f"{args.model} on {args.target}: {db:.2f} dB after {result.steps} steps ({result.stop_reason}); "
          f"model, metrics and report in {out}")
    return 0


def register(commands, common_options) -> None:
    from ...potentials import list_potentials
    from ...potentials.targets import list_targets
    from .. import positive_int

    fit = commands.add_parser("fit-field", help="fit a potential to a known gradient field")
    common_options(fit, "fit-field-out")
    fit.add_argument("--target", choices=list_targets(), default="convex_2d")
    fit.add_argument("--dim", type=positive_int, default=None, help="dimension (polymax only)")
    fit.add_argument("--model", choices=list_potentials(), default="mgradnet_c")
    fit.add_argument("--n-params", type=positive_int, default=100, help="parameter budget (default: 100)")
    fit.add_argument("--n-train", type=positive_int, default=100_000)
    fit.add_argument("--epochs", type=positive_int, default=200)
    fit.add_argument("--batch-size", type=positive_int, default=1000)
    fit.add_argument("--lr", type=float, default=5e-3)
    fit.add_argument("--resume", action="store_true", help="resume from OUT/checkpoints if present")
    fit.set_defaults(run=_fit_field)

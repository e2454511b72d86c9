"""The ``gradflow`` command: a thin layer over library functions.

    gradflow demo [--out DIR] [--quick]             train a small model in every domain, write a report
    gradflow fit-field --target T --model M ...     fit a potential to a known gradient field

User mistakes (bad option values, missing or unreadable files) print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import gradflow

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        self.exit(2, f"gradflow: error: {message}\n")


def _common(parser: argparse.ArgumentParser, out_default: str) -> None:
    parser.add_argument("--out", default=out_default, help=f"output directory (default: {out_default})")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--max-time", type=float, default=None, help="wall-clock budget in seconds per fit")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def _demo(args) -> int:
    from .demo import run_demo

    path = run_demo(args.out, quick=args.quick, device=args.device, seed=args.seed)
    print(f"report written to {path}")
    return 0


def _fit_field(args) -> int:
    import torch

    from .potentials import count_parameters, create_potential
    from .potentials.demo import _plot_fields
    from .potentials.fitting import fit_field
    from .potentials.targets import create_target, gradient_error_db
    from .report import Report, require_matplotlib

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
    test_points = target.grid(100) if target.dim == 2 else target.sample(10_000, torch.Generator().manual_seed(1))
    db = gradient_error_db(model, target, test_points)
    metrics = {"target": args.target, "model": args.model, "params": count_parameters(model), "error_db": db,
               "steps": result.steps, "stop_reason": result.stop_reason, "best_val_loss": result.best_val_loss}
    from .train import save_checkpoint

    save_checkpoint(out / "model.pt", state_dict=model.state_dict())
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    report = Report(out, f"fit-field: {args.model} on {args.target}")
    report.table(list(metrics), [list(metrics.values())])
    if target.dim == 2:
        report.figure(_plot_fields(require_matplotlib(), target, {args.model: model}, args.target),
                      "field", "true and learned field, error map")
    report.write()
    print(f"{args.model} on {args.target}: {db:.2f} dB after {result.steps} steps ({result.stop_reason}); "
          f"model, metrics and report in {out}")
    return 0


def _parser() -> argparse.ArgumentParser:
    from .potentials import list_potentials
    from .potentials.targets import list_targets

    parser = _Parser(prog="gradflow", description="Gradient networks for scientific machine learning.")
    parser.add_argument("--version", action="version", version=f"gradflow {gradflow.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    demo = commands.add_parser("demo", help="train small models in every domain and write a report")
    _common(demo, "demo-out")
    demo.add_argument("--quick", action="store_true", help="a few training steps only (seconds)")
    demo.set_defaults(run=_demo)

    fit = commands.add_parser("fit-field", help="fit a potential to a known gradient field")
    _common(fit, "fit-field-out")
    fit.add_argument("--target", choices=list_targets(), default="convex_2d")
    fit.add_argument("--dim", type=_positive_int, default=None, help="dimension (polymax only)")
    fit.add_argument("--model", choices=list_potentials(), default="mgradnet_c")
    fit.add_argument("--n-params", type=_positive_int, default=100, help="parameter budget (default: 100)")
    fit.add_argument("--n-train", type=_positive_int, default=100_000)
    fit.add_argument("--epochs", type=_positive_int, default=200)
    fit.add_argument("--batch-size", type=_positive_int, default=1000)
    fit.add_argument("--lr", type=float, default=5e-3)
    fit.add_argument("--resume", action="store_true", help="resume from OUT/checkpoints if present")
    fit.set_defaults(run=_fit_field)
    return parser


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except (ValueError, OSError, ImportError) as err:
        print(f"gradflow: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gradflow: interrupted (checkpoints, if any, are kept; rerun with --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""The application layer: the ``gradflow`` command, the demo (:mod:`gradflow.cli.demo`) and the report
writer (:mod:`gradflow.cli.report`), a thin layer over the library. It imports the domains; no domain imports
it.

    gradflow demo [--out DIR] [--quick]             train a small model in every domain, write a report
    gradflow fit-field --target T --model M ...     fit a potential to a known gradient field

The subcommands of each domain live in ``gradflow.cli.commands.<domain>`` (listed in
:data:`COMMAND_MODULES`); such a module defines ``register(subparsers, common)``, adding parsers whose
``run`` default is a function of the parsed arguments returning the exit status. User mistakes (bad option
values, missing or unreadable files) print one line and exit with status 2.

``--out`` policy: a command refuses an ``--out`` directory that already holds files (a previous run's)
unless ``--overwrite`` (write into it, replacing files of the same name; other files stay) or, for the
training commands, ``--resume`` (continue the run saved there) is given; an ``--out`` that is a file is
refused. Output files are written atomically (a temporary file renamed into place).

Images read from files (``gradflow restore``, ``gradflow sr apply``) are refused above ``--max-pixels``
pixels (width x height; default 4096 x 4096), before they are decoded.

Results go to stdout, progress to stderr: the demo writes a line as each section starts and ends, and
every training run a line with its budget, a tqdm bar on a terminal or else (a log file, ``nohup``,
CI) a status line every 10 seconds, and a line with its stop reason. ``GRADFLOW_PROGRESS_INTERVAL=60``
sets the seconds between status lines.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

import gradflow

from .._imaging import DEFAULT_MAX_PIXELS

__all__ = ["COMMAND_MODULES", "check_out", "main", "positive_int"]

#: modules that register subcommands, in the order they appear in ``gradflow --help``
COMMAND_MODULES = [
    "gradflow.cli.commands.potentials",
    "gradflow.cli.commands.dynamics",
    "gradflow.cli.commands.transport",
    "gradflow.cli.commands.vision",
    "gradflow.cli.commands.inverse",
]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        self.exit(2, f"gradflow: error: {message}\n")


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def common_options(parser: argparse.ArgumentParser, out_default: str) -> None:
    """The options every subcommand takes: --out, --overwrite, --device, --seed, --max-time, --threads,
    --max-pixels."""
    parser.add_argument("--out", default=out_default,
                        help=f"output directory (default: {out_default}); refused if it already holds files, "
                        "unless --overwrite (or --resume where the command has it)")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a non-empty --out, replacing files of the same name")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--max-time", type=float, default=None, help="wall-clock budget in seconds per fit")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="CPU threads for torch (default: torch's choice; the demo uses 1)")
    parser.add_argument("--max-pixels", type=positive_int, default=DEFAULT_MAX_PIXELS,
                        help="refuse input images of more pixels (width x height) than this, before decoding "
                        f"them (default: {DEFAULT_MAX_PIXELS} = 4096x4096)")


def _demo(args) -> int:
    from .demo import run_demo

    path = run_demo(args.out, quick=args.quick, device=args.device, seed=args.seed, max_time=args.max_time,
                    jobs=args.jobs)
    print(f"report written to {path}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gradflow",
        description="Gradient networks for scientific machine learning.",
        epilog="Progress goes to stderr: a bar on a terminal, otherwise a status line every 10 s "
        "(set GRADFLOW_PROGRESS_INTERVAL=SECONDS to change it).",
    )
    parser.add_argument("--version", action="version", version=f"gradflow {gradflow.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    demo = commands.add_parser("demo", help="train small models in every domain and write a report")
    common_options(demo, "demo-out")
    demo.add_argument("--quick", action="store_true", help="a few training steps only (seconds)")
    demo.add_argument("--jobs", type=positive_int, default=min(2, os.cpu_count() or 1),
                      help="sections run at a time, each in a process of its own (default: 2, or 1 on a "
                      "one-CPU machine); the numbers do not depend on it")
    # The demo's models are small: one thread is fastest, and several threads that share a busy
    # machine can be many times slower than one (measured: 18 s against 0.4 s for 100 steps).
    demo.set_defaults(run=_demo, threads=1)
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(commands, common_options)
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors a user can act on, reported in one line with exit status 2: bad values and files, a training
    run that diverged (TrainingError) and a solve that did not converge (ConvergenceError)."""
    from ..potentials import ConvergenceError
    from ..train import TrainingError

    errors = [ValueError, OSError, ImportError, TrainingError, ConvergenceError]
    if "PIL.Image" in sys.modules:  # an image too large to decode safely
        errors.append(sys.modules["PIL.Image"].DecompressionBombError)
    return tuple(errors)


def check_out(args) -> None:
    """Apply the ``--out`` policy (module docstring): raise ValueError if ``args.out`` is a file, or a directory
    that holds files while neither ``--overwrite`` nor ``--resume`` was given."""
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; --out must be a directory")
    if out.is_dir() and not (args.overwrite or getattr(args, "resume", False)):
        entries = sorted(p.name for p in out.iterdir())
        if entries:
            shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
            resume = " or --resume to continue the run saved there" if hasattr(args, "resume") else ""
            raise ValueError(f"--out {out} is not empty ({len(entries)} entries: {shown}); pass --overwrite to "
                             f"write into it (files of the same name are replaced){resume}, or choose another --out")


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    try:
        check_out(args)
        return args.run(args)
    except _user_errors() as err:
        print(f"gradflow: error: {' '.join(str(err).split())}", file=sys.stderr)  # one line
        return 2
    except KeyboardInterrupt:
        print("gradflow: interrupted (checkpoints, if any, are kept; rerun with --resume)", file=sys.stderr)
        return 130


"""Shared plumbing for the benchmark scripts: arguments, machine facts, timing, result tables.

Every script is run as ``python benchmarks/bench_<name>.py [--smoke] [--out DIR]``; it prints its tables
and writes them, with the exact command and the machine's facts, to ``DIR/<name>.md`` (default
``benchmarks/results``). ``--smoke`` runs a seconds-long version for CI.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(description: str, configure=None) -> argparse.Namespace:
    """--smoke, --out, --device, plus whatever ``configure(parser)`` adds."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--smoke", action="store_true", help="a seconds-long run for CI")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"where tables go (default: {RESULTS})")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    if configure is not None:
        configure(parser)
    args = parser.parse_args()
    args.commit = _git_commit()  # the code the run started from, even if it lasts past later commits
    return args


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_commit() -> str:
    try:
        def git(*argv):
            return subprocess.run(["git", *argv], capture_output=True, text=True, timeout=5,
                                  cwd=Path(__file__).parent).stdout.strip()

        commit = git("rev-parse", "--short", "HEAD") or "unknown"
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ":/gradflow", ":/benchmarks")
        return commit + (" + uncommitted changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine_facts(device: str = "cpu") -> dict:
    """Facts that a reader needs to compare numbers: date, CPU, cores, threads, versions, commit."""
    facts = {
        "date (UTC)": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "torch threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "commit": _git_commit(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        facts["gpu"] = torch.cuda.get_device_name()
    return facts


def command_line() -> str:
    return "python " + " ".join(shlex.quote(a) for a in sys.argv)


def median_time(fn, repeats: int = 5, warmup: int = 1, sync=None) -> tuple[float, list[float]]:
    """Median wall seconds of ``fn()`` over ``repeats`` calls after ``warmup`` calls (``sync`` e.g.
    torch.cuda.synchronize is called before each clock read)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if sync:
            sync()
        start = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def markdown_table(headers, rows) -> str:
    def cell(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(map(str, headers)) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(name: str, title: str, sections, args, notes: str = "") -> Path:
    """Print and write ``<args.out>/<name>.md``: title, command, machine facts, then each
    (caption, headers, rows) section and the notes. Smoke runs are marked as such."""
    facts = machine_facts(getattr(args, "device", "cpu"))
    facts["commit"] = getattr(args, "commit", facts["commit"])
    parts = [f"# {title}" + (" (SMOKE RUN: not a result)" if args.smoke else ""), f"Command: `{command_line()}`"]
    parts.append(markdown_table(["fact", "value"], list(facts.items())))
    for caption, headers, rows in sections:
        parts += [f"## {caption}", markdown_table(headers, rows)]
    if notes:
        parts += ["## Notes", notes.strip()]
    text = "\n\n".join(parts) + "\n"
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{name}.md"
    path.write_text(text)
    return path

"""``gradflow demo``: train a small model in every domain on bundled or generated data and write a
report with figures and a metrics table."""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

from ... import __version__
from ..report import Report

__all__ = ["SECTIONS", "run_demo"]

#: (title, "module:function") of each domain's section; a section is
#: f(report, *, quick, device, seed, max_time) and adds its text, tables, figures and summary metrics.
SECTIONS = [
    ("gradient fields", "gradflow.cli.demo.potentials:field_section"),
    ("hamiltonian dynamics", "gradflow.cli.demo.dynamics:hamiltonian_section"),
    ("optimal transport", "gradflow.cli.demo.transport:transport_section"),
    ("vision", "gradflow.cli.demo.vision:vision_section"),
    ("inverse problems", "gradflow.cli.demo.inverse:inverse_section"),
]


def _say(text: str) -> None:
    print(f"demo: {text}", file=sys.stderr, flush=True)


def _machine() -> str:
    """gradflow, Python and torch versions, torch threads, CPU count and platform, in one line."""
    import os
    import platform

    import torch

    return (f"gradflow {__version__}, Python {platform.python_version()}, torch {torch.__version__} "
            f"({torch.get_num_threads()} thread(s)), {os.cpu_count()} CPU(s), {platform.platform()}")


def run_demo(out_dir, *, quick: bool = False, device: str = "auto", seed: int = 0, max_time: float | None = None,
             sections=None, progress: bool = True) -> Path:
    """Run the demo sections (all by default, or those titled in ``sections``) and write
    ``out_dir/report.md`` with figures under ``out_dir/figures``; returns the report's path.

    ``quick=True`` trains for a few steps only (seconds; for tests and smoke runs); ``max_time`` caps
    each training run's wall-clock seconds. ``progress=True`` writes a line to stderr when the demo
    starts (its settings and sections), when each section starts and ends (its name and seconds; or
    that it failed, and with which exception) and when all are done, so a run into a log file is never
    silent for longer than a section; ``progress=False`` writes nothing.
    """
    chosen = [s for s in SECTIONS if sections is None or s[0] in sections]
    if sections is not None and len(chosen) != len(set(sections)):
        valid = ", ".join(title for title, _ in SECTIONS)
        raise ValueError(f"unknown demo section in {sorted(sections)}; valid: {valid}")
    report = Report(out_dir, "gradflow demo report")
    timings = []
    if progress:
        _say(f"{len(chosen)} sections ({', '.join(title for title, _ in chosen)}); "
             f"quick={quick}, device={device}, seed={seed}, max_time={max_time}")
    begin = time.perf_counter()
    for number, (title, target) in enumerate(chosen, 1):
        module, function = target.split(":")
        tag = f"[{number}/{len(chosen)}] {title}"
        if progress:
            _say(f"{tag}: started")
        start = time.perf_counter()
        try:
            getattr(importlib.import_module(module), function)(report, quick=quick, device=device, seed=seed,
                                                                      max_time=max_time)
        except BaseException as err:
            if progress:
                _say(f"{tag}: failed after {time.perf_counter() - start:.1f}s ({type(err).__name__})")
            raise
        timings.append([title, time.perf_counter() - start])
        if progress:
            _say(f"{tag}: done in {timings[-1][1]:.1f}s")
    if progress:
        _say(f"all {len(chosen)} sections done in {time.perf_counter() - begin:.1f}s")
    report.heading("Run")
    report.text(f"quick={quick}, device={device}, seed={seed}, max_time={max_time}; {_machine()}")
    report.table(["section", "seconds"], timings)
    return report.write()

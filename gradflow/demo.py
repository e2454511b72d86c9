"""``gradflow demo``: train a small model in every domain on bundled or generated data and write a
report with figures and a metrics table."""

from __future__ import annotations

import importlib
import time
from pathlib import Path

from .report import Report

__all__ = ["SECTIONS", "run_demo"]

#: (title, "module:function") of each domain's section; a section is
#: f(report, *, quick, device, seed, max_time) and adds its text, tables, figures and summary metrics.
SECTIONS = [
    ("gradient fields", "gradflow.potentials.demo:field_section"),
    ("hamiltonian dynamics", "gradflow.dynamics.demo:hamiltonian_section"),
    ("optimal transport", "gradflow.transport.demo:transport_section"),
    ("vision", "gradflow.vision.demo:vision_section"),
    ("inverse problems", "gradflow.inverse.demo:inverse_section"),
]


def run_demo(out_dir, *, quick: bool = False, device: str = "auto", seed: int = 0, max_time: float | None = None,
             sections=None) -> Path:
    """Run the demo sections (all by default, or those titled in ``sections``) and write
    ``out_dir/report.md`` with figures under ``out_dir/figures``; returns the report's path.

    ``quick=True`` trains for a few steps only (seconds; for tests and smoke runs); ``max_time`` caps
    each training run's wall-clock seconds.
    """
    chosen = [s for s in SECTIONS if sections is None or s[0] in sections]
    if sections is not None and len(chosen) != len(set(sections)):
        valid = ", ".join(title for title, _ in SECTIONS)
        raise ValueError(f"unknown demo section in {sorted(sections)}; valid: {valid}")
    report = Report(out_dir, "gradflow demo report")
    timings = []
    for title, target in chosen:
        module, function = target.split(":")
        start = time.perf_counter()
        getattr(importlib.import_module(module), function)(report, quick=quick, device=device, seed=seed,
                                                                  max_time=max_time)
        timings.append([title, time.perf_counter() - start])
    report.heading("Run")
    report.text(f"quick={quick}, device={device}, seed={seed}, max_time={max_time}")
    report.table(["section", "seconds"], timings)
    return report.write()

"""``gradflow demo``: train a small model in every domain on bundled or generated data and write a
report with figures and a metrics table."""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

from ... import __version__
from ..._validation import check_positive_int
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


def _machine() -> str:
    """gradflow, Python and torch versions, torch threads, CPU count and platform, in one line."""
    import os
    import platform

    import torch

    return (f"gradflow {__version__}, Python {platform.python_version()}, torch {torch.__version__} "
            f"({torch.get_num_threads()} thread(s)), {os.cpu_count()} CPU(s), {platform.platform()}")


def _run_section(target: str, out_dir, options: dict, threads: int):
    """Run one section ``"module:function"`` into a report of its own; return its parts and seconds (a worker
    process runs this with ``threads`` torch threads)."""
    import torch

    torch.set_num_threads(threads)
    module, function = target.split(":")
    report = Report(out_dir, "")
    start = time.perf_counter()
    getattr(importlib.import_module(module), function)(report, **options)
    return report.parts(), time.perf_counter() - start


def run_demo(out_dir, *, quick: bool = False, device: str = "auto", seed: int = 0, max_time: float | None = None,
             sections=None, progress: bool = True, jobs: int = 1) -> Path:
    """Run the demo sections (all by default, or those titled in ``sections``) and write
    ``out_dir/report.md`` with figures under ``out_dir/figures``; returns the report's path.

    ``quick=True`` trains for a few steps only (seconds; for tests and smoke runs); ``max_time`` caps
    each training run's wall-clock seconds. ``jobs`` sections run at a time, each in a process of its own
    with the caller's number of torch threads (``jobs=1``: one after the other in this process); every
    section seeds its own generators from ``seed``, so the report's numbers do not depend on ``jobs``.
    ``progress=True`` writes a line to stderr when the demo starts (its settings and sections), when each
    section starts and ends (its name and seconds; or that it failed, and with which exception) and when all
    are done, so a run into a log file is never silent for longer than a section; ``progress=False`` writes
    nothing.
    """
    jobs = check_positive_int(jobs, "jobs")
    chosen = [s for s in SECTIONS if sections is None or s[0] in sections]
    if sections is not None and len(chosen) != len(set(sections)):
        valid = ", ".join(title for title, _ in SECTIONS)
        raise ValueError(f"unknown demo section in {sorted(sections)}; valid: {valid}")
    import torch

    threads = torch.get_num_threads()
    options = {"quick": quick, "device": device, "seed": seed, "max_time": max_time}

    def say(text):
        if progress:
            print(f"demo: {text}", file=sys.stderr, flush=True)

    say(f"{len(chosen)} sections ({', '.join(title for title, _ in chosen)}); "
        f"quick={quick}, device={device}, seed={seed}, max_time={max_time}, jobs={jobs}")
    tags = [f"[{number}/{len(chosen)}] {title}" for number, (title, _) in enumerate(chosen, 1)]
    results = {}
    begin = time.perf_counter()
    if jobs == 1:
        for index, (_, target) in enumerate(chosen):
            say(f"{tags[index]}: started")
            start = time.perf_counter()
            try:
                results[index] = _run_section(target, out_dir, options, threads)
            except BaseException as err:
                say(f"{tags[index]}: failed after {time.perf_counter() - start:.1f}s ({type(err).__name__})")
                raise
            say(f"{tags[index]}: done in {results[index][1]:.1f}s")
    else:
        _run_parallel(chosen, tags, results, out_dir, options, threads, jobs, say)
    say(f"all {len(chosen)} sections done in {time.perf_counter() - begin:.1f}s")
    report = Report(out_dir, "gradflow demo report")
    for index in range(len(chosen)):
        report.extend(results[index][0])
    report.heading("Run")
    report.text(f"quick={quick}, device={device}, seed={seed}, max_time={max_time}, jobs={jobs}; {_machine()}")
    report.table(["section", "seconds"], [[title, results[i][1]] for i, (title, _) in enumerate(chosen)])
    return report.write()


def _run_parallel(chosen, tags, results, out_dir, options, threads, jobs, say) -> None:
    """Run the sections ``jobs`` at a time in spawned worker processes, filling ``results[index]``."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    waiting = list(range(len(chosen)))
    running, started = {}, {}
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        while waiting or running:
            while waiting and len(running) < jobs:
                index = waiting.pop(0)
                say(f"{tags[index]}: started")
                started[index] = time.perf_counter()
                running[pool.submit(_run_section, chosen[index][1], out_dir, options, threads)] = index
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                index = running.pop(future)
                try:
                    results[index] = future.result()
                except BaseException as err:
                    say(f"{tags[index]}: failed after {time.perf_counter() - started[index]:.1f}s "
                        f"({type(err).__name__})")
                    for other in running:
                        other.cancel()
                    raise
                say(f"{tags[index]}: done in {results[index][1]:.1f}s")

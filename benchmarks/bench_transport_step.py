"""Per-step cost of the default semi-dual against a plain ICNN semi-dual step (same conjugate solver).

    python benchmarks/bench_transport_step.py [--smoke] [--dims 16 64] [--steps 30] [--repeats 5]

Both fits use ``fit_ot_map``'s default method object (the semi-dual with its default conjugate solver at that
d) on the ICNN-built pair's samplers, batch 512 per side, one thread; only the potential differs: the default
(a BrenierNet whose gradient and Jacobian are closed-form) or ``potential="icnn"`` (gradflow's input-convex
network, gradients and Jacobians by autograd). The two are timed alternately, ``--repeats`` times each, and
the table gives the median CPU seconds per step and their ratio, measured in the same run.
"""

from __future__ import annotations

import statistics
import time

import torch
from _common import parse_args, write_results

from gradflow.transport import fit_ot_map
from gradflow.transport.benchmarks import create_pair

POTENTIALS = {"default (BrenierNet)": None, "ICNN (autograd)": "icnn"}


def configure(parser):
    parser.add_argument("--dims", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--steps", type=int, default=30, help="steps per timed fit (default 30)")
    parser.add_argument("--repeats", type=int, default=5, help="timed fits per potential (default 5)")


def cpu_per_step(pair, potential, steps: int) -> float:
    start = time.process_time()
    fit_ot_map(pair.sample_source, pair.sample_target, potential=potential, steps=steps, progress=False,
               device="cpu")
    return (time.process_time() - start) / steps


def main():
    args = parse_args(__doc__.splitlines()[0], configure)
    torch.set_num_threads(1)
    if args.smoke:
        args.dims, args.steps, args.repeats = [4], 2, 1
    rows = []
    for d in args.dims:
        pair = create_pair("icnn", d, seed=0)
        times = {name: [] for name in POTENTIALS}
        for _ in range(args.repeats):
            for name, potential in POTENTIALS.items():
                times[name].append(cpu_per_step(pair, potential, args.steps))
        median = {name: statistics.median(t) for name, t in times.items()}
        base = median["ICNN (autograd)"]
        for name in POTENTIALS:
            rows.append([d, name, median[name], 1.0 / median[name], base / median[name]])
        print(rows[-2:], flush=True)
    notes = f"""
Each cell is the median over {args.repeats} fits of {args.steps} steps each (the fit's process time divided
by its steps, set-up included), the two potentials alternating. "speed vs ICNN" is the ICNN's CPU s per
step divided by the row's (> 1: faster than the ICNN step).
"""
    write_results("transport_step", "Semi-dual step cost: default potential vs a plain ICNN", [
        ("CPU seconds per step", ["d", "potential", "CPU s / step", "steps / CPU s", "speed vs ICNN"], rows)],
        args, notes)


if __name__ == "__main__":
    main()

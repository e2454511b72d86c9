"""The plain CLI call on 5000 2-D points per side: wall and CPU time, and the cost gap to POT's exact optimum.

    python benchmarks/bench_transport_cli.py [--smoke] [--n 5000] [--pairs moons-gaussian ...] [--threads 1]

Each pair of point clouds (scikit-learn generators, fixed seeds) is written to .npy files and fitted by
``gradflow transport --source a.npy --target b.npy`` with every default, in a subprocess (its wall time and its
CPU time, children included). On the same points: ``ot.emd2`` (the exact discrete optimum, squared cost) and
its time; the fitted map's cost mean ||T(x) - x||^2 over all source points and its gap to emd2; W2 (exact,
POT) between 2000 mapped source points and 2000 target points, beside W2 between two disjoint halves of the
target (the sampling-noise floor of that figure).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import ot
import torch
from _common import parse_args, write_results
from sklearn import datasets


def _moons(n, seed):
    return datasets.make_moons(n, noise=0.05, random_state=seed)[0]


def _circles(n, seed):
    return datasets.make_circles(n, noise=0.05, factor=0.5, random_state=seed)[0]


def _gaussian(n, seed):
    return np.random.default_rng(seed).normal(size=(n, 2))


def _blobs(n, seed):
    return datasets.make_blobs(n, centers=4, cluster_std=0.6, random_state=seed)[0] / 4.0


#: name -> (source, target) generators
PAIRS = {
    "moons-gaussian": (_moons, _gaussian),
    "gaussian-moons": (_gaussian, _moons),
    "circles-gaussian": (_circles, _gaussian),
    "blobs-moons": (_blobs, _moons),
}


def configure(parser):
    parser.add_argument("--n", type=int, default=5000, help="points per side (default 5000)")
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=list(PAIRS))
    parser.add_argument("--threads", type=int, default=None, help="--threads for the CLI (default: its own)")
    parser.add_argument("--tuned-on", default="", help="the cases that informed the defaults (for the notes)")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _w2(a, b) -> float:
    return float(np.sqrt(ot.emd2([], [], ot.dist(a, b), numItermax=10**7)))


def main():
    args = parse_args(__doc__.splitlines()[0], configure)
    torch.set_num_threads(1)
    extra = []
    if args.smoke:
        args.n, args.pairs, extra = 300, args.pairs[:1], ["--steps", "5"]
    if args.threads is not None:
        extra += ["--threads", str(args.threads)]
    cli = Path(sys.executable).with_name("gradflow")
    rows = []
    for name in args.pairs:
        make_source, make_target = PAIRS[name]
        x, y = make_source(args.n, 0).astype(np.float32), make_target(args.n, 1).astype(np.float32)
        start = time.process_time()
        emd2 = float(ot.emd2([], [], ot.dist(x.astype(np.float64), y.astype(np.float64)), numItermax=10**7))
        emd_cpu = time.process_time() - start
        with tempfile.TemporaryDirectory() as tmp:
            np.save(f"{tmp}/a.npy", x)
            np.save(f"{tmp}/b.npy", y)
            cpu0, wall0 = _children_cpu(), time.perf_counter()
            subprocess.run([str(cli), "transport", "--source", f"{tmp}/a.npy", "--target", f"{tmp}/b.npy",
                            "--out", f"{tmp}/out", *extra], check=True, stdout=subprocess.DEVNULL,
                           env={**os.environ, "GRADFLOW_PROGRESS_INTERVAL": "60"})
            wall, cpu = time.perf_counter() - wall0, _children_cpu() - cpu0
            metrics = json.loads(Path(f"{tmp}/out/metrics.json").read_text())
            mapped = np.load(f"{tmp}/out/mapped.npy")
        cost = float(np.square(mapped - x).sum(-1).mean())
        rng = np.random.default_rng(2)
        i, j = rng.permutation(args.n)[:2000], rng.permutation(args.n)
        floor = _w2(y[j[: args.n // 2]][:2000].astype(np.float64), y[j[args.n // 2:]][:2000].astype(np.float64))
        rows.append([name, metrics["method"], metrics["steps"], metrics["stop_reason"], wall, cpu, emd2, emd_cpu,
                     cost, 100 * (cost - emd2) / emd2, _w2(mapped[i].astype(np.float64), y[j[:2000]].astype(
                         np.float64)), floor])
        print(rows[-1], flush=True)
    notes = f"""
n = {args.n} points per side; the CLI ran with its defaults{" plus " + " ".join(extra) if extra else ""}.
"wall s" and "CPU s" are the whole subprocess (start-up, data loading, the fit, the report and its plot).
"gap %" = 100 (cost - emd2) / emd2, with cost = mean ||T(x) - x||^2 over all n source points; a map that
pushes P to Q exactly has the continuous optimum's cost, which differs from the discrete emd2 by the
sampling error of the two clouds. "W2 mapped" is W2 between 2000 mapped source points and 2000 target
points; "W2 floor" is W2 between two disjoint 2000-point halves of the target, the level a perfect map
reaches in that figure. Cases that informed the defaults: {args.tuned_on or "none stated"}.
"""
    write_results("transport_cli", "gradflow transport on 2-D point clouds: time and cost gap to ot.emd2", [
        ("Plain CLI call", ["pair", "method", "steps", "stop", "wall s", "CPU s", "emd2", "emd2 CPU s", "cost",
                            "gap %", "W2 mapped", "W2 floor"], rows)], args, notes)


if __name__ == "__main__":
    main()

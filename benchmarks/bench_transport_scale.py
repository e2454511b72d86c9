"""Scale: fitting an OT map network vs POT's exact (ot.emd) and entropic (Sinkhorn) OT as n grows.

    python benchmarks/bench_transport_scale.py [--smoke] [--dim D] [--sizes 1000 5000 ...] [--steps S]
        [--max-gb G] [--max-seconds S] [--max-seconds-sinkhorn S]

Same data for every solver in one run (the known-truth mixture pair, n samples per side). Each solver runs in a
fresh subprocess on one thread so that its peak resident memory (ru_maxrss) is its own. POT solvers whose dense
n x n matrices would exceed ``--max-gb`` are not run (their need is printed instead), and a POT solve still
running after ``--max-seconds`` (``--max-seconds-sinkhorn``) of wall time is stopped and reported as such.
The network (semi-dual, fixed number of minibatch steps) is also timed mapping n new points, which POT cannot
do without a new solve. The cost of the true map T* on the same samples is the population reference.
"""

from __future__ import annotations

import multiprocessing as mp
import queue as queue_module
import resource
import time

import torch
from _common import parse_args, write_results

_MB = 1024.0  # ru_maxrss is in KiB on Linux


def configure(parser):
    parser.add_argument("--dim", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 10000, 20000, 50000])
    parser.add_argument("--steps", type=int, default=500, help="minibatch steps of the network fit (default 500)")
    parser.add_argument("--max-gb", type=float, default=8.0, help="skip POT runs needing more (default 8 GB)")
    parser.add_argument("--max-seconds", type=float, default=600.0,
                        help="stop ot.emd after this many wall seconds (default 600)")
    parser.add_argument("--max-seconds-sinkhorn", type=float, default=120.0,
                        help="stop ot.sinkhorn after this many wall seconds (default 120)")


def _data(dim, n):
    from gradflow.transport.benchmarks import create_pair

    pair = create_pair("mixture", dim, seed=0)
    g = torch.Generator().manual_seed(n)
    return pair.sample_source(n, g, torch.float64), pair.sample_target(n, g, torch.float64), pair


def _job(kind, dim, n, steps, queue):
    torch.set_num_threads(1)
    import numpy as np
    import ot

    from gradflow.transport import fit_ot_map

    x, y, pair = _data(dim, n)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu0, t0 = time.process_time(), time.perf_counter()
    result = {}
    if kind == "network":
        T = fit_ot_map(x.float(), y.float(), method="dual", steps=steps, seed=0, progress=False, device="cpu")
        result["fit"] = time.perf_counter() - t0
        result["cpu"] = time.process_time() - cpu0
        with torch.no_grad():
            result["cost"] = T.transport_cost(x.float())
            new = pair.sample_source(n, torch.Generator().manual_seed(n + 1))
            start = time.perf_counter()
            T(new)
            result["map_new"] = time.perf_counter() - start
    else:
        a = np.full(n, 1.0 / n)
        M = ot.dist(x.numpy(), y.numpy())
        if kind == "emd":
            result["cost"] = float(ot.emd2(a, a, M, numItermax=100_000_000))
        else:
            scale = float(M.mean())
            plan = ot.sinkhorn(a, a, M / scale, 0.01, numItermax=2000, stopThr=1e-7)
            result["cost"] = float((plan * M).sum())
        result["fit"] = time.perf_counter() - t0
        result["cpu"] = time.process_time() - cpu0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result["peak_mb"], result["extra_mb"] = peak / _MB, (peak - base) / _MB
    queue.put(result)


def run(kind, dim, n, steps, timeout=None):
    """The job's result dict, or None if it was stopped after ``timeout`` seconds."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_job, args=(kind, dim, n, steps, queue))
    proc.start()
    try:
        result = queue.get(timeout=timeout)
    except queue_module.Empty:
        proc.terminate()
        result = None
    proc.join()
    return result


def main():
    args = parse_args(__doc__.splitlines()[0], configure)
    if args.smoke:
        args.sizes, args.steps = [300], 10
    rows = []
    for n in args.sizes:
        need_gb = 2 * n * n * 8 / 1e9  # cost matrix + plan, float64
        results = {"network": run("network", args.dim, n, args.steps)}
        caps = {"emd": args.max_seconds, "sinkhorn": args.max_seconds_sinkhorn}
        for kind in ("emd", "sinkhorn"):
            results[kind] = run(kind, args.dim, n, args.steps, caps[kind]) if need_gb <= args.max_gb else None
        exact = results["emd"]["cost"] if results["emd"] else None
        x, _, pair = _data(args.dim, n)
        true_cost = float((pair.true_map(x) - x).square().sum(-1).mean())
        gap = "-" if exact is None else f"{100 * (true_cost - exact) / exact:+.2f}%"
        rows.append([n, "true map T* (known truth)", "-", "-", "-", true_cost, gap, "-"])
        for kind, label in (("network", f"network (dual, {args.steps} steps)"), ("emd", "POT ot.emd (exact)"),
                            ("sinkhorn", "POT ot.sinkhorn (reg 0.01 x mean cost)")):
            r = results[kind]
            if r is None:
                why = (f"stopped after {caps[kind]:g} s wall" if need_gb <= args.max_gb
                       else f"not run: needs ~{need_gb:.1f} GB")
                rows.append([n, label, why, "-", "-", "-", "-", "-"])
                print(rows[-1], flush=True)
                continue
            gap = "-" if exact is None else f"{100 * (r['cost'] - exact) / exact:+.2f}%"
            mapping = f"{r['map_new']:.4f}" if "map_new" in r else "new solve needed"
            rows.append([n, label, r["fit"], r["cpu"], r["extra_mb"], r["cost"], gap, mapping])
            print(rows[-1], flush=True)
    notes = f"""
Data: known-truth mixture pair, d = {args.dim}, n samples per side (float64 for POT, float32 for the network).
"fit s" is wall time, "CPU s" process time (the 2-core machine is shared: where they differ, trust CPU s),
"extra MB" the peak resident memory of the solver's process above what it held after creating the data.
"cost" is the transport cost: <P, C> of the plan for POT, mean ||T(x) - x||^2 for the network and for the true
map T*; "vs exact" the gap to ot.emd's optimum between the two n-samples (the network's cost is that of a map,
suboptimal only through its error; the discrete optimum between two independent samples is itself a biased
estimate of W2^2(P, Q), which the true map's row shows). POT solves are skipped above {args.max_gb:g} GB of
dense matrices; ot.emd is stopped after {args.max_seconds:g} s wall and ot.sinkhorn (at most 2000 iterations)
after {args.max_seconds_sinkhorn:g} s (one thread each, the script run alone in a CPU slot).
The network fit does a fixed number of minibatch steps (batch 512), so its time and memory do not grow with n;
mapping new points is one forward pass. POT has no out-of-sample map: mapping new points needs a new solve.
"""
    write_results("transport_scale", "OT map network vs POT exact / entropic OT as n grows", [
        ("Fit time, memory and transport cost",
         ["n", "solver", "fit s", "CPU s", "extra MB", "cost", "vs exact", "map n new points s"], rows)],
        args, notes)


if __name__ == "__main__":
    main()

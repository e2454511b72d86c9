"""Sample efficiency: L2-UVP of fitted OT maps vs the number of training samples (known-truth mixture pair).

    python benchmarks/bench_transport_samples.py [--smoke] [--sizes 256 1024 ...] [--dims 2 8] [--steps S]

For each n, n samples of P and n of Q (independent) are all the data: the fit (semi-dual, default BrenierNet,
fit_ot_map's defaults) holds out 20% of them (at most 2048 per side) for its validation and early stopping,
trains on the rest (minibatches are random subsets) for at most ``--steps`` optimizer steps on one thread,
and is scored on 8192 fresh test samples; the linear (Bures) map from the same n samples is the baseline.
"""

from __future__ import annotations

import time

import torch
from _common import parse_args, write_results

from gradflow.transport import bures_map, fit_ot_map, l2_uvp
from gradflow.transport.benchmarks import create_pair


def configure(parser):
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 4096, 16384, 65536])
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 8])
    parser.add_argument("--steps", type=int, default=400, help="optimizer steps per fit (default 400)")
    parser.add_argument("--method", default="dual")


def main():
    args = parse_args(__doc__.splitlines()[0], configure)
    torch.set_num_threads(1)
    if args.smoke:
        args.sizes, args.dims, args.steps = [256], [2], 20
    rows = []
    for d in args.dims:
        pair = create_pair("mixture", d, seed=0)
        x_test = pair.sample_source(8192, torch.Generator().manual_seed(1))
        for n in args.sizes:
            g = torch.Generator().manual_seed(n)
            x, y = pair.sample_source(n, g), pair.sample_target(n, g)
            linear = l2_uvp(bures_map(x, y), pair.true_map, x_test, pair.target_var)
            cpu0 = time.process_time()
            T = fit_ot_map(x, y, method=args.method, steps=args.steps, seed=0, progress=False, device=args.device)
            cpu = time.process_time() - cpu0
            T.to("cpu")
            with torch.no_grad():
                fitted = l2_uvp(T, pair.true_map, x_test, pair.target_var)
            rows.append([d, n, linear, fitted, T.steps, T.best_step, cpu])
            print(rows[-1], flush=True)
    notes = f"""
Method {args.method!r}, at most {args.steps} optimizer steps (batch 512 per side) per fit, fit_ot_map's defaults
otherwise; one torch thread on a shared, loaded 2-core machine. L2-UVP in % of Var(Q) on 8192 fresh test
samples. With few samples the semi-dual overfits the empirical measures (each minibatch is a subset of the
training points): the fit holds out 20% of the n samples per side (at most 2048), evaluates the semi-dual on
them every {max(1, args.steps // 50)} steps, stops after 10 evaluations without improvement ("steps" is the
number done) and keeps the weights of the latest evaluation within one paired standard error of the lowest
held-out objective ("best step"; 0 is the Bures start).
"""
    write_results("transport_samples", "Sample efficiency of fitted OT maps (mixture pair)", [
        ("L2-UVP vs number of training samples per side",
         ["d", "n per side", "linear L2-UVP %", "fitted L2-UVP %", "steps", "best step", "CPU s"], rows)], args, notes)


if __name__ == "__main__":
    main()

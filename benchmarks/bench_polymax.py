"""PolyMax (the GradNets paper's high-dimensional convex target) at d = 32 and d = 256, every model side by side.

Protocol (design note gradnets.md): x ~ U[0, 1]^d, batch 100 drawn fresh every iteration, 10,000 Adam
iterations on the gradient MSE, about 1024 * d parameters per model (create_potential(name, d,
n_params=1024 * d, depth=4 / n_modules=4; two hidden layers for the MLP-style baselines)), test error
10 log10(mean ||N(x) - grad F(x)||^2) on 10,000 uniform test points, the final weights.

Learning rate: the paper takes the best of {1e-2, 1e-3, 1e-4}. Here each model runs a pilot of
``--pilot-steps`` iterations at each rate, scored on 2,000 separate pilot points; the full run uses the
pilot's best rate (a deviation that saves two thirds of the compute; the table shows every pilot score).

    python benchmarks/bench_polymax.py             # full protocol
    python benchmarks/bench_polymax.py --smoke     # seconds, for CI
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from _common import parse_args, write_results

from gradflow.potentials import count_parameters, create_potential
from gradflow.potentials.fitting import gradient_loss
from gradflow.potentials.targets import PolyMax
from gradflow.train import fit

MODELS = ["mgradnet_c", "mgradnet_m", "icnn", "mlp_potential", "mlp_field"]
ARCHITECTURE = {"mgradnet_c": {"depth": 4}, "mgradnet_m": {"n_modules": 4}}
LEARNING_RATES = (1e-2, 1e-3, 1e-4)
PAPER_DB = {(256, "mgradnet_c"): "-10.64", (256, "mgradnet_m"): "-11.30"}


def configure(parser):
    parser.add_argument("--dims", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--pilot-steps", type=int, default=1_000)
    parser.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--records", type=Path, default=None,
                        help="JSON-lines file of finished runs, to resume an interrupted run (default: none)")
    parser.add_argument("--tabulate-only", action="store_true",
                        help="run nothing: tabulate the runs in --records (those missing are listed as such)")


def labelled_points(target: PolyMax, n: int, seed: int):
    x = target.sample(n, generator=torch.Generator().manual_seed(seed))
    return x, target.gradient(x)


def error_db(model, x, g) -> float:
    with torch.no_grad():
        mse = (model(x) - g).square().sum(-1).mean()
    return 10 * math.log10(max(float(mse), 1e-300))


def train(target, name, lr, steps, seed):
    torch.manual_seed(seed)  # initialisation
    model = create_potential(name, target.dim, n_params=1024 * target.dim, **ARCHITECTURE.get(name, {}))

    def sample(generator):
        x = target.sample(100, generator=generator)
        return x, target.gradient(x)

    result = fit(model, gradient_loss, sample, steps=steps, lr=lr, seed=seed, device="cpu", progress=False)
    return model, result


def run_model(target, name, protocol, pilot, test):
    pilot_db = {}
    for lr in LEARNING_RATES:
        model, _ = train(target, name, lr, protocol["pilot_steps"], seed=0)
        pilot_db[lr] = error_db(model, *pilot)
    finite = {lr: db for lr, db in pilot_db.items() if math.isfinite(db)}
    best_lr = min(finite, key=finite.get)
    model, result = train(target, name, best_lr, protocol["steps"], seed=0)
    return {"dim": target.dim, "model": name, "params": count_parameters(model), "lr": best_lr,
            "pilot_db": {str(k): v for k, v in pilot_db.items()}, "db": error_db(model, *test),
            "final_train_mse": result.history[-1]["loss"], "train_s": result.elapsed}


def main():
    args = parse_args(__doc__.splitlines()[0], configure)
    torch.set_num_threads(args.threads)
    if args.smoke:
        protocol = {"dims": [8], "steps": 20, "pilot_steps": 5, "n_test": 500}
    else:
        protocol = {"dims": args.dims, "steps": args.steps, "pilot_steps": args.pilot_steps, "n_test": 10_000}
    records = []
    if args.records is not None and args.records.is_file():
        records = [json.loads(line) for line in args.records.read_text().splitlines() if line.strip()]
        same = {k: v for k, v in protocol.items() if k != "dims"}  # a run does not depend on the other dims
        records = [r for r in records if r["dim"] in protocol["dims"]
                   and {k: v for k, v in r.get("protocol", {}).items() if k != "dims"} == same]
    done = {(r["dim"], r["model"]) for r in records}
    for d in protocol["dims"]:
        target = PolyMax(d)
        pilot = labelled_points(target, 2_000 if not args.smoke else 200, seed=1)
        test = labelled_points(target, protocol["n_test"], seed=2)
        for name in args.models:
            if (d, name) in done or args.tabulate_only:
                continue
            record = {**run_model(target, name, protocol, pilot, test), "protocol": protocol}
            print(json.dumps(record), flush=True)
            if args.records is not None:
                with args.records.open("a") as f:
                    f.write(json.dumps(record) + "\n")
            records.append(record)
    missing = [f"d={d} {name}" for d in protocol["dims"] for name in args.models
               if not any(r["dim"] == d and r["model"] == name for r in records)]
    rows = [[r["dim"], r["model"], r["params"], f"{r['db']:.2f}", PAPER_DB.get((r["dim"], r["model"]), ""),
             f"{r['lr']:g}", ", ".join(f"{float(k):g}: {v:.2f}" for k, v in r["pilot_db"].items()),
             f"{10 * math.log10(r['final_train_mse']):.2f}", f"{r['train_s']:.0f}"]
            for r in sorted(records, key=lambda r: (r["dim"], MODELS.index(r["model"]))) if r["model"] in args.models]
    notes = f"""
Protocol run: dims {protocol['dims']}, {protocol['steps']} iterations of batch 100 (fresh uniform samples every
iteration), Adam, learning rate chosen per model by a {protocol['pilot_steps']}-iteration pilot at each of
{list(LEARNING_RATES)} scored on 2,000 pilot points; test on {protocol['n_test']} separate uniform points
with the final weights; one trial (seed 0); float32; torch threads {args.threads}. "train s" is wall time on
a shared machine (not comparable across rows; see bench_speed for speed). "last train dB" is the mean
training loss over the last logged interval. With
--records, runs recorded earlier under the same protocol (by this command or by runs of it restricted with
--dims/--models) are tabulated instead of rerun.
Not run (out of time in this session): {", ".join(missing) if missing else "none"}.
"""
    sections = [("PolyMax test error (dB, lower is better)",
                 ["d", "model", "params", "test dB", "paper", "lr", "pilot dB per lr", "last train dB", "train s"],
                 rows)]
    write_results("polymax", "PolyMax gradient fields (GradNets paper protocol)", sections, args, notes)


if __name__ == "__main__":
    main()

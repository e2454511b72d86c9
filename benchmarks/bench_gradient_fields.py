"""The GradNets paper's 2-D gradient-field experiment with its exact protocol, every model side by side.

Protocol (Chaudhari, Pranav, Moura 2025; design note gradnets.md): 100k uniform training points and
10k validation points on [0, 1]^2, batch 1000, 200 epochs, Adam lr 5e-3, MSE on gradients, the best
validation weights, 5 trials (trial t: data and initialisation seeded by t); test error
10 log10(mean ||N(x) - grad F(x)||^2) on the 100 x 100 grid. About 100 parameters per model
(create_potential(name, 2, n_params=100, depth=4 / n_modules=4) gives the paper's 100 / 94).

Time to accuracy on the convex target, trials 0 and 1: the steps and the training wall time (validation
passes included, one per epoch) until the validation MSE first reaches -40 dB (1e-4), read from the training
history; and, because the machine is shared and runs happen one after the other, also those steps times a
step time measured for every model interleaved in one loop at the end (plain, and for the gradient
networks the fast path FastGradientField, whose trajectory equals the plain one to rounding).

With ``--records FILE`` every finished run is appended to a JSON-lines file and runs already there (same
protocol) are skipped, so an interrupted full run resumes where it stopped.

    python benchmarks/bench_gradient_fields.py            # the full protocol (~30 min on one core)
    python benchmarks/bench_gradient_fields.py --smoke    # seconds, for CI
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import torch
from _common import parse_args, write_results
from bench_speed import interleaved_medians, step_fn

from gradflow.potentials import FastGradientField, count_parameters, create_potential
from gradflow.potentials.fitting import fit_field
from gradflow.potentials.targets import create_target, gradient_error_db

MODELS = {
    "convex_2d": ["mgradnet_c", "mgradnet_m", "gradnet_c", "gradnet_m", "icnn", "mlp_potential", "mlp_field"],
    # icnn on the non-convex target shows that a convex model cannot fit it
    "nonconvex_2d": ["gradnet_c", "gradnet_m", "icnn", "mlp_potential", "mlp_field"],
}
REFERENCE_DB = {  # the authors' public notebooks: dB mean +- std over 5 trials
    ("convex_2d", "mgradnet_c"): "-49.05 +- 0.96",
    ("convex_2d", "mgradnet_m"): "-48.65 +- 4.87",
    ("nonconvex_2d", "gradnet_c"): "-42.17 +- 3.98",
    ("nonconvex_2d", "gradnet_m"): "-39.53 +- 3.45",
}
ARCHITECTURE = {"gradnet_c": {"depth": 4}, "mgradnet_c": {"depth": 4}, "gradnet_m": {"n_modules": 4},
                "mgradnet_m": {"n_modules": 4}}
TARGET_DB = -40.0  # time-to-accuracy threshold on the validation MSE
TTA_TRIALS = (0, 1)


def configure(parser):
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--records", type=Path, default=None,
                        help="JSON-lines file of finished runs, to resume an interrupted run (default: none)")


def time_to_db(history, threshold_db: float):
    """(seconds, steps) at the first evaluation whose validation MSE is <= 10^(threshold/10), else None."""
    for entry in history:
        val = entry.get("val_loss")
        if val is not None and val > 0 and 10 * math.log10(val) <= threshold_db:
            return entry["time"], entry["step"]
    return None, None


def run_one(target_name, model_name, trial, protocol):
    target = create_target(target_name)
    torch.manual_seed(1000 + trial)  # initialisation; fit_field seeds data and batches with `trial`
    model = create_potential(model_name, 2, n_params=100, **ARCHITECTURE.get(model_name, {}))
    result = fit_field(model, target, n_train=protocol["n_train"], n_val=protocol["n_val"],
                       epochs=protocol["epochs"], batch_size=1000, lr=5e-3, seed=trial, device="cpu",
                       progress=False)
    seconds, steps = time_to_db(result.history, TARGET_DB)
    return {"target": target_name, "model": model_name, "trial": trial, "params": count_parameters(model),
            "db": gradient_error_db(result.model, target, target.grid(protocol["grid"])),
            "train_s": result.elapsed, "best_step": result.best_step, "steps": result.steps,
            "t40_s": seconds, "t40_steps": steps}


def load_records(path: Path, protocol) -> list[dict]:
    if not path.is_file():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    same = {k: v for k, v in protocol.items() if k != "trials"}  # runs do not depend on the trial count
    return [r for r in records if {k: v for k, v in r.get("protocol", {}).items() if k != "trials"} == same
            and r["trial"] < protocol["trials"]]


def fmt_mean_std(values):
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} +- {statistics.stdev(values):.2f}"


def accuracy_rows(records):
    rows = []
    for target_name, models in MODELS.items():
        for name in models:
            runs = [r for r in records if r["target"] == target_name and r["model"] == name]
            if not runs:
                continue
            dbs = [r["db"] for r in runs]
            rows.append([target_name, name, runs[0]["params"], len(runs), fmt_mean_std(dbs), f"{min(dbs):.2f}",
                         REFERENCE_DB.get((target_name, name), ""),
                         f"{statistics.median(r['train_s'] for r in runs):.1f}"])
    return rows


def tta_rows(records, step_s: dict):
    """Per model on the convex target: steps and seconds to -40 dB per trial; medians; ratios to ICNN and MLP,
    measured (history) and estimated (median steps x interleaved step time)."""
    runs = {name: sorted((r for r in records if r["target"] == "convex_2d" and r["model"] == name
                          and r["trial"] in TTA_TRIALS), key=lambda r: r["trial"])
            for name in MODELS["convex_2d"]}

    def median_of(name, key):
        values = [r[key] for r in runs.get(name, [])]
        return statistics.median(values) if values and None not in values else None

    def estimate(name, variant):
        steps = median_of(name, "t40_steps")
        return None if steps is None or variant not in step_s else steps * step_s[variant]

    def show(value):
        return "n/a" if value is None else f"{value:.1f}"

    def ratio(value, ref):
        return "n/a" if value is None or ref is None else f"{value / ref:.2f}"

    icnn_wall, mlp_wall = median_of("icnn", "t40_s"), median_of("mlp_potential", "t40_s")
    icnn_est, mlp_est = estimate("icnn", "icnn"), estimate("mlp_potential", "mlp_potential")
    rows = []
    for name, model_runs in runs.items():
        if not model_runs:
            continue
        per_trial = ", ".join("not reached" if r["t40_s"] is None else f"{r['t40_steps']} / {r['t40_s']:.1f} s"
                              for r in model_runs)
        wall = median_of(name, "t40_s")
        for variant in (name, f"{name} (fast)"):
            if variant not in step_s:
                continue
            est = estimate(name, variant)
            measured = variant == name
            rows.append([variant, per_trial if measured else "(same steps)",
                         show(wall) if measured else "", ratio(wall, icnn_wall) if measured else "",
                         ratio(wall, mlp_wall) if measured else "", f"{1e3 * step_s[variant]:.2f}", show(est),
                         ratio(est, icnn_est), ratio(est, mlp_est)])
    return rows


def step_seconds(trials_rounds: int, compile: bool) -> dict:
    """Median seconds of one training step (batch 1000, the ~100-parameter convex-task models), interleaved."""
    target = create_target("convex_2d")
    x = target.sample(1000, generator=torch.Generator().manual_seed(0))
    g = target.gradient(x)
    fns = {}
    for name in MODELS["convex_2d"]:
        torch.manual_seed(0)
        model = create_potential(name, 2, n_params=100, **ARCHITECTURE.get(name, {}))
        fns[name] = step_fn(model, list(model.parameters()), False, x, g)
        if name in ARCHITECTURE:
            fast = FastGradientField(model, compile=compile)
            fns[f"{name} (fast)"] = step_fn(fast, list(model.parameters()), True, x, g)
    return interleaved_medians(fns, trials_rounds)


def main():
    args = parse_args(__doc__.splitlines()[0], configure)
    torch.set_num_threads(args.threads)
    if args.smoke:
        protocol = {"n_train": 2000, "n_val": 500, "epochs": 2, "grid": 20, "trials": 1}
    else:
        protocol = {"n_train": 100_000, "n_val": 10_000, "epochs": 200, "grid": 100, "trials": args.trials}
    records = [] if args.records is None else load_records(args.records, protocol)
    done = {(r["target"], r["model"], r["trial"]) for r in records}
    # trial-major order, so that an interrupted run still has every model at the first trials
    for trial in range(protocol["trials"]):
        for target_name, models in MODELS.items():
            for name in models:
                if (target_name, name, trial) in done:
                    continue
                record = {**run_one(target_name, name, trial, protocol), "protocol": protocol}
                print(json.dumps(record), flush=True)
                if args.records is not None:
                    with args.records.open("a") as f:
                        f.write(json.dumps(record) + "\n")
                records.append(record)
    step_s = step_seconds(3 if args.smoke else 30, compile=not args.smoke)
    sections = [
        ("Test error on the 100 x 100 grid (dB, lower is better)",
         ["target", "model", "params", "trials", "dB mean +- std", "best dB", "paper", "median train s"],
         accuracy_rows(records)),
        (f"Time to {TARGET_DB:.0f} dB validation MSE on the convex target (trials {TTA_TRIALS})",
         ["model", "per trial: steps / s", "median s", "/ icnn", "/ mlp_potential", "step ms (interleaved)",
          "median steps x step s", "/ icnn", "/ mlp_potential"],
         tta_rows(records, step_s)),
    ]
    notes = f"""
Protocol run: {protocol['n_train']} training / {protocol['n_val']} validation points, {protocol['epochs']} epochs
of batch 1000, Adam lr 5e-3, best validation weights, {protocol['trials']} trial(s), test grid
{protocol['grid']} x {protocol['grid']}; torch threads {args.threads}; every run in one process, one after the
other. Training seconds are gradflow.train.fit's wall time including one validation pass per epoch, on a
shared machine whose load varied during the runs (so the wall-time columns are noisy; the step-time columns
below are not).
Time to accuracy is read from the per-epoch validation history (resolution: one epoch of 100 steps); the
step times are medians of 30 interleaved rounds of one training step per model (batch 1000, CPU time of
the one compute thread) measured after all runs, without validation or data loading; "(fast)" is
FastGradientField with fused Adam (compiled). With --records, runs recorded earlier under the same protocol
are tabulated instead of rerun.
"""
    write_results("gradient_fields", "2-D gradient fields (GradNets paper protocol)", sections, args, notes)


if __name__ == "__main__":
    main()

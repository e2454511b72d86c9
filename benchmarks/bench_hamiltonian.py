"""HNN task suite: Hamiltonian networks built on gradient networks vs the HNN baseline and a neural ODE.

    python benchmarks/bench_hamiltonian.py [--smoke] [--out DIR] [--seeds N] [--tasks ...]

For every task (mass-spring, pendulum, two-body, three-body; HNN's data generators, see
gradflow.dynamics) and model (HamiltonianNet with GradNet-C / GradNet-M, separable T(p) + V(q) variants,
the HNN baseline HamiltonianNet(MLPPotential), NeuralODE(MLPField)), all at the same parameter budget,
trained by derivative matching with Adam through gradflow.train.fit, it reports, over seeds: the test
derivative MSE and its dB, energy MSE and state MSE along rollouts from test initial states (true H,
float64 dopri5), training seconds per step as a ratio to the HNN baseline measured in the same run, and
time-to-accuracy (training CPU seconds and steps until the test error first reaches the HNN baseline's final
test error, evaluated every ``eval_every`` steps; evaluation time excluded). A "static" row (z(t) = z0) shows
the state MSE of not moving at all, whose energy MSE is 0: energy MSE alone does not measure learning.

``--full`` runs HNN's own protocol sizes (three-body 5000 trajectories, orbit tasks 10000 steps, ~40k
parameters per model, as HNN's 200-unit MLPs) instead of the reduced default.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import median_time, parse_args, write_results

from gradflow.dynamics import (
    HamiltonianNet,
    MassSpring,
    Pendulum,
    ThreeBody,
    TrajectoryData,
    TwoBody,
    create_dynamics_model,
    derivative_loss,
    derivative_mse,
    error_db,
    fit_derivatives,
    rollout_metrics,
)
from gradflow.potentials import count_parameters

MODELS = ["hnn", "gradnet_c", "gradnet_m", "separable_c", "separable_m", "neural_ode"]

#: HNN paper (Greydanus et al. 2019, Table 1): (test loss MLP, test loss HNN, energy MSE MLP, energy MSE HNN)
PUBLISHED = {
    "mass_spring": (3.67e-2, 3.59e-2, 1.71e-1, 3.84e-4),
    "pendulum": (3.53e-2, 3.56e-2, 4.15e-2, 2.49e-2),
    "two_body": (2.96e-5, 2.82e-6, 6.33e-2, 3.88e-5),
    "three_body": (3.80e-1, 4.88e-1, 1.09e2, 4.19e-2),
}

# task -> system, dataset overrides, training, rollout (t_end, points), parameter budget
TASKS = {
    "mass_spring": dict(system=MassSpring, data={}, steps=2000, batch_size=None, rollout=(20.0, 200), n_params=2000),
    "pendulum": dict(system=Pendulum, data={}, steps=2000, batch_size=None, rollout=(20.0, 200), n_params=2000),
    "two_body": dict(system=TwoBody, data={}, steps=3000, batch_size=200, rollout=(20.0, 100), n_params=5000),
    "three_body": dict(system=ThreeBody, data={"n_trajectories": 1000}, steps=3000, batch_size=200,
                       rollout=(5.0, 50), n_params=5000),
}
#: HNN's own sizes (--full): 200-unit two-layer MLPs (~40k parameters), 10000 steps and 5000 three-body orbits
FULL = {"mass_spring": dict(n_params=40000), "pendulum": dict(n_params=40000),
        "two_body": dict(steps=10000, n_params=40000),
        "three_body": dict(data={"n_trajectories": 5000}, steps=10000, n_params=40000)}
SMOKE = {"mass_spring": {}, "pendulum": {}, "two_body": {"n_trajectories": 20}, "three_body": {"n_trajectories": 20}}


def configure(parser):
    parser.add_argument("--seeds", type=int, default=3, help="seeds per task and model (default 3)")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    parser.add_argument("--eval-every", type=int, default=100, help="steps between test evaluations")
    parser.add_argument("--rollouts", type=int, default=20, help="test initial states rolled out per run")
    parser.add_argument("--timing-only", action="store_true",
                        help="only the per-step timing table (plain vs FastGradientField vs HNN), no training")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (HNN's: 1e-3)")
    parser.add_argument("--lr-gradnet", type=float, default=None,
                        help="learning rate of the gradient-network models (default: --lr)")
    parser.add_argument("--translate", type=int, default=0, metavar="K",
                        help="orbit tasks: add K copies of the training set with every body moved by one random "
                             "planar offset per trajectory (H is translation invariant; not HNN's protocol)")
    parser.add_argument("--skip-timing", action="store_true", help="leave out the per-step timing table")
    parser.add_argument("--full", action="store_true",
                        help="HNN's protocol sizes: 40k parameters, 10000 orbit steps, 5000 three-body orbits")


class _TestCurve:
    """fit callback: test derivative MSE every ``every`` steps against training time (evaluation excluded)."""

    def __init__(self, test, every):
        self.test, self.every = test, every
        self.points, self.eval_seconds, self.start = [], 0.0, time.process_time()

    def __call__(self, info):
        if info["step"] % self.every:
            return
        start = time.process_time()
        trained = start - self.start - self.eval_seconds
        mse = derivative_mse(info["model"], self.test)
        self.eval_seconds += time.process_time() - start
        self.points.append((trained, info["step"], mse))

    def train_seconds(self, now):
        return now - self.start - self.eval_seconds


def run_one(task, name, seed, train, test, system, args):
    config = task_config(task, args)
    steps = 10 if args.smoke else config["steps"]
    torch.manual_seed(seed)
    model = create_dynamics_model(name, system.dim, config["n_params"])
    curve = _TestCurve(test, max(1, min(args.eval_every, steps // 3)))
    lr = args.lr_gradnet if args.lr_gradnet and name.startswith(("gradnet", "separable")) else args.lr
    fit_derivatives(model, train, steps=steps, batch_size=config["batch_size"], lr=lr, seed=seed, device="cpu",
                    progress=False, callbacks=[curve])
    seconds = curve.train_seconds(time.process_time())
    mse = derivative_mse(model, test)
    if steps % curve.every:
        curve.points.append((seconds, steps, mse))
    t_end, n_points = config["rollout"]
    t = torch.linspace(0.0, t_end / (20 if args.smoke else 1), n_points // (20 if args.smoke else 1))
    z0 = test.initial_states[: (2 if args.smoke else args.rollouts)]
    rollout = rollout_metrics(model, system, z0, t)
    return {"params": count_parameters(model), "mse": mse, "db": error_db(mse), "energy": rollout["energy_mse"],
            "state": rollout["state_mse"], "drift": rollout["energy_drift"], "step_s": seconds / steps,
            "curve": curve.points}


def task_config(task, args):
    return {**TASKS[task], **(FULL[task] if args.full else {})}


def translated_copies(data, copies, seed):
    """``data`` plus ``copies`` copies in which all bodies of a trajectory are moved by one N(0, I_2) offset
    (positions are the first half of the state, (x, y) per body); derivatives are unchanged because the
    n-body H depends on position differences only."""
    generator = torch.Generator().manual_seed(10_000 + seed)
    n, _, dim = data.states.shape
    states, clean = [data.states], [data.clean_states]
    for _ in range(copies):
        offset = torch.randn(n, 1, 2, generator=generator, dtype=data.states.dtype).repeat(1, 1, dim // 4)
        shift = torch.cat([offset, torch.zeros_like(offset)], -1)
        states.append(data.states + shift)
        clean.append(data.clean_states + shift)
    return TrajectoryData(data.t, torch.cat(states), data.derivatives.repeat(copies + 1, 1, 1), torch.cat(clean))


def static_state_mse(system, test, t, n):
    """State MSE of the model that does not move (z(t) = z0) on the rollout protocol; its energy MSE is 0."""
    z0 = test.initial_states[:n].to(torch.float64)
    true = system.simulate(z0, t.to(torch.float64))
    return float((true - z0).square().mean())


def step_timing(task, args):
    """Median seconds of one training step (loss, backward, Adam) at the task's batch size and budget, for
    the HNN, the gradient-network Hamiltonians with and without the foundation's fast path
    (FastGradientField, compiled; eager in smoke runs) and the neural ODE. The variants are timed round-robin,
    one step each per round, so that load changes on a shared machine hit them alike."""
    config = task_config(task, args)
    system = config["system"]()
    batch = config["batch_size"] or {"mass_spring": 750, "pendulum": 1125}[task]  # full batch: 25 trajectories
    generator = torch.Generator().manual_seed(0)
    z, dz = torch.randn(batch, system.dim, generator=generator), torch.randn(batch, system.dim, generator=generator)
    steps = {}
    for name, fast in [("hnn", False), ("gradnet_c", False), ("gradnet_c", True), ("gradnet_m", False),
                       ("gradnet_m", True), ("neural_ode", False)]:
        torch.manual_seed(0)
        model = create_dynamics_model(name, system.dim, config["n_params"])
        if fast:
            model = HamiltonianNet(model.potential, fast=True, compile=not args.smoke)
        optimizer = torch.optim.Adam(model.parameters(), 1e-3)

        def step(model=model, optimizer=optimizer):
            optimizer.zero_grad()
            derivative_loss(model, (z, dz)).backward()
            optimizer.step()

        steps[name + (" (fast)" if fast else "")] = step
    times = {label: [] for label in steps}
    for _ in range(3 if args.smoke else 50):
        for label, step in steps.items():
            times[label].append(median_time(step, repeats=1, warmup=1)[0])
    medians = {label: statistics.median(values) for label, values in times.items()}
    return [[task, label, batch, f"{1e3 * seconds:.2f}", f"{seconds / medians['hnn']:.2f}"]
            for label, seconds in medians.items()]


def time_to(curve, target, index=0):
    """Training seconds (index 0) or steps (index 1) at the first evaluation whose test MSE <= target."""
    for point in curve:
        if point[2] <= target:
            return point[index]
    return math.inf


def fmt_mean(values):
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return "inf"
    mean = statistics.mean(finite)
    spread = statistics.stdev(finite) if len(finite) > 1 else 0.0
    extra = f" ({len(values) - len(finite)} inf)" if len(finite) < len(values) else ""
    return f"{mean:.3g} ± {spread:.2g}{extra}"


def main():
    args = parse_args(__doc__.splitlines()[0], configure)
    torch.set_num_threads(1)
    seeds = list(range(1 if args.smoke else args.seeds))
    main_rows, ratio_rows, published_rows, timing_rows = [], [], [], []
    for task in args.tasks:
        if not args.skip_timing:
            timing_rows += step_timing(task, args)
        if args.timing_only:
            continue
        config = task_config(task, args)
        system = config["system"]()
        results = {name: [] for name in args.models}
        static = []
        for seed in seeds:
            data_options = SMOKE[task] if args.smoke else config["data"]
            train, test = system.dataset(seed=seed, **data_options)
            if args.translate and task in ("two_body", "three_body"):
                train = translated_copies(train, args.translate, seed)
            t_end, n_points = config["rollout"]
            scale = 20 if args.smoke else 1
            static.append(static_state_mse(system, test, torch.linspace(0.0, t_end / scale, n_points // scale),
                                           2 if args.smoke else args.rollouts))
            for name in args.models:
                results[name].append(run_one(task, name, seed, train, test, system, args))
                r = results[name][-1]
                print(f"{task} {name} seed={seed}: mse={r['mse']:.3e} energy={r['energy']:.3e} "
                      f"step={1e3 * r['step_s']:.2f} ms", flush=True)
        hnn = results.get("hnn")
        for name, runs in results.items():
            row = [task, name, runs[0]["params"], fmt_mean([r["mse"] for r in runs]),
                   fmt_mean([r["db"] for r in runs]), fmt_mean([r["energy"] for r in runs]),
                   fmt_mean([r["state"] for r in runs]), fmt_mean([r["drift"] for r in runs])]
            if hnn:
                db_gain = statistics.mean(h["db"] - r["db"] for r, h in zip(runs, hnn))
                step_ratio = statistics.median(r["step_s"] / h["step_s"] for r, h in zip(runs, hnn))
                reach = [time_to(r["curve"], h["mse"]) for r, h in zip(runs, hnn)]
                hnn_reach = [time_to(h["curve"], h["mse"]) for h in hnn]
                steps_to = [time_to(r["curve"], h["mse"], 1) for r, h in zip(runs, hnn)]
                hnn_steps = [time_to(h["curve"], h["mse"], 1) for h in hnn]
                ms_per_step = statistics.median(r["step_s"] for r in runs) * 1e3
                ratio_rows.append([task, name, f"{db_gain:+.2f}", f"{ms_per_step:.2f}", f"{step_ratio:.2f}",
                                   fmt_mean(reach), fmt_mean(hnn_reach), fmt_mean(steps_to), fmt_mean(hnn_steps),
                                   f"{sum(math.isfinite(x) for x in reach)}/{len(reach)}"])
            main_rows.append(row)
        main_rows.append([task, "static (z(t) = z0)", 0, "-", "-", "0", fmt_mean(static), "0"])
        published = PUBLISHED[task]
        best = min(results, key=lambda n: statistics.mean(r["energy"] for r in results[n]))
        published_rows.append([task, f"{published[1]:.3g}", f"{published[3]:.3g}",
                               fmt_mean([r["mse"] for r in results.get("hnn", [])]) if hnn else "-",
                               fmt_mean([r["energy"] for r in results.get("hnn", [])]) if hnn else "-",
                               best, fmt_mean([r["energy"] for r in results[best]])])
    timing = ("Training step time at the task's batch size (median over 50 round-robin rounds of one step each, "
              "after warm-up; ratio to HNN)",
              ["task", "model", "batch", "ms/step", "ratio to HNN"], timing_rows)
    if args.timing_only:
        write_results("hamiltonian_timing", "Hamiltonian networks: training step time", [timing], args)
        return
    sections = [
        ("Test metrics (mean ± std over seeds)",
         ["task", "model", "params", "test derivative MSE", "dB", "energy MSE", "state MSE", "energy drift"],
         main_rows),
        ("Against the HNN baseline in the same run (dB gain = HNN dB - model dB, > 0 is better; time and steps "
         "to the HNN's final test error, training CPU seconds, evaluation excluded)",
         ["task", "model", "dB gain", "ms/step", "step time / HNN", "time to HNN error (s)", "HNN's own (s)",
          "steps to HNN error", "HNN's own steps", "reached"], ratio_rows),
        ("Beside HNN's published figures (their 200-unit MLPs, their rollout horizons)",
         ["task", "published test loss HNN", "published energy MSE HNN", "our HNN test MSE", "our HNN energy MSE",
          "our best energy model", "its energy MSE"], published_rows),
    ] + ([] if args.skip_timing else [timing])
    configs = {task: task_config(task, args) for task in TASKS}
    schedule = ", ".join(f"{k}: {v['steps']} steps batch {v['batch_size'] or 'full'}" for k, v in configs.items())
    budget = ", ".join(f"{k}: {v['n_params']}" for k, v in configs.items())
    three_body = configs["three_body"]["data"].get("n_trajectories", 5000)
    lr_note = f"gradient-network models: {args.lr_gradnet}" if args.lr_gradnet else "every model"
    if args.translate:
        lr_note += (f"; orbit tasks' training sets with {args.translate} translated copies (all bodies moved by one "
                    "N(0, I_2) offset per trajectory), not HNN's protocol")
    notes = f"""
Protocol: data from gradflow.dynamics' HNN generators with the reference defaults (mass-spring, pendulum:
50 trajectories, noise std 0.1, 50/50 split; two-body: 1000 near-circular orbits, 50 points on [0, 20],
80/20 split); three-body: {three_body} trajectories (HNN: 5000), 20 points on [0, 5], 80/20.
Training: Adam lr {args.lr} ({lr_note}), {schedule}
(HNN trains the orbit tasks for 10000 steps); parameter budget per model {budget}
(HNN's published models are 200-unit MLPs with ~40k parameters). Models from create_dynamics_model (cascaded
nets depth 4 with identity_scale_init, modular nets 16 softmax modules, MLPs two tanh hidden layers). Test
derivative MSE is HNN's test loss (mean over entries; derivatives exact, states noisy where the protocol adds
noise). Rollouts: {args.rollouts} test initial states, float64 dopri5 (rtol 1e-9) on [0, t_end] =
{', '.join(f"{k}: {v['rollout'][0]}" for k, v in TASKS.items())}; energy
MSE under the true H against the true trajectory, state MSE, energy drift = mean over trajectories of
max_t |H(z_t) - H(z_0)| / |H(z_0)|. Seeds: {len(seeds)}. One torch thread; timings are CPU seconds of this
process (time.process_time).
"""
    write_results("hamiltonian", "Learning Hamiltonian dynamics: the HNN task suite", sections, args, notes)


if __name__ == "__main__":
    main()

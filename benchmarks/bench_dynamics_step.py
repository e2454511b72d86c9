"""Training-step cost of the Hamiltonian models against HNN as the phase-space dimension grows.

    python benchmarks/bench_dynamics_step.py [--smoke] [--dims 16 64 128] [--rounds 15] [--batch 256]

One step = derivative matching (mean squared error of the model's field against targets) forward, backward
and an Adam update, on one thread, for every model of ``create_dynamics_model`` that learns a Hamiltonian
(HNN = an MLP potential whose gradient is taken by autograd: a double backward in training). All models at
one dimension d get about 10 d^2 (at least 5000) parameters. The models are timed round-robin, one step
each per round, after three warm-up steps; the table gives the median CPU milliseconds per step and the
ratio to HNN's median, measured in the same run (issue 17's goal: gradient networks <= 0.5x HNN).
"""

from __future__ import annotations

import statistics
import time

import torch
from _common import parse_args, write_results

from gradflow.dynamics import create_dynamics_model
from gradflow.potentials import count_parameters

MODELS = ["hnn", "gradnet_c", "gradnet_m", "separable_c", "separable_m"]


def configure(parser):
    parser.add_argument("--dims", type=int, nargs="+", default=[16, 64, 128])
    parser.add_argument("--rounds", type=int, default=15, help="timed steps per model (default 15)")
    parser.add_argument("--batch", type=int, default=256, help="states per step (default 256)")


def stepper(model, d: int, batch: int):
    """One derivative-matching Adam step of ``model`` on fixed random data, as a closure."""
    gen = torch.Generator().manual_seed(0)
    z, dz = torch.randn(batch, d, generator=gen), torch.randn(batch, d, generator=gen)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        loss = (model(z) - dz).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def main():
    args = parse_args(__doc__.splitlines()[0], configure)
    torch.set_num_threads(1)
    if args.smoke:
        args.dims, args.rounds, args.batch = [4], 2, 16
    rows = []
    for d in args.dims:
        n_params = max(5000, 10 * d * d)
        torch.manual_seed(0)
        models = {name: create_dynamics_model(name, d, n_params=n_params) for name in MODELS}
        steps = {name: stepper(model, d, args.batch) for name, model in models.items()}
        for step in steps.values():
            for _ in range(3):
                step()
        times = {name: [] for name in MODELS}
        for _ in range(args.rounds):
            for name, step in steps.items():
                start = time.process_time()
                step()
                times[name].append(time.process_time() - start)
        median = {name: statistics.median(t) for name, t in times.items()}
        for name in MODELS:
            rows.append([d, name, count_parameters(models[name]), 1e3 * median[name], median[name] / median["hnn"]])
        print(rows[-len(MODELS):], flush=True)
    notes = f"""
Batch {args.batch}, {args.rounds} timed rounds after 3 warm-up steps, one torch thread; CPU time of the step
(forward, backward, Adam). Models from create_dynamics_model (cascaded nets of depth 4 from
identity_scale_init, modular nets with 16 modules; separable models split the budget between T(p) and V(q)).
No case informed a default: this is a measurement only.
"""
    write_results("dynamics_step", "Hamiltonian models: training-step cost against HNN", [
        ("CPU milliseconds per step", ["d", "model", "params", "ms / step", "step time / HNN"], rows)], args, notes)


if __name__ == "__main__":
    main()

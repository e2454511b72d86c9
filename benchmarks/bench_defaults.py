"""Default sizes of GradNet-M: how many modules at a fixed parameter budget, on non-convex fields.

GradNetM with n_modules in {4, 8, 16} (the width chosen by create_potential(n_params=...) so that every
model has the same budget, 250 parameters per input dimension) and the MLP potential beside it, fitted to
non-convex gradient fields on [0, 1]^d for d in {2, 8, 16}, two seeds each (seed s draws the field's
random parameters, the data, the batches and the initialisation). Error: relative MSE
mean ||N(x) - grad F(x)||^2 / mean ||grad F(x)||^2 on held-out test points (lower is better).

The choice is made on the tuning cases only (family ``TUNE_FAMILY``, seed ``TUNE_SEED``, every d): the module
count with the lowest geometric-mean relative MSE there. It is then reported on the held-out cases (the other
families at both seeds, and the tuning family at the other seed), which did not inform it.

Families (FieldTarget subclasses built on gradflow.potentials.targets, which holds no d-dimensional
non-convex field):

* ``sine_lattice``: the paper's non-convex 2-D field extended to d dimensions,
  F(x) = 1/4 sum_i sin(2 pi x_i) cos(pi x_{i+1}) + x^T B x / 2 (indices mod d; B tridiagonal with
  off-diagonal 1/2 and diagonal -1 on odd i, 0 on even i), with a random shift of the phases per seed; at
  d = 2 and phase 0 it is nonconvex_2d;
* ``ridges``: F(x) = sum_k a_k sin(2 pi w_k^T x + phi_k) / (2 pi), 2d random unit directions w_k,
  a_k ~ N(0, 1/(2d)), phi_k ~ U[0, 2 pi);
* ``bumps``: F(x) = sum_k c_k exp(-||x - mu_k||^2 / (2 s^2)), 2d centres mu_k ~ U[0, 1]^d, signs c_k = +-1,
  s = 0.25 sqrt(d).

    python benchmarks/bench_defaults.py            # the full sweep (~10-15 CPU-minutes on one thread)
    python benchmarks/bench_defaults.py --smoke    # seconds, for CI
"""

from __future__ import annotations

import json
import math
import statistics
import time

import torch
from _common import parse_args, write_results

from gradflow.potentials import count_parameters, create_potential
from gradflow.potentials.fitting import fit_field
from gradflow.potentials.targets import FieldTarget, create_target

N_MODULES = (4, 8, 16)
DIMS = (2, 8, 16)
SEEDS = (0, 1)
FAMILIES = ("ridges", "sine_lattice", "bumps")
TUNE_FAMILY, TUNE_SEED = "ridges", 0
PARAMS_PER_DIM = 250


class SineLattice(FieldTarget):
    """F(x) = 1/4 sum_i sin(2 pi x_i + p_i) cos(pi x_{i+1} + q_i) + x^T B x / 2 (see the module docstring)."""

    def __init__(self, dim: int, seed: int):
        super().__init__(dim)
        g = torch.Generator().manual_seed(seed)
        shift = 0.0 if seed == 0 else 2 * math.pi
        self.p, self.q = (shift * torch.rand(dim, generator=g, dtype=torch.float64) for _ in range(2))
        B = torch.diag(torch.tensor([-1.0 if i % 2 else 0.0 for i in range(dim)], dtype=torch.float64))
        for i in range(dim - 1):
            B[i, i + 1] = B[i + 1, i] = 0.5
        self.B = B

    def _energy(self, x):
        a = 2 * math.pi * x + self.p.to(x)
        b = math.pi * x.roll(-1, -1) + self.q.to(x).roll(-1)
        return (a.sin() * b.cos()).sum(-1) / 4 + 0.5 * (x @ self.B.to(x) * x).sum(-1)

    def _gradient(self, x):
        a = 2 * math.pi * x + self.p.to(x)
        b = math.pi * x.roll(-1, -1) + self.q.to(x).roll(-1)
        # d/dx_i of term i: pi/2 cos(a_i) cos(b_i); of term i-1 (whose b is pi x_i + q_i):
        # -pi/4 sin(a_{i-1}) sin(b_{i-1})
        own = math.pi / 2 * a.cos() * b.cos()
        previous = (-math.pi / 4 * a.sin() * b.sin()).roll(1, -1)
        return own + previous + x @ self.B.to(x)


class Ridges(FieldTarget):
    """F(x) = sum_k a_k sin(2 pi w_k^T x + phi_k) / (2 pi) (see the module docstring)."""

    def __init__(self, dim: int, seed: int):
        super().__init__(dim)
        g = torch.Generator().manual_seed(seed)
        k = 2 * dim
        w = torch.randn(k, dim, generator=g, dtype=torch.float64)
        self.w = w / w.norm(dim=-1, keepdim=True)
        self.a = torch.randn(k, generator=g, dtype=torch.float64) / math.sqrt(k)
        self.phi = 2 * math.pi * torch.rand(k, generator=g, dtype=torch.float64)

    def _phase(self, x):
        return 2 * math.pi * x @ self.w.to(x).T + self.phi.to(x)

    def _energy(self, x):
        return self._phase(x).sin() @ self.a.to(x) / (2 * math.pi)

    def _gradient(self, x):
        return (self._phase(x).cos() * self.a.to(x)) @ self.w.to(x)


class Bumps(FieldTarget):
    """F(x) = sum_k c_k exp(-||x - mu_k||^2 / (2 s^2)) (see the module docstring)."""

    def __init__(self, dim: int, seed: int):
        super().__init__(dim)
        g = torch.Generator().manual_seed(seed)
        k = 2 * dim
        self.mu = torch.rand(k, dim, generator=g, dtype=torch.float64)
        self.c = torch.where(torch.rand(k, generator=g) < 0.5, -1.0, 1.0).double()
        self.s = 0.25 * math.sqrt(dim)

    def _weights(self, x):
        diff = x.unsqueeze(-2) - self.mu.to(x)  # (..., k, d)
        return diff, self.c.to(x) * torch.exp(-diff.square().sum(-1) / (2 * self.s**2))

    def _energy(self, x):
        return self._weights(x)[1].sum(-1)

    def _gradient(self, x):
        diff, w = self._weights(x)
        return -(w.unsqueeze(-1) * diff).sum(-2) / self.s**2


_FAMILIES = {"sine_lattice": SineLattice, "ridges": Ridges, "bumps": Bumps}


def make_field(family: str, dim: int, seed: int) -> FieldTarget:
    if family == "sine_lattice" and dim == 2 and seed == 0:
        return create_target("nonconvex_2d")
    return _FAMILIES[family](dim, seed)


def configure(parser):
    parser.add_argument("--steps", type=int, default=3000, help="Adam steps per fit (default 3000)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")


def relative_mse(model, target, x) -> float:
    with torch.no_grad():
        truth = target.gradient(x)
        return float((model(x) - truth).square().sum(-1).mean() / truth.square().sum(-1).mean())


def run_one(family, dim, seed, name, n_modules, protocol):
    target = make_field(family, dim, seed)
    torch.manual_seed(seed)
    options = {"n_modules": n_modules} if name == "gradnet_m" else {}
    model = create_potential(name, dim, n_params=PARAMS_PER_DIM * dim, **options)
    batch = protocol["batch"]
    epochs = max(1, round(protocol["steps"] * batch / protocol["n_train"]))
    start = time.process_time()
    result = fit_field(model, target, n_train=protocol["n_train"], n_val=protocol["n_val"], epochs=epochs,
                       batch_size=batch, lr=protocol["lr"], seed=seed, device="cpu", progress=False)
    cpu_s = time.process_time() - start
    x_test = target.sample(protocol["n_test"], generator=torch.Generator().manual_seed(10_000 + seed))
    return {"family": family, "dim": dim, "seed": seed, "model": name, "n_modules": n_modules,
            "params": count_parameters(model), "width": getattr(model, "width", None),
            "rel_mse": relative_mse(result.model, target, x_test), "steps": result.steps, "cpu_s": cpu_s}


def geometric_mean(values):
    return math.exp(statistics.mean(math.log(max(v, 1e-300)) for v in values))


def label(record):
    return f"gradnet_m K={record['n_modules']}" if record["model"] == "gradnet_m" else record["model"]


def main():
    args = parse_args(__doc__.splitlines()[0], configure)
    torch.set_num_threads(args.threads)
    if args.smoke:
        protocol = {"steps": 20, "batch": 100, "n_train": 1000, "n_val": 200, "n_test": 500, "lr": 5e-3}
        dims, seeds, families = (2, 8), (0, 1), ("ridges", "bumps")
    else:
        protocol = {"steps": args.steps, "batch": 250, "n_train": 20_000, "n_val": 2_000, "n_test": 10_000,
                    "lr": 5e-3}
        dims, seeds, families = DIMS, SEEDS, FAMILIES
    variants = [("gradnet_m", k) for k in N_MODULES] + [("mlp_potential", None)]
    records = []
    for family in families:
        for dim in dims:
            for seed in seeds:
                for name, k in variants:
                    record = run_one(family, dim, seed, name, k, protocol)
                    print(json.dumps(record), flush=True)
                    records.append(record)

    def tuning(r):
        return r["family"] == TUNE_FAMILY and r["seed"] == TUNE_SEED

    labels = [label({"model": n, "n_modules": k}) for n, k in variants]
    tune_score = {lab: geometric_mean([r["rel_mse"] for r in records if tuning(r) and label(r) == lab])
                  for lab in labels}
    chosen = min((lab for lab in labels if lab.startswith("gradnet_m")), key=tune_score.__getitem__)
    held_score = {lab: geometric_mean([r["rel_mse"] for r in records if not tuning(r) and label(r) == lab])
                  for lab in labels}

    cases = sorted({(r["family"], r["dim"], r["seed"]) for r in records})
    by_case = {(r["family"], r["dim"], r["seed"], label(r)): r for r in records}
    detail = []
    for family, dim, seed in cases:
        row = [family, dim, seed, "tuning" if (family, seed) == (TUNE_FAMILY, TUNE_SEED) else "held out"]
        cells = [by_case[(family, dim, seed, lab)] for lab in labels]
        row += [f"{c['rel_mse']:.3g}" for c in cells]
        best = min(cells, key=lambda c: c["rel_mse"])
        row.append(label(best))
        detail.append(row)
    params_rows = [[dim, lab, by_case[(families[0], dim, seeds[0], lab)]["params"],
                    by_case[(families[0], dim, seeds[0], lab)]["width"] or "-",
                    f"{statistics.median(r['cpu_s'] for r in records if r['dim'] == dim and label(r) == lab):.1f}"]
                   for dim in dims for lab in labels]
    summary = [[lab, f"{tune_score[lab]:.3g}", f"{held_score[lab]:.3g}",
                sum(1 for f, d, s in cases if (f, s) != (TUNE_FAMILY, TUNE_SEED)
                    and min(labels[:-1], key=lambda x: by_case[(f, d, s, x)]["rel_mse"]) == lab)
                if lab != "mlp_potential" else "-"]
               for lab in labels]
    n_held = sum(1 for f, d, s in cases if (f, s) != (TUNE_FAMILY, TUNE_SEED))
    total_cpu = sum(r["cpu_s"] for r in records)
    sections = [
        (f"Chosen on the tuning cases ({TUNE_FAMILY}, seed {TUNE_SEED}, d in {list(dims)}): {chosen}",
         ["model", "tuning: geometric-mean relative MSE", "held out: geometric-mean relative MSE",
          f"held-out cases won among GradNet-M (of {n_held})"], summary),
        ("Relative MSE per case (lower is better)", ["family", "d", "seed", "role", *labels, "best"], detail),
        ("Sizes at the budget and median CPU seconds per fit",
         ["d", "model", "params", "width", "median CPU s"], params_rows),
    ]
    notes = f"""
Protocol: {protocol['n_train']} training / {protocol['n_val']} validation points uniform on [0, 1]^d,
{protocol['steps']} Adam steps (batch {protocol['batch']}, lr {protocol['lr']}, best validation weights),
relative MSE on {protocol['n_test']} held-out test points; {PARAMS_PER_DIM} x d parameters per model (the width
set by create_potential(n_params=...)); the MLP potential has 2 tanh hidden layers. One thread; total CPU time
of the fits {total_cpu / 60:.1f} min. Only the tuning cases ({TUNE_FAMILY}, seed {TUNE_SEED}) chose the module
count; every other row is held out.
"""
    write_results("defaults", "GradNet-M default module count at a fixed parameter budget", sections, args, notes)


if __name__ == "__main__":
    main()

"""The gradient-residual paper's synthetic task: regress a high-frequency sinusoid with residual MLPs.

The paper (no code; design sheet vision.md) reports that identity-residual networks struggle on a 1-D
high-frequency sinusoid over 30 seeds and that the gradient residual "substantially improves"; the exact
function and sizes are unknown. Recipe used here (a guess, stated so it can be changed):

* target y = sin(2 pi f x) on x in [-1, 1]; ``--n-train`` (256) training points on a uniform grid, test on
  2048 points of a finer grid (mostly between the training points); frequencies ``--freqs`` (1, 2, 4, 8, 16);
* model: Linear(1, w) -> K residual blocks h = block(F, x) with F = Linear(w, w) - ReLU - Linear(w, w) ->
  Linear(w, 1); w = 64, K = 4; every residual mode of GradResidual (alpha_init 0 unless stated; the
  ``convex`` mode also at +3 and -3 and with second_order) and the GradNet residual with a GradNet-C
  potential from gradflow.potentials (the bridge); baselines: an identity residual MLP on random Fourier
  features (sigma = f) and a SIREN (sine activations, omega_0 = 30, its initialisation) of the same width
  and depth;
* training: full batch, Adam lr 1e-3 (SIREN: ``--siren-lr`` 1e-4, the SIREN paper's; at 1e-3 it did not train
  at all in an earlier run), ``--steps`` (2000) steps through gradflow.train.fit, MSE; seeds
  ``--seeds`` (10): seed s draws the initialisation (and the Fourier features).

Reported per frequency and model: median and mean +- std of the test MSE over seeds, and the number of
seeds reaching test MSE < 0.01 ("solved").

``--gate-lr`` sets how the gate logits a train: ``lr`` (the default, as when results/vision_sinusoid.md was
measured: one Adam group with the weights, so a moves by about lr per step), ``auto`` (their own Adam group at
lr / RMS(branch weights), gradflow.vision.auto_gate_lr, the vision library's default since issue 18) or a
number. The table then also gives the mean s(a) over blocks at the end of training (median over seeds).

    python benchmarks/bench_vision_sinusoid.py            # 5 frequencies x 12 models x 10 seeds
    python benchmarks/bench_vision_sinusoid.py --steps 500 --gate-lr auto --tag gates \
        --only identity 'none (plain MLP)' 'convex a0=0' gradmag 'gradnet residual'
    python benchmarks/bench_vision_sinusoid.py --smoke    # seconds, for CI
"""

from __future__ import annotations

import math
import statistics
import time

import torch
from _common import parse_args, write_results
from torch import nn

from gradflow.potentials import GradNetC
from gradflow.train import fit
from gradflow.vision import GradNetResidual, GradResidual, auto_gate_lr, gate_parameters

WIDTH, DEPTH = 64, 4
SOLVED = 0.01


class ResMLP(nn.Module):
    """Linear(1, w) -> blocks -> Linear(w, 1); ``block(w)`` builds one residual block."""

    def __init__(self, block, width=WIDTH, depth=DEPTH, in_features=1):
        super().__init__()
        self.inp = nn.Linear(in_features, width)
        self.blocks = nn.Sequential(*[block(width) for _ in range(depth)])
        self.out = nn.Linear(width, 1)

    def forward(self, x):
        return self.out(self.blocks(self.inp(x)))


def _branch(width):
    return nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))


def gradient_mlp(mode, **options):
    return lambda: ResMLP(lambda w: GradResidual(_branch(w), mode=mode, **options))


def gradnet_mlp():
    return lambda: ResMLP(lambda w: GradNetResidual(_branch(w), GradNetC(w, depth=2)))


class FourierFeatures(nn.Module):
    """x -> [cos(2 pi B x), sin(2 pi B x)] with fixed B ~ N(0, sigma^2) (Tancik et al. 2020)."""

    def __init__(self, n, sigma):
        super().__init__()
        self.register_buffer("B", torch.randn(1, n) * sigma)

    def forward(self, x):
        z = 2 * math.pi * x @ self.B
        return torch.cat([torch.cos(z), torch.sin(z)], dim=-1)


def fourier_mlp(freq):
    def build():
        features = FourierFeatures(WIDTH // 2, sigma=freq)
        return nn.Sequential(features, ResMLP(lambda w: GradResidual(_branch(w), mode="identity"),
                                              in_features=WIDTH))
    return build


class Sine(nn.Module):
    def __init__(self, omega):
        super().__init__()
        self.omega = omega

    def forward(self, x):
        return torch.sin(self.omega * x)


def siren(omega=30.0):
    """SIREN (Sitzmann et al. 2020): 2 + 2 DEPTH sine layers of WIDTH, their uniform initialisation."""
    def build():
        layers, fan_in = [], 1
        for i in range(2 * DEPTH + 1):
            linear = nn.Linear(fan_in, WIDTH)
            bound = 1 / fan_in if i == 0 else math.sqrt(6 / fan_in) / omega
            nn.init.uniform_(linear.weight, -bound, bound)
            layers += [linear, Sine(omega)]
            fan_in = WIDTH
        return nn.Sequential(*layers, nn.Linear(WIDTH, 1))
    return build


def models(freq):
    return {
        "identity": gradient_mlp("identity"),
        "none (plain MLP)": gradient_mlp("none"),
        "gradient": gradient_mlp("gradient"),
        "identity+gradient": gradient_mlp("identity+gradient"),
        "convex a0=0": gradient_mlp("convex"),
        "convex a0=+3": gradient_mlp("convex", alpha_init=3.0),
        "convex a0=-3": gradient_mlp("convex", alpha_init=-3.0),
        "convex a0=0 second-order": gradient_mlp("convex", second_order=True),
        "gradmag": gradient_mlp("gradmag"),
        "gradnet residual": gradnet_mlp(),
        "Fourier features + identity": fourier_mlp(freq),
        "SIREN": siren(),
    }


def configure(parser):
    parser.add_argument("--freqs", type=float, nargs="*", default=[1.0, 2.0, 4.0, 8.0, 16.0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--n-train", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--siren-lr", type=float, default=1e-4, help="SIREN's own learning rate (its paper's)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", nargs="*", default=None, help="subset of model names")
    parser.add_argument("--gate-lr", default="lr",
                        help="'lr': gates in the weights' Adam group (vision_sinusoid.md); 'auto': their own group at "
                             "auto_gate_lr; or a number")
    parser.add_argument("--tag", default=None, help="write results/vision_sinusoid_<tag>.md instead")


def _mse(model, batch):
    x, y = batch
    return (model(x) - y).square().mean()


def _optimizer(model, lr, gate_lr):
    """fit's ``optimizer``: Adam with the gate logits in their own group at ``gate_lr`` ('auto':
    auto_gate_lr(model, lr); 'lr': one group, fit's default)."""
    gates = {id(p) for p in gate_parameters(model)}
    if gate_lr == "lr" or not gates:
        return "adam"
    rate = auto_gate_lr(model, lr) if gate_lr == "auto" else float(gate_lr)

    def build(params):
        return torch.optim.Adam([{"params": [p for p in params if id(p) not in gates]},
                                 {"params": [p for p in params if id(p) in gates], "lr": rate}], lr=lr)

    return build


def _mean_gate(model):
    gates = gate_parameters(model)
    return statistics.fmean(float(torch.sigmoid(a.detach())) for a in gates) if gates else None


def main():
    args = parse_args(__doc__.splitlines()[0], configure)
    torch.set_num_threads(args.threads)
    freqs, seeds, steps = ([8.0], 2, 20) if args.smoke else (args.freqs, args.seeds, args.steps)
    rows, started = [], time.process_time()
    for freq in freqs:
        x_train = torch.linspace(-1, 1, args.n_train).unsqueeze(1)
        x_test = torch.linspace(-1, 1, 2048).unsqueeze(1)

        def target(x, freq=freq):
            return torch.sin(2 * math.pi * freq * x)

        for name, build in models(freq).items():
            if args.only and name not in args.only:
                continue
            errors, train_errors, gates = [], [], []
            run_start = time.process_time()
            for seed in range(seeds):
                torch.manual_seed(seed)
                model = build()
                lr = args.siren_lr if name == "SIREN" else args.lr
                fit(model, _mse, (x_train, target(x_train)), steps=steps, lr=lr, seed=seed, device="cpu",
                    progress=False, optimizer=_optimizer(model, lr, args.gate_lr))
                gates.append(_mean_gate(model))
                with torch.no_grad():
                    errors.append(float((model(x_test) - target(x_test)).square().mean()))
                    train_errors.append(float((model(x_train) - target(x_train)).square().mean()))
            spread = statistics.stdev(errors) if len(errors) > 1 else 0.0
            rows.append([freq, name, statistics.median(errors), statistics.fmean(errors), spread,
                         statistics.median(train_errors), f"{sum(e < SOLVED for e in errors)}/{len(errors)}",
                         "-" if gates[0] is None else f"{statistics.median(gates):.3f}",
                         (time.process_time() - run_start) / seeds])
            print(f"f={freq:g} {name}: median test MSE {rows[-1][2]:.3g}, solved {rows[-1][6]}, s(a) {rows[-1][7]}",
                  flush=True)
    notes = (
        f"Frequencies {freqs}, {seeds} seeds, {steps} full-batch Adam steps (lr {args.lr}), {args.n_train} training "
        f"points, width {WIDTH}, {DEPTH} blocks, ReLU branches; gates: {args.gate_lr}; test MSE on 2048 grid points "
        f"(the target's variance is 0.5). 'solved' = test MSE < {SOLVED}. SIREN trains at lr {args.siren_lr}. Total "
        f"{time.process_time() - started:.0f} s CPU. The recipe is a guess "
        "(see the docstring); the paper's exact setup is not public."
    )
    name = "vision_sinusoid" + (f"_{args.tag}" if args.tag else "")
    write_results(name, "Synthetic high-frequency sinusoid regression",
                  [("Test MSE by frequency and model",
                    ["freq", "model", "median test MSE", "mean test MSE", "std", "median train MSE", "solved",
                     "median s(a) end", "CPU s per run"], rows)], args, notes)


if __name__ == "__main__":
    main()

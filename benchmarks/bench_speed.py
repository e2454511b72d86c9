"""Speed of every model side by side: gradient evaluation and one training step, against the matmul floor.

For d in {2, 32, 256}, every model gets about 1024 * d parameters (create_potential(name, d,
n_params=1024 * d, depth=4 / n_modules=4; two hidden layers for the MLP-style baselines) and a batch of
1024 points (float32, one thread). Measured as CPU time of the one compute thread (the machines here are
shared: wall time would count preemption), interleaved round-robin, medians over the rounds:

* eval: the gradient field at the batch, under ``torch.no_grad()`` (the autograd baselines still run one
  backward pass internally);
* step: one training step on L = mean_n ||N(x_n) - g_n||^2: zero_grad, forward, backward (the autograd
  baselines pay the double backward), Adam step (torch's default Adam for the plain models, as in
  gradflow.train; ``fused=True`` Adam for the fast path);
* fast: the same for the gradient networks through :class:`gradflow.potentials.FastGradientField`
  (compiled elementwise kernels, hand-written backward);
* floor: for each gradient network with hidden matrix W (M x d: M = width for C nets, K * width for
  M nets), the five matrix products a training step must do, timed alone: forward x W^T (n x d by d x M)
  and h W (n x M by M x d); backward G W^T (the gradient into the hidden layer), h^T G and du^T x (the
  two weight-gradient products). "floor + 1 pass" adds one fused elementwise pass over the n x M hidden
  entries (a compiled tanh), the least elementwise work a step can do.

    python benchmarks/bench_speed.py            # full run
    python benchmarks/bench_speed.py --smoke    # seconds, for CI (no compilation)
"""

from __future__ import annotations

import statistics
import time

import torch
from _common import parse_args, write_results

from gradflow.potentials import FastGradientField, count_parameters, create_potential
from gradflow.potentials.fitting import gradient_loss

MODELS = ["mgradnet_c", "mgradnet_m", "gradnet_c", "gradnet_m", "icnn", "mlp_potential", "mlp_field"]
GRADIENT_NETS = MODELS[:4]
ARCHITECTURE = {"gradnet_c": {"depth": 4}, "mgradnet_c": {"depth": 4}, "gradnet_m": {"n_modules": 4},
                "mgradnet_m": {"n_modules": 4}}


def configure(parser):
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 32, 256])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")


def interleaved_medians(fns: dict, rounds: int, warmup: int = 2) -> dict:
    """Median CPU seconds of each fn, timed round-robin (one call of each per round) after ``warmup`` rounds.

    With one torch thread all the work runs on the calling thread, so its CPU time (``time.thread_time``)
    measures the work without the time the thread spends preempted on a shared machine.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            start = time.thread_time()
            fn()
            times[k].append(time.thread_time() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def step_fn(field, params, fused: bool, x, g):
    optimizer = torch.optim.Adam(params, lr=1e-4, fused=fused or None)

    def step():
        optimizer.zero_grad(set_to_none=True)
        gradient_loss(field, (x, g)).backward()
        optimizer.step()

    return step


def eval_fn(field, x):
    def evaluate():
        with torch.no_grad():
            field(x)

    return evaluate


def floor_fns(M: int, x, g, compile: bool):
    """The five products of a step for a hidden matrix W (M, d), and the same plus one fused pass over (n, M)."""
    n, d = x.shape
    W, h = torch.randn(M, d), torch.randn(n, M)

    def products():
        x @ W.T
        h @ W
        g @ W.T
        h.T @ g
        h.T @ x

    elementwise = torch.compile(torch.tanh) if compile else torch.tanh

    def products_and_pass():
        products()
        elementwise(h)

    return products, products_and_pass


def bench_dim(d: int, n: int, rounds: int, compile: bool):
    gen = torch.Generator().manual_seed(d)
    x, g = torch.rand(n, d, generator=gen), torch.randn(n, d, generator=gen)
    models, fns, info = {}, {}, {}
    for name in MODELS:
        torch.manual_seed(0)
        model = create_potential(name, d, n_params=1024 * d, **ARCHITECTURE.get(name, {}))
        models[name] = model
        hidden = model.weight.numel() // d if name in GRADIENT_NETS else "-"
        info[name] = {"params": count_parameters(model), "hidden": hidden}
        fns[f"eval {name}"] = eval_fn(model, x)
        fns[f"step {name}"] = step_fn(model, list(model.parameters()), False, x, g)
    for name in GRADIENT_NETS:
        fast = FastGradientField(models[name], compile=compile)
        start = time.perf_counter()
        fast_eval, fast_step = eval_fn(fast, x), step_fn(fast, list(models[name].parameters()), True, x, g)
        fast_eval()
        fast_step()  # compiles the forward and backward kernels
        info[name]["first call s"] = time.perf_counter() - start
        fns[f"eval fast {name}"], fns[f"step fast {name}"] = fast_eval, fast_step
        fns[f"floor {name}"], fns[f"floor+pass {name}"] = floor_fns(info[name]["hidden"], x, g, compile)
    medians = interleaved_medians(fns, rounds)
    return info, medians


def rows_for(d, n, info, t):
    speed_rows, floor_rows = [], []
    icnn, mlp = t["step icnn"], t["step mlp_potential"]
    for name in MODELS:
        for fast in ((False, True) if name in GRADIENT_NETS else (False,)):
            key = f"fast {name}" if fast else name
            step = t[f"step {key}"]
            speed_rows.append([d, name + (" (fast)" if fast else ""), info[name]["params"], info[name]["hidden"],
                               f"{n / t[f'eval {key}'] / 1e6:.3g}", f"{1e3 * t[f'eval {key}']:.3g}",
                               f"{1e3 * step:.3g}", f"{step / icnn:.2f}", f"{step / mlp:.2f}"])
    for name in GRADIENT_NETS:
        floor, floor_pass = t[f"floor {name}"], t[f"floor+pass {name}"]
        plain, fast = t[f"step {name}"], t[f"step fast {name}"]
        floor_rows.append([d, name, info[name]["hidden"], f"{1e3 * floor:.3g}", f"{1e3 * floor_pass:.3g}",
                           f"{1e3 * plain:.3g}", f"{plain / floor:.2f}", f"{1e3 * fast:.3g}", f"{fast / floor:.2f}",
                           f"{fast / floor_pass:.2f}", f"{plain / fast:.2f}", f"{info[name]['first call s']:.1f}"])
    return speed_rows, floor_rows


def main():
    args = parse_args(__doc__.splitlines()[0], configure)
    torch.set_num_threads(args.threads)
    dims, n, rounds, compile = (args.dims, args.batch, args.rounds, True) if not args.smoke else ([4], 64, 2, False)
    speed_rows, floor_rows = [], []
    for d in dims:
        info, medians = bench_dim(d, n, rounds, compile)
        s, f = rows_for(d, n, info, medians)
        speed_rows += s
        floor_rows += f
    sections = [
        (f"Gradient evaluation and one training step, batch {n} (medians of {rounds} interleaved rounds)",
         ["d", "model", "params", "hidden M", "eval Mpoints/s", "eval ms", "step ms", "step / icnn",
          "step / mlp_potential"], speed_rows),
        ("Gradient networks against the floor of their own matrix products (same run)",
         ["d", "model", "M", "floor ms", "floor + 1 pass ms", "plain step ms", "plain / floor", "fast step ms",
          "fast / floor", "fast / (floor + 1 pass)", "speed-up plain / fast", "fast first call s"], floor_rows),
    ]
    notes = f"""
float32, torch threads {args.threads}, batch {n}; times are CPU seconds of the single compute thread
(time.thread_time: the shared machine's preemption is not counted), all variants of one d timed round-robin
in this process, medians of the rounds.
Floor = the five products x W^T, h W, G W^T, h^T G, du^T x with the model's W (M x d), n = {n}, timed alone;
"+ 1 pass" adds one compiled elementwise tanh over the n x M hidden entries. The fast path computes exactly
these five products plus its compiled profile forward and vector-Jacobian product (and the fused Adam
update); "fast first call s" includes torch.compile's one-time compilation.
{"Smoke run: the fast path is not compiled here." if args.smoke else ""}
"""
    write_results("speed", "Gradient networks vs baselines: evaluation and training-step speed", sections, args,
                  notes)


if __name__ == "__main__":
    main()

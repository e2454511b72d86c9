"""Training-step cost of the gradient residual over the identity residual, per backbone, side by side.

For every backbone one training step (forward, loss, backward, Adam step) is timed for each residual:
``identity`` (the baseline), ``convex`` with the closed-form gradient term (the default for every backbone
here: conv-(elementwise)-conv branches, and conv-BN-ReLU-conv-BN in the ResNets), ``convex`` with the gradient
term forced through autograd (``fast_path=False``: one vector-Jacobian product, the paper's way) and the
GradNet residual (``gradnet``). The configurations are interleaved step by step in one loop (``repeats``
rounds after warm-up) so that load changes on the shared machine hit all of them alike; the table reports
medians and each one's ratio to the identity residual. Goal from the issue: <= 1.25x for the SR backbones with
the closed form (the paper reports 2.26x for SEDSR with autograd, on a GPU).

    python benchmarks/bench_vision_overhead.py            # all backbones
    python benchmarks/bench_vision_overhead.py --smoke    # seconds, for CI
    python benchmarks/bench_vision_overhead.py --device cuda   # full training batches on a GPU
                                                               # (results/vision_overhead_cuda.md)
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F
from _common import parse_args, write_results

from gradflow.potentials import count_parameters
from gradflow.vision import create_backbone

CONFIGS = {
    "identity": {"residual": "identity"},
    "convex (closed form)": {"residual": "convex"},
    "convex (autograd)": {"residual": "convex", "fast_path": False},
    "gradnet": {"residual": "gradnet"},
}
# backbone -> (constructor arguments, input shape, target kind); sizes follow each task's usual training
# batch, reduced where a CPU step would take seconds
BACKBONES = {
    "sedsr": ({"scale": 2}, (16, 3, 24, 24), "sr"),
    "edsr": ({"scale": 2}, (4, 3, 24, 24), "sr"),
    "resnet20": ({"num_classes": 10}, (32, 3, 32, 32), "classification"),
    "resnet56": ({"num_classes": 10}, (16, 3, 32, 32), "classification"),
    "resnet18": ({"num_classes": 10}, (4, 3, 32, 32), "classification"),
    "unet": ({"num_classes": 4}, (4, 3, 64, 64), "segmentation"),
}
# on a GPU: the usual full training batches (48x48 LR patches for SR)
GPU_SHAPES = {"sedsr": (16, 3, 48, 48), "edsr": (16, 3, 48, 48), "resnet20": (128, 3, 32, 32),
              "resnet56": (128, 3, 32, 32), "resnet18": (128, 3, 32, 32), "unet": (8, 3, 128, 128)}
SMOKE = {"sedsr": ({"scale": 2, "n_blocks": 2, "channels": 8}, (2, 3, 8, 8), "sr"),
         "resnet20": ({"num_classes": 10, "stages": [(4, 1), (8, 1)]}, (2, 3, 8, 8), "classification")}


def configure(parser):
    parser.add_argument("--repeats", type=int, default=15, help="timed rounds per configuration")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--backbones", nargs="*", default=None, help=f"subset of {', '.join(BACKBONES)}")


def step_fn(model, shape, kind, generator, device):
    """A closure running one training step of ``model`` on fixed random data (on ``device``, waiting for
    the device to finish)."""
    x = torch.rand(shape, generator=generator)
    if kind == "sr":
        target = torch.rand(shape[0], shape[1], shape[2] * model.scale, shape[3] * model.scale, generator=generator)
        loss_fn = F.l1_loss
    elif kind == "classification":
        target = torch.randint(model.num_classes, (shape[0],), generator=generator)
        loss_fn = F.cross_entropy
    else:
        target = torch.randint(model.num_classes, (shape[0], *shape[2:]), generator=generator)
        loss_fn = F.cross_entropy
    x, target = x.to(device), target.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), target).backward()
        optimizer.step()
        synchronize()

    return step


def interleaved_medians(steps: dict, repeats: int, warmup: int = 2) -> dict:
    """Median seconds of each closure, timed round-robin (one call of each per round)."""
    for _ in range(warmup):
        for step in steps.values():
            step()
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main():
    args = parse_args(__doc__.splitlines()[0], configure)
    torch.set_num_threads(args.threads)
    table = SMOKE if args.smoke else {k: v for k, v in BACKBONES.items() if not args.backbones or k in args.backbones}
    repeats = 3 if args.smoke else args.repeats
    device = torch.device(args.device)
    rows = []
    for name, (kwargs, shape, kind) in table.items():
        if device.type == "cuda" and not args.smoke:
            shape = GPU_SHAPES[name]
        steps, params = {}, {}
        for label, options in CONFIGS.items():
            torch.manual_seed(0)
            model = create_backbone(name, **kwargs, **options).to(device)
            params[label] = count_parameters(model)
            steps[label] = step_fn(model, shape, kind, torch.Generator().manual_seed(0), device)
        medians = interleaved_medians(steps, repeats)
        base = medians["identity"]
        for label in CONFIGS:
            rows.append([name, "x".join(map(str, shape)), label, params[label], 1e3 * medians[label],
                         medians[label] / base])
        print(f"{name}: " + ", ".join(f"{k} {1e3 * v:.1f} ms" for k, v in medians.items()), flush=True)
    notes = (
        f"One training step (forward, loss, backward, Adam) per configuration, {repeats} interleaved rounds after 2 "
        f"warm-up rounds, median; torch threads = {args.threads}; device {args.device}. Input shape is batch x "
        "channels x H x W (LR patches for SR). 'closed form': g = c conv1^T(s'(z) * conv2^T 1) from the forward "
        "pass's own pre-activation (for the ResNets' conv-BN-ReLU-conv-BN branches with the batch-norm statistics held "
        "fixed); 'autograd' is one vector-Jacobian product of the branch (for a branch ending in a training-mode "
        "batch norm that VJP is zero up to rounding: timed for its cost only). gradnet adds a ConvGradNet "
        "(3x3, as many hidden channels as the block) per block, i.e. more parameters and FLOPs."
    )
    table_name = "vision_overhead" if device.type == "cpu" else f"vision_overhead_{device.type}"
    write_results(table_name, "Gradient residual training-step overhead",
                  [("Training-step time per backbone and residual",
                    ["backbone", "input", "residual", "params", "step ms (median)", "ratio to identity"], rows)],
                  args, notes)


if __name__ == "__main__":
    main()

"""x2 super-resolution on the held-out bundled images: identity vs gradient vs GradNet residual.

Protocol (the paper's, scaled to what the machine allows; the numbers used are in the written table):
SEDSR (4 x 32) and EDSR-baseline-size (16 x 64, residual scaling 0.1) trained on 24 x 24 LR patches of the
bundled training pictures (gradflow.vision.data.SR_IMAGES["train"]), L1 loss, Adam (``--lr``, 2e-4),
``--batch-size`` (16), ``--patch-size`` (24), ``--steps`` steps through gradflow.train.fit. The paper
evaluates on a regular schedule and averages the last 25% of the evaluations; with ``--evals`` evaluations
spaced every ``steps / --evals`` steps, only those in the final quarter enter that average, so only they
are run (same numbers, a quarter of the cost): the full held-out pictures (SR_IMAGES["test"]), PSNR and
SSIM on the Y channel with a 2-pixel border crop. Reported: the final-25% average, mean +- std
over ``--seeds`` seeds, bicubic as the floor, and the difference to the identity residual of the same
seed (paired). Residuals: identity (EDSR), convex gradient residual with alpha_init +3 and -3 (the paper's
initialisations for the small and the large model) and the GradNet residual.

``--bicubic-skip`` adds bicubic upsampling of the input to the output (not EDSR): with the few hundred
steps a CPU allows, plain EDSRs stay far below bicubic and the comparison says little.

The defaults repeat the protocol of results/vision_sr_sedsr.md (before issue 18): ``--gate-lr lr`` (gates in the
weights' Adam group) and a randomly initialised tail. ``--gate-lr auto`` gives the gates their own Adam group at
lr / RMS(branch weights) (gradflow.vision.auto_gate_lr) and ``--zero-tail`` starts the tail at zero, so that
with ``--bicubic-skip`` every model starts exactly at bicubic: the library's defaults since issue 18.

Results go to ``results/vision_sr_<models>.md`` (one file per model list; ``--tag T``: ``vision_sr_T.md``).

    python benchmarks/bench_vision_sr.py --models sedsr --steps 600 --seeds 3 --bicubic-skip
    python benchmarks/bench_vision_sr.py --models sedsr --steps 500 --seeds 2 --bicubic-skip --zero-tail \
        --gate-lr auto --residuals identity 'convex a0=+3' gradnet --tag gates
    python benchmarks/bench_vision_sr.py --smoke
"""

from __future__ import annotations

import statistics
import time

import torch
from _common import parse_args, write_results

from gradflow.vision import create_backbone, evaluate_sr, train_sr
from gradflow.vision import data as D

CONFIGS = {
    "identity": {"residual": "identity"},
    "convex a0=+3": {"residual": "convex", "alpha_init": 3.0},
    "convex a0=-3": {"residual": "convex", "alpha_init": -3.0},
    "gradnet": {"residual": "gradnet"},
}
SCALE = 2


def configure(parser):
    parser.add_argument("--models", nargs="*", default=["sedsr", "edsr"])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--evals", type=int, default=8, help="evaluations per run")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--patch-size", type=int, default=24, help="LR patch side")
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--n-patches", type=int, default=16384)
    parser.add_argument("--bicubic-skip", action="store_true")
    parser.add_argument("--zero-tail", action="store_true", help="zero-initialised tail (the default since issue 18)")
    parser.add_argument("--gate-lr", default="lr",
                        help="'lr': gates in the weights' Adam group (vision_sr_sedsr.md); 'auto': their own group "
                             "at auto_gate_lr; or a number")
    parser.add_argument("--residuals", nargs="*", default=list(CONFIGS),
                        help=f"subset of {', '.join(CONFIGS)} (identity is always run: the reference)")
    parser.add_argument("--tag", default=None, help="write results/vision_sr_<tag>.md instead")
    parser.add_argument("--threads", type=int, default=1)


def run(name, options, seed, steps, every, train_set, pairs, args, smoke):
    torch.manual_seed(seed)
    extra = {"n_blocks": 1, "channels": 8} if smoke else {}
    # the defaults zero_tail=False and gate_lr=lr: the initialisation and the single Adam group of
    # results/vision_sr_sedsr.md; --zero-tail --gate-lr auto: the library's defaults since issue 18
    model = create_backbone(name, scale=SCALE, bicubic_skip=args.bicubic_skip, zero_tail=args.zero_tail, **options,
                            **extra)
    gate_lr = None if args.gate_lr == "auto" else args.lr if args.gate_lr == "lr" else float(args.gate_lr)
    evaluations = []
    kept = max(1, (steps // every) // 4)  # the last quarter of the evaluations (at least one)
    window_start = (steps // every - kept) * every

    def evaluate(info):
        if info["step"] % every == 0 and info["step"] > window_start:
            scores = evaluate_sr(info["model"], pairs, SCALE)
            evaluations.append((info["step"], scores["psnr"], scores["ssim"]))

    result = train_sr(model, train_set, steps=steps, batch_size=args.batch_size, lr=args.lr, gate_lr=gate_lr, seed=seed,
                      device="cpu", progress=False, callbacks=[evaluate])
    last = evaluations[-kept:]
    gates = result.model.gates()
    return (statistics.fmean(e[1] for e in last), statistics.fmean(e[2] for e in last),
            statistics.fmean(gates) if gates else None)


def _mean_std(values):
    return f"{statistics.fmean(values):.3f} +- {statistics.stdev(values) if len(values) > 1 else 0.0:.3f}"


def main():
    args = parse_args(__doc__.splitlines()[0], configure)
    torch.set_num_threads(args.threads)
    steps, seeds, models = (4, 1, ["sedsr"]) if args.smoke else (args.steps, args.seeds, args.models)
    every = max(1, steps // (2 if args.smoke else args.evals))
    train_images = D.load_sr_images("train")
    test_images = D.load_sr_images("test")
    if args.smoke:
        train_images, test_images = train_images[:1], [im[:, :64, :64] for im in test_images[:1]]
    train_set = D.SRPatchDataset(train_images, SCALE, args.patch_size, 64 if args.smoke else args.n_patches, seed=0)
    pairs = D.sr_pairs(test_images, SCALE)
    floor = evaluate_sr(None, pairs, SCALE)
    rows = [["-", "bicubic", f"{floor['psnr']:.3f}", f"{floor['ssim']:.4f}", "-", "-", "-"]]
    started, cpu_started = time.perf_counter(), time.process_time()
    for name in models:
        results = {}
        for label, options in CONFIGS.items():
            if label != "identity" and label not in args.residuals:
                continue
            results[label] = [run(name, options, seed, steps, every, train_set, pairs, args, args.smoke)
                              for seed in range(seeds)]
            print(f"{name} {label}: " + ", ".join(f"{r[0]:.3f} dB" for r in results[label]), flush=True)
        for label, runs in results.items():
            gain = [r[0] - base[0] for r, base in zip(runs, results["identity"])]
            gates = [r[2] for r in runs if r[2] is not None]
            rows.append([name, label, _mean_std([r[0] for r in runs]), _mean_std([r[1] for r in runs]),
                         "-" if label == "identity" else _mean_std(gain),
                         f"{statistics.fmean(gates):.3f}" if gates else "-", seeds])
    notes = (
        f"x{SCALE}, {steps} steps, batch {args.batch_size}, lr {args.lr}, {args.patch_size} x {args.patch_size} LR "
        f"patches ({args.n_patches} drawn once), evaluations every {every} steps (those of the final 25% run) "
        f"on {len(pairs)} held-out pictures ({', '.join(D.SR_IMAGES['test'])}), "
        f"final-25% averages; bicubic_skip={args.bicubic_skip}, zero_tail={args.zero_tail}, gates: "
        f"{args.gate_lr}; {time.perf_counter() - started:.0f} s wall, "
        f"{time.process_time() - cpu_started:.0f} s CPU in total. "
        "'gain' is PSNR minus the identity residual's of the same seed (mean +- std over seeds). 'mean gate' is "
        "the final s(a) averaged over blocks and seeds."
    )
    write_results("vision_sr_" + (args.tag or "_".join(models)),
                  "x2 super-resolution: gradient residual vs identity residual",
                  [("PSNR-Y / SSIM-Y (final-25% average, mean +- std over seeds)",
                    ["model", "residual", "PSNR-Y (dB)", "SSIM-Y", "PSNR gain vs identity", "mean gate", "seeds"],
                    rows)], args, notes)


if __name__ == "__main__":
    main()

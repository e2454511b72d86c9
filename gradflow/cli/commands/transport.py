"""``gradflow transport``: fit an OT map between two sample files (CLI layer over :func:`fit_ot_map`)."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["register"]


def _load_samples(path: str, name: str):
    """An (N, d) real .npy array as a float32 tensor (float64 where its values exceed float32's range)."""
    import numpy as np
    import torch

    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as err:  # np.load's message for anything but a .npy/.npz file names pickles
        raise ValueError(f"--{name} {path}: not a NumPy .npy file (save the array with numpy.save)") from err
    if not isinstance(array, np.ndarray):
        raise ValueError(f"--{name} {path}: expected one array in a .npy file, got an .npz archive")
    if array.ndim != 2 or not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"--{name} {path}: expected a real (N, d) array, got shape {array.shape} {array.dtype}")
    if not np.isfinite(array).all():
        raise ValueError(f"--{name} {path}: the array holds NaN or inf")
    wide = np.abs(array).max(initial=0) > np.finfo(np.float32).max
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float64 if wide else np.float32))


def _transport(args) -> int:
    import numpy as np
    import torch

    from ...transport import SemiDual, bures_map, fit_ot_map, w2
    from ..demo.transport import plot_map
    from ..report import Report, require_matplotlib

    x, y = _load_samples(args.source, "source"), _load_samples(args.target, "target")
    dtype = torch.promote_types(x.dtype, y.dtype)
    x, y = x.to(dtype), y.to(dtype)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.conjugate is not None and args.method not in ("auto", "dual"):
        raise ValueError(f"--conjugate applies to --method dual, got --method {args.method}")
    method = args.method if args.conjugate is None else SemiDual(conjugate=args.conjugate)
    options = {"scheduler": None if args.scheduler == "none" else args.scheduler}
    T = fit_ot_map(x, y, method=method, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                   max_time=args.max_time, seed=args.seed, device=args.device, history_path=out / "history.jsonl",
                   **options)
    T.to("cpu")
    with torch.no_grad():
        mapped = torch.cat([T(chunk) for chunk in x.split(65_536)])
    T.save(out / "map.pt")
    np.save(out / "mapped.npy", mapped.numpy())
    g = torch.Generator().manual_seed(args.seed)
    k = min(1000, len(x), len(y))
    xs, ys = x[torch.randperm(len(x), generator=g)[:k]], y[torch.randperm(len(y), generator=g)[:k]]
    with torch.no_grad():
        metrics = {
            "method": T.method, "dim": T.dim, "steps": T.steps, "stop_reason": T.stop_reason, "best_step": T.best_step,
            "seconds": T.seconds,
            "transport_cost": T.transport_cost(x),
            f"w2_source_target_{k}": w2(xs.double(), ys.double()),
            f"w2_mapped_target_{k}": w2(T(xs).double(), ys.double()),
            f"w2_linear_target_{k}": w2(bures_map(x, y)(xs).double(), ys.double()),
        }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    report = Report(out, f"transport: {args.source} -> {args.target}")
    report.text("W2 distances are exact (POT) between subsamples of the mapped source and the target.")
    report.table(list(metrics), [list(metrics.values())])
    report.figure(plot_map(require_matplotlib(), xs, ys, T(xs).detach(), f"OT map ({T.method})"), "map",
                  "source, target and the fitted map (first two coordinates)")
    report.write()
    print(f"fitted {T.method} OT map in d={T.dim} ({T.steps} steps, {T.stop_reason}); W2(T#source, target) = "
          f"{metrics[f'w2_mapped_target_{k}']:.4g} vs {metrics[f'w2_source_target_{k}']:.4g} before; "
          f"map, mapped samples and report in {out}")
    return 0


def register(commands, common_options) -> None:
    from ...transport import CONJUGATES, METHODS
    from .. import positive_int

    parser = commands.add_parser("transport", help="fit an optimal transport map between two sample files",
                                 description="Fit the optimal transport map between two (N, d) .npy sample files "
                                 "as the gradient of a convex network; runs on one CPU thread unless --threads.")
    common_options(parser, "transport-out")
    parser.set_defaults(threads=1)  # small networks: one thread is fastest, and immune to a busy machine
    parser.add_argument("--source", required=True, help="source samples, an (N, d) .npy array")
    parser.add_argument("--target", required=True, help="target samples, an (M, d) .npy array")
    parser.add_argument("--method", choices=["auto", *sorted(METHODS)], default="auto",
                        help="auto (default): regression on the exact plan between the two sets when both have "
                        "at most 1024 points, else the semi-dual (dual)")
    parser.add_argument("--steps", type=positive_int, default=2000,
                        help="optimizer steps at most; held-out early stopping may end the fit sooner (default: "
                        "2000)")
    parser.add_argument("--batch-size", type=positive_int, default=None,
                        help="samples per side and step (default: 512)")
    parser.add_argument("--lr", type=float, default=None,
                        help="learning rate (default: 1e-2; 1e-3 for monge_ampere)")
    parser.add_argument("--conjugate", choices=sorted(CONJUGATES), default=None,
                        help="conjugate solver of the semi-dual (implies --method dual; default: amortized, a "
                        "network's prediction refined by a few Newton steps)")
    parser.add_argument("--scheduler", choices=["cosine", "none"], default="cosine",
                        help="learning-rate schedule: cosine decays it to 1%% over --steps (default: cosine)")
    parser.set_defaults(run=_transport)

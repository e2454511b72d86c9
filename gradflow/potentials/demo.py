"""The gradient-field section of ``gradflow demo``: fit the paper's 2-D targets with every model."""

from __future__ import annotations

import time

import torch

from ..report import Report, require_matplotlib
from ._registry import count_parameters, create_potential
from .fitting import fit_field
from .targets import create_target, gradient_error_db

__all__ = ["DEMO_MODELS", "field_section", "plot_fields"]

#: target -> models fitted in the demo (monotone nets only where the target is convex)
DEMO_MODELS = {
    "convex_2d": ["mgradnet_c", "mgradnet_m", "icnn", "mlp_potential", "mlp_field"],
    "nonconvex_2d": ["gradnet_c", "gradnet_m", "mlp_potential", "mlp_field"],
}
_ARCHITECTURE = {"gradnet_c": {"depth": 4}, "mgradnet_c": {"depth": 4}, "gradnet_m": {"n_modules": 4},
                 "mgradnet_m": {"n_modules": 4}}


def plot_fields(plt, target, models, title):
    n = len(models) + 1
    fig, axes = plt.subplots(2, n, figsize=(2.6 * n, 5.2), squeeze=False)
    n_arrows = 12
    coarse = target.grid(n_arrows)
    fine_n = 80
    fine = target.grid(fine_n)
    extent = (target.low, target.high, target.low, target.high)
    with torch.no_grad():
        true_coarse, true_fine = target.gradient(coarse), target.gradient(fine)
        panels = [("truth", true_coarse, target.energy(fine))]
        for name, model in models.items():
            err = (model(fine) - true_fine).square().sum(-1).clamp_min(1e-12)
            panels.append((name, model(coarse), 10 * torch.log10(err)))
    # one arrow scale for every panel: the truth's longest arrow spans 0.9 grid cells
    spacing = (target.high - target.low) / (n_arrows - 1)
    scale = float(true_coarse.norm(dim=-1).max()) / (0.9 * spacing)
    xy = coarse.numpy()
    for col, (name, field, image) in enumerate(panels):
        field = field.numpy()
        ax = axes[0, col]
        ax.quiver(xy[:, 0], xy[:, 1], field[:, 0], field[:, 1], color="C0" if col == 0 else "C1",
                  angles="xy", scale_units="xy", scale=scale, width=0.006, headwidth=4)
        ax.set_title(name, fontsize=9)
        ax.set_aspect("equal")
        ax = axes[1, col]
        # cartesian_prod varies the last coordinate fastest: image[i, j] is at (x1_i, x2_j)
        grid_image = image.reshape(fine_n, fine_n).T.numpy()
        shown = ax.imshow(grid_image, origin="lower", extent=extent, cmap="viridis" if col == 0 else "magma")
        ax.set_title("potential F" if col == 0 else "error (dB)", fontsize=8)
        fig.colorbar(shown, ax=ax, fraction=0.046)
    for ax in axes.flat:
        ax.tick_params(labelsize=6)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def field_section(report: Report, *, quick: bool = False, device: str = "auto", seed: int = 0,
                  max_time: float | None = None) -> None:
    """Fit ~100-parameter models to the convex and non-convex 2-D targets and add fields, error maps,
    loss curves and a dB table to ``report``."""
    plt = require_matplotlib()
    report.heading("Gradient fields (GradNets paper, 2-D targets)")
    n_train, epochs = (2_000, 2) if quick else (20_000, 40)
    report.text(
        f"Each model has ~100 parameters and is trained on {n_train} uniform points for {epochs} epochs "
        "(batch 1000, Adam, lr 5e-3, best validation weights); the error is "
        "10 log10(mean ||N(x) - grad F(x)||^2) on a 100 x 100 grid. The paper's full protocol "
        "(100k points, 200 epochs, 5 trials) is `benchmarks/bench_gradient_fields.py`."
    )
    rows, curves = [], {}
    for target_name, model_names in DEMO_MODELS.items():
        target = create_target(target_name)
        grid = target.grid(100)
        fitted = {}
        for name in model_names:
            torch.manual_seed(seed)
            model = create_potential(name, 2, n_params=100, **_ARCHITECTURE.get(name, {}))
            start = time.perf_counter()
            result = fit_field(model, target, n_train=n_train, n_val=2_000, epochs=epochs, seed=seed,
                               device=device, max_time=max_time, progress=False)
            seconds = time.perf_counter() - start
            model = result.model.cpu()
            fitted[name] = model
            db = gradient_error_db(model, target, grid)
            rows.append([target_name, name, count_parameters(model), db, seconds])
            curves[(target_name, name)] = [(h["step"], h["val_loss"]) for h in result.history if "val_loss" in h]
        best = min((r for r in rows if r[0] == target_name), key=lambda r: r[3])
        report.metric("gradient fields", f"best dB on {target_name} ({best[1]})", best[3])
        report.figure(plot_fields(plt, target, fitted, target_name), f"fields-{target_name}",
                      f"{target_name}: true field and potential (left), each model's field and error map")
    report.table(["target", "model", "params", "error (dB)", "train s"], rows)
    fig, axes = plt.subplots(1, len(DEMO_MODELS), figsize=(10, 3.5))
    for ax, target_name in zip(axes, DEMO_MODELS):
        for (t, name), points in curves.items():
            if t == target_name and points:
                steps, losses = zip(*points)
                ax.semilogy(steps, losses, label=name)
        ax.set_title(target_name)
        ax.set_xlabel("step")
        ax.set_ylabel("validation gradient MSE")
        ax.legend(fontsize=7)
    fig.tight_layout()
    report.figure(fig, "field-loss-curves", "validation loss during training")

"""Pretrained priors shipped in gradflow/inverse/pretrained/ and the recipes that make them (private)."""

from __future__ import annotations

from pathlib import Path

from .._validation import check_choice

__all__ = ["DEFAULT_PRETRAINED", "PRETRAINED", "list_pretrained", "load_pretrained", "train_pretrained"]

_DIR = Path(__file__).resolve().parent / "pretrained"

#: name -> recipe: the prior class and architecture, the training noise level (0-1 scale), the patches
#: and the ``train_prior`` options of each training phase (run in order on the same prior; a phase's
#: ``batch_size`` overrides the recipe's); a recipe with ``"deepen": NAME`` starts from recipe NAME's prior
#: (trained first) made ``depth`` layers deep by :meth:`GradNetPrior.deepen`; a recipe with ``"init": NAME`` starts
#: a :class:`WeaklyConvexPrior` from the shipped convex prior NAME (:meth:`WeaklyConvexPrior.from_convex`).
#: ``gradflow train-prior NAME``
#: retrains the shipped file (the convex ones: up to the schedule note below and GPU nondeterminism).
#: The convex priors start with a cheap unrolled phase, then train the exact minimiser (implicit
#: differentiation), which is what the solvers compute, in three minimiser phases of decreasing learning
#: rate. They were trained on a GPU (one H100, three or four priors at a time, about 7.5 minutes per phase);
#: each minimiser phase was stopped by a time limit (380-450 s) after the steps recorded here, its cosine
#: schedule running on that time. On a CPU core a minimiser step of batch 64 takes about 1-2 s.


def _convex_phases(*minimiser_steps: int):
    """The convex priors' phases: 800 unrolled (15-step denoiser) steps, then minimiser phases of
    ``minimiser_steps`` steps at learning rates 2e-3 (batch 64), 1e-3 and 5e-4 (batch 256)."""
    lrs_batches = ((2e-3, 64), (1e-3, 256), (5e-4, 256))
    return ({"objective": "unrolled", "unrolled_steps": 15, "steps": 800, "lr": 1e-2},
            *({"objective": "minimiser", "solve_tol": 1e-3, "steps": n, "lr": lr, "batch_size": batch}
              for n, (lr, batch) in zip(minimiser_steps, lrs_batches)))


_CONVEX = {"cls": "GradNetPrior", "batch_size": 64, "patch_size": 40, "n_patches": 20000}
PRETRAINED = {
    "ridge-s25": {**_CONVEX, "arch": {"n_filters": 32, "kernel_size": 7, "depth": 1}, "sigma": 25 / 255,
                  "phases": _convex_phases(1671, 453, 389)},
    "ridge-s15": {**_CONVEX, "arch": {"n_filters": 32, "kernel_size": 7, "depth": 1}, "sigma": 15 / 255,
                  "phases": _convex_phases(1424, 514, 488)},
    # the trained ridge-s25 with a depth-3 profile, refined (the minimiser steps are slower: the time limit
    # stopped this phase after 78)
    "cascade-s25": {**_CONVEX, "arch": {"n_filters": 32, "kernel_size": 7, "depth": 3}, "sigma": 25 / 255,
                    "deepen": "ridge-s25",
                    "phases": ({"objective": "minimiser", "solve_tol": 1e-3, "steps": 78, "lr": 1e-3},)},
    # the weakly convex prior: ridge-s25 (the shipped file) as its convex part, a concave part at rho = 0.45,
    # then minimiser training (lam rho < 1 keeps the denoising problem strongly convex) on one CPU core: the
    # shipped file is this phase's checkpoint at step 180 of 200 (fit's checkpoint_dir; 8.7 CPU-min, ~2.9 CPU s per
    # step of batch 32 on a shared 2-core AMD EPYC), the run stopped there for time
    "wcrr-s25": {"cls": "WeaklyConvexPrior", "arch": {"n_filters": 32, "kernel_size": 7, "rho_max": 0.9},
                 "sigma": 25 / 255, "init": "ridge-s25", "batch_size": 32, "patch_size": 40, "n_patches": 20000,
                 "phases": ({"objective": "minimiser", "solve_tol": 3e-3, "steps": 200, "lr": 1e-3},)},
    "gradstep-s25": {
        "cls": "GradStepPrior", "arch": {"n_filters": 16, "kernel_size": 5, "depth": 3, "boundary": "valid"},
        "sigma": 25 / 255, "phases": ({"objective": "unrolled", "unrolled_steps": 15, "steps": 300, "lr": 1e-2},),
        "batch_size": 16, "patch_size": 32, "n_patches": 4000,
    },
}
#: what ``GradNetPrior.pretrained()`` loads: the Gaussian-denoising prior for 0-1 grayscale images
DEFAULT_PRETRAINED = "ridge-s25"


def list_pretrained() -> list[str]:
    """Names of the shipped priors (for ``GradNetPrior.pretrained`` / ``GradStepPrior.pretrained``)."""
    return sorted(PRETRAINED)


def _classes():
    from .priors import GradNetPrior, GradStepPrior, WeaklyConvexPrior

    return {"GradNetPrior": GradNetPrior, "GradStepPrior": GradStepPrior, "WeaklyConvexPrior": WeaklyConvexPrior}


def build(name: str):
    """An untrained prior with the architecture of recipe ``name``."""
    check_choice(name, "pretrained prior", PRETRAINED)
    recipe = PRETRAINED[name]
    return _classes()[recipe["cls"]](**recipe["arch"])


def load_pretrained(name: str | None, cls=None, directory=None):
    """Load the shipped prior ``name`` (default :data:`DEFAULT_PRETRAINED`); ``cls`` must match its class.
    The prior is in eval mode, float32, on the CPU; ``prior.sigma`` is its training noise level and
    ``prior.pretrained_name`` its name."""
    from ..train import load_checkpoint

    name = DEFAULT_PRETRAINED if name is None else name
    prior = build(name)
    if cls is not None and type(prior) is not cls:
        raise ValueError(f"pretrained prior {name!r} is a {type(prior).__name__}; load it with "
                         f"{type(prior).__name__}.pretrained({name!r})")
    path = Path(directory or _DIR) / f"{name}.pt"
    if not path.is_file():
        raise OSError(f"pretrained weights {path} are missing; make them with `gradflow train-prior {name}`")
    state = load_checkpoint(path)
    prior.load_state_dict(state["state_dict"])
    prior.sigma = float(state["sigma"])
    prior.pretrained_name = name
    return prior.eval()


def train_pretrained(name: str, out_dir=None, *, device="auto", seed: int = 0, max_time=None, progress=False,
                     **fit_options):
    """Train recipe ``name`` on patches of the training images and save ``<out_dir>/<name>.pt`` (default:
    the package's pretrained/ folder). The recipe's phases run in order, each a :func:`train_prior` call with
    a cosine schedule and ``seed`` (``max_time`` bounds each phase); a ``"deepen"`` recipe first trains the
    one-layer recipe it names (not saved) and deepens it. Other keyword arguments go to ``fit`` (e.g.
    ``checkpoint_dir``, ``checkpoint_every`` and ``resume`` to train across sessions). Returns (path, FitResult
    of the last phase)."""
    from ..train import save_checkpoint

    prior, result = _train_recipe(name, device=device, seed=seed, max_time=max_time, progress=progress,
                                  **fit_options)
    out = Path(out_dir or _DIR)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.pt"
    state = {k: v.detach().cpu() for k, v in prior.state_dict().items()}
    save_checkpoint(path, state_dict=state, sigma=PRETRAINED[name]["sigma"], recipe=repr(PRETRAINED[name]),
                    final_loss=float(result.history[-1]["loss"]) if result.history else float("nan"))
    return path, result


def _train_recipe(name: str, **options):
    """The trained prior of recipe ``name`` and the FitResult of its last phase."""
    import torch

    from ._data import TRAIN_IMAGES, patch_dataset
    from ._training import train_prior

    check_choice(name, "pretrained prior", PRETRAINED)
    recipe = PRETRAINED[name]
    if "deepen" in recipe:
        prior = _train_recipe(recipe["deepen"], **options)[0].deepen(recipe["arch"]["depth"])
    elif "init" in recipe:
        torch.manual_seed(options["seed"])
        convex = load_pretrained(recipe["init"])
        prior = _classes()[recipe["cls"]].from_convex(convex, rho_max=recipe["arch"]["rho_max"]).train()
    else:
        torch.manual_seed(options["seed"])
        prior = build(name)
    patches = patch_dataset(TRAIN_IMAGES, patch_size=recipe["patch_size"], n_patches=recipe["n_patches"],
                            seed=options["seed"])
    for phase in recipe["phases"]:  # e.g. a cheap unrolled start, then the exact minimiser
        phase = {"batch_size": recipe["batch_size"], **phase}
        result = train_prior(prior, patches, sigma=recipe["sigma"], scheduler="cosine", **options, **phase)
        prior = result.model
    return prior, result

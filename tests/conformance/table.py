"""The conformance table: every public callable of gradflow, how to call it with good arguments, and the kind
of each argument whose bad values it must refuse (tests/conformance/kinds.py).

Keys are ``"<package>.<name>"`` for functions and constructors and ``"<package>.<name>.<method>"`` for
methods that take data. Every name in a package's ``__all__`` is a key (or the prefix of one) here, or is in
:data:`EXCLUDED` with the reason; tests/test_conformance.py fails for a name in neither.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

import gradflow.dynamics as D
import gradflow.inverse as I
import gradflow.potentials as P
import gradflow.testing as TS
import gradflow.train as TR
import gradflow.transport as T
import gradflow.vision as V

NAN, INF = float("nan"), float("inf")

#: the packages the suite walks (gradflow itself exports only __version__ and the error classes)
PACKAGES = ("gradflow", "gradflow.potentials", "gradflow.train", "gradflow.dynamics", "gradflow.transport",
            "gradflow.inverse", "gradflow.vision", "gradflow.testing")


@dataclass
class Entry:
    """``fn(**good)`` must succeed; ``fn(**{**good, arg: bad})`` must raise a gradflow error naming ``arg``
    (or ``names[arg]``) for every bad value of ``kinds[arg]``, or of ``bad[arg]`` (extra labelled values).
    ``valid`` lists (arg, label) pairs that are valid for this argument (e.g. None for an optional one)."""

    fn: Callable
    good: dict
    kinds: dict = field(default_factory=dict)
    bad: dict = field(default_factory=dict)
    names: dict = field(default_factory=dict)
    valid: tuple = ()


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _randn(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=_gen(seed), dtype=dtype)


def _rand(*shape, seed=0):
    return torch.rand(*shape, generator=_gen(seed))


X2 = _randn(5, 2)
IMG = _rand(1, 1, 16, 16)
IMG2 = _rand(1, 1, 16, 16, seed=1)


@functools.cache
def nets() -> dict:
    torch.manual_seed(0)
    return {
        "GradNetC": P.GradNetC(2, width=4, depth=2),
        "MGradNetC": P.MGradNetC(2, width=4, depth=2, strong_convexity=0.5),
        "GradNetM": P.GradNetM(2, width=4, n_modules=2),
        "MGradNetM": P.MGradNetM(2, width=4, n_modules=2, strong_convexity=0.5),
        "ICNN": P.ICNN(2, widths=(4,), strong_convexity=0.5),
        "MLPPotential": P.MLPPotential(2, widths=(4,)),
        "MLPField": P.MLPField(2, widths=(4,)),
    }


def _mse(model, batch):
    x, y = batch
    return (model(x) - y).square().mean()


OPTIONAL = {"None"}  # labels that an optional argument accepts
SIZES = [("int", 8), ("empty", ()), ("zero", (0,)), ("str", "ab"), ("None", None)]
NUMBER = [("nan", NAN), ("str", "a"), ("None", None), ("bool", True)]  # a number of any sign


def _none_ok(*args):
    return tuple((a, "None") for a in args)


# ------------------------------------------------------------------------------------------------ potentials
def _potential_entries() -> dict:
    table = {}
    ctor = {"dim": "count", "width": "count", "activation": "name"}
    table["gradflow.potentials.GradNetC"] = Entry(P.GradNetC, {"dim": 2, "width": 4, "depth": 2},
                                                  {**ctor, "depth": "count", "quadrature_panels": "count"})
    table["gradflow.potentials.MGradNetC"] = Entry(
        P.MGradNetC, {"dim": 2, "width": 4, "depth": 2},
        {**ctor, "depth": "count", "quadrature_panels": "count", "strong_convexity": "nonneg"})
    table["gradflow.potentials.GradNetM"] = Entry(P.GradNetM, {"dim": 2, "width": 4, "n_modules": 2},
                                                  {**ctor, "n_modules": "count"})
    table["gradflow.potentials.MGradNetM"] = Entry(P.MGradNetM, {"dim": 2, "width": 4, "n_modules": 2},
                                                   {**ctor, "n_modules": "count", "strong_convexity": "nonneg"})
    mlp = {"dim": "count", "activation": "name"}
    widths = {"widths": SIZES}  # None: the default (or width and depth)
    table["gradflow.potentials.ICNN"] = Entry(P.ICNN, {"dim": 2, "widths": (4,)},
                                              {"dim": "count", "strong_convexity": "nonneg"}, widths,
                                              valid=_none_ok("widths"))
    table["gradflow.potentials.MLPPotential"] = Entry(P.MLPPotential, {"dim": 2, "widths": (4,)}, mlp, widths,
                                                      valid=_none_ok("widths"))
    table["gradflow.potentials.MLPField"] = Entry(P.MLPField, {"dim": 2, "widths": (4,)}, mlp, widths,
                                                  valid=_none_ok("widths"))
    for name in nets():
        methods = ["forward", "jacobian"] + ([] if name == "MLPField" else ["energy"])
        for method in methods:
            table[f"gradflow.potentials.{name}.{method}"] = Entry(
                lambda x, _n=name, _m=method: getattr(nets()[_n], _m)(x), {"x": X2}, {"x": "tensor"})
        if (name.startswith("M") and name != "MLPPotential" and name != "MLPField") or name == "ICNN":
            table[f"gradflow.potentials.{name}.logdet_jacobian"] = Entry(
                lambda x, _n=name: nets()[_n].logdet_jacobian(x), {"x": X2}, {"x": "tensor"})
            table[f"gradflow.potentials.{name}.inverse"] = Entry(
                lambda y, tol=None, max_iter=50, _n=name: nets()[_n].inverse(y, tol=tol, max_iter=max_iter),
                {"y": X2}, {"y": "tensor", "tol": "positive", "max_iter": "count"}, valid=_none_ok("tol"))
            table[f"gradflow.potentials.{name}.conjugate"] = Entry(
                lambda y, _n=name: nets()[_n].conjugate(y), {"y": X2}, {"y": "tensor"})
    table["gradflow.potentials.FastGradientField"] = Entry(
        lambda model: P.FastGradientField(model, compile=False), {"model": nets()["MGradNetC"]}, {"model": "module"},
        bad={"model": [("mlp", nn.Linear(2, 2))]})
    table["gradflow.potentials.autograd_gradient"] = Entry(
        P.autograd_gradient, {"energy": lambda x: x.square().sum(-1), "x": X2}, {"energy": "callable"},
        bad={"x": [("list", X2.tolist()), ("integer", X2.long()), ("None", None)]})
    table["gradflow.potentials.autograd_jacobian"] = Entry(
        P.autograd_jacobian, {"field": lambda x: 2 * x, "x": X2}, {"field": "callable"},
        bad={"x": [("list", X2.tolist()), ("integer", X2.long()), ("None", None)]})
    table["gradflow.potentials.count_parameters"] = Entry(P.count_parameters, {"model": nets()["GradNetC"]},
                                                          {"model": "module"})
    table["gradflow.potentials.create_potential"] = Entry(
        P.create_potential, {"name": "mgradnet_c", "dim": 2, "n_params": 100},
        {"name": "name", "dim": "count", "n_params": "count", "n_hidden": "count"}, valid=_none_ok("n_params"))
    table["gradflow.potentials.identity_scale_init"] = Entry(
        P.identity_scale_init, {"net": P.GradNetC(2, width=4)}, {"net": "module"},
        bad={"net": [("icnn", P.ICNN(2, widths=(4,)))]})
    table["gradflow.potentials.list_potentials"] = Entry(P.list_potentials, {})
    table["gradflow.potentials.make_elementwise_activation"] = Entry(
        P.make_elementwise_activation, {"name": "tanh", "shape": (4,), "monotone": True}, {"name": "name"},
        bad={"shape": SIZES})
    table["gradflow.potentials.make_module_activation"] = Entry(
        P.make_module_activation, {"name": "softmax", "n_modules": 2, "width": 4, "monotone": True},
        {"name": "name", "n_modules": "count", "width": "count"})
    table["gradflow.potentials.positive"] = Entry(
        P.positive, {"raw": X2}, bad={"raw": [("list", X2.tolist()), ("integer", X2.long()), ("None", None)]})
    return table


# ------------------------------------------------------------------------------------------------ train
def _train_entries(tmp: str) -> dict:
    x = _randn(16, 3, dtype=torch.float64)
    good = {"model": nn.Linear(3, 1).double(), "loss": _mse, "data": (x, x[:, :1]), "steps": 1, "progress": False}
    return {
        "gradflow.train.fit": Entry(
            TR.fit, good,
            {"model": "module", "loss": "callable", "steps": "count", "lr": "positive", "seed": "seed",
             "weight_decay": "nonneg", "batch_size": "count", "grad_clip": "positive", "max_time": "positive",
             "eval_every": "count", "checkpoint_every": "count", "num_workers": "count0"},
            bad={"checkpoint_dir": [("int", 3)], "history_path": [("int", 3)], "optimizer": [("unknown", "nope")],
                 "data": [("str", "x"), ("None", None)]},
            valid=_none_ok("batch_size", "grad_clip", "max_time", "eval_every", "checkpoint_every")),
        "gradflow.train.load_checkpoint": Entry(TR.load_checkpoint, {"path": f"{tmp}/good.pt"}, {"path": "path"}),
        "gradflow.train.save_checkpoint": Entry(
            lambda path, weights: TR.save_checkpoint(path, weights=weights), {"path": f"{tmp}/saved.pt",
                                                                              "weights": torch.ones(2)},
            bad={"weights": [("object", object())]}, names={"weights": "weights'"}),
        "gradflow.train.resolve_device": Entry(TR.resolve_device, {"device": "cpu"},
                                               bad={"device": [("unknown", "tpu:9"), ("int", 3.5)]}),
        "gradflow.train.seed_everything": Entry(TR.seed_everything, {"seed": 0}, {"seed": "seed"}),
    }


# ------------------------------------------------------------------------------------------------ testing
class _Doubling(nn.Module):
    """A x = 2 x with its exact adjoint."""

    def forward(self, x):
        return 2.0 * x

    def adjoint(self, y):
        return 2.0 * y


def _testing_entries() -> dict:
    net = P.MGradNetM(2, width=4, n_modules=2, strong_convexity=0.5).double()
    x = _randn(4, 2, dtype=torch.float64)
    tol = {"rtol": "nonneg", "atol": "nonneg"}
    none_ok = _none_ok("rtol", "atol")
    table = {}
    for name, arg in (("assert_conservative", "field"), ("assert_monotone", "field"),
                      ("assert_energy_consistent", "potential"), ("assert_jacobian_consistent", "potential"),
                      ("assert_inverse", "potential")):
        point = "y" if name == "assert_inverse" else "x"
        table[f"gradflow.testing.{name}"] = Entry(
            getattr(TS, name), {arg: net, point: x}, {arg: "callable", point: "tensor", **tol}, valid=none_ok,
            bad={arg: [("no-inverse", P.GradNetC(2, width=4).double())]} if name == "assert_inverse" else {})
    table["gradflow.testing.assert_symplectic"] = Entry(
        TS.assert_symplectic, {"step": lambda z: z, "z": torch.ones(2, dtype=torch.float64)},
        {"step": "callable", "z": "tensor", **tol}, valid=none_ok)
    table["gradflow.testing.assert_lipschitz_bound"] = Entry(
        TS.assert_lipschitz_bound, {"field": net, "x": x}, {"field": "callable", "x": "tensor", "bound": "nonneg",
                                                           "iterations": "count", **tol},
        valid=_none_ok("rtol", "atol", "bound"), bad={"field": [("no-bound", lambda v: v)]})
    table["gradflow.testing.assert_adjoint"] = Entry(
        TS.assert_adjoint, {"operator": _Doubling(), "x": x}, {"operator": "callable", "x": "tensor", **tol},
        valid=none_ok, bad={"operator": [("no-adjoint", lambda v: v)], "y": [("wrong-shape", torch.zeros(3))]})
    table["gradflow.testing.tolerance"] = Entry(
        TS.tolerance, {"dtype": torch.float32}, tol, bad={"dtype": [("str", "float32"), ("None", None)]},
        valid=none_ok)
    return table


# ------------------------------------------------------------------------------------------------ vision
#: a block's forward runs once per block in every forward of a network: it checks shape and dtype (free) but not
#: NaN/inf (a device sync per block); those are checked once at the entry points (fit, a backbone's forward,
#: super_resolve, the metrics)
PER_STEP_FINITE = (("x", "nan"), ("x", "inf"))
#: batch_size None: the full data set per step, as in gradflow.train.fit
FULL_BATCH = (("batch_size", "None"),)


def _vision_entries() -> dict:
    torch.manual_seed(0)
    branch = V.ConvBranch(4)
    block = V.GradResidual(V.ConvBranch(4), mode="convex")
    x4 = _rand(1, 4, 6, 6)
    sr = V.create_backbone("sedsr", scale=2, n_blocks=1, channels=4)
    classifier = V.create_backbone("resnet20", num_classes=3, in_channels=1)
    segmenter = V.create_backbone("unet", num_classes=3, in_channels=1, width=4, depth=1)
    images = _rand(4, 1, 8, 8)
    labels = torch.tensor([0, 1, 2, 1])
    pixel_labels = torch.randint(0, 3, (4, 8, 8), generator=_gen())
    logits = _randn(4, 3)
    seg_logits = _randn(4, 3, 8, 8)
    image_pair = {"x": IMG, "reference": IMG2}
    nan_images = images.clone()
    nan_images[0, 0, 0, 0] = NAN
    pairs_bad = [("str", "x"), ("None", None), ("one-tensor", images), ("nan-images", (nan_images, labels)),
                 ("labels-of-another-length", (images, labels[:2]))]
    metric_kinds = {"x": "tensor", "reference": "tensor", "data_range": "positive", "crop": "count0",
                    "channel": "name"}
    backbone_kinds = {"in_channels": "count", "residual": "name", "normalize": "name"}
    residual_names = {"residual": "residual"}
    table = {
        "gradflow.vision.EDSR": Entry(
            V.EDSR, {"scale": 2, "n_blocks": 1, "channels": 4},
            {"n_blocks": "count", "channels": "count", **backbone_kinds},
            bad={"scale": [("5", 5), ("str", "2"), ("None", None)], "alpha_init": NUMBER},
            valid=_none_ok("normalize")),
        "gradflow.vision.ResNet": Entry(
            V.ResNet, {"stages": ((4, 1),), "num_classes": 3, "in_channels": 1},
            {"num_classes": "count", **backbone_kinds}, bad={"stages": [("int", 3), ("None", None)]},
            valid=_none_ok("normalize"), names=residual_names),
        "gradflow.vision.UNet": Entry(
            V.UNet, {"num_classes": 3, "in_channels": 1, "width": 4, "depth": 1},
            {"num_classes": "count", "width": "count", "depth": "count", "blocks": "count", **backbone_kinds},
            # depth 0: one level, no down/up-sampling (a plain residual CNN at full resolution)
            valid=(*_none_ok("normalize"), ("depth", "zero"))),
        "gradflow.vision.ConvBranch": Entry(
            V.ConvBranch, {"channels": 4}, {"channels": "count", "kernel_size": "count", "hidden_channels": "count",
                                            "activation": "name"},
            bad={"scale": [("nan", NAN), ("inf", INF), ("zero", 0.0), ("str", "a"), ("None", None)]},
            valid=_none_ok("hidden_channels")),
        "gradflow.vision.ConvBranch.forward": Entry(lambda x: branch(x), {"x": x4}, {"x": "tensor"},
                                                    bad={"x": [("channels", _rand(1, 3, 6, 6))]},
                                                    valid=PER_STEP_FINITE),
        "gradflow.vision.ConvGradNet": Entry(
            V.ConvGradNet, {"channels": 4}, {"channels": "count", "hidden_channels": "count", "kernel_size": "count",
                                             "activation": "name"}, valid=_none_ok("hidden_channels")),
        "gradflow.vision.ConvGradNet.forward": Entry(lambda x: V.ConvGradNet(4)(x), {"x": x4}, {"x": "tensor"},
                                                     bad={"x": [("channels", _rand(1, 3, 6, 6))]},
                                                     valid=PER_STEP_FINITE),
        "gradflow.vision.GradNetResidual": Entry(
            V.GradNetResidual, {"branch": V.ConvBranch(4), "potential": V.ConvGradNet(4)},
            {"branch": "module", "potential": "module"}, bad={"alpha_init": NUMBER}),
        "gradflow.vision.GradNetResidual.forward": Entry(
            lambda x: V.GradNetResidual(V.ConvBranch(4), V.ConvGradNet(4))(x), {"x": x4}, {"x": "tensor"},
            bad={"x": [("channels", _rand(1, 3, 6, 6)), ("float64", x4.double())]}, valid=PER_STEP_FINITE),
        "gradflow.vision.GradResidual": Entry(
            V.GradResidual, {"branch": V.ConvBranch(4)}, {"branch": "module", "mode": "name", "normalize": "name"},
            bad={"alpha_init": NUMBER, "projection": [("str", "x")]}, valid=_none_ok("normalize")),
        "gradflow.vision.GradResidual.forward": Entry(
            lambda x: block(x), {"x": x4}, {"x": "tensor"},
            bad={"x": [("channels", _rand(1, 3, 6, 6)), ("float64", x4.double())]}, valid=PER_STEP_FINITE),
        "gradflow.vision.GradResidual.gradient_term": Entry(
            lambda x: block.gradient_term(x), {"x": x4}, {"x": "tensor"},
            bad={"x": [("channels", _rand(1, 3, 6, 6)), ("float64", x4.double())]}, valid=PER_STEP_FINITE),
        "gradflow.vision.PixelShuffleUpsampler": Entry(
            V.PixelShuffleUpsampler, {"channels": 4, "scale": 2}, {"channels": "count"},
            bad={"scale": [("5", 5), ("str", "2"), ("None", None)]}),
        "gradflow.vision.EDSR.forward": Entry(lambda x: sr(x), {"x": _rand(1, 3, 6, 6)}, {"x": "tensor"}),
        "gradflow.vision.ResNet.forward": Entry(lambda x: classifier(x), {"x": images}, {"x": "tensor"}),
        "gradflow.vision.UNet.forward": Entry(lambda x: segmenter(x), {"x": images}, {"x": "tensor"}),
        "gradflow.vision.accuracy": Entry(
            V.accuracy, {"logits": logits, "labels": labels}, {"logits": "tensor"},
            bad={"labels": [("float", labels.float()), ("out-of-range", labels + 5), ("shape", labels[:2]),
                            ("None", None)]}),
        "gradflow.vision.mean_iou": Entry(
            V.mean_iou, {"logits": seg_logits, "labels": pixel_labels}, {"logits": "tensor", "num_classes": "count"},
            bad={"labels": [("float", pixel_labels.float()), ("out-of-range", pixel_labels + 5), ("None", None)]},
            valid=_none_ok("num_classes")),
        "gradflow.vision.create_backbone": Entry(V.create_backbone, {"name": "sedsr", "n_blocks": 1, "channels": 4},
                                                 {"name": "name"}),
        "gradflow.vision.list_backbones": Entry(V.list_backbones, {"task": "sr"}, {"task": "name"},
                                                valid=_none_ok("task")),
        "gradflow.vision.normalize_field": Entry(V.normalize_field, {"g": x4, "normalize": "sample"},
                                                 {"g": "tensor", "normalize": "name", "eps": "positive"},
                                                 valid=_none_ok("normalize")),
        "gradflow.vision.psnr": Entry(V.psnr, image_pair, metric_kinds),
        "gradflow.vision.auto_gate_lr": Entry(V.auto_gate_lr, {"model": block, "lr": 1e-3},
                                              {"model": "module", "lr": "positive"}),
        "gradflow.vision.gate_parameters": Entry(V.gate_parameters, {"model": block}, {"model": "module"}),
        "gradflow.vision.bicubic_upsample": Entry(V.bicubic_upsample, {"x": x4, "scale": 2},
                                                  {"x": "tensor", "scale": "count"}),
        "gradflow.vision.warmup_cosine": Entry(V.warmup_cosine, {"total_steps": 10, "warmup_steps": 2},
                                               {"total_steps": "count", "warmup_steps": "count"},
                                               valid=(("warmup_steps", "zero"),)),
        "gradflow.vision.linear_classifier_baseline": Entry(
            V.linear_classifier_baseline, {"train": (images, labels), "test": (images, labels)},
            {"max_iter": "count"}, bad={"train": pairs_bad, "test": pairs_bad}),
        "gradflow.vision.threshold_segmenter_baseline": Entry(
            V.threshold_segmenter_baseline,
            {"train": (images, pixel_labels), "test": (images, pixel_labels), "num_classes": 3},
            {"num_classes": "count"}, bad={"train": pairs_bad, "test": pairs_bad, "threshold": NUMBER}),
        "gradflow.vision.ssim": Entry(V.ssim, image_pair, {**metric_kinds, "window": "count", "sigma": "positive"},
                                      valid=_none_ok("sigma")),
        "gradflow.vision.residual_block": Entry(
            V.residual_block, {"branch": V.ConvBranch(4), "channels": 4, "residual": "convex"},
            {"branch": "module", "channels": "count", "residual": "name"}),
        "gradflow.vision.rgb_to_y": Entry(V.rgb_to_y, {"image": _rand(1, 3, 4, 4)}, {"image": "tensor"}),
        "gradflow.vision.super_resolve": Entry(
            V.super_resolve, {"model": sr, "image": _rand(3, 6, 6)},
            {"model": "module", "image": "tensor", "tile": "count", "overlap": "count0"},
            bad={"image": [("channels", _rand(1, 6, 6)), ("0..255", _rand(3, 6, 6) * 255)],
                 "model": [("classifier", classifier)]},
            valid=_none_ok("tile", "overlap")),
        "gradflow.vision.evaluate_classifier": Entry(
            V.evaluate_classifier, {"model": classifier, "data": (images, labels)},
            {"model": "module", "batch_size": "count"},
            bad={"data": [("float-labels", (images, labels.float())), ("str", "x")]}),
        "gradflow.vision.evaluate_segmenter": Entry(
            V.evaluate_segmenter, {"model": segmenter, "data": (images, pixel_labels)},
            {"model": "module", "batch_size": "count"},
            bad={"data": [("float-labels", (images, pixel_labels.float())), ("str", "x")]}),
        "gradflow.vision.evaluate_sr": Entry(
            V.evaluate_sr, {"model": sr, "pairs": [(_rand(3, 8, 8), _rand(3, 16, 16))], "scale": 2},
            {"model": "module"}, bad={"pairs": [("empty", []), ("str", "x")], "scale": [("str", "2"), ("zero", 0)]},
            valid=_none_ok("model")),
        "gradflow.vision.train_classifier": Entry(
            V.train_classifier, {"model": classifier, "data": (images, labels), "epochs": 1, "progress": False},
            {"model": "module", "epochs": "count", "batch_size": "count", "lr": "positive"},
            bad={"data": [("float-labels", (images, labels.float())), ("out-of-range", (images, labels + 5)),
                          ("channels", (_rand(4, 3, 8, 8), labels))]}, valid=FULL_BATCH),
        "gradflow.vision.train_segmenter": Entry(
            V.train_segmenter, {"model": segmenter, "data": (images, pixel_labels), "epochs": 1, "progress": False},
            {"model": "module", "epochs": "count", "batch_size": "count", "lr": "positive"},
            bad={"data": [("float-labels", (images, pixel_labels.float())), ("shape", (images, labels))]},
            valid=FULL_BATCH),
        "gradflow.vision.train_sr": Entry(
            V.train_sr, {"model": sr, "data": (_rand(4, 3, 6, 6), _rand(4, 3, 12, 12)), "steps": 1,
                         "progress": False},
            {"model": "module", "steps": "count", "batch_size": "count", "lr": "positive"}, valid=FULL_BATCH),
    }
    return table


# ------------------------------------------------------------------------------------------------ dynamics
def _dynamics_entries() -> dict:
    system = D.MassSpring()
    torch.manual_seed(0)
    model = D.HamiltonianNet(P.GradNetC(2, width=4, depth=1)).double()
    z0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    t = torch.linspace(0, 0.2, 3, dtype=torch.float64)
    train, _ = system.dataset(n_trajectories=2, t_span=(0.0, 0.5), n_points=4, seed=0, dtype=torch.float64)
    physical = {"mass": "positive", "stiffness": "positive"}
    # valid: t given as a sequence of numbers (converted with torch.as_tensor), z0 of shape (2n,) (one state)
    sequence_t = (("t", "list"), ("z0", "wrong-shape"))
    free_rotor = (("gravity", "zero"),)  # g = 0: a free rotor, H = kinetic energy only
    table = {
        "gradflow.dynamics.MassSpring": Entry(D.MassSpring, {}, physical),
        "gradflow.dynamics.DampedMassSpring": Entry(D.DampedMassSpring, {}, {**physical, "damping": "nonneg"}),
        "gradflow.dynamics.Pendulum": Entry(D.Pendulum, {}, {"mass": "positive", "length": "positive",
                                                             "gravity": "positive"}, valid=free_rotor),
        "gradflow.dynamics.DoublePendulum": Entry(D.DoublePendulum, {}, {"gravity": "positive"},
                                                  bad={"masses": SIZES[:4], "lengths": [("negative", (1.0, -1.0))]},
                                                  valid=free_rotor),
        "gradflow.dynamics.HenonHeiles": Entry(D.HenonHeiles, {}, bad={"coupling": NUMBER}),
        "gradflow.dynamics.NBody": Entry(D.NBody, {"n_bodies": 3}, {"n_bodies": "count", "softening": "nonneg"}),
        "gradflow.dynamics.TwoBody": Entry(D.TwoBody, {}),
        "gradflow.dynamics.ThreeBody": Entry(D.ThreeBody, {}),
        "gradflow.dynamics.HamiltonianSystem": Entry(
            D.HamiltonianSystem, {"hamiltonian": lambda z: z.square().sum(-1), "dim": 2},
            {"hamiltonian": "callable", "dim": "count"}),
        "gradflow.dynamics.PortHamiltonianSystem": Entry(
            D.PortHamiltonianSystem, {"hamiltonian": lambda z: z.square().sum(-1), "dim": 2,
                                      "dissipation": torch.eye(2, dtype=torch.float64)},
            {"hamiltonian": "callable", "dim": "count", "dissipation": "tensor"}),
        "gradflow.dynamics.MassSpring.simulate": Entry(
            lambda z0, t: system.simulate(z0, t), {"z0": z0, "t": t}, {"z0": "tensor", "t": "tensor"},
            valid=sequence_t),
        "gradflow.dynamics.MassSpring.dataset": Entry(
            lambda **kw: system.dataset(**kw),
            {"n_trajectories": 2, "t_span": (0.0, 0.5), "n_points": 4, "dtype": torch.float64},
            {"n_trajectories": "count", "n_points": "count", "seed": "seed", "dtype": "dtype",
             "noise_std": "nonneg", "test_fraction": "fraction"},
            valid=_none_ok("n_trajectories", "n_points", "noise_std", "test_fraction")),  # None: the protocol's
        "gradflow.dynamics.MassSpring.sample_initial_states": Entry(
            lambda n: system.sample_initial_states(n, _gen()), {"n": 2}, {"n": "count"}),
        "gradflow.dynamics.HamiltonianNet": Entry(D.HamiltonianNet, {"potential": P.GradNetC(2, width=4)},
                                                  {"potential": "module"}),
        # z (2n,) is one state; a per-step forward: finiteness is checked by the potential (naming its x) and at
        # the entry points (odeint's z0, fit, metrics), not by a second sync here
        "gradflow.dynamics.HamiltonianNet.forward": Entry(lambda z: model(z), {"z": z0}, {"z": "tensor"},
                                                          valid=(("z", "wrong-shape"), ("z", "nan"), ("z", "inf"))),
        "gradflow.dynamics.SeparableHamiltonianNet": Entry(
            D.SeparableHamiltonianNet, {"kinetic": P.GradNetC(1, width=4), "potential": P.GradNetC(1, width=4)},
            {"kinetic": "module", "potential": "module"}, valid=_none_ok("kinetic")),  # None: the default T(p)
        "gradflow.dynamics.PortHamiltonianNet": Entry(
            D.PortHamiltonianNet, {"potential": P.GradNetC(2, width=4)},
            {"potential": "module", "n_inputs": "count0", "dissipation": "name", "gain_width": "count"}),
        "gradflow.dynamics.NeuralODE": Entry(D.NeuralODE, {"field": P.MLPField(2, widths=(4,))}, {"field": "module"}),
        "gradflow.dynamics.TrajectoryLoss": Entry(D.TrajectoryLoss, {"t": t}, {"t": "tensor", "method": "name"},
                                                  valid=sequence_t[:1]),
        "gradflow.dynamics.create_dynamics_model": Entry(
            D.create_dynamics_model, {"name": "gradnet_c", "dim": 2, "n_params": 100},
            {"name": "name", "dim": "count", "n_params": "count"}),
        "gradflow.dynamics.create_system": Entry(D.create_system, {"name": "mass_spring"}, {"name": "name"}),
        "gradflow.dynamics.derivative_loss": Entry(D.derivative_loss, {"model": model, "batch": train.pairs()},
                                                   {"model": "module"}, bad={"batch": [("str", "x"), ("None", None)]}),
        "gradflow.dynamics.derivative_mse": Entry(D.derivative_mse, {"model": model, "data": train},
                                                  {"model": "module"}, bad={"data": [("str", "x"), ("None", None)]}),
        "gradflow.dynamics.energy_drift": Entry(
            D.energy_drift, {"system": system, "trajectory": system.simulate(z0, t)}, {"trajectory": "tensor"},
            bad={"system": [("str", "x")]}),
        "gradflow.dynamics.error_db": Entry(D.error_db, {"mse": 0.1}, {"mse": "nonneg"}),
        "gradflow.dynamics.fit_derivatives": Entry(
            D.fit_derivatives, {"model": model, "train": train, "steps": 1, "progress": False},
            {"model": "module", "steps": "count", "lr": "positive"}, bad={"train": [("str", "x"), ("None", None)]}),
        "gradflow.dynamics.fit_trajectories": Entry(
            D.fit_trajectories, {"model": model, "train": train, "steps": 1, "horizon": 1, "method": "rk4",
                                 "progress": False},
            {"model": "module", "steps": "count", "lr": "positive", "horizon": "count", "method": "name",
             "batch_size": "count"}, bad={"train": [("str", "x"), ("None", None)]}, valid=_none_ok("batch_size")),
        "gradflow.dynamics.list_dynamics_models": Entry(D.list_dynamics_models, {}),
        "gradflow.dynamics.list_methods": Entry(D.list_methods, {}),
        "gradflow.dynamics.list_systems": Entry(D.list_systems, {}),
        "gradflow.dynamics.odeint": Entry(
            D.odeint, {"field": lambda z: -z, "z0": z0, "t": t, "method": "rk4"},
            {"field": "callable", "z0": "tensor", "t": "tensor", "method": "name", "rtol": "positive",
             "atol": "positive", "step_size": "positive"},
            # rtol = 0 (or atol = 0) is pure absolute (relative) error control; both 0 is refused
            valid=(*_none_ok("step_size"), *sequence_t, ("rtol", "zero"), ("atol", "zero"))),
        "gradflow.dynamics.rollout_metrics": Entry(
            D.rollout_metrics, {"model": model, "system": system, "z0": z0, "t": t, "method": "rk4"},
            {"model": "module", "z0": "tensor", "t": "tensor", "method": "name"}, bad={"system": [("str", "x")]},
            valid=sequence_t),
        "gradflow.dynamics.symplectic_form": Entry(D.symplectic_form, {"dim": 2}, {"dim": "count", "dtype": "dtype"},
                                                   bad={"dim": [("odd", 3)]}),
        "gradflow.dynamics.trajectory_windows": Entry(D.trajectory_windows, {"data": train, "horizon": 1},
                                                      {"horizon": "count"}, bad={"data": [("str", "x")]}),
    }
    for name in ("FPUTChain", "PendulumChain", "TodaLattice"):
        if hasattr(D, name):
            first = {"FPUTChain": "n_particles", "PendulumChain": "n_pendulums", "TodaLattice": "n_particles"}[name]
            table[f"gradflow.dynamics.{name}"] = Entry(getattr(D, name), {first: 4}, {first: "count"})
    return table


# ------------------------------------------------------------------------------------------------ transport
def _inverse_arg(method: str) -> dict:
    """A map's ``inverse`` takes its points as ``y`` (a point of the target)."""
    return {"x": "y"} if method == "inverse" else {}


def _transport_entries(tmp: str) -> dict:
    torch.manual_seed(0)
    x, y = _randn(64, 2), _randn(64, 2, seed=1) + 1.0
    eye, zero = torch.eye(2), torch.zeros(2)
    affine = T.AffineMap(eye, zero, zero + 1)
    ot = T.fit_ot_map(x, y, steps=1, progress=False, method="plan")
    ot.save(f"{tmp}/map.pt")
    # the training solves' tolerance (None: the dtype's strict one) and CG's forcing term in [0, 1)
    solve_kinds = {"tol": "positive", "cg_rtol": "fraction"}
    rtol_bad = {"cg_rtol": [("one", 1.0)]}
    solve_valid = (*_none_ok("tol"), ("cg_rtol", "zero"))
    table = {
        "gradflow.transport.AffineMap": Entry(T.AffineMap, {"matrix": eye, "mean_in": zero, "mean_out": zero},
                                              {"matrix": "tensor", "mean_in": "tensor", "mean_out": "tensor"}),
        "gradflow.transport.Amortized": Entry(T.Amortized, {}, {"max_iter": "count", "loss": "name",
                                                                "fine_tune": "name", "cg_iters": "count",
                                                                **solve_kinds},
                                              bad=rtol_bad, valid=solve_valid),
        "gradflow.transport.BrenierNet": Entry(T.BrenierNet, {"dim": 2}, {"dim": "count", "gate": "nonneg",
                                                                          "strong_convexity": "nonneg"},
                                               bad={"net": [("str", "x")]}),
        "gradflow.transport.DenseNewton": Entry(T.DenseNewton, {}, {"max_iter": "count", "tol": "positive"},
                                                valid=_none_ok("tol")),
        "gradflow.transport.NewtonCG": Entry(T.NewtonCG, {}, {"max_iter": "count", "cg_iters": "count", **solve_kinds},
                                             bad=rtol_bad, valid=solve_valid),
        "gradflow.transport.MongeAmpere": Entry(T.MongeAmpere, {}),
        "gradflow.transport.PlanRegression": Entry(T.PlanRegression, {}, {"plan": "name", "reg": "positive"}),
        "gradflow.transport.SemiDual": Entry(T.SemiDual, {}, {"conjugate": "name"}),
        "gradflow.transport.OTMap": Entry(T.OTMap, {"model": P.MGradNetM(2, width=4)}, {"model": "module"}),
        "gradflow.transport.bures_map": Entry(T.bures_map, {"x": x, "y": y}, {"x": "tensor", "y": "tensor"}),
        "gradflow.transport.cosine_similarity": Entry(
            T.cosine_similarity, {"T": affine, "T_true": affine, "x": x}, {"T": "callable", "T_true": "callable",
                                                                           "x": "tensor"}),
        "gradflow.transport.default_net": Entry(T.default_net, {"dim": 2}, {"dim": "count", "kind": "name",
                                                                            "n_modules": "count"}),
        "gradflow.transport.fit_ot_map": Entry(
            T.fit_ot_map, {"source": x, "target": y, "steps": 2, "progress": False, "method": "plan"},
            {"source": "tensor", "target": "tensor", "steps": "count", "lr": "positive", "seed": "seed",
             "dtype": "dtype", "method": "name", "batch_size": "count", "val_fraction": "fraction"},
            # val_fraction 0: no held-out validation
            valid=(*_none_ok("lr", "batch_size", "val_fraction", "dtype"), ("val_fraction", "zero"))),
        "gradflow.transport.gaussian_map": Entry(
            T.gaussian_map, {"mean_p": zero, "cov_p": eye, "mean_q": zero, "cov_q": 2 * eye},
            {"mean_p": "tensor", "cov_p": "tensor", "mean_q": "tensor", "cov_q": "tensor"},
            bad={"cov_p": [("indefinite", -eye)]}),
        "gradflow.transport.l2_uvp": Entry(T.l2_uvp, {"T": affine, "T_true": affine, "x": x, "target_var": 1.0},
                                           {"T": "callable", "T_true": "callable", "x": "tensor",
                                            "target_var": "positive"}),
        "gradflow.transport.w2": Entry(T.w2, {"x": x, "y": y}, {"x": "tensor", "y": "tensor", "reg": "positive",
                                                                "max_exact": "count", "iters": "count"},
                                   valid=(("max_exact", "zero"),)),  # max_exact 0: entropic unless exact=True
    }
    for method in ("__call__", "potential", "inverse", "transport_cost"):
        table[f"gradflow.transport.OTMap.{method}"] = Entry(lambda x, _m=method: getattr(ot, _m)(x), {"x": x[:4]},
                                                            {"x": "tensor"}, names=_inverse_arg(method))
    table["gradflow.transport.OTMap.interpolate"] = Entry(lambda x, t: ot.interpolate(x, t), {"x": x[:4], "t": 0.5},
                                                          {"x": "tensor", "t": "fraction"},
                                                          valid=(("t", "zero"),))  # t = 0: the identity (P itself)
    table["gradflow.transport.OTMap.load"] = Entry(T.OTMap.load, {"path": f"{tmp}/map.pt"}, {"path": "path"},
                                                   bad={"model": [("str", "x")]})
    for method in ("__call__", "potential", "inverse"):
        table[f"gradflow.transport.AffineMap.{method}"] = Entry(lambda x, _m=method: getattr(affine, _m)(x),
                                                                {"x": x[:4]}, {"x": "tensor"},
                                                                names=_inverse_arg(method))
    return table


# ------------------------------------------------------------------------------------------------ inverse
def _inverse_entries(tmp: str) -> dict:
    torch.manual_seed(0)
    mask = (_rand(1, 1, 16, 16) > 0.3).float()
    blur = I.Blur(I.gaussian_kernel(1.0, size=5))
    tv, denoising = I.TotalVariation(), I.Denoising()
    prior = I.GradNetPrior(n_filters=4, kernel_size=3)
    I.write_image(f"{tmp}/image.png", IMG)
    operator_kinds = {"operator": "module", "prior": "module"}
    table = {
        "gradflow.inverse.Blur": Entry(I.Blur, {"kernel": I.gaussian_kernel(1.0, size=5)}, {"kernel": "tensor"}),
        "gradflow.inverse.CompressedSensing": Entry(I.CompressedSensing, {"m": 10, "shape": (1, 4, 4)},
                                                    {"m": "count", "seed": "seed"}, bad={"shape": SIZES[:4]}),
        "gradflow.inverse.Denoising": Entry(I.Denoising, {}),
        "gradflow.inverse.Downsampling": Entry(I.Downsampling, {"factor": 2}, {"factor": "count"}),
        # a 0/1 integer mask is a mask (used as float; values outside [0, 1] are still refused)
        "gradflow.inverse.Inpainting": Entry(I.Inpainting, {"mask": mask[0]}, {"mask": "tensor"},
                                             bad={"mask": [("outside-0-1", mask[0] * 2)]},
                                             valid=(("mask", "integer"),)),
        "gradflow.inverse.MRI": Entry(I.MRI, {"mask": mask[0, 0]}, {"mask": "tensor"},
                                      valid=(("mask", "integer"),)),
        "gradflow.inverse.GradNetPrior": Entry(
            I.GradNetPrior, {"n_filters": 4, "kernel_size": 3},
            {"channels": "count", "n_filters": "count", "kernel_size": "count", "depth": "count",
             "activation": "name", "boundary": "name"}),
        "gradflow.inverse.WeaklyConvexPrior": Entry(
            I.WeaklyConvexPrior, {"n_filters": 4, "kernel_size": 3},
            {"channels": "count", "n_filters": "count", "kernel_size": "count", "activation": "name",
             "boundary": "name", "rho_max": "positive", "frequency_grid": "count"}),
        "gradflow.inverse.certified_convex": Entry(
            I.certified_convex, {"operator": denoising, "prior": prior, "lam": 0.5},
            {**operator_kinds, "lam": "nonneg"}),
        "gradflow.inverse.GradStepPrior": Entry(
            I.GradStepPrior, {"n_filters": 4, "kernel_size": 3},
            {"channels": "count", "n_filters": "count", "kernel_size": "count", "depth": "count",
             "activation": "name", "boundary": "name"}),
        "gradflow.inverse.Tikhonov": Entry(I.Tikhonov, {}, {"kind": "name"}),
        "gradflow.inverse.TotalVariation": Entry(I.TotalVariation, {}, {"eps": "nonneg"}),
        "gradflow.inverse.Blur.forward": Entry(lambda x: blur(x), {"x": IMG}, {"x": "tensor"}),
        "gradflow.inverse.Blur.adjoint": Entry(lambda y: blur.adjoint(y), {"y": IMG}, {"y": "tensor"}),
        "gradflow.inverse.Denoising.data_prox": Entry(
            lambda z, y, tau: denoising.data_prox(z, y, tau), {"z": IMG, "y": IMG2, "tau": 0.5},
            {"z": "tensor", "y": "tensor", "tau": "positive"}),
        # tau = 0: prox_{0 R} is the identity
        "gradflow.inverse.TotalVariation.prox": Entry(lambda v, tau: tv.prox(v, tau), {"v": IMG, "tau": 0.1},
                                                      {"v": "tensor", "tau": "positive"}, valid=(("tau", "zero"),)),
        "gradflow.inverse.GradNetPrior.cost": Entry(lambda x: prior.cost(x), {"x": IMG}, {"x": "tensor"}),
        "gradflow.inverse.GradNetPrior.grad": Entry(lambda x: prior.grad(x), {"x": IMG}, {"x": "tensor"}),
        "gradflow.inverse.gaussian_kernel": Entry(I.gaussian_kernel, {"sigma": 1.0},
                                                  {"sigma": "positive", "size": "count", "dtype": "dtype"},
                                                  valid=_none_ok("size")),
        "gradflow.inverse.motion_kernel": Entry(I.motion_kernel, {"length": 3.0},
                                                {"length": "positive", "size": "count", "dtype": "dtype"},
                                                bad={"angle": NUMBER}, valid=_none_ok("size")),
        "gradflow.inverse.list_images": Entry(I.list_images, {}),
        "gradflow.inverse.list_pretrained": Entry(I.list_pretrained, {}),
        "gradflow.inverse.load_image": Entry(I.load_image, {"name": "camera", "size": 16},
                                             {"name": "name", "size": "count"}, valid=_none_ok("size")),
        "gradflow.inverse.objective": Entry(
            I.objective, {"x": IMG, "y": IMG2, "operator": denoising, "prior": tv, "lam": 0.1},
            {"x": "tensor", "y": "tensor", **operator_kinds, "lam": "nonneg"}),
        "gradflow.inverse.patch_dataset": Entry(
            I.patch_dataset, {"names": ("astronaut",), "patch_size": 8, "n_patches": 2},
            {"patch_size": "count", "n_patches": "count", "seed": "seed"},
            bad={"names": [("unknown", ("no-such-name",)), ("empty", ()), ("int", 3)]}),
        "gradflow.inverse.psnr": Entry(I.psnr, {"x": IMG, "reference": IMG2},
                                       {"x": "tensor", "reference": "tensor", "data_range": "positive"}),
        "gradflow.inverse.ssim": Entry(I.ssim, {"x": IMG, "reference": IMG2},
                                       {"x": "tensor", "reference": "tensor", "data_range": "positive"}),
        "gradflow.inverse.read_image": Entry(I.read_image, {"path": f"{tmp}/image.png"}, {"path": "path"}),
        "gradflow.inverse.write_image": Entry(I.write_image, {"path": f"{tmp}/out.png", "x": IMG}, {"x": "tensor"},
                                              bad={"path": [("int", 3)]}),
        "gradflow.inverse.solve": Entry(
            I.solve, {"y": IMG, "operator": denoising, "prior": tv, "lam": 0.1, "max_iter": 3, "x0": IMG2,
                      "method": "fista"},
            {"y": "tensor", **operator_kinds, "lam": "positive", "method": "name", "max_iter": "count",
             "tol": "positive", "x0": "tensor"},
            # x0 None: start at A^T y; lam 0: the unregularised least-squares problem (a baseline)
            valid=(*_none_ok("x0"), ("x0", "none"), ("lam", "zero"))),
        "gradflow.inverse.select_lam": Entry(
            I.select_lam, {"y": IMG, "operator": denoising, "prior": tv, "x_true": IMG, "lams": [0.1], "max_iter": 2,
                           "method": "fista"},
            {"y": "tensor", **operator_kinds, "x_true": "tensor", "method": "name"},
            bad={"lams": [("empty", []), ("negative", [-1.0]), ("nan", [NAN])]}, valid=_none_ok("x_true")),
        "gradflow.inverse.train_prior": Entry(
            I.train_prior, {"prior": I.GradNetPrior(n_filters=4, kernel_size=3), "images": _rand(4, 1, 8, 8),
                            "steps": 1, "batch_size": 2, "unrolled_steps": 1, "device": "cpu"},
            {"prior": "module", "images": "tensor", "sigma": "positive", "objective": "name",
             "unrolled_steps": "count", "steps": "count", "batch_size": "count", "lr": "positive", "seed": "seed"},
            valid=FULL_BATCH),
    }
    return table


@functools.cache
def table(tmp: str) -> dict:
    """The full table; files the entries read or write live in the directory ``tmp``."""
    TR.save_checkpoint(f"{tmp}/good.pt", weights=torch.ones(2))
    return {**_potential_entries(), **_train_entries(tmp), **_testing_entries(), **_vision_entries(),
            **_dynamics_entries(), **_transport_entries(tmp), **_inverse_entries(tmp)}


_NEW_DYNAMICS = "added to dynamics while this suite was written; to be tabled by its owner"

#: public names that take no bad input worth tabling, with the reason
EXCLUDED = {
    "gradflow.__version__": "a string",
    "gradflow.CheckpointError": "an error class",
    "gradflow.ConvergenceError": "an error class",
    "gradflow.TrainingError": "an error class",
    "gradflow.potentials.ConvergenceError": "an error class",
    "gradflow.train.CheckpointError": "an error class",
    "gradflow.train.TrainingError": "an error class",
    "gradflow.potentials.ELEMENTWISE_ACTIVATIONS": "a constant",
    "gradflow.potentials.MODULE_ACTIVATIONS": "a constant",
    "gradflow.potentials.MONOTONE_ACTIVATIONS": "a constant",
    "gradflow.potentials.Potential": "an abstract base; every concrete potential is in the table",
    "gradflow.potentials.MonotonePotential": "an abstract base; every concrete monotone potential is in the table",
    "gradflow.train.FitResult": "a result record that fit returns",
    "gradflow.dynamics.SPLITTING_METHODS": "a constant",
    "gradflow.dynamics.SYSTEMS": "a constant",
    "gradflow.dynamics.TORCHDIFFEQ_METHODS": "a constant",
    "gradflow.dynamics.SplittingTableau": "a coefficient table (data) consumed by odeint",
    "gradflow.dynamics.TrajectoryData": "a record that HamiltonianSystem.dataset returns",
    "gradflow.transport.CONJUGATES": "a constant",
    "gradflow.transport.DEFAULT_MODULES": "a constant",
    "gradflow.transport.METHODS": "a constant",
    "gradflow.transport.Conjugate": "an abstract base; Amortized, NewtonCG and DenseNewton are in the table",
    "gradflow.transport.TransportMethod": "an abstract base; the method objects are in the table",
    "gradflow.transport.benchmarks": "a module of benchmark families, tested in tests/transport",
    "gradflow.inverse.METHODS": "a constant",
    "gradflow.inverse.TEST_IMAGES": "a constant",
    "gradflow.inverse.TRAIN_IMAGES": "a constant",
    "gradflow.inverse.VALIDATION_IMAGES": "a constant",
    "gradflow.inverse.LinearOperator": "an abstract base; the operators are in the table",
    "gradflow.inverse.Prior": "an abstract base; the priors are in the table",
    "gradflow.inverse.LamSelection": "a result record that select_lam returns",
    "gradflow.inverse.SolveResult": "a result record that solve returns",
    "gradflow.vision.BRANCH_ACTIVATIONS": "a constant",
    "gradflow.vision.NORMALIZATIONS": "a constant",
    "gradflow.vision.RESIDUALS": "a constant",
    "gradflow.vision.RESIDUAL_MODES": "a constant",
    "gradflow.vision.SR_SCALES": "a constant",
    "gradflow.testing.TOLERANCES": "a constant",
    "gradflow.dynamics.DERIVATIVE_SCHEMES": _NEW_DYNAMICS,
    "gradflow.dynamics.NPZ_KEYS": _NEW_DYNAMICS,
    "gradflow.dynamics.estimate_derivatives": _NEW_DYNAMICS,
    "gradflow.dynamics.load_trajectories": _NEW_DYNAMICS,
    "gradflow.dynamics.plot_rollouts": _NEW_DYNAMICS,
    "gradflow.dynamics.rollout_error": _NEW_DYNAMICS,
    "gradflow.dynamics.split_trajectories": _NEW_DYNAMICS,
    "gradflow.dynamics.trajectory_data": _NEW_DYNAMICS,
}

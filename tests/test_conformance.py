"""Conformance: every public callable of gradflow refuses bad input with a gradflow error naming the argument
(issue 14), and keeps working on valid but unusual input.

The table (tests/conformance/table.py) lists every public callable, a call with good arguments and the kind
of each argument; tests/conformance/kinds.py lists the bad values of each kind. A name in a package's
``__all__`` that is neither in the table nor in its exclusion list fails :func:`test_every_public_name_is_covered`,
so a new public function joins the table before it ships. Cases that fail in packages being fixed elsewhere are
listed in tests/conformance/known_failures.py (strict xfail: they fail the suite once fixed, to be removed).
"""

from __future__ import annotations

import importlib
import re
import tempfile
import warnings

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import gradflow
from gradflow import CheckpointError, ConvergenceError, TrainingError
from tests.conformance.kinds import KINDS
from tests.conformance.known_failures import KNOWN_FAILURES
from tests.conformance.table import EXCLUDED, PACKAGES, nets, table

#: what a user-caused failure may raise: ValueError (CheckpointError is one), a diverged run, a failed solve
GRADFLOW_ERRORS = (ValueError, TrainingError, ConvergenceError)
#: a path that cannot be read may also be reported as an OSError (FileNotFoundError: the file is missing)
PATH_ERRORS = (*GRADFLOW_ERRORS, OSError)

_TMP = tempfile.mkdtemp(prefix="gradflow-conformance-")
TABLE = table(_TMP)


def _cases():
    for key, entry in TABLE.items():
        args = {arg: KINDS[kind](entry.good.get(arg)) for arg, kind in entry.kinds.items()}
        for arg, extra in entry.bad.items():
            args[arg] = [*args.get(arg, []), *extra]
        for arg, bads in args.items():
            for label, value in bads:
                if (arg, label) in entry.valid:
                    continue
                case_id = f"{key}[{arg}={label}]"
                marks = [pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[case_id])] \
                    if case_id in KNOWN_FAILURES else []
                yield pytest.param(key, arg, label, value, id=case_id, marks=marks)


def test_every_public_name_is_covered():
    covered = {key.rsplit(".", 1)[0] for key in TABLE} | set(TABLE)
    missing = []
    for package in PACKAGES:
        module = importlib.import_module(package)
        missing += [f"{package}.{name}" for name in module.__all__
                    if f"{package}.{name}" not in covered and f"{package}.{name}" not in EXCLUDED]
    assert not missing, f"public names neither in tests/conformance/table.py nor in EXCLUDED: {missing}"


def test_the_table_and_exclusions_name_only_public_objects():
    public = {f"{package}.{name}" for package in PACKAGES for name in importlib.import_module(package).__all__}
    stale = sorted(k for k in EXCLUDED if k not in public)
    stale += sorted(k for k in TABLE if k not in public and k.rsplit(".", 1)[0] not in public)
    assert not stale, f"no longer public: {stale}"
    unknown = sorted(c for c in KNOWN_FAILURES if c.split("[")[0] not in TABLE)
    assert not unknown, f"known failures of entries not in the table: {unknown}"


@pytest.mark.parametrize("key", sorted(TABLE))
def test_good_arguments_work(key):
    entry = TABLE[key]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        entry.fn(**entry.good)


@pytest.mark.parametrize(("key", "arg", "label", "value"), list(_cases()))
def test_bad_argument_raises_a_gradflow_error_naming_it(key, arg, label, value):
    entry = TABLE[key]
    errors = PATH_ERRORS if entry.kinds.get(arg) == "path" else GRADFLOW_ERRORS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            entry.fn(**{**entry.good, arg: value})
        except errors as err:
            name = entry.names.get(arg, arg)
            assert re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", str(err)), (
                f"{type(err).__name__} does not name {name!r}: {err}")
            return
        except Exception as err:
            pytest.fail(f"{type(err).__name__} is not a gradflow error: {err}")
    pytest.fail(f"{key} accepted {arg}={label} silently")


# ------------------------------------------------------------------------------------- valid but unusual input
@pytest.mark.parametrize("name", sorted(nets()))
def test_potentials_take_non_contiguous_batched_float64_and_requires_grad_input(name):
    net = nets()[name]
    base = torch.randn(3, 4, 2, generator=torch.Generator().manual_seed(0))
    y = net(base)
    assert y.shape == (3, 4, 2)
    strided = torch.randn(4, 3, 2, generator=torch.Generator().manual_seed(0)).transpose(0, 1)
    assert not strided.is_contiguous()
    assert torch.allclose(net(strided), net(strided.contiguous()))
    x = base.clone().requires_grad_(True)
    net(x).sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape
    net64 = type(net)(2, **_config(net)).double()
    assert net64(base.double()).dtype == torch.float64


def _config(net):
    keys = {"width", "depth", "n_modules", "widths"}
    return {k: getattr(net, k) for k in keys if hasattr(net, k)}


def test_image_metrics_take_batch_shapes_non_contiguous_and_float64():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.rand(2, 3, 1, 16, 16, generator=gen), torch.rand(2, 3, 1, 16, 16, generator=gen)
    for metric in (gradflow.inverse.psnr, gradflow.vision.ssim):
        batched = metric(a, b)
        assert batched.shape == (2, 3)
        assert torch.allclose(batched[1, 2], metric(a[1, 2:3], b[1, 2:3])[0])
        strided = metric(a.transpose(-1, -2), b.transpose(-1, -2))
        assert torch.allclose(strided.double(), metric(a.transpose(-1, -2).contiguous(),
                                                       b.transpose(-1, -2).contiguous()).double())
        assert torch.allclose(metric(a.double(), b.double()).double(), batched.double())


def test_gradient_residual_takes_float64_and_requires_grad_input():
    block = gradflow.vision.GradResidual(gradflow.vision.ConvBranch(4)).double()
    x = torch.rand(2, 4, 6, 6, dtype=torch.float64, requires_grad=True)
    block(x).sum().backward()
    assert x.grad.shape == x.shape
    assert block(x.detach().transpose(-1, -2)).shape == (2, 4, 6, 6)


# ------------------------------------------------------------------------------------------- hypothesis
_bad_numbers = st.one_of(
    st.none(), st.text(max_size=3), st.booleans(), st.just(float("nan")), st.just(float("inf")),
    st.floats(max_value=0.0, allow_nan=False), st.integers(max_value=0), st.integers(min_value=2**63),
)


@given(value=_bad_numbers)
def test_any_non_positive_or_non_numeric_step_count_is_refused(value):
    with pytest.raises(ValueError, match=r"\bsteps\b"):
        gradflow.train.fit(torch.nn.Linear(1, 1), lambda m, b: m(b).sum(), torch.zeros(4, 1), steps=value,
                           progress=False)


@given(shape=st.lists(st.integers(1, 3), min_size=0, max_size=2), dim=st.integers(1, 3),
       double=st.booleans())
def test_monotone_potentials_keep_shape_and_dtype_on_any_batch_shape(shape, dim, double):
    torch.manual_seed(0)
    net = gradflow.potentials.MGradNetM(dim, width=4, n_modules=2, strong_convexity=0.1)
    dtype = torch.float64 if double else torch.float32
    net = net.to(dtype)
    x = torch.randn(*shape, dim, dtype=dtype)
    assert net(x).shape == x.shape and net(x).dtype == dtype
    assert net.energy(x).shape == tuple(shape)


def test_error_classes_are_exported_by_gradflow():
    assert issubclass(CheckpointError, ValueError)
    assert {"CheckpointError", "ConvergenceError", "TrainingError"} <= set(gradflow.__all__)

import math

import numpy as np
import ot
import pytest
import torch

from gradflow.testing import tolerance
from gradflow.transport import bures_map, cosine_similarity, gaussian_map, l2_uvp, w2


def _spd(d, g, dtype=torch.float64):
    M = torch.randn(d, d, generator=g, dtype=dtype)
    return M @ M.T / d + 0.2 * torch.eye(d, dtype=dtype)


@pytest.mark.parametrize("d", [1, 2, 5])
def test_gaussian_map_pushes_covariance_and_is_symmetric_pd(d, dtype, generator):
    mp, mq = torch.randn(d, generator=generator, dtype=dtype), torch.randn(d, generator=generator, dtype=dtype)
    Sp, Sq = _spd(d, generator, dtype), _spd(d, generator, dtype)
    T = gaussian_map(mp, Sp, mq, Sq)
    rtol, atol = tolerance(dtype)
    A = T.matrix
    assert A.dtype == dtype
    torch.testing.assert_close(A, A.T, rtol=rtol, atol=atol)
    assert float(torch.linalg.eigvalsh(A).min()) > 0
    torch.testing.assert_close(A @ Sp @ A, Sq, rtol=100 * rtol, atol=100 * atol)  # T # N(mp, Sp) = N(mq, Sq)
    torch.testing.assert_close(T(mp), mq, rtol=rtol, atol=atol)
    x = torch.randn(7, d, generator=generator, dtype=dtype)
    torch.testing.assert_close(T.inverse(T(x)), x, rtol=100 * rtol, atol=100 * atol)


def test_gaussian_map_one_dimensional_is_ratio_of_deviations():
    T = gaussian_map(torch.tensor([1.0]), torch.tensor([[4.0]]), torch.tensor([-2.0]), torch.tensor([[9.0]]))
    torch.testing.assert_close(T(torch.tensor([[3.0]])), torch.tensor([[-2.0 + 1.5 * 2.0]]))


def test_gaussian_map_cost_matches_exact_ot_on_samples(generator):
    d, n = 3, 400
    mp, Sp, mq, Sq = torch.zeros(d, dtype=torch.float64), _spd(d, generator), torch.ones(d, dtype=torch.float64), \
        _spd(d, generator)
    T = gaussian_map(mp, Sp, mq, Sq)
    x = mp + torch.randn(n, d, generator=generator, dtype=torch.float64) @ torch.linalg.cholesky(Sp).T
    y = T(x)
    # y is the optimal image of x: the exact plan between the two point clouds is the identity pairing
    a = np.full(n, 1.0 / n)
    plan = ot.emd(a, a, ot.dist(x.numpy(), y.numpy()))
    assert np.array_equal(plan.argmax(1), np.arange(n))


def test_bures_map_recovers_an_affine_spd_transform(generator):
    A = _spd(3, generator)
    x = torch.randn(2000, 3, generator=generator, dtype=torch.float64)
    T = bures_map(x, x @ A + 2.0)
    torch.testing.assert_close(T.matrix, A, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "args, match",
    [
        ((torch.zeros(2), torch.eye(2), torch.zeros(3), torch.eye(3)), "same dimension"),
        ((torch.zeros(2), torch.zeros(2, 2), torch.zeros(2), torch.eye(2)), "positive definite"),
        ((torch.zeros(2), torch.tensor([[1.0, 0.5], [0.0, 1.0]]), torch.zeros(2), torch.eye(2)), "symmetric"),
        ((torch.zeros(2), torch.eye(3), torch.zeros(2), torch.eye(2)), "shape"),
        ((torch.zeros(2), torch.eye(2), torch.zeros(2), -torch.eye(2)), "semidefinite"),
        ((torch.tensor([0.0, float("nan")]), torch.eye(2), torch.zeros(2), torch.eye(2)), "NaN"),
    ],
)
def test_gaussian_map_rejects_bad_parameters(args, match):
    with pytest.raises(ValueError, match=match):
        gaussian_map(*args)


def test_l2_uvp_values(generator):
    x = torch.randn(500, 2, generator=generator, dtype=torch.float64)
    assert l2_uvp(lambda z: z, lambda z: z + 0.1, x, target_var=2.0) == pytest.approx(100 * 0.02 / 2.0)
    assert l2_uvp(x, x, x, target_var=1.0) == 0.0
    # the constant map at the mean of Q = T*(P) leaves all the variance unexplained: 100%
    y = 3 * x
    var_q = float(y.var(0, unbiased=False).sum())
    assert l2_uvp(lambda z: y.mean(0).expand_as(z), lambda z: 3 * z, x, var_q) == pytest.approx(100.0)


def test_cosine_similarity_values(generator):
    x = torch.randn(300, 3, generator=generator, dtype=torch.float64)
    assert cosine_similarity(lambda z: 2 * z, lambda z: 5 * z, x) == pytest.approx(1.0)
    assert cosine_similarity(lambda z: 0 * z, lambda z: 2 * z, x) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="undefined"):
        cosine_similarity(lambda z: z, lambda z: 2 * z, x)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda x: l2_uvp(x, x, x, 0.0), "target_var"),
        (lambda x: l2_uvp(x[:, :1], x, x, 1.0), "shape"),
        (lambda x: l2_uvp(x, x, x.long(), 1.0), "float32 or float64"),
        (lambda x: l2_uvp(x, x, x[0], 1.0), r"\(N, d\)"),
        (lambda x: cosine_similarity(lambda z: z * float("nan"), x, x), "NaN"),
        (lambda x: w2(x, x[:, :1]), "shape"),
        (lambda x: w2(x[:0], x), "at least 1"),
        (lambda x: w2(x, x, reg=0.0), "reg"),
        (lambda x: w2(x, x, exact=False, iters=0), "iters"),
        (lambda x: w2(x, x, exact="yes"), "exact"),
    ],
)
def test_metrics_reject_bad_inputs(call, match):
    x = torch.randn(10, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match=match):
        call(x)


def test_w2_exact_equals_pot_and_entropic_is_close(generator):
    x = torch.randn(150, 2, generator=generator, dtype=torch.float64)
    y = torch.randn(120, 2, generator=generator, dtype=torch.float64) * 2 + 1
    a, b = np.full(150, 1 / 150), np.full(120, 1 / 120)
    reference = ot.emd2(a, b, ot.dist(x.numpy(), y.numpy()))
    assert w2(x, y, squared=True) == pytest.approx(reference, rel=1e-10)
    assert w2(x, y) == pytest.approx(math.sqrt(reference), rel=1e-10)
    entropic = w2(x, y, exact=False, reg=0.005, squared=True)
    assert reference <= entropic * (1 + 1e-6) and entropic == pytest.approx(reference, rel=0.02)
    shift = torch.tensor([3.0, 4.0], dtype=torch.float64)
    assert w2(x, x + shift) == pytest.approx(5.0, rel=1e-10)

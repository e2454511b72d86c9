import pytest
import torch

from gradflow.potentials import ConvergenceError
from gradflow.transport import (
    Amortized,
    BrenierNet,
    DenseNewton,
    NewtonCG,
    OTMap,
    SemiDual,
    bures_map,
    fit_ot_map,
    l2_uvp,
)
from gradflow.transport._conjugate import AmortizedConjugate, newton_cg
from gradflow.transport.benchmarks import create_pair

FAST = {"progress": False, "device": "cpu"}


def _curved_potential(dim: int, seed: int = 0) -> BrenierNet:
    torch.manual_seed(seed)
    psi = BrenierNet(dim, strong_convexity=0.05).double()
    with torch.no_grad():
        psi.gate.fill_(2.0)  # a residual network that dominates the quadratic: a strongly nonlinear map
    return psi


@pytest.mark.parametrize("dim", [3, 24])
def test_newton_cg_solves_the_gradient_equation_like_dense_newton(dim):
    psi = _curved_potential(dim)
    y = 2 * torch.randn(64, dim, dtype=torch.float64)
    x, residual = newton_cg(psi, y, tol=1e-10, max_iter=30, cg_iters=dim)
    assert float(residual.max()) <= 1e-10
    with torch.no_grad():
        torch.testing.assert_close(psi(x), y, rtol=0, atol=1e-8)
        torch.testing.assert_close(x, psi.inverse(y), rtol=0, atol=1e-8)


def test_newton_cg_from_a_warm_start_needs_fewer_iterations():
    psi = _curved_potential(8)
    y = torch.randn(32, 8, dtype=torch.float64)
    with torch.no_grad():
        exact = psi.inverse(y)
    cold = newton_cg(psi, y, max_iter=1, cg_iters=8)[1]
    warm = newton_cg(psi, y, exact + 1e-3 * torch.randn_like(y), max_iter=1, cg_iters=8)[1]
    assert float(warm.max()) < 1e-3 * float(cold.max())


def test_newton_cg_leaves_solved_points_alone_and_runs_on_the_others_only():
    psi = _curved_potential(8)
    y = torch.randn(64, 8, dtype=torch.float64)
    with torch.no_grad():
        exact = psi.inverse(y, tol=1e-12)
    x0 = exact.clone()
    x0[0] += 0.1  # one unsolved point
    rows = []
    hook = psi.register_forward_hook(lambda module, args, out: rows.append(args[0].shape[0]))
    try:
        x, residual = newton_cg(psi, y, x0, tol=1e-9, max_iter=10)
    finally:
        hook.remove()
    assert float(residual.max()) <= 1e-9
    assert torch.equal(x[1:], x0[1:])
    assert rows[0] == 64 and max(rows[1:]) == 1  # after the first residual, only the unsolved point


def _gradients(module, value):
    module.zero_grad(set_to_none=True)
    value.backward()
    return {k: None if p.grad is None else p.grad.clone() for k, p in module.named_parameters()}


@pytest.mark.parametrize("loss", ["regression", "cycle", "objective"])
def test_amortisation_losses_train_only_the_conjugate_network(loss):
    psi = _curved_potential(4)
    conj = AmortizedConjugate(BrenierNet(4).double(), loss)
    y = torch.randn(16, 4, dtype=torch.float64)
    with torch.no_grad():
        x_hat = psi.inverse(y)
    value = conj.loss(psi, y, conj(y), x_hat)
    (value + 0 * psi.energy(y).sum()).backward()
    assert all(p.grad is None or float(p.grad.abs().max()) == 0 for p in psi.parameters())
    assert any(p.grad is not None and float(p.grad.abs().max()) > 0 for p in conj.parameters())


def test_objective_surrogate_has_the_objectives_gradient():
    psi = _curved_potential(4)
    conj = AmortizedConjugate(BrenierNet(4).double(), "objective")
    y = torch.randn(16, 4, dtype=torch.float64)
    surrogate = _gradients(conj, conj.loss(psi, y, conj(y), None))
    x = conj(y)
    objective = _gradients(conj, -((x * y).sum(-1) - psi.energy(x)).mean())
    for name, grad in surrogate.items():
        torch.testing.assert_close(grad, objective[name])


def test_amortisation_loss_name_is_checked():
    with pytest.raises(ValueError, match="valid: cycle, objective, regression"):
        AmortizedConjugate(BrenierNet(2), "l1")


@pytest.fixture(scope="module")
def amortized_fit():
    pair = create_pair("mixture", 3, seed=0)
    g = torch.Generator().manual_seed(0)
    x, y, x_test = pair.sample_source(4000, g), pair.sample_target(4000, g), pair.sample_source(2000, g)
    # a short run at a constant learning rate: the default cosine decay would halve the progress of 150 steps
    T = fit_ot_map(x, y, method=SemiDual(conjugate="amortized"), steps=150, scheduler=None, seed=0, **FAST)
    return pair, x_test, T


def test_amortized_dual_learns_the_map_and_its_inverse(amortized_fit):
    pair, x_test, T = amortized_fit
    assert T.inverse_net is not None
    with torch.no_grad():
        fitted = l2_uvp(T, pair.true_map, x_test, pair.target_var)
        linear = l2_uvp(bures_map(x_test, pair.true_map(x_test)), pair.true_map, x_test, pair.target_var)
        y = T(x_test)
        torch.testing.assert_close(T.inverse(y), x_test, rtol=0, atol=1e-3)  # Newton from the net's guess
        predicted = float((T.inverse_net(y) - x_test).square().sum(-1).mean())
        linear_inverse = float((bures_map(y, x_test)(y) - x_test).square().sum(-1).mean())
    assert fitted < linear / 5, (fitted, linear)
    assert predicted < 0.8 * linear_inverse, (predicted, linear_inverse)  # the network alone beats linear


def test_maps_saved_with_a_four_module_inverse_network_still_load(tmp_path):
    from gradflow.train import load_checkpoint, save_checkpoint
    from gradflow.transport._methods import amortized_inverse_net

    old_inverse = amortized_inverse_net(3, n_modules=4)
    T = OTMap(BrenierNet(3), inverse_net=amortized_inverse_net(3))
    T.save(tmp_path / "map.pt")
    state = load_checkpoint(tmp_path / "map.pt")
    del state["inverse_n_modules"]  # as written before the count was recorded
    state["inverse_state_dict"] = old_inverse.state_dict()
    save_checkpoint(tmp_path / "old.pt", **state)
    y = torch.randn(5, 3)
    with torch.no_grad():
        loaded = OTMap.load(tmp_path / "old.pt", model=BrenierNet(3))
        torch.testing.assert_close(loaded.inverse_net(y), old_inverse(y))


def test_amortized_map_saves_its_inverse_network(amortized_fit, tmp_path):
    _, x_test, T = amortized_fit
    T.save(tmp_path / "map.pt")
    loaded = OTMap.load(tmp_path / "map.pt")
    with torch.no_grad():
        y = T(x_test[:32])
        torch.testing.assert_close(loaded.inverse_net(y), T.inverse_net(y))
        torch.testing.assert_close(loaded.inverse(y), T.inverse(y))


@pytest.mark.parametrize("conjugate", ["newton", "newton_cg"])
def test_dual_conjugate_solvers_reach_the_same_map(conjugate):
    pair = create_pair("gaussian", 3, seed=0)
    g = torch.Generator().manual_seed(0)
    x, y, x_test = pair.sample_source(4000, g), pair.sample_target(4000, g), pair.sample_source(2000, g)
    T = fit_ot_map(x, y, method=SemiDual(conjugate=conjugate), steps=60, seed=0, **FAST)
    assert T.inverse_net is None
    with torch.no_grad():
        assert l2_uvp(T, pair.true_map, x_test, pair.target_var) < 1.0


_X = torch.randn(50, 2)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: SemiDual(conjugate="lbfgs"), "valid: amortized, newton, newton_cg"),
        (lambda: SemiDual(conjugate=torch.nn.Linear(2, 2)), "a Conjugate"),
        (lambda: Amortized(loss="l1"), "valid: cycle, objective, regression"),
        (lambda: Amortized(max_iter=0), "needs max_iter >= 1"),
        (lambda: DenseNewton(max_iter=0), "max_iter"),
        (lambda: NewtonCG(cg_iters=0), "cg_iters"),
        (lambda: NewtonCG(max_iter=2.5), "max_iter"),
        (lambda: NewtonCG(cg_rtol=1.0), "cg_rtol must be a finite number >= 0 and < 1"),
        (lambda: Amortized(cg_rtol=-0.1), "cg_rtol"),
        (lambda: Amortized(cg_rtol=float("nan")), "cg_rtol"),
        (lambda: NewtonCG(tol=0.0), "tol must be a finite number > 0"),
        (lambda: Amortized(tol="1e-3"), "tol"),
        (lambda: DenseNewton(tol=float("inf")), "tol"),
    ],
)
def test_bad_conjugate_settings_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("option", ["conjugate", "inverse_iters", "plan"])
def test_method_settings_are_not_fit_options(option):
    with pytest.raises(ValueError, match="arguments of SemiDual, PlanRegression, MongeAmpere"):
        fit_ot_map(_X, _X, method="dual", **FAST, **{option: "newton"})


def test_amortized_network_alone_without_fine_tuning():
    pair = create_pair("gaussian", 2, seed=0)
    g = torch.Generator().manual_seed(0)
    x, y = pair.sample_source(2000, g), pair.sample_target(2000, g)
    T = fit_ot_map(x, y, method=SemiDual(Amortized(max_iter=0, loss="objective")), steps=100, seed=0, **FAST)
    with torch.no_grad():
        assert l2_uvp(T, pair.true_map, x, pair.target_var) < 1.0


def test_cosine_schedule_spans_the_step_budget():
    x = torch.randn(500, 2)
    T = fit_ot_map(x, 2 * x + 1, method="dual", steps=40, lr=1e-2, scheduler="cosine", val_fraction=0, seed=0,
                   **FAST)  # no held-out samples: no early stopping
    lrs = [h["lr"] for h in T.history]
    assert lrs[0] > 0.9e-2 and lrs[-1] < 0.02e-2 and lrs == sorted(lrs, reverse=True)


def test_cosine_schedule_runs_on_steps_not_time():
    x = torch.randn(500, 2)
    kwargs = dict(method="dual", steps=30, scheduler="cosine", val_fraction=0, seed=0, **FAST)
    first, second = fit_ot_map(x, 2 * x + 1, **kwargs), fit_ot_map(x, 2 * x + 1, **kwargs)
    assert [h["lr"] for h in first.history] == [h["lr"] for h in second.history]
    with torch.no_grad():
        torch.testing.assert_close(first(x), second(x), rtol=0, atol=0)  # a seeded run is reproducible


def test_otmap_rejects_a_mismatched_inverse_network():
    with pytest.raises(ValueError, match="inverse_net must be a BrenierNet on R\\^2"):
        OTMap(BrenierNet(2), inverse_net=BrenierNet(3))
    with pytest.raises(ValueError, match="inverse_net"):
        OTMap(BrenierNet(2), inverse_net=torch.nn.Linear(2, 2))


@pytest.mark.parametrize("amortized", [False, True])
def test_otmap_inverse_is_matrix_free_and_chunked_above_d16(amortized, monkeypatch):
    import gradflow.transport._map as map_module

    calls = []

    def counting_newton_cg(psi, y, *args, **kwargs):
        calls.append(len(y))
        return newton_cg(psi, y, *args, **kwargs)

    psi = _curved_potential(20)
    T = OTMap(psi, inverse_net=BrenierNet(20).double() if amortized else None)
    x = torch.randn(3, 90, 20, dtype=torch.float64)
    with torch.no_grad():
        y = psi(x)
    monkeypatch.setattr(map_module, "_CHUNK", 100)
    monkeypatch.setattr(map_module, "newton_cg", counting_newton_cg)
    monkeypatch.setattr(psi, "inverse", None)  # the dense solver is not used above d = 16
    torch.testing.assert_close(T.inverse(y), x, rtol=0, atol=1e-7)
    assert calls == [100, 100, 70]
    with pytest.raises(ConvergenceError, match="Newton-CG"):
        T.inverse(y, max_iter=1)
    with pytest.raises(ValueError, match="y"):
        T.inverse(y[..., :3])


@pytest.mark.parametrize("dim", [3, 20])
def test_otmap_inverse_chunks_the_dense_and_the_matrix_free_solve_alike(dim, monkeypatch):
    import gradflow.transport._map as map_module

    psi = _curved_potential(dim)
    T = OTMap(psi)
    x = torch.randn(250, dim, dtype=torch.float64)
    with torch.no_grad():
        y = psi(x)
    monkeypatch.setattr(map_module, "_CHUNK", 100)
    torch.testing.assert_close(T.inverse(y), x, rtol=0, atol=1e-7)
    with pytest.raises(ConvergenceError) as err:
        T.inverse(y, max_iter=1)
    assert err.value.x.shape == y.shape and err.value.residual > 1e-10


def test_otmap_evaluations_are_plain_tensors_unless_x_requires_grad(monkeypatch):
    import gradflow.transport._map as map_module

    psi = _curved_potential(3)
    T = OTMap(psi)
    x = torch.randn(5, 7, 3, dtype=torch.float64)
    monkeypatch.setattr(map_module, "_EVAL_CHUNK", 4)  # 35 points in 9 chunks
    for out, expected in ((T(x), psi(x)), (T.potential(x), psi.energy(x)),
                          (T.interpolate(x, 0.25), x + 0.25 * (psi(x) - x))):
        assert not out.requires_grad and out.grad_fn is None
        torch.testing.assert_close(out, expected.detach())
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(T.potential(xg).sum(), xg)
    torch.testing.assert_close(grad, psi(x).detach())  # grad psi = T, through the kept graph
    assert T(xg).grad_fn is not None
    with pytest.raises(ValueError, match="x"):
        T.potential(x[..., :2])


def test_pcg_forcing_term_stops_each_row_at_its_relative_residual():
    from gradflow.transport._conjugate import _pcg

    g = torch.Generator().manual_seed(0)
    B = torch.randn(16, 12, 12, generator=g, dtype=torch.float64)
    J = B @ B.mT / 12 + 0.5 * torch.eye(12, dtype=torch.float64)  # SPD systems, one per row
    b = torch.randn(16, 12, generator=g, dtype=torch.float64)
    calls = []

    def hvp(v):
        calls.append(1)
        return (J @ v.unsqueeze(-1)).squeeze(-1)

    p = _pcg(hvp, b, None, iters=100, rtol=0.1)
    residual = (b - hvp(p)).norm(dim=-1) / b.norm(dim=-1)
    assert float(residual.max()) <= 0.1
    assert len(calls) - 1 < 12  # stopped before CG's exact termination after d = 12 iterations
    calls.clear()
    exact = _pcg(hvp, b, None, iters=40)  # rtol=0: every iteration runs
    assert len(calls) == 40
    torch.testing.assert_close(hvp(exact), b, rtol=0, atol=1e-6)


def test_newton_cg_with_a_forcing_term_reaches_the_same_solution_with_fewer_passes(monkeypatch):
    import gradflow.transport._conjugate as conjugate_module

    psi = _curved_potential(24)
    y = 2 * torch.randn(64, 24, dtype=torch.float64)
    passes, count, pcg = {}, [], conjugate_module._pcg

    def counting_pcg(hvp, *args):
        def counted(v):
            count.append(1)
            return hvp(v)

        return pcg(counted, *args)

    monkeypatch.setattr(conjugate_module, "_pcg", counting_pcg)
    for rtol in (0.0, 0.1):
        count.clear()
        hook = psi.register_forward_hook(lambda module, args, out: count.append(1))
        try:  # forward passes plus Jacobian-vector products (backward passes) in CG
            x, residual = newton_cg(psi, y, tol=1e-9, max_iter=40, cg_iters=24, cg_rtol=rtol)
        finally:
            hook.remove()
        assert float(residual.max()) <= 1e-9
        with torch.no_grad():
            torch.testing.assert_close(x, psi.inverse(y, tol=1e-12), rtol=0, atol=1e-7)
        passes[rtol] = len(count)
    assert passes[0.1] < passes[0.0], passes


@pytest.mark.parametrize("make", [lambda tol: NewtonCG(tol=tol, cg_rtol=0.1),
                                  lambda tol: Amortized(tol=tol, fine_tune="newton_cg", cg_rtol=0.1),
                                  lambda tol: Amortized(tol=tol, fine_tune="newton")])
def test_conjugate_tolerance_bounds_the_training_solve_and_the_held_out_solve_stays_strict(make):
    from gradflow.transport._conjugate import _scaled_residual

    psi = _curved_potential(6)
    y = 2 * torch.randn(128, 6, dtype=torch.float64)
    start = torch.zeros_like(y)
    conjugate = make(1e-2)
    loose = conjugate.solve(psi, y, start, max_iter=30)
    strict = conjugate.solve(psi, y, start, max_iter=30, tol=conjugate.strict_tol(y))
    with torch.no_grad():
        loose_res, strict_res = (_scaled_residual(psi(x) - y, y) for x in (loose, strict))
    assert float(loose_res.max()) <= 1e-2 and float(strict_res.max()) <= 1e-6
    assert float(loose_res.max()) > 1e-6  # the loose solve did stop early
    # the semi-dual's held-out objective solves to the strict tolerance whatever the training tolerance
    method = SemiDual(make(1e-2))
    module = method.setup(psi, None) if method.conjugate.amortized else psi
    _, x_star = method._solve(module, y, held_out=True)[1:]
    with torch.no_grad():
        assert float(_scaled_residual(psi(x_star) - y, y).max()) <= 1e-6

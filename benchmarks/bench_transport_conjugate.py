"""Cost and accuracy of the semi-dual's conjugate solve, against the minibatch noise of the gradient it feeds.

    python benchmarks/bench_transport_conjugate.py [--smoke] [--dim 64] [--train-steps 150] [--repeats 5]

The default fit runs ``--train-steps`` steps on the ICNN-built pair (seed 0) to get a partly trained
potential psi and amortised conjugate x_phi; then, on one batch of 512 target samples y, each solver
setting fine-tunes x_phi(y) and the table gives, measured in the same run: the median CPU ms per solve over
``--repeats`` calls, the largest scaled residual ||grad psi(x) - y||_inf / (1 + ||y||_inf) it leaves, and the
relative error of the semi-dual's parameter gradient (batch of 512 x ~ P and the y above) against the
gradient with x* solved to 1e-6. The "minibatch noise" row is the relative difference between the exact
gradients of two independent batches: the noise that each training step carries anyway.
"""

from __future__ import annotations

import statistics
import time

import torch
from _common import parse_args, write_results

from gradflow.transport import fit_ot_map
from gradflow.transport._conjugate import _preconditioner, _scaled_residual, newton_cg
from gradflow.transport.benchmarks import create_pair

#: label -> keyword arguments of newton_cg (besides psi, y and the amortised start)
SETTINGS = {
    "previous default: tol 1e-4, 8 CG iterations": {"tol": 1e-4, "cg_iters": 8},
    "tol 1e-4, CG to 0.1 of the residual (<= 16)": {"tol": 1e-4, "cg_iters": 16, "cg_rtol": 0.1},
    "tol 1e-3, 8 CG iterations": {"tol": 1e-3, "cg_iters": 8},
    "tol 1e-3, CG to 0.1 of the residual (<= 16)": {"tol": 1e-3, "cg_iters": 16, "cg_rtol": 0.1},
    "tol 1e-3, CG to 0.1, preconditioner on 8 points": {"tol": 1e-3, "cg_iters": 16, "cg_rtol": 0.1,
                                                         "preconditioner_points": 8},
    "one Newton step, 8 CG iterations": {"tol": 1e-9, "cg_iters": 8, "max_iter": 1},
}


def configure(parser):
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--train-steps", type=int, default=150, help="default-fit steps before measuring")
    parser.add_argument("--repeats", type=int, default=5, help="timed solves per setting (default 5)")


def semi_dual_gradient(psi, x, y, x_star) -> torch.Tensor:
    psi.zero_grad(set_to_none=True)
    (psi.energy(x).mean() + ((x_star * y).sum(-1) - psi.energy(x_star)).mean()).backward()
    return torch.cat([p.grad.flatten() for p in psi.parameters() if p.grad is not None])


def main():
    args = parse_args(__doc__.splitlines()[0], configure)
    torch.set_num_threads(1)
    if args.smoke:
        args.dim, args.train_steps, args.repeats = 4, 3, 1
    pair = create_pair("icnn", args.dim, seed=0)
    trained = {}
    fit_ot_map(pair.sample_source, pair.sample_target, steps=args.train_steps, seed=0, progress=False,
               device="cpu", callbacks=[lambda info: trained.update(module=info["model"])])
    psi, amortized = trained["module"].psi, trained["module"].conjugate
    g = torch.Generator().manual_seed(5)
    batches = [(pair.sample_source(512, g), pair.sample_target(512, g)) for _ in range(2)]
    exact, starts = [], []
    for x, y in batches:
        with torch.no_grad():
            starts.append(amortized(y))
        x_star = newton_cg(psi, y, starts[-1], tol=1e-6, max_iter=50, cg_iters=min(args.dim, 32))[0]
        exact.append(semi_dual_gradient(psi, x, y, x_star))
    (x, y), start, reference = batches[0], starts[0], exact[0]

    def row(label, solve):
        times = []
        for _ in range(args.repeats):
            t = time.process_time()
            x_star = solve()
            times.append(time.process_time() - t)
        with torch.no_grad():
            residual = float(_scaled_residual(psi(x_star) - y, y).max())
        error = float((semi_dual_gradient(psi, x, y, x_star) - reference).norm() / reference.norm())
        return [label, 1000 * statistics.median(times), residual, error]

    rows = [row("amortised prediction alone", lambda: start)]
    for label, kwargs in SETTINGS.items():
        options = {"max_iter": 6, **kwargs}
        rows.append(row(label, lambda options=options: newton_cg(psi, y, start, **options)[0]))
        print(rows[-1], flush=True)
    noise = float((exact[1] - reference).norm() / reference.norm())
    rows.append(["minibatch noise (two batches, exact solves)", "-", "-", noise])
    times = []
    for _ in range(args.repeats):
        t = time.process_time()
        _preconditioner(psi, start)
        times.append(time.process_time() - t)
    notes = f"""
d = {args.dim}, the ICNN-built pair (seed 0), after {args.train_steps} steps of the default fit; batches of 512.
"tol" is the largest scaled residual at which Newton stops (at most 6 Newton steps); "CG to 0.1" stops each
point's CG once its linear residual is below 0.1 of its Newton residual. The preconditioner (Cholesky of the
mean Jacobian at 32 points, once per solve) took {1000 * statistics.median(times):.1f} ms of each solve.
"""
    write_results("transport_conjugate", "Conjugate solve: cost, residual and gradient bias vs minibatch noise", [
        ("One solve of 512 points", ["setting", "CPU ms / solve", "max scaled residual",
                                     "gradient rel. error"], rows)], args, notes)


if __name__ == "__main__":
    main()

"""Which examples does symmetric hEP skip, and how much of the exact gradient do they carry?

hEP (``nonconverged="skip"``) drops the examples whose nudged phases do not settle within T2;
BP (recurrent backprop) learns from them. This trains the ablation's symmetric hEP network
(experiments/ep_homeostasis.py, mnist1d, |β| 0.1) for a number of steps, then on a sample of
training examples compares, per example, the norm of the exact weight gradient ‖δ_k r_{k−1}ᵀ‖
(summed over layers) of the examples hEP skips with the ones it keeps; and whether capping the
δ iteration at K steps would find the same examples.

    python experiments/ep_skipped_examples.py --steps-scale 1.5 --seed 0     # 2250 steps, ~5 min
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

import numpy as np  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="mnist1d")
    ap.add_argument("--steps-scale", type=float, default=1.5, help="training steps × the ablation's (mnist1d: 1500)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--beta", type=float, default=0.1)
    ap.add_argument("--examples", type=int, default=1024)
    a = ap.parse_args(argv)

    import ep_homeostasis as E

    import neurozo
    from neurozo.learners.ep import RBP_ACCEPT, ep_error, recurrent_backprop

    cfg = E.run_config(a.task, "sym", a.seed, a.steps_scale, beta=a.beta)
    t0 = time.time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)     # non-convergence is counted below
        res = neurozo.run(**cfg)
    print(f"trained symmetric hEP: {res.final['step']} steps, test acc {res.final['test_acc']:.3f}, "
          f"{time.time() - t0:.0f} s")
    b = neurozo.build(**cfg)
    model, sub, lp = b.model, b.substrate, b.learner.params
    rng = np.random.default_rng(1)
    X, Y = np.asarray(b.task.x_train), np.asarray(b.task.y_train)
    idx = rng.choice(len(X), min(a.examples, len(X)), replace=False)
    x, y = X[idx], Y[idx]
    theta = res.theta
    prog = model.program(theta[None], sub, rng)
    free = model.relax(prog, x, sub, rng)
    e = model.output_error(prog, free.r[-1], y, sub, rng)[1][0]     # softmax − onehot
    g_r = e @ model.view(theta, "Wout")                             # ∂ℓ/∂r_last with θ's readout, as the learner
    u0, r0 = [u[0] for u in free.u], [r[0] for r in free.r]
    d, _, _, ok_n = ep_error(model, prog, x, y, free, sub, rng, lp.estimator, lp.beta, lp.N, lp.T2)
    skip = ~ok_n | ~free.converged[0]          # the learner's verdict, whatever the model's convergence test
    print(f"{len(y)} training examples: hEP skips {skip.mean():.3f} "
          f"(free phase not converged {1 - free.converged[0].mean():.3f})")
    for K in (40, 60, 100, 200, lp.rbp_steps):       # the last is the learner's own: its δ is used below
        delta, ch, _ = recurrent_backprop(model, theta, u0, g_r, steps=K)
        off = ch > RBP_ACCEPT
        print(f"  δ iteration capped at {K:3d} steps: not converged {off.mean():.3f}, "
              f"same verdict as hEP's skip for {np.mean(off == skip):.3f}")
    ok = ~off
    pre = [x.astype(np.float64)] + r0[:-1]

    def norms(err):      # ‖Σ_k err_k r_{k−1}ᵀ‖_F per example (outer products: product of norms)
        return np.sqrt(sum(np.sum(np.real(err[k]) ** 2, 1) * np.sum(pre[k] ** 2, 1) for k in range(model.L)))

    g, gd = norms(delta), norms(d)
    for name, m in (("skipped by hEP", skip & ok), ("kept by hEP", ~skip & ok)):
        print(f"  {name:15s} n = {m.sum():4d}: exact gradient norm median {np.median(g[m]):.3g}, mean "
              f"{g[m].mean():.3g}; hEP's d gives median {np.median(gd[m]):.3g}")
    print(f"share of Σ‖g‖² carried by the skipped examples: {np.sum(g[skip & ok] ** 2) / np.sum(g[ok] ** 2):.3f}")
    top = ok & (g >= np.quantile(g[ok], 0.9))
    print(f"fraction of the 10 % largest exact gradients that hEP skips: {skip[top].mean():.3f}")

    def batch(m):
        w = m[:, None] / m.sum()
        return np.concatenate([((delta[k] * w).T @ pre[k]).ravel() for k in range(model.L)])

    ga, gk = batch(ok), batch(ok & ~skip)
    print(f"exact batch gradient, all examples vs hEP's: norm ratio {np.linalg.norm(ga) / np.linalg.norm(gk):.3f}, "
          f"cosine {ga @ gk / np.linalg.norm(ga) / np.linalg.norm(gk):.3f}")


if __name__ == "__main__":
    main()

"""Exact tests of the EP gradient estimators against recurrent backprop (RBP).

Small random tied networks on the float64 ideal substrate, relaxed to ‖F(u)‖ < 1e-13, so
the only error left is each estimator's bias in β:

* RBP itself equals the finite-difference gradient of the loss at the fixed point;
* symmetric β = 0.1 and holomorphic N ≥ 4, |β| = 0.5 have cosine ≥ 0.999 with RBP;
* the one-sided bias grows as O(β) and the N-point bias as O(|β|^N): log–log slopes.

The N-point expansion converges only inside the radius of convergence of β ↦ u*_β, which
the poles of the complex sigmoid (4u − 2 = ±iπ, i.e. Im u = ±π/4 at Re u = 0.5) bound.
|β| = 0.5 is inside it for these nets, except for a few examples of a few random deeper
nets: on [5, 7, 6, 10], seed 2, N = 4 gives cos 0.998 (N = 6: 0.9998); the alignment test
therefore runs N = 4 and N = 6 on the one-hidden-layer net [6, 8, 10] and N = 6 on the deeper.
"""

import numpy as np
import pytest

import neurozo
from neurozo.learners.base import Problem
from neurozo.learners.ep import EP, ep_error, recurrent_backprop
from neurozo.models.energy import EnergyNet

SUB = neurozo.substrates.get("ideal", dtype="float64")


def _setup(seed, tied=True, sizes=(5, 7, 6, 10)):
    m = EnergyNet(sizes=list(sizes), tied=tied, alpha=0.0 if tied else 90.0, T1=4000, tol=1e-13)
    rng = np.random.default_rng(seed)
    th = m.init(rng)
    x = rng.random((4, sizes[0]))
    y = rng.integers(0, sizes[-1], 4)
    prog = m.program(th[None], SUB, rng)
    free = m.relax(prog, x, SUB, rng)
    assert free.converged.all()
    return m, th, x, y, prog, free, rng


def _loss(m, th, x, y):
    """Mean cross-entropy at the free fixed point of θ (float64, tight convergence)."""
    rng = np.random.default_rng(0)
    out = m.forward(neurozo.models.Members(th[None]), x, SUB, rng)[0]
    z = out - out.max(-1, keepdims=True)
    return float(np.mean(np.log(np.exp(z).sum(-1)) - z[np.arange(len(y)), y]))


def _rbp(m, th, free, prog, x, y, rng):
    o = m.logits(prog, free.r[-1], SUB, rng)[0]
    p = np.exp(o - o.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    delta, change, _ = recurrent_backprop(m, th, [a[0] for a in free.u], p @ m.view(th, "Wout"),
                                          steps=20000, tol=1e-14)
    assert change.shape == (len(x),) and change.max() <= 1e-14
    return delta, p


def _flat(d):
    return np.concatenate([a.ravel() for a in d])


def _cos(a, b):
    a, b = _flat(a), _flat(b)
    return a @ b / np.linalg.norm(a) / np.linalg.norm(b)


def _rel_err(a, b):
    a, b = _flat(a), _flat(b)
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def _weight_grad(m, free, x, err, e):
    r0 = [a[0] for a in free.r]
    B = len(x)
    pre = [x] + r0[:-1]
    g_fwd = [err[k].T @ pre[k] / B for k in range(m.L)]
    g_b = [err[k].mean(0) for k in range(m.L)]
    g_fbk = [err[k].T @ r0[k + 1] / B for k in range(m.L - 1)]
    return m.pack_grad(g_fwd, g_b, g_fbk, e.T @ r0[-1] / B, e.mean(0))


@pytest.mark.parametrize("tied", [True, False])
def test_rbp_equals_finite_difference_gradient(tied):
    # the reference itself: dℓ/dθ from δ = −J⁻ᵀ∂ℓ/∂u equals central differences of the loss at
    # the fixed point along random directions (h = 1e-5: truncation O(h²) ≈ 1e-10, relaxation
    # error 1e-13/h ≈ 1e-8, so agreement to 1e-6 relative is a real check)
    m, th, x, y, prog, free, rng = _setup(3, tied=tied)
    delta, e = _rbp(m, th, free, prog, x, y, rng)
    g = _weight_grad(m, free, x, delta, e)
    h = 1e-5
    for v in np.random.default_rng(7).standard_normal((4, m.n_params)):
        fd = (_loss(m, th + h * v, x, y) - _loss(m, th - h * v, x, y)) / (2 * h)
        assert abs(fd - g @ v) <= 1e-6 * max(1.0, abs(fd)), (fd, g @ v)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("sizes, estimator, beta, N", [
    ((6, 8, 10), "symmetric", 0.1, 2), ((6, 8, 10), "holomorphic", 0.5, 4), ((6, 8, 10), "holomorphic", 0.5, 6),
    ((5, 7, 6, 10), "symmetric", 0.1, 2), ((5, 7, 6, 10), "holomorphic", 0.5, 6),
])
def test_estimates_align_with_rbp_on_tied_nets(seed, sizes, estimator, beta, N):
    m, th, x, y, prog, free, rng = _setup(seed, sizes=sizes)
    delta, e = _rbp(m, th, free, prog, x, y, rng)
    d, evals, res, _ = ep_error(m, prog, x, y, free, SUB, rng, estimator, beta, N, T2=4000)
    assert res.shape == (len(x),) and res.max() < 1e-12
    assert evals == (2 if estimator == "symmetric" else N)
    assert _cos(d, delta) >= 0.999
    for k in range(m.L):
        assert _cos([d[k]], [delta[k]]) >= 0.999
    assert _cos([_weight_grad(m, free, x, d, e)], [_weight_grad(m, free, x, delta, e)]) >= 0.999


def test_continuous_time_hep_aligns_with_rbp():
    # β rotating once per T2 = 400 steps: the state follows u*_β adiabatically (lag ~1 step
    # of 400 → cos(2π/400) ≈ 0.9999), measured over the second period
    m, th, x, y, prog, free, rng = _setup(0)
    delta, _ = _rbp(m, th, free, prog, x, y, rng)
    d, evals, _, _ = ep_error(m, prog, x, y, free, SUB, rng, "continuous", 0.5, 1, T2=400, periods=2)
    assert evals == 4
    assert _cos(d, delta) >= 0.999


def _bias_slope(m, x, y, prog, free, rng, delta, estimator, betas, N):
    errs = [_rel_err(ep_error(m, prog, x, y, free, SUB, rng, estimator, b, N, T2=4000)[0], delta) for b in betas]
    return np.polyfit(np.log(betas), np.log(errs), 1)[0], errs


@pytest.mark.parametrize("estimator, N, betas, slope", [
    ("one_sided", 1, [0.01, 0.02, 0.04, 0.08], 1.0),
    ("symmetric", 2, [0.05, 0.1, 0.2, 0.4], 2.0),
    ("holomorphic", 3, [0.05, 0.1, 0.2, 0.4], 3.0),
    ("holomorphic", 4, [0.1, 0.2, 0.3, 0.5], 4.0),
])
def test_bias_order_in_beta(estimator, N, betas, slope):
    # bias = a_{N+1}|β|^N + a_{2N+1}|β|^{2N} + …: the log–log slope is N up to the next term
    # (measured on seeds 0–2 of this net: 1.00–1.02, 1.92–2.16, 2.99–3.08, 3.93–4.00)
    m, th, x, y, prog, free, rng = _setup(1)
    delta, _ = _rbp(m, th, free, prog, x, y, rng)
    got, errs = _bias_slope(m, x, y, prog, free, rng, delta, estimator, betas, N)
    assert abs(got - slope) < 0.25, (got, errs)    # slope 1 vs 2 vs 3 vs 4: well separated
    assert errs[0] < errs[-1]


def test_holomorphic_N1_is_one_sided_and_N2_is_symmetric():
    m, th, x, y, prog, free, rng = _setup(0)
    for (est_a, Na), (est_b, Nb) in [(("holomorphic", 1), ("one_sided", 1)), (("holomorphic", 2), ("symmetric", 2))]:
        da = ep_error(m, prog, x, y, free, SUB, rng, est_a, 0.2, Na, T2=4000)[0]
        db = ep_error(m, prog, x, y, free, SUB, rng, est_b, 0.2, Nb, T2=4000)[0]
        for a, b in zip(da, db):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_learner_step_logs_alignment_on_a_tied_net():
    m = EnergyNet(sizes=[6, 8, 10], T1=4000, tol=1e-13)
    rng = np.random.default_rng(4)
    th = m.init(rng)
    x, y = rng.random((8, 6)), rng.integers(0, 10, 8)
    for est, beta, N in [("symmetric", 0.1, 2), ("holomorphic", 0.5, 4)]:
        learner = EP(estimator=est, beta=beta, N=N, T2=4000)
        prob = Problem(m, SUB, None, np.random.default_rng(0))
        prob.set_batch(x, y)
        state, loss, info = learner.step(learner.init(th, 0), prob)
        assert prob.evaluations == learner.evals_per_step
        assert info["nonconverged"] == 0 and info["residual_free"] <= 1e-13
        assert info["cos_grad"] >= 0.999 and min(info["cos_d0"], info["cos_d1"]) >= 0.999
        assert abs(info["grad_norm_ratio"] - 1.0) <= 0.01    # EP's step is RBP's, not only its direction

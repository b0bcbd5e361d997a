"""Jacobian homeostasis: the estimator's mean is 2‖A‖²_F (0 for symmetric weights), its
gradient estimate's mean is ∇(2‖A‖²_F) = 4A, and it makes untied weights more symmetric."""

import numpy as np
import pytest

import neurozo
from neurozo.learners.base import Problem
from neurozo.learners.ep import EP
from neurozo.learners.ep_homeostasis import JacobianHomeostasis, antisymmetric_norm2, symmetry_ratio
from neurozo.models.energy import EnergyNet

SUB = neurozo.substrates.get("ideal", dtype="float64")


def _net(alpha=90.0, tied=False, sizes=(4, 6, 5, 3), seed=0):
    m = EnergyNet(sizes=list(sizes), tied=tied, alpha=alpha)
    return m, m.init(np.random.default_rng(seed))


@pytest.mark.parametrize("jvp", ["closed", "device"])
def test_estimator_mean_is_twice_antisymmetric_norm(jvp):
    m, th = _net()
    S = 20000
    vals, _ = JacobianHomeostasis(1.0, S, jvp).sample(m, th, np.random.default_rng(1), SUB)
    exact = JacobianHomeostasis.exact(m, th)
    assert exact == pytest.approx(2 * antisymmetric_norm2(m, th)) and exact > 0
    # ℓ̂(ε) = εᵀMε with M = JᵀJ − J²: Var = 2‖(M + Mᵀ)/2‖²_F for Gaussian ε; 5 standard errors
    J = m.recurrent_matrix(th) - np.eye(m.n_state)
    M = J.T @ J - J @ J
    sd = np.sqrt(2 * np.sum((0.5 * (M + M.T)) ** 2) / S)
    assert abs(vals.mean() - exact) < 5 * sd
    assert abs(vals.std() / np.sqrt(S) - sd) < 0.2 * sd     # the variance formula holds too


def _grad_tol(m, th, S):
    # per entry: sd of 2(v_i ε_j − ε_i v_j) ≈ 2√2·‖J_row‖ at most; 5 standard errors of the mean
    J = m.recurrent_matrix(th) - np.eye(m.n_state)
    return 5 * 2 * np.sqrt(2) * np.linalg.norm(J, axis=1).max() / np.sqrt(S)


@pytest.mark.parametrize("tied, alpha", [(True, 0.0), (False, 0.0)])
def test_estimator_is_zero_for_symmetric_weights(tied, alpha):
    m, th = _net(alpha=alpha, tied=tied)
    for jvp in ("closed", "device"):
        vals, g = JacobianHomeostasis(1.0, 50, jvp).sample(m, th, np.random.default_rng(2), SUB)
        assert np.max(np.abs(vals)) < 1e-12          # ‖Jε‖² − εᵀJ²ε = 0 for every ε when J = Jᵀ
        if tied:                                      # W and Bᵀ are one parameter: the blocks cancel
            assert np.max(np.abs(g)) < 1e-12
    # untied: a single draw's gradient is noise (J·εεᵀ − εεᵀ·J ≠ 0), its mean is 4A = 0
    S = 20000
    _, g = JacobianHomeostasis(1.0, S, "closed").sample(m, th, np.random.default_rng(2), SUB)
    assert np.max(np.abs(g)) < _grad_tol(m, th, S)
    assert JacobianHomeostasis.exact(m, th) < 1e-28
    assert symmetry_ratio(m.recurrent_matrix(th)) == pytest.approx(1.0)


def _want_grad(m, th):
    """4A on every recurrent block: W_{k+1} gets 2(W_{k+1} − B_kᵀ), B_k gets 2(B_k − W_{k+1}ᵀ)."""
    out = {}
    for k in range(m.L - 1):
        W, B = m.view(th, f"W{k + 1}"), m.view(th, f"B{k}")
        out[f"W{k + 1}"], out[f"B{k}"] = 2 * (W - B.T), 2 * (B - W.T)
    return out


def test_gradient_estimate_mean_is_4A():
    # E[2(v₁εᵀ − εv₁ᵀ)] = 2(J − Jᵀ) = 4A; check on the θ blocks W1 and B0 (not ÷N, not ×λ)
    m, th = _net()
    S = 20000
    _, g = JacobianHomeostasis(1.0, S, "closed").sample(m, th, np.random.default_rng(3), SUB)
    want = _want_grad(m, th)
    want_W1, want_B0 = want["W1"], want["B0"]
    tol = _grad_tol(m, th, S)
    np.testing.assert_allclose(m.view(g, "W1"), want_W1, atol=tol)
    np.testing.assert_allclose(m.view(g, "B0"), want_B0, atol=tol)
    for k in ("W0", "b0", "b1", "Wout", "bout"):       # only recurrent blocks are touched
        assert not np.any(m.view(g, k))
    # the exact gradient lowers 2‖A‖²: one small step against it
    th2 = th.copy()
    m.view(th2, "W1")[...] -= 0.01 * want_W1
    m.view(th2, "B0")[...] -= 0.01 * want_B0
    assert JacobianHomeostasis.exact(m, th2) < JacobianHomeostasis.exact(m, th)


def test_symmetry_ratio_of_independent_weights_is_about_half():
    m, th = _net(sizes=(4, 120, 100, 3))
    assert 0.45 < symmetry_ratio(m.recurrent_matrix(th)) < 0.55


def test_loss_and_grad_normalisation():
    m, th = _net()
    h = JacobianHomeostasis(2.5, 7, "closed")
    L, g = h.loss_and_grad(m, th, np.random.default_rng(5))
    vals, graw = JacobianHomeostasis(1.0, 7, "closed").sample(m, th, np.random.default_rng(5))
    assert L == pytest.approx(vals.mean() / m.n_state)
    np.testing.assert_allclose(g, 2.5 * graw / m.n_state)


def test_homeostasis_makes_untied_training_more_symmetric():
    task = neurozo.tasks.get("digits")
    m = EnergyNet(sizes=[64, 32, 16, 10], tied=False, alpha=90.0, T1=60, tol=1e-4)
    th0 = m.init(np.random.default_rng(0))
    ratios = {}
    for lam in (0.0, 5.0):
        learner = EP(estimator="symmetric", beta=0.1, homeostasis=lam, lr=0.05, align_every=0)
        state = learner.init(th0, 0)
        rng = np.random.default_rng(1)
        prob = Problem(m, neurozo.substrates.get("ideal"), task.loss, np.random.default_rng(2))
        for _ in range(40):
            prob.set_batch(*task.batch(rng, 32))
            state, _, info = learner.step(state, prob)
        ratios[lam] = symmetry_ratio(m.recurrent_matrix(state.mean))
        if lam:
            assert np.isfinite(info["homeo_loss"]) and info["homeo_loss"] > 0
    assert ratios[5.0] > ratios[0.0] + 0.05, ratios


@pytest.mark.parametrize("kw, name", [({"lam": -1.0}, "lam"), ({"samples": 0}, "samples"), ({"jvp": "fd"}, "jvp")])
def test_bad_homeostasis_parameters(kw, name):
    with pytest.raises(ValueError, match=rf"^{name}="):
        JacobianHomeostasis(**kw)


def test_device_jvp_needs_a_substrate():
    m, th = _net()
    with pytest.raises(ValueError, match="^substrate="):
        JacobianHomeostasis(1.0, 3, "device").sample(m, th, np.random.default_rng(0))


@pytest.mark.parametrize("blocks", [1, 2])
def test_orthogonal_probes_with_N_draws_are_exact(blocks):
    # S = N orthogonal directions of length √N: Σεεᵀ/S = I, so the loss estimate's mean is
    # tr(JᵀJ) − tr(J²) = 2‖A‖²_F and the gradient estimate 4A, with no sampling error
    m, th = _net()
    N = m.n_state
    h = JacobianHomeostasis(1.0, blocks * N, "closed", probes="orthogonal")
    eps = np.concatenate(h.draw(m, np.random.default_rng(4)), axis=1)
    assert eps.shape == (blocks * N, N)
    np.testing.assert_allclose(eps.T @ eps / (blocks * N), np.eye(N), atol=1e-12)
    vals, g = h.sample(m, th, np.random.default_rng(4), SUB)
    assert vals.mean() == pytest.approx(JacobianHomeostasis.exact(m, th), rel=1e-10)
    want = _want_grad(m, th)
    for k, w in want.items():
        np.testing.assert_allclose(m.view(g, k), w, atol=1e-10)
    # Gaussian probes with the same number of draws are far from exact (the noise removed above)
    _, gg = JacobianHomeostasis(1.0, blocks * N, "closed").sample(m, th, np.random.default_rng(4), SUB)
    assert np.max(np.abs(m.view(gg, "W1") - want["W1"])) > 0.1 * np.max(np.abs(want["W1"]))


def test_orthogonal_probes_fewer_than_N_are_unbiased():
    # each ε is √N times a uniformly random unit vector: E[εεᵀ] = I, so S = 3 < N stays unbiased
    m, th = _net()
    R, S = 3000, 3
    h = JacobianHomeostasis(1.0, S, "closed", probes="orthogonal")
    rng = np.random.default_rng(5)
    gs = np.stack([h.sample(m, th, rng, SUB)[1] for _ in range(R)])
    se = gs.std(axis=0) / np.sqrt(R)
    mean = gs.mean(axis=0)
    for k, want in _want_grad(m, th).items():
        z = (m.view(mean, k) - want) / np.maximum(m.view(se, k), 1e-12)
        assert np.max(np.abs(z)) < 5.0, k        # 5 standard errors on each of ≈ 60 entries
    with pytest.raises(ValueError, match="^probes="):
        JacobianHomeostasis(1.0, 3, "closed", probes="sobol")

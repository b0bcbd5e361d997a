"""The fused CBO kernel (kernels/cbo.py): random streams, consensus, noise laws, determinism."""

import math

import numba
import numpy as np
import pytest
from scipy import stats

from kernels import cbo as K


def _direct_consensus(x, E, alpha):
    """softmax(−αE) computed the plain way (no log-sum-exp), NaN/inf → weight 0."""
    c = np.empty((x.shape[0], x.shape[2]))
    for m in range(x.shape[0]):
        ok = np.isfinite(E[m])
        w = np.zeros_like(E[m])
        w[ok] = np.exp(-alpha * (E[m, ok] - E[m, ok].min()))
        w /= w.sum()
        c[m] = w @ x[m]
    return c


# ---------------------------------------------------------------- random numbers
def test_normals_have_standard_normal_law():
    n = 1_000_000
    z = K.normals(7, 3, 1000, 1000).ravel()
    # standard errors for n draws: mean 1/√n, variance √(2/n), skewness √(6/n), kurtosis √(24/n); 5 SE bands
    assert abs(z.mean()) < 5 / math.sqrt(n)
    assert abs(z.var() - 1) < 5 * math.sqrt(2 / n)
    assert abs(stats.skew(z)) < 5 * math.sqrt(6 / n)
    assert abs(stats.kurtosis(z)) < 5 * math.sqrt(24 / n)
    # tails (the ziggurat's tail and wedge branches): P(|z| > 3) = 0.0026998, binomial SE
    p = 2 * stats.norm.sf(3)
    assert abs(np.mean(np.abs(z) > 3) - p) < 5 * math.sqrt(p * (1 - p) / n)
    assert stats.kstest(z[:200_000], "norm").pvalue > 1e-4


def test_uniforms_in_open_interval_and_streams_differ():
    u = K.uniforms(1, 0, 100, 1000)
    assert u.min() > 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 5 * math.sqrt(1 / 12 / u.size)
    a, b = K.normals(1, 0, 2, 100), K.normals(1, 1, 2, 100)
    assert not np.allclose(a[0], a[1]) and not np.allclose(a, b)
    assert np.array_equal(a, K.normals(1, 0, 2, 100))  # same key, same numbers
    # neighbouring streams are uncorrelated: |r| < 5/√n
    z = K.normals(3, 0, 200, 5000)
    r = np.corrcoef(z)[np.triu_indices(200, 1)]
    assert np.abs(r).max() < 5 / math.sqrt(5000)


# ---------------------------------------------------------------- consensus
def test_consensus_equals_direct_softmax():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 30, 7))
    E = rng.uniform(0, 3, (5, 30))
    for alpha in (0.0, 0.7, 5.0, 40.0):
        c, w = K.consensus(x, E, alpha)
        np.testing.assert_allclose(c[:, 0], _direct_consensus(x, E, alpha), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(w[:, 0].sum(axis=1), 1.0, rtol=1e-12)
    # α = 0: the plain mean
    np.testing.assert_allclose(K.consensus(x, E, 0.0)[0][:, 0], x.mean(axis=1), atol=1e-12)


def test_consensus_is_stable_for_huge_alpha_times_energy():
    # a naive exp(−αE) underflows to 0/0 here; log-sum-exp does not
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 10, 3))
    E = 1e6 + rng.uniform(0, 1, (2, 10))
    c, _ = K.consensus(x, E, 1e4)
    assert np.all(np.isfinite(c))


def test_consensus_tends_to_best_particle_as_alpha_grows():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 25, 6))
    E = rng.uniform(0, 1, (4, 25))
    b = E.argmin(axis=1)
    best = x[np.arange(4), b]
    Es = np.sort(E, axis=1)
    gap = Es[:, 1] - Es[:, 0]
    R = np.linalg.norm(x - best[:, None], axis=2).max(axis=1)
    for a in (1, 10, 100, 1e3, 1e4, 1e5):
        dist = np.linalg.norm(K.consensus(x, E, a)[0][:, 0] - best, axis=1)
        # c − x_b = Σ_k w_k (x_k − x_b), w_k / w_b ≤ e^{−α·gap}  ⇒  ‖c − x_b‖ ≤ (N − 1) e^{−α·gap} R
        assert np.all(dist <= np.minimum(R, 24 * np.exp(-a * gap) * R) + 1e-12)
    assert dist.max() < 1e-12


def test_nan_and_inf_objective_values_get_zero_weight():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 12, 4))
    E = rng.uniform(0, 1, (3, 12))
    E[0, [1, 5]] = np.nan
    E[1, 2] = np.inf
    E[2, :] = np.nan  # nothing finite: the consensus keeps what it held
    c, w = K.consensus(x, E, 3.0)
    assert w[0, 0, 1] == 0 and w[0, 0, 5] == 0 and w[1, 0, 2] == 0
    np.testing.assert_allclose(c[:2, 0], _direct_consensus(x[:2], E[:2], 3.0), atol=1e-12)
    np.testing.assert_allclose(c[2, 0], x[2].mean(axis=0))
    xs = x.copy()
    K.cbo_step(xs, E, 3.0, noise="anisotropic", sigma=1.0, seed=1)
    assert np.all(np.isfinite(xs))


# ---------------------------------------------------------------- ESS
def test_ess_alpha_reaches_eta_n():
    rng = np.random.default_rng(4)
    E = rng.exponential(1.0, (6, 50)) * rng.uniform(0.1, 10, (6, 1))
    for eta in (0.1, 0.5, 0.9):
        a = K.ess_alpha(E, eta=eta, rtol=1e-4)
        ess = K.effective_sample_size(E, a)
        np.testing.assert_allclose(ess, eta * 50, atol=1e-4 * 50)
    # ESS falls monotonically from N (α = 0) as α grows
    grid = np.logspace(-3, 3, 40)
    ess = np.array([K.effective_sample_size(E[:1], a)[0] for a in grid])
    assert np.all(np.diff(ess) <= 1e-9) and abs(K.effective_sample_size(E[:1], 0.0)[0] - 50) < 1e-9


# ---------------------------------------------------------------- noise laws
def _replicas(M, N, d, seed=0):
    """M identical runs: the noise of one particle across runs is an i.i.d. sample."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=(N, d))
    E1 = rng.uniform(0, 1, N)
    return np.ascontiguousarray(np.broadcast_to(x1, (M, N, d))), np.ascontiguousarray(np.broadcast_to(E1, (M, N)))


@pytest.mark.parametrize("noise", ["isotropic", "anisotropic"])
def test_euler_maruyama_mean_and_variance(noise):
    M, lam, dt, sigma, alpha = 20000, 0.7, 0.05, 1.3, 2.0
    x, E = _replicas(M, 5, 3)
    x0 = x.copy()
    out = K.cbo_step(x, E, alpha, lam=lam, dt=dt, sigma=sigma, noise=noise, seed=11)
    D = x0 - out.consensus
    mean_expected = x0 - lam * dt * D
    sd = sigma * math.sqrt(dt) * (np.abs(D) if noise == "anisotropic" else np.linalg.norm(D, axis=-1, keepdims=True))
    z = (x - mean_expected) / sd                      # should be i.i.d. N(0, 1) over the M replicas
    assert np.abs(z.mean(axis=0)).max() < 5 / math.sqrt(M)
    assert np.abs(z.var(axis=0) - 1).max() < 5 * math.sqrt(2 / M)


@pytest.mark.parametrize("noise,factor", [("covariance", 1.0), ("sampling", 3.0)])
def test_covariance_noise_has_weighted_covariance(noise, factor):
    # factor = 1 + α for the sampling mode (α = 2)
    M, dt, sigma, alpha, d = 20000, 0.02, 0.9, 2.0, 3
    x, E = _replicas(M, 6, d, seed=5)
    x0 = x.copy()
    out = K.cbo_step(x, E, alpha, lam=0.0, dt=dt, sigma=sigma, noise=noise, seed=4)
    c, w = out.consensus[0, 0], out.weights[0, 0]
    C = ((x0[0] - c).T * w) @ (x0[0] - c)
    expected = sigma ** 2 * 2 * dt * factor * C
    S = np.cov((x[:, 2] - x0[:, 2]).T)
    # SE of a sample covariance entry: √((C_ii C_jj + C_ij²)/M)
    se = np.sqrt((np.outer(np.diag(expected), np.diag(expected)) + expected ** 2) / M)
    assert np.all(np.abs(S - expected) < 5 * se)


def test_consensus_hopping_law():
    M, sigma = 20000, 0.4
    x, E = _replicas(M, 4, 2)
    out = K.cbo_step(x, E, 5.0, sigma=sigma, scheme="hopping", seed=2)
    z = (x - out.consensus) / sigma
    assert np.abs(z.mean(axis=0)).max() < 5 / math.sqrt(M)
    assert np.abs(z.var(axis=0) - 1).max() < 5 * math.sqrt(2 / M)


def test_polarized_consensus_limits():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(2, 15, 3))
    E = rng.uniform(0, 1, (2, 15))
    c, _ = K.consensus(x, E, 4.0)
    cp, _ = K.consensus(x, E, 4.0, polar="gaussian", kappa=1e8)   # flat kernel: the global consensus
    np.testing.assert_allclose(cp, np.repeat(c, 15, axis=1), atol=1e-10)
    cp, _ = K.consensus(x, E, 4.0, polar="gaussian", kappa=1e-3)   # sharp kernel: each particle itself
    np.testing.assert_allclose(cp, x, atol=1e-10)
    cl, _ = K.consensus(x, E, 4.0, polar="laplace", kappa=0.5, kernel_alpha=False)
    for i in range(15):  # direct computation for particle i of run 0
        lw = -4.0 * E[0] - np.linalg.norm(x[0] - x[0, i], axis=1) / 0.5
        w = np.exp(lw - lw.max())
        np.testing.assert_allclose(cl[0, i], w @ x[0] / w.sum(), atol=1e-12)


# ---------------------------------------------------------------- determinism
def test_layouts_and_thread_counts_give_identical_results():
    rng = np.random.default_rng(8)
    x = rng.uniform(-3, 3, (8, 16, 5))
    E = (x ** 2).sum(-1)
    E[1, 3] = np.nan
    idx = np.argsort(rng.random((8, 16)), axis=1)[:, :6]
    Eb = np.take_along_axis(E, idx, axis=1)
    results = []
    threads = numba.get_num_threads()
    try:
        for nt in sorted({1, threads}):
            numba.set_num_threads(nt)
            for layout in ("runs", "particles"):
                for noise, polar in (("anisotropic", "none"), ("isotropic", "gaussian"), ("covariance", "none")):
                    xs = x.copy()
                    out = K.cbo_step(xs, Eb, 2.0, idx=idx, mov=None, noise=noise, polar=polar, seed=5, step=3,
                                     layout=layout, sigma=0.8)
                    results.append((noise, polar, xs, out.consensus.copy()))
    finally:
        numba.set_num_threads(threads)
    by_kind = {}
    for noise, polar, xs, c in results:
        by_kind.setdefault((noise, polar), []).append((xs, c))
    for runs in by_kind.values():
        for xs, c in runs[1:]:
            assert np.array_equal(xs, runs[0][0]) and np.array_equal(c, runs[0][1])


def test_partial_batch_moves_only_the_batch_and_inactive_runs_stay():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(3, 10, 2))
    idx = np.array([[0, 1, 2], [3, 4, 5], [7, 8, 9]])
    E = rng.uniform(size=(3, 3))
    active = np.array([True, False, True])
    xs = x.copy()
    K.cbo_step(xs, E, 1.0, idx=idx, active=active, noise="anisotropic", sigma=1.0)
    moved = np.any(xs != x, axis=2)
    expect = np.zeros((3, 10), bool)
    expect[0, :3] = expect[2, 7:] = True
    assert np.array_equal(moved, expect)


def test_kernel_rejects_bad_arrays():
    x = np.zeros((2, 3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="x is invalid"):
        K.cbo_step(x, np.zeros((2, 3)), 1.0)
    with pytest.raises(ValueError, match="energy shape"):
        K.cbo_step(np.zeros((2, 3, 4)), np.zeros((2, 5)), 1.0)

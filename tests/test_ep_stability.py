"""Linear stability of the energy model's relaxation (``EnergyNet.linear_stability``), the distance
of a stopped state from where the relaxation settles (``EnergyNet.settle_offset``), and the EP
learner's ``spectrum_every`` and ``offset_every`` diagnostics.

The Jacobian J = W_rec·diag(φ'(u)) − I is checked against finite differences of the relaxation
itself (F(u) = (u' − u)/dt from one Euler step on a float64 substrate), the contraction ρ against
the residual's decay rate late in a relaxation, and the offset gain ‖J⁻¹‖ against the distance to
the fixed point per unit residual. Tolerances: finite differences with h = 1e-6 (central) are exact
to ≈ h² ≈ 1e-12 relative, so 1e-6 is rounding slack; the decay checks leave the second-slowest mode
(ρ₂/ρ₁)ᵗ to fade: their tolerances are ten times the error measured where they were written (below)."""

import warnings

import numpy as np
import pytest

import neurozo
from neurozo.learners.base import Problem
from neurozo.learners.ep import EP
from neurozo.models.energy import EnergyNet
from neurozo.substrates.base import Substrate
from neurozo.substrates.ideal import FloatSynapse, RateNeuron

#: exact float64 reads (the registry's "ideal" reads in float32, too coarse for finite differences)
IDEAL = Substrate(FloatSynapse("float64"), RateNeuron())


def _fixed_point(m, th, x, steps=4000):
    rng = np.random.default_rng(0)
    prog = m.program(th[None], IDEAL, rng)
    rel = m.relax(prog, x, IDEAL, rng, steps=steps, tol=1e-13)
    return prog, [a[0] for a in rel.u]


def _vector_field(m, prog, x, u):
    """F(u) per example (B, N), read off one Euler step of the model's own relaxation."""
    rng = np.random.default_rng(0)
    nxt = m.relax(prog, x, IDEAL, rng, steps=1, u0=u, tol=0.0)
    return np.concatenate([(a[0] - b) / m.dt for a, b in zip(nxt.u, u)], axis=-1)


def _split(m, v):
    return list(np.split(v, np.cumsum(m.state_sizes)[:-1], axis=-1))


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("sizes", [[64, 16, 10], [64, 12, 8, 10]])
def test_jacobian_matches_finite_differences_of_the_relaxation(tied, sizes):
    m = EnergyNet(sizes, dt=0.5, T1=100, tol=1e-4, tied=tied, alpha=0.0 if tied else 90.0)
    th = m.init(np.random.default_rng(3))
    x = np.random.default_rng(4).uniform(0, 1, (3, 64))
    prog, u = _fixed_point(m, th, x, steps=100)       # any state will do; near a fixed point is where it is used
    N, h = m.n_state, 1e-6
    U = np.concatenate(u, axis=-1)
    J = np.zeros((3, N, N))
    for i in range(N):
        e = np.zeros(N)
        e[i] = h
        fp = _vector_field(m, prog, x, _split(m, U + e))
        fm = _vector_field(m, prog, x, _split(m, U - e))
        J[:, :, i] = (fp - fm) / (2 * h)
    rho, g = m.linear_stability(m.recurrent_matrix(th), u)
    rho_fd = np.abs(1 + m.dt * np.linalg.eigvals(J)).max(-1)
    g_fd = 1 / np.linalg.svd(J, compute_uv=False)[:, -1]
    np.testing.assert_allclose(rho, rho_fd, rtol=1e-6)
    np.testing.assert_allclose(g, g_fd, rtol=1e-6)
    assert np.all(rho < 1) and np.all(g > 1)        # stable there; the offset exceeds the residual


@pytest.mark.parametrize("sizes, t", [([64, 16, 10], 100), ([64, 12, 8, 10], 80)])
def test_contraction_and_offset_gain_describe_the_end_of_a_relaxation(sizes, t):
    # a tied network: real spectrum, so late in the relaxation the slowest mode dominates, the residual
    # shrinks by ρ a step and the state's offset per unit residual tends to 1/|λ_slow| = dt/(1 − ρ) ≤ ‖J⁻¹‖
    m = EnergyNet(sizes, dt=0.5, T1=4000, tol=1e-13)
    th = m.init(np.random.default_rng(3))
    x = np.random.default_rng(0).uniform(0, 1, (3, 64))
    prog, u = _fixed_point(m, th, x)
    rho, g = m.linear_stability(m.recurrent_matrix(th), u)
    assert np.all(rho > 0.8)              # slow enough that t steps leave the slow mode well above rounding
    rng = np.random.default_rng(0)
    r1 = m.relax(prog, x, IDEAL, rng, steps=t, tol=0.0).residual[0]
    r2 = m.relax(prog, x, IDEAL, rng, steps=t + 20, tol=0.0).residual[0]
    # measured when written: the rate (r2/r1)^(1/20) within 1.4e-5 of ρ (relative); 1e-3 allowed
    np.testing.assert_allclose((r2 / r1) ** (1 / 20), rho, rtol=1e-3)
    ut = [a[0] for a in m.relax(prog, x, IDEAL, rng, steps=t, tol=0.0).u]
    F = np.linalg.norm(_vector_field(m, prog, x, ut), axis=-1)
    off = np.linalg.norm(np.concatenate([a - b for a, b in zip(ut, u)], axis=-1), axis=-1)
    assert np.all(off <= g * F * (1 + 1e-6))                                   # the first-order bound
    np.testing.assert_allclose(off / F, m.dt / (1 - rho), rtol=5e-3)            # measured within 4.9e-4


def test_settle_offset_on_a_noiseless_substrate_is_the_distance_to_the_fixed_point():
    m = EnergyNet([64, 16, 10], dt=0.5, T1=4000, tol=1e-13)
    th = m.init(np.random.default_rng(3))
    x = np.random.default_rng(0).uniform(0, 1, (4, 64))
    prog, ustar = _fixed_point(m, th, x)
    rng = np.random.default_rng(0)
    stop = m.relax(prog, x, IDEAL, rng, steps=4000, tol=1e-3)            # stopped at a residual of 1e-3
    u = [a[0] for a in stop.u]
    before = IDEAL.costs.snapshot()
    off, spread = m.settle_offset(prog, x, stop.u, IDEAL, rng, steps=4000)
    assert IDEAL.costs.snapshot() == before                              # the continuation is not counted
    N = m.n_state
    true = np.linalg.norm(np.concatenate([a - b for a, b in zip(u, ustar)], axis=-1), axis=-1) / np.sqrt(N)
    assert np.all(spread[0] < 1e-12) and np.all(true > 1e-5)
    np.testing.assert_allclose(off[0], true, rtol=1e-8)
    _, g = m.linear_stability(m.recurrent_matrix(th), ustar)
    F = np.linalg.norm(_vector_field(m, prog, x, u), axis=-1) / np.sqrt(N)
    assert np.all(off[0] <= g * F * 1.01)          # first order in a residual of 1e-3: 1 % slack


@pytest.mark.parametrize("tied", [True, False])
def test_settle_offset_of_a_settled_noisy_state_is_its_scatter_and_of_an_early_stop_more(tied):
    # PCM read noise: a state relaxed to its end is a draw from the settled scatter, so offset/spread ≈ 1
    # (≈ √((1 + 1/W_eff)/(1 − 1/W_eff)) for W_eff independent samples in the 150-step window: 1.01–1.03
    # seen when written); per example the ratio's 5–95 % range was 0.83–1.36, so the median of 64 has a standard
    # error ≈ 0.025, and 0.15 is six of them. Five steps from 0 leave the state far from settled.
    m = EnergyNet([64, 32, 10], T1=150, dt=0.5, tol=1e-4, tied=tied, alpha=0.0 if tied else 90.0,
                  convergence="read_noise")
    sub = neurozo.substrates.get("pcm")
    x, _ = neurozo.tasks.get("digits").batch(np.random.default_rng(0), 64)
    th = 3 * m.init(np.random.default_rng(1))
    rng = np.random.default_rng(2)
    prog = m.program(th[None], sub, rng)
    for steps, lo, hi in ((150, 0.85, 1.15), (5, 4.0, np.inf)):
        rel = m.relax(prog, x, sub, rng, steps=steps)
        off, spread = m.settle_offset(prog, x, rel.u, sub, np.random.default_rng(3), 300)
        assert off.shape == spread.shape == (1, 64) and np.all(spread > 0)
        assert lo <= np.median(off / spread) <= hi
    with pytest.raises(ValueError, match="steps"):
        m.settle_offset(prog, x, rel.u, sub, rng, steps=1)


def test_linear_stability_rejects_a_matrix_of_the_wrong_size():
    m = EnergyNet([64, 16, 10])
    with pytest.raises(ValueError, match="M="):
        m.linear_stability(np.eye(5), [np.zeros((2, 16)), np.zeros((2, 10))])


def _problem(model, substrate, seed=0):
    task = neurozo.tasks.get("digits")
    prob = Problem(model, neurozo.substrates.get(substrate), task.loss, np.random.default_rng(seed))
    prob.set_batch(*task.batch(np.random.default_rng(seed), 16))
    return prob


DIAGNOSTICS = {"spectrum_every": {"contraction", "contraction_max", "offset_gain", "offset_gain_max"},
               "offset_every": {"state_offset", "state_offset_mean", "state_offset_max", "state_spread"}}


@pytest.mark.parametrize("diagnostic", sorted(DIAGNOSTICS))
@pytest.mark.parametrize("substrate, align_every", [("ideal", 1), ("pcm", 1), ("pcm", 0)])
def test_each_diagnostic_is_logged_and_changes_nothing_else(substrate, align_every, diagnostic):
    model = EnergyNet([64, 24, 10], T1=40, tol=1e-4, tied=False, alpha=90.0)
    th0 = model.init(np.random.default_rng(0))

    def steps(**kw):
        ep = EP(estimator="symmetric", beta=0.1, T2=20, align_every=align_every, **kw)
        st, prob, infos = ep.init(th0, 0), _problem(model, substrate), []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for _ in range(3):
                st, _, info = ep.step(st, prob)
                infos.append(info)
        return st.mean, infos, prob.substrate.costs.snapshot()

    plain, a, costs_a = steps()
    diag, b, costs_b = steps(**{diagnostic: 2})
    np.testing.assert_array_equal(plain, diag)           # no random draw taken from the run, no update changed
    assert costs_a == costs_b                            # nor any cost counted
    keys = DIAGNOSTICS[diagnostic]
    for step, (ia, ib) in enumerate(zip(a, b)):
        assert not keys & set(ia)
        assert {k: v for k, v in ib.items() if k not in keys} == ia
        assert (keys <= set(ib)) == (step % 2 == 0)
        if step % 2 == 0 and diagnostic == "spectrum_every":
            assert 0 < ib["contraction"] <= ib["contraction_max"] and 0 < ib["offset_gain"] <= ib["offset_gain_max"]
        if step % 2 == 0 and diagnostic == "offset_every":
            assert 0 <= ib["state_offset"] <= ib["state_offset_max"] and ib["state_spread"] >= 0
            assert ib["state_offset_mean"] <= ib["state_offset_max"]
            assert (ib["state_spread"] > 0) == (substrate == "pcm")        # only the device's reads scatter
    # on the ideal substrate the diagnostic is θ's: the median over the batch of linear_stability
    if substrate == "ideal" and diagnostic == "spectrum_every":
        prob = _problem(model, substrate)
        rng = prob.device_rng
        prog = model.program(th0[None], prob.substrate, rng)
        free = model.relax(prog, np.asarray(prob.x), prob.substrate, rng)
        rho, g = model.linear_stability(model.recurrent_matrix(th0), [u[0] for u in free.u])
        assert b[0]["contraction"] == pytest.approx(np.median(rho), rel=1e-12)
        assert b[0]["offset_gain_max"] == pytest.approx(np.max(g), rel=1e-12)


@pytest.mark.parametrize("field, default, bad", [("spectrum_every", 0, -1), ("offset_every", 0, -1),
                                                 ("offset_steps", 300, 1)])
def test_diagnostics_are_checked_and_keep_the_keys_of_stored_runs(field, default, bad):
    with pytest.raises(ValueError, match=field):
        EP(**{field: bad})
    cfg = dict(task="digits", model={"name": "energy", "sizes": [64, 16, 10]}, budget=100)
    plain = neurozo.build(learner={"name": "ep"}, **cfg)
    same = neurozo.build(learner={"name": "ep", field: default}, **cfg)
    on = neurozo.build(learner={"name": "ep", field: 50}, **cfg)
    assert field not in plain.config["learner"] and plain.key == same.key != on.key

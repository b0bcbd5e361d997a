"""EP relaxation kernel and the layered recurrent (energy) model: layout, init by angle α,
relaxation on a substrate, complex reads, convergence reporting, bad input."""

import warnings

import numpy as np
import pytest

import neurozo
from kernels import activations as act_k
from kernels import ep as ep_k
from neurozo.models.energy import EnergyNet
from neurozo.models.population import LowRank, Members


def _ideal64():
    return neurozo.substrates.get("ideal", dtype="float64")


# ----------------------------------------------------------------------------- kernel
@pytest.mark.parametrize("name", ["ep_sigmoid", "sigmoid", "tanh", "hard_sigmoid"])
def test_phi_matches_activation_kernels(name):
    z = np.linspace(-3, 3, 101)
    np.testing.assert_allclose(ep_k.phi(name, z), act_k.apply(name, z), rtol=1e-12, atol=1e-15)
    h = 1e-6
    zz = z[(np.abs(z) > 1e-3) & (np.abs(z - 1) > 1e-3)]  # away from hard_sigmoid's kinks
    fd = (ep_k.phi(name, zz + h) - ep_k.phi(name, zz - h)) / (2 * h)
    np.testing.assert_allclose(ep_k.phi_prime(name, zz), fd, rtol=1e-6, atol=1e-8)


def test_complex_phi_is_holomorphic_extension():
    z = np.array([0.3 + 0.2j, -1.0 - 0.5j, 2.0 + 0.1j])
    s = 1 / (1 + np.exp(-(4 * z - 2)))
    np.testing.assert_allclose(ep_k.phi("ep_sigmoid", z), s, rtol=1e-13)
    np.testing.assert_allclose(ep_k.phi("tanh", z), np.tanh(z), rtol=1e-13)
    with pytest.raises(ValueError, match="activation='hard_sigmoid'"):
        ep_k.phi("hard_sigmoid", z)


@pytest.mark.parametrize("cplx", [False, True])
def test_relax_update_matches_numpy(cplx):
    rng = np.random.default_rng(0)
    shape = (2, 5, 7)
    u = rng.standard_normal(shape) + (1j * rng.standard_normal(shape) if cplx else 0)
    d = rng.standard_normal(shape) + (1j * rng.standard_normal(shape) if cplx else 0)
    u, d = np.ascontiguousarray(u), np.ascontiguousarray(d)
    r = np.empty_like(u)
    res = np.full(shape[:-1], 0.5)
    u_ref = u + 0.3 * (d - u)
    res_ref = 0.5 + np.sum(np.abs(d - u) ** 2, axis=-1)
    ep_k.relax_update(u, d, r, res, 0.3, "ep_sigmoid")
    np.testing.assert_allclose(u, u_ref, rtol=1e-14)
    np.testing.assert_allclose(r, 1 / (1 + np.exp(-(4 * u_ref - 2))), rtol=1e-13)
    np.testing.assert_allclose(res, res_ref, rtol=1e-13)


def test_relax_update_parallel_equals_serial():
    # the parallel and serial drivers run the same row arithmetic: bitwise equal results
    rng = np.random.default_rng(1)
    rows, n = 300, ep_k.PARALLEL_MIN // 300 + 2
    u0 = rng.standard_normal((rows, n))
    d = rng.standard_normal((rows, n))
    out = []
    for fn in (ep_k._relax_real, ep_k._relax_real_serial):
        u, r, res = u0.copy(), np.empty_like(u0), np.zeros(rows)
        fn(u, d, r, res, 1.0, 0)
        out.append((u, r, res))
    for a, b in zip(*out):
        assert np.array_equal(a, b)


def test_relax_update_rejects_bad_arrays():
    u = np.zeros((2, 3))
    with pytest.raises(ValueError, match="drive"):
        ep_k.relax_update(u, np.zeros((2, 4)), np.zeros((2, 3)), np.zeros(2), 1.0, "ep_sigmoid")
    with pytest.raises(ValueError, match="activation='relu'"):
        ep_k.relax_update(u, np.zeros((2, 3)), np.zeros((2, 3)), np.zeros(2), 1.0, "relu")


# ----------------------------------------------------------------------------- layout and init
def test_views_tied_and_untied():
    tied = EnergyNet(sizes=[4, 5, 6, 3])
    untied = EnergyNet(sizes=[4, 5, 6, 3], tied=False, alpha=90)
    # state layers 5, 6 and the 3 output units; feedback 6→5 and 3→6; readout 3→3
    assert tied.state_sizes == [5, 6, 3] and tied.views["W2"][1] == (3, 6)
    assert "B0" not in tied.views and untied.views["B0"][1] == (5, 6) and untied.views["B1"][1] == (6, 3)
    assert untied.n_params == tied.n_params + 5 * 6 + 6 * 3
    assert tied.views["Wout"][1] == (3, 3) and tied.io_shape == (4, 3)
    th = tied.init(np.random.default_rng(0))
    np.testing.assert_array_equal(tied.feedback(th, 1), tied.view(th, "W2").T)
    # tied: the feedback's gradient lands on W_{k+1}ᵀ
    g = tied.pack_grad([np.zeros((5, 4)), np.zeros((6, 5)), np.zeros((3, 6))], [np.zeros(5), np.zeros(6), np.zeros(3)],
                       [np.ones((5, 6)), 2 * np.ones((6, 3))], np.zeros((3, 3)), np.zeros(3))
    np.testing.assert_array_equal(tied.view(g, "W1"), np.ones((6, 5)))
    np.testing.assert_array_equal(tied.view(g, "W2"), 2 * np.ones((3, 6)))


def test_alpha_init_angle():
    # B = sin α·B' + cos α·W_{k+1}ᵀ with B' drawn like W_{k+1}ᵀ: cos∠(B, Wᵀ) ≈ cos α (sampling
    # error of the inner product of two independent 200×150 uniform matrices ≈ 1/√(3·10⁴) ≈ 0.006)
    for alpha in (0.0, 45.0, 90.0):
        m = EnergyNet(sizes=[10, 200, 150, 3], tied=False, alpha=alpha)
        th = m.init(np.random.default_rng(2))
        B, Wt = m.view(th, "B0"), m.view(th, "W1").T
        cos = np.sum(B * Wt) / np.linalg.norm(B) / np.linalg.norm(Wt)
        assert abs(cos - np.cos(np.deg2rad(alpha))) < 0.03, (alpha, cos)
        assert abs(np.linalg.norm(B) / np.linalg.norm(Wt) - 1) < 0.03
    m0 = EnergyNet(sizes=[3, 4, 5, 2], tied=False, alpha=0.0)
    th = m0.init(np.random.default_rng(0))
    np.testing.assert_allclose(m0.view(th, "B0"), m0.view(th, "W1").T)


# ----------------------------------------------------------------------------- relaxation
def _net(seed=0, **kw):
    kw.setdefault("T1", 2000)
    kw.setdefault("tol", 1e-12)
    m = EnergyNet(sizes=[5, 7, 6, 3], **kw)
    rng = np.random.default_rng(seed)
    th = m.init(rng)
    x = rng.random((4, 5))
    y = rng.integers(0, 3, 4)
    return m, th, x, y


def _numpy_relax(m, th, x, steps):
    W = [m.view(th, f"W{k}") for k in range(m.L)]
    b = [m.view(th, f"b{k}") for k in range(m.L)]
    Bk = [m.feedback(th, k) for k in range(m.L - 1)]
    u = [np.zeros((len(x), n)) for n in m.state_sizes]
    for _ in range(steps):
        r = [1 / (1 + np.exp(-(4 * a - 2))) for a in u]
        new = []
        for k in range(m.L):
            d = (x if k == 0 else r[k - 1]) @ W[k].T + b[k]
            if k < m.L - 1:
                d = d + r[k + 1] @ Bk[k].T
            new.append(d)
        u = new
    return u


@pytest.mark.parametrize("tied", [True, False])
def test_free_relaxation_reaches_the_fixed_point(tied):
    m, th, x, _ = _net(tied=tied, alpha=0.0 if tied else 90.0)
    sub = _ideal64()
    rng = np.random.default_rng(0)
    prog = m.program(th[None], sub, rng)
    rel = m.relax(prog, x, sub, rng)
    assert rel.converged.all() and rel.steps < m.T1
    ref = _numpy_relax(m, th, x, rel.steps)
    for a, b in zip(rel.u, ref):
        np.testing.assert_allclose(a[0], b, rtol=1e-10, atol=1e-12)
    # fixed point: u = W·r + b (+ B·r)
    ref2 = _numpy_relax(m, th, x, rel.steps + 1)
    for a, b in zip(rel.u, ref2):
        np.testing.assert_allclose(a[0], b, atol=1e-10)


def test_forward_population_and_low_rank():
    m, th, x, _ = _net()
    sub = _ideal64()
    rng = np.random.default_rng(0)
    th2 = th + 0.1 * rng.standard_normal(th.shape)
    both = m.forward(Members(np.stack([th, th2])), x, sub, rng)
    assert both.shape == (2, 4, 3)
    for i, t in enumerate((th, th2)):
        np.testing.assert_allclose(both[i], m.forward(Members(t[None]), x, sub, rng)[0], rtol=1e-10)
    A, B = rng.standard_normal((1, 6, 2)), rng.standard_normal((1, 7, 2))
    lr = LowRank(th, {"W1": (A, B)}, 0.05, np.zeros((1, m.n_params)))
    full = th.copy()
    m.view(full, "W1")[...] += 0.05 * A[0] @ B[0].T
    np.testing.assert_allclose(m.forward(lr, x, sub, rng), m.forward(Members(full[None]), x, sub, rng), rtol=1e-10)


def test_complex_read_is_two_real_reads():
    m, th, x, _ = _net()
    sub = neurozo.substrates.get("ideal")        # float32 synapse
    rng = np.random.default_rng(0)
    prog = m.program(th[None], sub, rng)
    z = rng.standard_normal((1, 4, 7)) + 1j * rng.standard_normal((1, 4, 7))
    macs0 = sub.costs.counts["macs"]
    y = m.read(sub, prog.fwd[1], z, rng)
    assert sub.costs.counts["macs"] - macs0 == 2 * 4 * 7 * 6     # real and imaginary reads
    np.testing.assert_allclose(y.real, m.read(sub, prog.fwd[1], z.real.copy(), rng), rtol=1e-6)
    np.testing.assert_allclose(y.imag, m.read(sub, prog.fwd[1], z.imag.copy(), rng), rtol=1e-6)


def test_every_product_goes_through_the_synapse():
    # one relaxation step: L forward + (L−1) feedback reads, costed as MACs on the substrate
    # (state layers 7, 6, 3 of sizes [5, 7, 6, 3])
    m, th, x, _ = _net(T1=1)
    sub = _ideal64()
    rng = np.random.default_rng(0)
    prog = m.program(th[None], sub, rng)
    sub.costs.reset()
    m.relax(prog, x, sub, rng, steps=1)
    B = len(x)
    assert sub.costs.counts["macs"] == B * ((5 * 7 + 7 * 6 + 6 * 3) + (6 * 7 + 3 * 6))
    assert sub.costs.counts["neuron_updates"] == B * (7 + 6 + 3)


def test_early_stop_is_per_example():
    # an example that has converged stops relaxing: the batch gives each example's own relaxation,
    # and the costs are the sum of the examples' own costs
    m, th, x, _ = _net(T1=500, tol=1e-9)
    x = np.concatenate([x, 3 * x])            # examples with different convergence times
    sub = _ideal64()
    rng = np.random.default_rng(0)
    prog = m.program(th[None], sub, rng)
    sub.costs.reset()
    rel = m.relax(prog, x, sub, rng)
    batch_macs = sub.costs.counts["macs"]
    assert rel.converged.all()
    sub.costs.reset()
    steps = []
    for i in range(len(x)):
        one = m.relax(prog, x[i:i + 1], sub, rng)
        steps.append(one.steps)
        for a, b in zip(rel.u, one.u):
            np.testing.assert_allclose(a[0, i], b[0, 0], rtol=1e-12, atol=1e-14)
    assert len(set(steps)) > 1 and rel.steps == max(steps)
    assert sub.costs.counts["macs"] == batch_macs


def test_nonconvergence_is_reported():
    m, th, x, _ = _net(T1=2, tol=1e-8)
    sub = _ideal64()
    with pytest.warns(RuntimeWarning, match="did not converge within T1=2"):
        m.forward(Members(th[None]), x, sub, np.random.default_rng(0))
    rel = m.last_relaxation
    assert not rel.converged.any() and rel.max_residual > 1e-8 and rel.steps == 2


def test_converged_forward_does_not_warn():
    m, th, x, _ = _net()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.forward(Members(th[None]), x, _ideal64(), np.random.default_rng(0))


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kw, name", [
    ({"T1": 0}, "T1"), ({"sizes": [4]}, "sizes"), ({"sizes": [4, 0, 3]}, r"sizes\[1\]"),
    ({"activation": "relu"}, "activation"), ({"alpha": 30.0}, "alpha"),
    ({"tied": False, "alpha": -1.0}, "alpha"), ({"dt": 0.0}, "dt"), ({"dt": 1.5}, "dt"),
    ({"tol": -1e-3}, "tol"), ({"init_scale": 0.0}, "init_scale"), ({"tied": "yes"}, "tied"),
])
def test_bad_model_parameters(kw, name):
    with pytest.raises(ValueError, match=rf"^{name}="):
        EnergyNet(**kw)


def test_bad_inputs_to_forward_and_relax():
    m, th, x, _ = _net()
    sub = _ideal64()
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"^x="):
        m.forward(Members(th[None]), np.zeros((4, 6)), sub, rng)
    with pytest.raises(ValueError, match=r"^population="):
        m.forward(Members(np.zeros((1, m.n_params + 1))), x, sub, rng)
    prog = m.program(th[None], sub, rng)
    with pytest.raises(ValueError, match=r"^y="):
        m.relax(prog, x, sub, rng, beta=0.1)
    with pytest.raises(ValueError, match=r"^steps="):
        m.relax(prog, x, sub, rng, steps=0)
    spiking = neurozo.substrates.get("lif") if "lif" in neurozo.substrates.names() else None
    if spiking is not None:
        with pytest.raises(ValueError, match=r"^substrate="):
            m.program(th[None], spiking, rng)


def test_registered_and_buildable():
    b = neurozo.build(task="digits", model={"name": "energy", "sizes": [64, 16, 10]},
                      learner={"name": "ep", "estimator": "symmetric"}, budget=10)
    assert isinstance(b.model, EnergyNet) and b.learner.evals_per_step == 3

"""Quantisation kernels and the quantized synapse (issue 4)."""

import numba
import numpy as np
import pytest

import neurozo
from kernels import quant as qk
from neurozo import substrates
from neurozo.substrates.weights import DenseWeights, LowRankWeights


@pytest.mark.parametrize("bits", [2, 4, 8, 16])
@pytest.mark.parametrize("per_channel", [False, True])
def test_round_to_nearest_error_bound(bits, per_channel):
    rng = np.random.default_rng(bits)
    w = rng.normal(size=(3, 17, 23)) * rng.uniform(0.1, 3, size=(3, 17, 1))
    s = qk.symmetric_scale(w, bits, per_channel)
    q = qk.quantize(w, s, bits)
    assert np.abs(q).max() <= qk.qmax(bits)
    err = np.abs(qk.dequantize(q, s, np.float64) - w)
    assert np.all(err <= s / 2 * (1 + 1e-12))          # round-to-nearest: at most half a step
    # the largest magnitude is represented exactly by the code ±q_max
    amax = np.abs(w).max(axis=(-1,) if per_channel else (-2, -1), keepdims=True)
    assert np.allclose(np.abs(qk.dequantize(q, s, np.float64)).max(axis=(-1,) if per_channel else (-2, -1),
                                                                     keepdims=True), amax)


@pytest.mark.parametrize("bits", [2, 8])
def test_stochastic_rounding_error_below_one_step(bits):
    w = np.random.default_rng(1).normal(size=(4, 50, 30))
    s = qk.symmetric_scale(w, bits)
    q = qk.quantize(w, s, bits, "stochastic", seed=3)
    assert np.all(np.abs(qk.dequantize(q, s, np.float64) - w) < s)


@pytest.mark.parametrize("frac", [0.1, 0.5, 0.73])
def test_stochastic_rounding_unbiased(frac):
    # N equal values v = 2 + frac (in units of the step): q ∈ {2, 3}, error e = q − v has
    # mean 0 and std √(frac(1−frac)); the sample mean must lie within 3 standard errors of 0.
    N = 200_000
    v = np.full(N, 2.0 + frac)
    q = qk.quantize(v, 1.0, 8, "stochastic", seed=11).astype(np.float64)
    e = q - v
    se = np.sqrt(frac * (1 - frac) / N)
    assert abs(e.mean()) < 3 * se
    # and on random values: mean error over many elements within 3 SE of its sample std
    x = np.random.default_rng(5).uniform(-100, 100, N)
    ex = qk.quantize(x, 1.0, 8, "stochastic", seed=12) - x
    assert abs(ex.mean()) < 3 * ex.std() / np.sqrt(N)


def test_stochastic_rounding_seeded_and_thread_independent():
    w = np.random.default_rng(0).normal(size=(16, 64, 64))         # above the one-thread size
    s = qk.symmetric_scale(w, 4)
    a = qk.quantize(w, s, 4, "stochastic", seed=7)
    n = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        b = qk.quantize(w, s, 4, "stochastic", seed=7)
    finally:
        numba.set_num_threads(n)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, qk.quantize(w, s, 4, "stochastic", seed=8))


def test_binary_is_sign_times_mean_abs():
    w = np.random.default_rng(2).normal(size=(2, 5, 7))
    s = qk.symmetric_scale(w, 1)
    q = qk.quantize(w, s, 1)
    assert set(np.unique(q)) <= {-1, 1}
    assert np.array_equal(q, np.where(w >= 0, 1, -1))
    assert np.allclose(s[..., 0, 0], np.abs(w).mean(axis=(1, 2)))


def test_fixed_point_round_trip_and_clipping():
    x = np.linspace(-6, 6, 1001)
    q, step = qk.fixed_point(x, 8, 4.0)
    assert step == pytest.approx(4.0 / 127)
    xr = q * step
    inside = np.abs(x) <= 4.0
    assert np.all(np.abs(xr[inside] - x[inside]) <= step / 2 + 1e-12)
    assert np.all(np.abs(xr[~inside]) == pytest.approx(4.0))


def _saturating_reference(x, w, lo, hi):
    acc = 0
    for xv, wv in zip(x, w):
        acc = min(hi, max(lo, acc + int(xv) * int(wv)))
    return acc


@pytest.mark.parametrize("acc_bits", [8, 12, 16])
def test_accumulator_saturates_exactly_at_bounds(acc_bits):
    lo, hi = qk.acc_bounds(acc_bits)
    n = 64
    x = np.full((1, 2, n), 127, np.int8)
    x[0, 1] = -127
    w = np.full((1, 3, n), 127, np.int8)
    acc, risky = qk.int_matmul(x, w, acc_bits)
    assert risky > 0
    assert np.all(acc[0, 0] == hi) and np.all(acc[0, 1] == lo)
    # per-add saturation is order dependent: compare with a sequential reference on mixed signs
    rng = np.random.default_rng(acc_bits)
    x = rng.integers(-127, 128, size=(2, 5, n)).astype(np.int8)
    w = rng.integers(-127, 128, size=(2, 4, n)).astype(np.int8)
    w[:, 0, : n // 2] = 127
    x[:, :, : n // 2] = 127
    acc, _ = qk.int_matmul(x, w, acc_bits)
    ref = np.array([[[_saturating_reference(x[p, r], w[p, i], lo, hi) for i in range(4)] for r in range(5)]
                    for p in range(2)])
    assert np.array_equal(acc, ref)
    assert acc.max() <= hi and acc.min() >= lo


def test_wide_accumulator_is_exact():
    rng = np.random.default_rng(0)
    x = rng.integers(-127, 128, size=(1, 9, 40)).astype(np.int8)
    w = rng.integers(-127, 128, size=(3, 6, 40)).astype(np.int8)
    acc, risky = qk.int_matmul(x, w, 32)
    assert risky == 0
    assert np.array_equal(acc, np.einsum("rn,pmn->prm", x[0].astype(np.int64), w.astype(np.int64)))


def test_int8_substrate_close_to_float_and_counts():
    rng = np.random.default_rng(0)
    W = rng.uniform(-0.3, 0.3, (4, 16, 32))
    b = rng.uniform(-0.1, 0.1, (4, 16))
    x = rng.uniform(0, 1, (10, 32)).astype(np.float32)
    sub = substrates.get("int8")
    y = sub.forward([DenseWeights(W, b)], x, rng, ["identity"])
    y0 = np.einsum("bn,pmn->pbm", x, W) + b[:, None]
    # W8A8 error bound: |Δy| ≤ Σ_j (|x_j| s_w/2 + |w_j| Δ_x/2 + s_w Δ_x/4)
    s_w = np.abs(W).max(axis=(1, 2)) / 127
    dx = 4.0 / 127
    bound = (x.sum(1)[None, :, None] * s_w[:, None, None] / 2 + np.abs(W).sum(2)[:, None, :] * dx / 2
             + 32 * s_w[:, None, None] * dx / 4)
    assert np.all(np.abs(y - y0) <= bound + 1e-5)
    c = sub.costs.counts
    assert c["macs"] == 4 * 10 * 16 * 32 and c["writes"] == 4 * 16 * 32
    assert sub.costs.energy_pj() > 0


def test_quantized_spikes_count_acs_and_lowrank_materialises():
    rng = np.random.default_rng(1)
    syn = substrates.synapses.get("quantized", bits=4)
    costs = substrates.CostCounter(syn.energy_pj)
    W = rng.normal(size=(16, 8))
    A, B = rng.normal(size=(3, 16, 2)), rng.normal(size=(3, 8, 2))
    prog = syn.program(LowRankWeights(W, np.zeros((3, 16)), A, B, 0.1), rng, costs)
    assert prog.q.shape == (3, 16, 8) and costs.counts["writes"] == 3 * 16 * 8
    s = (rng.random((1, 5, 6, 8)) < 0.3).astype(np.float32)
    y = syn.read(prog, s, rng, costs, spiking=True)
    assert y.shape == (3, 5, 6, 16)
    assert costs.counts["acs"] == np.count_nonzero(s) * 3 * 16 and costs.counts["macs"] == 0
    ref = np.einsum("tbn,pmn->ptbm", s[0], prog.dequantized(np.float64))
    assert np.allclose(y, ref, atol=1e-4)


def test_int_presets_train_on_digits():
    res = neurozo.run(task="digits", substrate="int8", learner={"name": "openes"}, budget=3200, seed=0,
                      eval_every=1600)
    assert res.status == "finished" and res.final["test_acc"] > 0.6
    assert res.final["writes"] > 0 and res.final["energy_pj"] > 0


@pytest.mark.parametrize("kw, name", [
    ({"bits": 0}, "bits"), ({"bits": 17}, "bits"), ({"act_bits": 1}, "act_bits"), ({"act_bits": 17}, "act_bits"),
    ({"acc_bits": 1}, "acc_bits"), ({"act_range": 0.0}, "act_range"), ({"act_range": -1.0}, "act_range"),
    ({"rounding": "up"}, "rounding"), ({"bits": 1, "rounding": "stochastic"}, "rounding"),
])
def test_bad_quantized_parameters(kw, name):
    with pytest.raises(ValueError, match=name):
        substrates.synapses.get("quantized", **kw)


def test_bad_kernel_bits():
    with pytest.raises(ValueError, match="bits"):
        qk.qmax(0)
    with pytest.raises(ValueError, match="bits"):
        qk.fixed_point(np.zeros(3), 1, 1.0)
    with pytest.raises(ValueError, match="acc_bits"):
        qk.int_matmul(np.zeros((1, 1, 2), np.int8), np.zeros((1, 1, 2), np.int8), 65)


def test_quantized_synapse_with_spiking_neurons():
    if "lif" not in substrates.neurons.names():
        pytest.skip("no LIF neuron registered")
    sub = substrates.compose({"name": "quantized", "bits": 4}, "lif")
    rng = np.random.default_rng(0)
    layers = [DenseWeights(rng.normal(size=(2, 10, 8)), np.zeros((2, 10))),
              DenseWeights(rng.normal(size=(2, 3, 10)), np.zeros((2, 3)))]
    y = sub.forward(layers, rng.random((4, 8)).astype(np.float32), rng, ["relu", "identity"])
    assert y.shape == (2, 4, 3) and np.all(np.isfinite(y))
    c = sub.costs.counts
    assert c["macs"] > 0 and c["acs"] > 0          # dense input currents, then spike-driven accumulates

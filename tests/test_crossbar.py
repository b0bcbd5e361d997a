"""Analog crossbar synapse and its IO model (issue 4)."""

import math

import numba
import numpy as np
import pytest

import neurozo
from kernels import crossbar as xk
from neurozo import substrates
from neurozo.substrates.crossbar import Crossbar
from neurozo.substrates.io import IOParams
from neurozo.substrates.weights import DenseWeights, LowRankWeights

IO = IOParams()


def ref_forward_vector(x, W, io=IO, bm=True):
    """aihwkit's forwardVector with zero noise, written out in float64 (reference)."""
    a = np.abs(x).max() or 1.0
    red = 1.0
    while True:
        xq = np.clip(np.rint(x / (a * red) / io.inp_res) * io.inp_res, -io.inp_bound, io.inp_bound)
        z = W.astype(np.float64) @ xq
        zq = np.rint(z / io.out_res) * io.out_res
        ok = np.all(np.abs(zq) <= io.out_bound)
        zq = np.clip(zq, -io.out_bound, io.out_bound)
        if not bm or ok or red > io.max_bm_factor or red > io.max_bm_res / io.inp_res:
            return zq * a * red, red
        red *= 2


def _mvm(x, W, **kw):
    args = IO.kernel_args()
    args.update(out_noise=0.0)
    args.update(kw)
    return xk.analog_mvm(x, W, seed=0, **args)


def test_io_matches_reference_including_bound_management():
    rng = np.random.default_rng(0)
    n, m = 96, 40
    W = rng.uniform(-1, 1, (2, m, n)).astype(np.float32)
    x = rng.uniform(-1, 1, (1, 64, n)).astype(np.float32) * rng.uniform(0.1, 5, (1, 64, 1)).astype(np.float32)
    x[0, :8] = np.abs(x[0, :8])                      # positive vectors: large outputs, bound management needed
    y, rounds = _mvm(x, W)
    reds = []
    for p in range(2):
        for r in range(64):
            ref, red = ref_forward_vector(x[0, r].astype(np.float64), W[p])
            reds.append(red)
            step = IO.out_res * np.abs(x[0, r]).max() * red
            d = np.abs(y[p, r] - ref)
            assert d.max() <= step * 1.0001            # at most one ADC step (float32 vs float64 GEMM ties)
            assert np.mean(d < 1e-3 * step) > 0.9
            assert rounds[p, r] == int(round(math.log2(red))) + 1
    assert max(reds) > 1                              # the bound was actually hit


def test_bound_management_stops_at_max_bm_res_and_none_clips():
    n = 256
    W = np.ones((1, 4, n), np.float32)
    x = np.ones((1, 1, n), np.float32)
    y, rounds = _mvm(x, W)
    # red = 1, 2, 4, 8, 16: 16 > 0.25 / (2/126) = 15.75 ends the loop; the output stays clipped
    assert rounds[0, 0] == 5
    assert np.allclose(y, 12.0 * 16)
    y2, r2 = _mvm(x, W, bound_management=False)
    assert r2[0, 0] == 1 and np.allclose(y2, 12.0)


def test_zero_input_vector_is_not_converted():
    W = np.ones((1, 3, 5), np.float32)
    x = np.zeros((1, 2, 5), np.float32)
    y, rounds = xk.analog_mvm(x, W, seed=0, bias=np.full((1, 3), 0.5, np.float32), **IO.kernel_args())
    assert np.all(rounds == 0) and np.allclose(y, 0.5)


def test_output_noise_statistics_and_seeding():
    # zero weights: ŷ = q_out(0.06 ξ); quantisation with step Δ adds Δ²/12 to the variance
    N, m = 4000, 64
    W = np.zeros((1, m, 8), np.float32)
    x = np.ones((1, N, 8), np.float32)
    y, _ = xk.analog_mvm(x, W, seed=5, **IO.kernel_args())
    sd = math.sqrt(0.06 ** 2 + IO.out_res ** 2 / 12)
    s = y.std(ddof=1)
    assert abs(s - sd) < 4 * sd / math.sqrt(2 * y.size) + 0.002   # + Sheppard-approximation slack
    assert abs(y.mean()) < 4 * sd / math.sqrt(y.size)
    y2, _ = xk.analog_mvm(x, W, seed=5, **IO.kernel_args())
    assert np.array_equal(y, y2)
    n = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        y3, _ = xk.analog_mvm(x, W, seed=5, **IO.kernel_args())
    finally:
        numba.set_num_threads(n)
    assert np.array_equal(y, y3)
    y4, _ = xk.analog_mvm(x, W, seed=6, **IO.kernel_args())
    assert not np.array_equal(y, y4)


def test_w_noise_is_output_referred_and_ir_drop_reduces_outputs():
    N = 3000
    W = np.zeros((1, 16, 32), np.float32)
    x = np.ones((1, N, 32), np.float32)
    args = dict(out_noise=0.0, out_res=0.0, w_noise=0.01)
    y, _ = _mvm(x, W, **args)
    sd = 0.01 * math.sqrt(32)                          # w_noise·‖x̂‖₂ with x̂ = 1
    assert abs(y.std(ddof=1) - sd) < 4 * sd / math.sqrt(2 * y.size)
    Wp = np.full((1, 8, 512), 0.5, np.float32)
    xp = np.ones((1, 1, 512), np.float32)
    y0, _ = _mvm(xp, Wp, out_res=0.0, bound_management=False, out_bound=1e9)
    y1, _ = _mvm(xp, Wp, out_res=0.0, bound_management=False, out_bound=1e9, ir_drop=1.0)
    assert np.all(y1 < y0) and np.all(y1 > 0)
    # aihwkit's formula (rpu_forward_backward_pass.cpp applyIrDrop), per output, in float64
    rng = np.random.default_rng(4)
    n = 256
    Wr = rng.uniform(-1, 1, (1, 6, n)).astype(np.float32)
    xr = rng.uniform(-1, 1, (1, 3, n)).astype(np.float32)
    y2, _ = _mvm(xr, Wr, inp_res=0.0, out_res=0.0, bound_management=False, out_bound=1e9, ir_drop=2.0)
    g_ratio = 1.0 / 0.35 / 5e-6
    for r in range(3):
        a_nm = np.abs(xr[0, r]).max()
        xh = xr[0, r].astype(np.float64) / a_nm
        Wd = Wr[0].astype(np.float64)
        a = n / g_ratio * (np.abs(Wd) @ np.abs(xh))
        c = a * (a * (0.05 * a - 0.2) + 0.5)
        xd = xh * (1 - (1 - np.arange(n) / n) ** 2)
        ref = (Wd @ xh - 2.0 * c * (Wd @ xd)) * a_nm
        assert np.allclose(y2[0, r], ref, rtol=1e-4, atol=1e-4)


def _layer(P=3, m=24, n=40, seed=0):
    rng = np.random.default_rng(seed)
    return DenseWeights(rng.uniform(-0.5, 0.5, (P, m, n)), rng.uniform(-0.1, 0.1, (P, m)))


def test_crossbar_reads_close_to_float_and_counts_costs():
    L = _layer()
    x = np.random.default_rng(1).uniform(0, 1, (32, 40)).astype(np.float32)
    y0 = np.einsum("bn,pmn->pbm", x, L.W) + L.b[:, None]
    for name, tol in (("analog-ideal-io", 0.02), ("pcm", 0.15), ("rram", 0.15)):
        sub = substrates.get(name)
        y = sub.forward([L], x, np.random.default_rng(2), ["identity"])
        rel = np.linalg.norm(y - y0) / np.linalg.norm(y0)
        assert rel < tol, (name, rel)
        c = sub.costs.counts
        assert c["writes"] == 2 * 3 * 24 * 40
        assert c["macs"] >= 3 * 32 * 24 * 40 and c["adc"] >= 3 * 32 * 24 and c["dac"] >= 3 * 32 * 40
        assert c["periphery_macs"] >= 3 * 32 * 24
        assert sub.costs.energy_pj() > 0
    # the ideal-IO crossbar is only quantised: its error is far below the noisy ones'
    ideal = substrates.get("analog-ideal-io").forward([L], x, np.random.default_rng(2), ["identity"])
    noisy = substrates.get("pcm").forward([L], x, np.random.default_rng(2), ["identity"])
    assert np.linalg.norm(ideal - y0) < 0.5 * np.linalg.norm(noisy - y0)


def test_programming_noise_comes_from_the_generator():
    L = _layer()
    x = np.random.default_rng(1).uniform(0, 1, (8, 40)).astype(np.float32)
    a = substrates.get("pcm").forward([L], x, np.random.default_rng(7), ["identity"])
    b = substrates.get("pcm").forward([L], x, np.random.default_rng(7), ["identity"])
    c = substrates.get("pcm").forward([L], x, np.random.default_rng(8), ["identity"])
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_batch_like_axes_and_spikes():
    syn = Crossbar()
    costs = substrates.CostCounter(syn.energy_pj)
    rng = np.random.default_rng(0)
    prog = syn.program(_layer(P=2, m=6, n=10), rng, costs)
    s = (rng.random((1, 4, 5, 10)) < 0.3).astype(np.float32)          # (1, T, B, n) spikes
    syn.state_at(prog, 0.0, rng, costs)          # drift state and its compensation read-out (dense MVMs)
    costs.reset()
    y = syn.read(prog, s, rng, costs, t=0.0, spiking=True)
    assert y.shape == (2, 4, 5, 6)
    assert costs.counts["macs"] == 0
    active = np.count_nonzero(s[0].reshape(20, 10), axis=1)
    assert costs.counts["acs"] >= 2 * active.sum() * 6
    assert costs.counts["dac"] == 2 * np.count_nonzero(active) * 10    # all-zero spike vectors are skipped
    xh = rng.uniform(-1, 1, (2, 3, 5, 10)).astype(np.float32)         # per-member hidden input
    assert syn.read(prog, xh, rng, costs).shape == (2, 3, 5, 6)


def test_perturb_program_vs_periphery_costs():
    rng = np.random.default_rng(0)
    m, n, P, r = 20, 30, 6, 2
    W = rng.uniform(-0.5, 0.5, (m, n))
    A, B = rng.normal(size=(P, m, r)), rng.normal(size=(P, n, r))
    layer = LowRankWeights(W, np.zeros((P, m)), A, B, 0.01)
    x = rng.uniform(0, 1, (16, n)).astype(np.float32)
    prog_sub = substrates.get("pcm", perturb="program")
    per_sub = substrates.get("pcm", perturb="periphery")
    y_prog = prog_sub.forward([layer], x, np.random.default_rng(1), ["identity"])
    y_per = per_sub.forward([layer], x, np.random.default_rng(1), ["identity"])
    assert prog_sub.costs.counts["writes"] == 2 * P * m * n
    assert per_sub.costs.counts["writes"] == 2 * m * n
    assert per_sub.costs.counts["periphery_macs"] >= P * 16 * r * (m + n)
    assert prog_sub.costs.counts["macs"] == P * per_sub.costs.counts["macs"]      # shared input: one analog read
    # the same base again: nothing is rewritten
    per_sub.forward([layer], x, np.random.default_rng(2), ["identity"])
    assert per_sub.costs.counts["writes"] == 2 * m * n
    # both approximate the exact candidates
    exact = np.einsum("bn,pmn->pbm", x, layer.materialize().W)
    for y in (y_prog, y_per):
        assert np.linalg.norm(y - exact) / np.linalg.norm(exact) < 0.15
    # in periphery mode the candidates differ exactly by their digital low-rank terms
    low = 0.01 * np.einsum("bn,pnr,pmr->pbm", x, B, A)
    d = (y_per - low) - (y_per - low)[0:1]
    assert np.abs(d).max() < 1e-4
    # full-rank populations in periphery mode: mean on the array, residual in digital
    dense = DenseWeights(layer.materialize().W, np.zeros((P, m)))
    sub = substrates.get("pcm", perturb="periphery")
    yd = sub.forward([dense], x, np.random.default_rng(1), ["identity"])
    assert sub.costs.counts["writes"] == 2 * m * n
    assert sub.costs.counts["periphery_macs"] >= P * 16 * m * n
    assert np.linalg.norm(yd - exact) / np.linalg.norm(exact) < 0.15
    # one member (the run loop's monitor): outputs are writable for in-place activations
    one = DenseWeights(W[None], np.zeros((1, m)))
    assert np.all(sub.forward([one, DenseWeights(W[None, :, :m].copy(), np.zeros((1, m)))], x,
                              np.random.default_rng(3), ["relu", "identity"]).shape == (1, 16, m))


def test_stuck_cells_and_device_variation():
    rng = np.random.default_rng(0)
    L = _layer(P=1, m=50, n=80)
    syn = Crossbar(p_stuck_off=1.0)
    costs = substrates.CostCounter()
    st = syn.program(L, rng, costs)
    assert np.all(st.gp == 0) and np.all(st.gm == 0)
    p_on = 0.1
    syn = Crossbar(p_stuck_on=p_on, device_seed=3)
    st = syn.program(L, rng, costs)
    frac = np.mean(np.concatenate([st.gp.ravel(), st.gm.ravel()]) == syn.g_max)
    Nd = 2 * 50 * 80
    assert abs(frac - p_on) < 4 * math.sqrt(p_on * (1 - p_on) / Nd)
    # the map belongs to the chip: the same cells are stuck every time it is programmed
    st2 = syn.program(L, rng, costs)
    assert np.array_equal(st.gp == syn.g_max, st2.gp == syn.g_max)
    # they also stay stuck at any read time
    Wt, _ = syn.state_at(st, 86400.0, rng, costs)
    assert np.all(((st.gp == syn.g_max) & (st.gm == syn.g_max)) <= (Wt == 0))
    # device-to-device range variation: no target exceeds its device's own maximum
    syn = Crossbar(noise="none", g_dtod=0.3)
    st = syn.program(L, rng, costs)
    gdev = syn.chip(0, (50, 80))["gmax"]
    assert np.all(st.gp[0] <= gdev[0] + 1e-12) and np.all(st.gm[0] <= gdev[1] + 1e-12)
    assert 0.2 < gdev.std() / syn.g_max < 0.4


def test_clock_and_state_cache():
    sub = substrates.get("pcm", t_inference=3600.0)
    assert sub.t == 3600.0
    syn = sub.synapse
    rng = np.random.default_rng(0)
    st = syn.program(_layer(P=1), rng, sub.costs)
    a = syn.effective_weights(st, 3600.0, rng, sub.costs)
    b = syn.effective_weights(st, 3600.0, rng, sub.costs)
    assert a is not b and np.array_equal(a, b)            # the state at t is drawn once (cached)
    c = syn.effective_weights(st, 3.15e7, rng, sub.costs)
    assert not np.array_equal(a, c)
    with pytest.raises(ValueError, match="t="):
        syn.state_at(st, -1.0, rng, sub.costs)


def test_pcm_trains_on_digits_with_openes():
    res = neurozo.run(task="digits", substrate="pcm", learner={"name": "openes", "popsize": 16}, budget=1024,
                      seed=0, eval_every=256)
    assert res.status == "finished" and res.final["test_acc"] > 0.3          # chance is 0.1
    h = res.history
    assert h["writes"].iloc[-1] > 0 and h["adc"].iloc[-1] > 0 and h["energy_pj"].is_monotonic_increasing


def test_composes_with_other_neurons():
    names = substrates.neurons.names()
    if "lif" not in names:
        pytest.skip("no LIF neuron registered")
    sub = substrates.compose({"name": "crossbar"}, "lif")
    x = np.random.default_rng(0).uniform(0, 1, (4, 40)).astype(np.float32)
    y = sub.forward([_layer(P=2, m=10, n=40)], x, np.random.default_rng(0), ["identity"])
    assert y.shape[0] == 2 and np.all(np.isfinite(y))


@pytest.mark.parametrize("kw, name", [
    ({"p_stuck_on": 1.5}, "p_stuck_on"), ({"p_stuck_off": -0.1}, "p_stuck_off"),
    ({"p_stuck_on": 0.6, "p_stuck_off": 0.6}, "p_stuck_off"), ({"g_dtod": -0.1}, "g_dtod"),
    ({"perturb": "both"}, "perturb"), ({"weight_scaling_omega": -1.0}, "weight_scaling_omega"),
    ({"io": {"inp_bits": 1}}, "inp_bits"), ({"io": {"out_bits": 17}}, "out_bits"),
    ({"io": {"out_noise": -0.06}}, "out_noise"), ({"io": {"w_noise": -1.0}}, "w_noise"),
    ({"io": {"out_bound": 0.0}}, "out_bound"), ({"io": {"ir_drop": -1.0}}, "ir_drop"),
    ({"io": {"bogus": 1}}, "bogus"), ({"noise": {"name": "pcm", "g_max": 0.0}}, "g_max"),
    ({"noise": "flash"}, "noise"), ({"noise": {"name": "reram", "noise_scale": -1.0}}, "noise_scale"),
    ({"device_seed": -1}, "device_seed"),
])
def test_bad_crossbar_parameters(kw, name):
    with pytest.raises(ValueError, match=name):
        substrates.synapses.get("crossbar", **kw)


def test_bad_preset_parameters():
    with pytest.raises(ValueError, match="t_inference"):
        substrates.get("rram", t_inference=-1.0)
    with pytest.raises(ValueError, match="g_max"):
        substrates.get("rram", noise={"g_max": -1.0})
    with pytest.raises(ValueError, match="p_stuck_on"):
        substrates.get("pcm", p_stuck_on=2.0)


def test_forward_reads_at_time_t():
    sub = substrates.get("pcm", drift_compensation=False)
    L = _layer(P=1, m=30, n=40)
    x = np.random.default_rng(1).uniform(0, 1, (64, 40)).astype(np.float32)
    y0 = sub.forward([L], x, np.random.default_rng(1), ["identity"])          # the clock: t = 0
    y1 = sub.forward([L], x, np.random.default_rng(1), ["identity"], t=3.15e7)  # one year later
    # drift (t/t0)^−ν with ν ≥ 0.049 over a year shrinks outputs by ≥ 1 − (1.6e6)^−0.049 ≈ 50 %
    assert np.abs(y1).mean() < 0.8 * np.abs(y0).mean()
    with pytest.raises(ValueError, match="t="):
        sub.forward([L], x, np.random.default_rng(1), ["identity"], t=-1.0)


def test_counter_based_normals_are_standard_normal():
    # 10⁶ ziggurat draws: mean, variance and kurtosis within 4 standard errors, and a KS test
    from scipy import stats

    z = xk.normal_fill((1000, 1000), 42).ravel()
    n = z.size
    assert abs(z.mean()) < 4 / math.sqrt(n)
    assert abs(z.var() - 1) < 4 * math.sqrt(2 / n)
    assert abs(stats.kurtosis(z)) < 4 * math.sqrt(24 / n)
    assert stats.kstest(z[:100_000], "norm").pvalue > 1e-3
    tail = np.mean(np.abs(z) > 3.5)                 # beyond the ziggurat's base strip (R = 3.44)
    p = 2 * stats.norm.sf(3.5)
    assert abs(tail - p) < 4 * math.sqrt(p / n)


def test_weight_scaling_omega_zero_is_aihwkit_default_mapping():
    # ω = 0: tile weights in the network's own units (aihwkit InferenceRPUConfig default); ω = 1: max|W_tile| = 1
    L = _layer(P=2, m=12, n=20)
    x = np.random.default_rng(1).uniform(0, 1, (16, 20)).astype(np.float32)
    exact = np.einsum("bn,pmn->pbm", x, L.W) + L.b[:, None]
    syn0 = Crossbar(noise="none", io={"out_noise": 0.0}, drift_compensation=False, weight_scaling_omega=0.0)
    syn1 = Crossbar(noise="none", io={"out_noise": 0.0}, drift_compensation=False, weight_scaling_omega=1.0)
    c = substrates.CostCounter()
    st0, st1 = syn0.program(L, np.random.default_rng(0), c), syn1.program(L, np.random.default_rng(0), c)
    W0, _ = syn0.state_at(st0, 0.0, np.random.default_rng(0), c)
    W1, _ = syn1.state_at(st1, 0.0, np.random.default_rng(0), c)
    assert np.allclose(W0, L.W, atol=1e-6) and np.allclose(np.abs(W1).max(axis=(1, 2)), 1.0)
    for syn, st in ((syn0, st0), (syn1, st1)):
        y = syn.read(st, x[None], np.random.default_rng(2), c)
        # error ≤ half an ADC step (24/510, times the output scale) + DAC rounding Σ|w|·(1/126)
        scale = 1.0 if syn is syn0 else np.abs(L.W).max(axis=(1, 2))[:, None, None]
        bound = 0.5 * 24 / 510 * scale + np.abs(L.W).sum(2)[:, None, :] / 126
        assert np.all(np.abs(y - exact) <= bound + 1e-5)


def test_ir_drop_applies_in_bound_management_rounds_of_every_member():
    # positive inputs and weights: every vector needs several rounds; IR drop must lower all of them
    W = np.full((3, 4, 256), 0.5, np.float32)
    x = np.ones((3, 2, 256), np.float32)
    y0, r0 = _mvm(x, W, out_res=0.0)
    y1, r1 = _mvm(x, W, out_res=0.0, ir_drop=1.0)
    assert np.all(r0 > 1) and np.all(r1 > 1)
    assert np.all(y1 < y0)

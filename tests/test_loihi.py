"""Loihi bit-accurate LIF: hand-computed fixed-point traces, wrap-around, saturation, synapses."""

from __future__ import annotations

import numpy as np
import pytest

import neurozo
from kernels import lif as lif_k
from kernels import loihi as loihi_k
from neurozo.substrates import compose
from neurozo.substrates.weights import DenseWeights


def _run(a, T, **kw):
    """One neuron; a = list of dendritic sums per step (delivered with Lava's one-step delay)."""
    a = np.asarray(a, dtype=np.int64)
    a = np.concatenate([a, np.zeros(T - len(a), np.int64)]).reshape(1, T, 1)   # pad to T steps
    spikes, counts, first, vmean, u, v = loihi_k.loihi_lif(a, T, record=True, **kw)
    return spikes[0, :, 0], u[0, :, 0], v[0, :, 0]


def _lava_reference(a, T, du, dv, bias_mant, bias_exp, vth, delay=1):
    """Plain-integer transcription of Lava's PyLifModelBitAcc.run_spk (one neuron)."""
    def decay(x, d):
        y = x * (4096 - d)
        return -((-y) >> 12) if y < 0 else y >> 12

    u = v = 0
    us, vs, ss = [], [], []
    for t in range(T):
        ai = a[t - delay] if t >= delay else 0
        u = decay(u, du + 1) + (ai << 6)
        if u > 2 ** 23:
            u -= 2 ** 24
        elif u <= -2 ** 23:
            u += 2 ** 24
        v = decay(v, dv) + u + (bias_mant << bias_exp)
        v = min(max(v, -2 ** 23 + 1), 2 ** 23 - 1)
        s = v > (vth << 6)
        if s:
            v = 0
        us.append(u), vs.append(v), ss.append(int(s))
    return np.array(ss), np.array(us), np.array(vs)


def test_hand_trace_voltage_decay_threshold_and_reset():
    """du = 4095 (u = a << 6 every step), dv = 2048 (v halves), vth = 1 (threshold 64).

    t = 0: the input is still in the synapse (one-step delay): u = 0, v = 0.
    t = 1: u = 1 << 6 = 64, v = 0 + 64 = 64, not > 64.
    t = 2: u = 64, v = (64·2048 >> 12) + 64 = 96 > 64 → spike, v ← 0.
    t = 3: v = 0 + 64 = 64, t = 4: v = 32 + 64 = 96 → spike, ...
    """
    s, u, v = _run([1] * 8, 8, du=4095, dv=2048, vth=1)
    np.testing.assert_array_equal(u, [0, 64, 64, 64, 64, 64, 64, 64])
    np.testing.assert_array_equal(v, [0, 64, 0, 64, 0, 64, 0, 64])
    np.testing.assert_array_equal(s, [0, 0, 1, 0, 1, 0, 1, 0])


def test_hand_trace_current_decay_uses_du_plus_one_and_rounds_toward_zero():
    """du = 2047: the current decays by (4096 − 2047 − 1)/4096 = 1/2 (Loihi-1's ds_offset);
    sign-magnitude shifts round toward zero, so −64 halves to −32, ..., −1, then 0 (a
    flooring shift would stick at −1). dv = 0: the voltage does not leak (v·4096 >> 12 = v).

    a = +1 at t = 0 (arrives t = 1): u = 64, 32, 16, 8, 4, 2, 1, 0; v accumulates them.
    """
    s, u, v = _run([1, 0, 0, 0, 0, 0, 0, 0, 0], 10, du=2047, dv=0, vth=100)
    np.testing.assert_array_equal(u, [0, 64, 32, 16, 8, 4, 2, 1, 0, 0])
    np.testing.assert_array_equal(v, [0, 64, 96, 112, 120, 124, 126, 127, 127, 127])
    s, u, v = _run([-1, 0, 0, 0, 0, 0, 0, 0, 0], 10, du=2047, dv=0, vth=100)
    np.testing.assert_array_equal(u, [0, -64, -32, -16, -8, -4, -2, -1, 0, 0])
    np.testing.assert_array_equal(v, [0, -64, -96, -112, -120, -124, -126, -127, -127, -127])
    assert s.sum() == 0


def test_hand_trace_bias_mantissa_and_exponent():
    """bias = 3 << 2 = 12 per step into v, dv = 4095 (v ← v·1 >> 12 = 0 for |v| < 4096),
    vth = 0 (threshold 0): v = 12 > 0 spikes every step."""
    s, u, v = _run([0] * 4, 4, du=4095, dv=4095, bias_mant=3, bias_exp=2, vth=0)
    np.testing.assert_array_equal(s, [1, 1, 1, 1])
    s, u, v = _run([0] * 4, 4, du=4095, dv=0, bias_mant=-5, bias_exp=1, vth=0)
    np.testing.assert_array_equal(v, [-10, -20, -30, -40])        # no leak, never spikes
    assert s.sum() == 0


def test_hand_trace_current_wraps_at_24_bits():
    """a << 6 = 2²³ exactly is kept (Lava wraps only above 2²³); one more unit of input,
    2²³ + 64, wraps to 2²³ + 64 − 2²⁴ = −8388544: a huge excitatory input becomes a huge
    inhibitory current."""
    s, u, v = _run([2 ** 17, 2 ** 17 + 1], 3, du=4095, dv=4095, vth=131071)
    np.testing.assert_array_equal(u, [0, 2 ** 23, 2 ** 23 + 64 - 2 ** 24])
    # negative side: u = −2²³ wraps up to +2²³ (the ≤ in Lava's test)
    s, u, v = _run([-(2 ** 17)], 2, du=4095, dv=4095, vth=131071)
    assert u[1] == 2 ** 23


def test_hand_trace_voltage_saturates_at_24_bits():
    """dv = 0 (no leak), u = −100000 << 6 = −6 400 000 per step: v = −6.4e6, then
    −12.8e6 clipped to −(2²³ − 1) = −8388607, where it stays."""
    s, u, v = _run([-100000] * 4, 5, du=4095, dv=0, vth=10)
    np.testing.assert_array_equal(v, [0, -6400000, -8388607, -8388607, -8388607])


def test_kernel_matches_lava_transcription_on_random_inputs():
    """Random parameters and inputs large enough to wrap u and saturate v."""
    rng = np.random.default_rng(0)
    T = 60
    for trial in range(40):
        du, dv = int(rng.integers(0, 4096)), int(rng.integers(0, 4096))
        bias_mant, bias_exp = int(rng.integers(-4096, 4096)), int(rng.integers(0, 8))
        vth = int(rng.integers(0, 2 ** 17))
        big = 2 ** int(rng.integers(4, 19))
        a = rng.integers(-big, big, size=T)
        ref = _lava_reference(a.tolist(), T, du, dv, bias_mant, bias_exp, vth)
        got = _run(a, T, du=du, dv=dv, bias_mant=bias_mant, bias_exp=bias_exp, vth=vth)
        for g, r, name in zip(got, ref, ("spikes", "u", "v")):
            np.testing.assert_array_equal(g, r, err_msg=f"trial {trial}: {name}")


def test_float_and_fixed_point_lif_diverge_when_the_current_wraps():
    """The same drive on the float LIF and on Loihi's fixed-point LIF.

    Float LIF with β = 0 and threshold 64·64 receives I = a·64 every step. For a = 2¹⁷ + 1
    (just above what a 24-bit current can hold) the float neuron fires at every step,
    but Loihi's current register wraps around to −8388544 — the neuron is driven far
    below rest and never fires. Below the wrap (a = 2¹⁶) both fire every step.
    """
    T = 20
    for a, fixed_fires in ((2 ** 16, True), (2 ** 17 + 1, False)):
        s_fix, u, v = _run([a] * T, T, du=4095, dv=4095, vth=1)
        z = np.full((1, 1, 1), a * 64.0)
        s_float = lif_k.lif_scan(z, T, 0.0, 64.0, "zero")[0][0, :, 0]
        assert s_float.sum() == T                   # float: a spike every step
        assert (s_fix[1:].sum() == T - 1) == fixed_fires
    assert u[1] < 0 and s_fix.sum() == 0


def test_float_and_fixed_point_lif_diverge_after_voltage_saturation():
    """No leak (dv = 0, β = 1), three steps of strong inhibition then excitation, a = ∓100000
    (a << 6 = ∓6.4e6, no wrap), threshold 64·64 = 4096.

    Float LIF:  U = −6.4e6, −12.8e6, −19.2e6, then climbs back −12.8e6, −6.4e6, 0, +6.4e6:
                first spike at t = 7.
    Loihi:      v = −6.4e6, then saturates at −(2²³ − 1) = −8388607 (twice), climbs
                −1988607, +4411393 > 4096: first spike at t = 5 — two steps early,
                because the 24-bit voltage forgot the inhibition it could not store.
    """
    a = [-100000] * 3 + [100000] * 6
    T = len(a) + 1
    s_fix, u, v = _run(a, T, du=4095, dv=0, vth=64)
    np.testing.assert_array_equal(v[:5], [0, -6400000, -8388607, -8388607, -1988607])
    assert np.flatnonzero(s_fix)[0] == 5
    z = np.array([0] + a, dtype=np.float64).reshape(1, T, 1) * 64     # same one-step delay
    s_float, _, _, mem = lif_k.lif_scan(z, T, 1.0, 4096.0, "zero", record_mem=True)
    np.testing.assert_array_equal(mem[0, :4, 0], [0, -6.4e6, -12.8e6, -19.2e6])
    assert np.flatnonzero(s_float[0, :, 0])[0] == 7


def test_weight_quantization_like_lava_dense():
    w, mode = loihi_k.quantize_weights(np.array([[-300, -3, 3, 7, 300]]))
    assert mode == "mixed"
    # clip to [−256, 255], then drop 1 low bit (arithmetic shift: floor to even)
    np.testing.assert_array_equal(w, [[-256, -4, 2, 6, 254]])
    w, mode = loihi_k.quantize_weights(np.array([[0, 3, 7, 300]]))
    assert mode == "excitatory"
    np.testing.assert_array_equal(w, [[0, 3, 7, 255]])
    w, mode = loihi_k.quantize_weights(np.array([[0, -3, -300]]))
    assert mode == "inhibitory"
    np.testing.assert_array_equal(w, [[0, -3, -255]])
    w, _ = loihi_k.quantize_weights(np.array([[1, 2, 7, 13]]), num_weight_bits=6)   # drop 2 bits
    np.testing.assert_array_equal(w, [[0, 0, 4, 12]])


def test_loihi_synapse_integer_accumulate_shift_and_delay():
    """weights ·scale on a 2^e grid; a = floor((Σ w·s + b)·2^e); the neuron sees it one step later."""
    sub = compose({"name": "loihi", "weight_exp": -1, "scale": 1.0},
                  {"name": "loihi", "T": 3, "du": 4095, "dv": 0, "vth": 1000, "record": True})
    W = np.array([[[3.0, -5.0, 1.5]]])      # /2^−1 → mantissas 6, −10, 3 → mixed: even → 6, −10, 2
    b = np.array([[0.5]])                    # → 1 → 0 (even)
    progs = sub.program([DenseWeights(W, b)], np.random.default_rng(0))
    prog = progs[0]
    np.testing.assert_array_equal(prog.W[0], [[6, -10, 2]])
    np.testing.assert_array_equal(prog.b[0], [0])
    x = np.array([[[1, 1, 1]], [[1, 0, 1]], [[0, 1, 0]]], dtype=np.float32)   # (T, B, n) spikes
    a = sub.synapse.read(prog, x[None], np.random.default_rng(0), sub.costs, spiking=True)
    # sums −2, 8, −10; ·2^−1 → floor: −1, 4, −5 (Lava: arithmetic >> 1)
    np.testing.assert_array_equal(a[0, :, 0, 0], [-1, 4, -5])
    sub.run(progs, x, np.random.default_rng(0), ["relu"])
    u = sub.neuron.trace["current"][0][0, :, 0, 0]
    np.testing.assert_array_equal(u, [0, -64, 4 * 64])   # one-step delay


def test_auto_weight_exponent_fits_8_bits():
    sub = neurozo.substrates.get("loihi")
    rng = np.random.default_rng(1)
    W = rng.standard_normal((3, 20, 30)) * np.array([0.01, 1.0, 50.0])[:, None, None]
    prog = sub.synapse.program(DenseWeights(W, np.zeros((3, 20))), rng, sub.costs)
    assert np.all(prog.W >= -256) and np.all(prog.W <= 255)
    assert np.all(np.mod(prog.W, 2) == 0)                       # mixed sign: even mantissas
    assert list(prog.exp) == sorted(prog.exp) and prog.exp[0] < prog.exp[2]
    # the largest weight uses the top of the 8-bit range
    assert np.all(np.abs(prog.W).reshape(3, -1).max(axis=1) >= 128)
    rel = np.abs(prog.W * np.ldexp(1.0, prog.exp)[:, None, None] - W * 64).max(axis=(1, 2))
    assert np.all(rel <= 2.0 ** (prog.exp + 1))                 # error ≤ one even step


def test_loihi_substrate_trains_end_to_end_briefly():
    res = neurozo.run(task="digits", model={"name": "mlp", "sizes": [64, 16, 10]}, substrate="loihi",
                      learner={"name": "openes", "popsize": 8}, budget=64, seed=0, batch_size=32)
    assert res.status == "finished"
    h = res.history
    assert h["writes"].iloc[-1] > 0 and h["acs"].iloc[-1] > 0 and h["spikes"].iloc[-1] > 0
    assert np.isfinite(h["test_acc"].iloc[-1])


@pytest.mark.parametrize("kw, name", [
    ({"du": 4096}, "du"), ({"du": -1}, "du"), ({"dv": 5000}, "dv"), ({"vth": 2 ** 17}, "vth"),
    ({"vth": -1}, "vth"), ({"bias_mant": 4096}, "bias_mant"), ({"bias_mant": -4097}, "bias_mant"),
    ({"bias_exp": 8}, "bias_exp"), ({"bias_exp": -1}, "bias_exp"), ({"num_weight_bits": 9}, "num_weight_bits"),
    ({"num_weight_bits": 0}, "num_weight_bits"), ({"weight_exp": 8}, "weight_exp"),
    ({"weight_exp": -9}, "weight_exp"), ({"T": 0}, "T"), ({"input_bits": 9}, "input_bits"),
    ({"scale": 0.0}, "scale"),
])
def test_bad_loihi_parameters_raise(kw, name):
    with pytest.raises(ValueError, match=rf"^{name}=.* is invalid: must be an? .*"):
        neurozo.substrates.get("loihi", **kw)


def test_bit_width_message_names_the_range():
    with pytest.raises(ValueError, match=r"du=4096 is invalid: must be an integer >= 0 and <= 4095"):
        neurozo.substrates.get("loihi", du=4096)
    with pytest.raises(ValueError, match=r"vth=131072 is invalid: .*<= 131071"):
        neurozo.substrates.get("loihi", vth=131072)

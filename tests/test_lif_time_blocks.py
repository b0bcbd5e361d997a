"""Time-blocked spiking runs: the blocks, run one after another with carried neuron state,
give exactly the single-pass result (spikes, readouts, cost counters)."""

import numpy as np
import pytest

import neurozo
from kernels import coding, lif as lif_k
from neurozo.substrates.weights import DenseWeights


@pytest.mark.parametrize("reset,ref", [("subtract", 0), ("zero", 0), ("zero", 2), ("subtract", 3)])
def test_lif_scan_blocks_equal_one_pass(reset, ref):
    rng = np.random.default_rng(1)
    P, T, N = 2, 53, 37
    z = rng.normal(0.3, 0.6, (P, T, N)).astype(np.float32)
    sp1, c1, f1, _ = lif_k.lif_scan(z, T, 0.9, 1.0, reset, ref)
    st = lif_k.LIFState(P, N, T, np.float32)
    parts = []
    for t0 in range(0, T, 10):
        steps = min(10, T - t0)
        sp, c, f, _ = lif_k.lif_scan(np.ascontiguousarray(z[:, t0:t0 + steps]), steps, 0.9, 1.0, reset, ref, state=st)
        parts.append(sp)
    assert sp1.sum() > 0
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), sp1)
    np.testing.assert_array_equal(c, c1)
    np.testing.assert_array_equal(f, f1)
    assert st.t == T


def test_lif_scan_state_overrun_and_shape_are_errors():
    st = lif_k.LIFState(1, 4, 5)
    z = np.zeros((1, 6, 4), np.float32)
    with pytest.raises(ValueError, match="overrun"):
        lif_k.lif_scan(z, 6, 0.9, 1.0, state=st)
    with pytest.raises(ValueError, match="state holds"):
        lif_k.lif_scan(np.zeros((1, 2, 3), np.float32), 2, 0.9, 1.0, state=st)


def test_codes_in_blocks_equal_whole_train():
    x = np.random.default_rng(2).uniform(0, 1, (3, 20))
    T = 41
    full = coding.rate_code(x, T, 77, 0.3)
    blocks = np.concatenate([coding.rate_code(x, min(8, T - t0), 77, 0.3, t0=t0) for t0 in range(0, T, 8)])
    np.testing.assert_array_equal(blocks, full)
    full = coding.latency_code(x, T)
    blocks = np.concatenate([coding.latency_code(x, min(8, T - t0), t0=t0, T_total=T) for t0 in range(0, T, 8)])
    np.testing.assert_array_equal(blocks, full)


def _net(rng, sizes, P):
    # weights on a coarse binary grid, so every float sum is exact whatever its order (dense
    # GEMM or event-driven accumulate): the comparison can be bit-for-bit
    layers = []
    for n, m in zip(sizes[:-1], sizes[1:]):
        W = (rng.integers(-6, 12, (P, m, n)) / 16).astype(np.float32)
        b = (rng.integers(-2, 3, (P, m)) / 16).astype(np.float32)
        layers.append(DenseWeights(W, b))
    return layers


@pytest.mark.parametrize("encoding,readout,reset,ref", [
    ("rate", "counts", "subtract", 0), ("rate", "first_spike", "zero", 2), ("latency", "counts", "zero", 0),
    ("latency", "first_spike", "subtract", 1)])
def test_blocked_run_equals_one_pass(encoding, readout, reset, ref):
    rng = np.random.default_rng(3)
    P, B, T, sizes = 3, 5, 97, [30, 24, 10]
    x = rng.uniform(0, 1, (B, sizes[0]))
    layers = _net(rng, sizes, P)
    out, costs = [], []
    for blocked in (False, True):
        sub = neurozo.substrates.get("lif", T=T, beta=0.875, threshold=1.0, reset=reset, refractory=ref,
                                     encoding=encoding, readout=readout, gain=0.5)
        if blocked:   # force blocks of a few steps that do not divide T
            sub.neuron.BLOCK_MIN_BYTES = 0
            per_step = 4 * B * P * sizes[1]          # float32 bytes of the widest layer's step
            sub.neuron.BLOCK_BYTES = per_step * 7
            assert sub.neuron.time_block(x, P, sizes) == 16   # at least 16 steps per block
            sub.neuron.BLOCK_BYTES = per_step * 20
            assert sub.neuron.time_block(x, P, sizes) == 20
        calls = []
        inner = sub._run_blocked
        sub._run_blocked = lambda *a, **k: calls.append(a[-1]) or inner(*a, **k)
        prog = sub.program(layers, np.random.default_rng(0))
        out.append(sub.run(prog, x, np.random.default_rng(9), ["relu", "relu"]))
        assert calls == ([20] if blocked else [])
        costs.append(dict(sub.costs.counts))
    assert out[0].shape == (P, B, sizes[-1])
    assert out[0].sum() > 0
    np.testing.assert_array_equal(out[1], out[0])
    assert costs[1] == costs[0]


def test_no_blocks_for_current_input_recording_or_small_runs():
    sub = neurozo.substrates.get("lif", T=16, encoding="current")
    x = np.zeros((4, 64))
    assert sub.neuron.time_block(x, 8, [64, 64, 10]) is None
    sub = neurozo.substrates.get("lif", T=16, encoding="rate")
    assert sub.neuron.time_block(x, 8, [64, 64, 10]) is None          # 16·4·8·64·4 B: one pass
    sub = neurozo.substrates.get("lif", T=10_000, encoding="rate")
    assert sub.neuron.time_block(np.zeros((1, 1000)), 1, [1000, 1000]) == (4 << 20) // 4000
    sub = neurozo.substrates.get("lif", T=10_000, encoding="rate", record=True)
    assert sub.neuron.time_block(np.zeros((1, 1000)), 1, [1000, 1000]) is None

"""LIF neuron model and kernels: snnTorch identity, Brian2 agreement, coding, costs, errors."""

from __future__ import annotations

import numpy as np
import pytest

import neurozo
from kernels import coding as coding_k
from kernels import lif as lif_k
from neurozo.substrates import compose
from neurozo.substrates.lif import activation_sparsity
from neurozo.substrates.weights import DenseWeights

SIZES = (12, 40, 40, 10)  # 3 layers


def _dyadic(rng, shape, scale, bits=8):
    """Random values on a 2^-bits grid: every product and sum below is exact in float32,
    so the test checks the neuron dynamics, not the summation order of two BLAS libraries."""
    return (rng.integers(-2 ** bits, 2 ** bits, shape) / 2.0 ** bits * scale).astype(np.float32)


def _layers(rng, dyadic=True, dtype=np.float32):
    layers = []
    for n_in, n_out in zip(SIZES[:-1], SIZES[1:]):
        if dyadic:
            W = _dyadic(rng, (n_out, n_in), 1.5 / np.sqrt(n_in) * 2)
            b = _dyadic(rng, (n_out,), 0.25)
        else:
            W = (rng.standard_normal((n_out, n_in)) * 1.5 / np.sqrt(n_in)).astype(dtype)
            b = (rng.standard_normal(n_out) * 0.1).astype(dtype)
        layers.append((W, b))
    return layers


def _snntorch_spikes(layers, x, beta, reset, dtype):
    torch = pytest.importorskip("torch")
    snn = pytest.importorskip("snntorch")
    tdt = torch.float32 if dtype == np.float32 else torch.float64
    fcs, lifs = [], []
    for W, b in layers:
        fc = torch.nn.Linear(W.shape[1], W.shape[0]).to(tdt)
        with torch.no_grad():
            fc.weight.copy_(torch.from_numpy(W))
            fc.bias.copy_(torch.from_numpy(b))
        fcs.append(fc)
        lif = snn.Leaky(beta=beta, reset_mechanism=reset)
        lifs.append(lif)
    mems = [lif.reset_mem() for lif in lifs]
    rec = [[] for _ in layers]
    with torch.no_grad():
        for t in range(x.shape[0]):
            h = torch.from_numpy(x[t])
            for k, (fc, lif) in enumerate(zip(fcs, lifs)):
                h, mems[k] = lif(fc(h.to(tdt)), mems[k])   # snnTorch spikes are float32
                rec[k].append(h.numpy().copy())
    return [np.stack(r) for r in rec]


def _neurozo_spikes(layers, x, beta, reset, dtype):
    sub = compose({"name": "float", "dtype": np.dtype(dtype).name},
                  {"name": "lif", "beta": beta, "reset": reset, "T": x.shape[0], "record": True})
    prog = sub.program([DenseWeights(W[None], b[None]) for W, b in layers], np.random.default_rng(0))
    out = sub.run(prog, x, np.random.default_rng(0), ["relu"] * len(layers))
    spikes = [s[0] for s in sub.neuron.trace["spikes"]]
    return spikes, out, sub


@pytest.mark.parametrize("beta", [0.5, 0.9, 0.95])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("event", [False, True], ids=["dense-gemm", "event-driven"])
def test_spike_trains_identical_to_snntorch(beta, reset, event, monkeypatch):
    """Every spike of every layer at every step equals snnTorch Leaky's (3 layers, T = 50)."""
    calls = []
    real = lif_k.spike_accumulate
    monkeypatch.setattr(lif_k, "prefer_event", lambda nnz, size, n: event)
    monkeypatch.setattr(lif_k, "spike_accumulate", lambda *a, **k: calls.append(1) or real(*a, **k))
    rng = np.random.default_rng(int(beta * 100) + (reset == "zero"))
    layers = _layers(rng)
    x = _dyadic(rng, (50, 6, SIZES[0]), 1.0, bits=4) + np.float32(0.25)
    ref = _snntorch_spikes(layers, x, beta, reset, np.float32)
    got, out, _ = _neurozo_spikes(layers, x, beta, reset, np.float32)
    for k in range(3):
        assert got[k].shape == ref[k].shape
        assert ref[k].sum() > 0, "the reference must spike for the test to mean anything"
        np.testing.assert_array_equal(got[k], ref[k], err_msg=f"layer {k}")
    np.testing.assert_array_equal(out[0], ref[2].sum(axis=0))   # spike-count readout
    assert len(calls) == (2 if event else 0)                    # layers 2 and 3 took the event path


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_spike_trains_identical_to_snntorch_float64_random_weights(reset):
    """Plain Gaussian weights in float64: sums differ only at 1e-16, no spike may flip."""
    rng = np.random.default_rng(7)
    layers = _layers(rng, dyadic=False, dtype=np.float64)
    x = rng.standard_normal((50, 5, SIZES[0])) + 0.5
    ref = _snntorch_spikes(layers, x, 0.9, reset, np.float64)
    got, _, _ = _neurozo_spikes(layers, x, 0.9, reset, np.float64)
    for k in range(3):
        assert ref[k].sum() > 0
        np.testing.assert_array_equal(got[k], ref[k], err_msg=f"layer {k}")


def test_membranes_identical_to_snntorch():
    torch = pytest.importorskip("torch")
    snn = pytest.importorskip("snntorch")
    rng = np.random.default_rng(3)
    z = (rng.standard_normal((40, 3, 50)) * 0.7 + 0.3).astype(np.float32)
    for reset in ("subtract", "zero"):
        lif = snn.Leaky(beta=0.9, reset_mechanism=reset)
        m, M = lif.reset_mem(), []
        with torch.no_grad():
            for t in range(40):
                _, m = lif(torch.from_numpy(z[t]), m)
                M.append(m.numpy().copy())
        _, _, _, mem = lif_k.lif_scan(z.reshape(1, 40, -1), 40, 0.9, 1.0, reset, record_mem=True)
        np.testing.assert_array_equal(mem[0], np.stack(M).reshape(40, -1))


def test_spike_counts_match_brian2_exact_integration():
    """100 LIF neurons, constant currents, τ = 10 ms, θ = 1, reset to 0, 1 s at dt = 0.1 ms.

    Brian2 integrates dv/dt = (I − v)/τ exactly: v ← I + (v − I)·e^{−dt/τ}, i.e. the
    discrete LIF with β = e^{−dt/τ} and input (1 − β)·I; a spike resets v to 0 in the
    same step, which for reset-to-zero is the same trajectory as snnTorch's delayed
    reset. Counts may differ only by rounding at a threshold crossing: ≤ 1 spike.
    """
    b2 = pytest.importorskip("brian2")
    b2.prefs.codegen.target = "numpy"
    b2.start_scope()
    tau, dt = 10 * b2.ms, 0.1 * b2.ms
    currents = np.linspace(0.5, 4.0, 100)
    G = b2.NeuronGroup(100, "dv/dt = (I_in - v)/tau : 1\nI_in : 1", threshold="v > 1", reset="v = 0",
                       method="exact", dt=dt, namespace={"tau": tau})
    G.I_in = currents
    mon = b2.SpikeMonitor(G)
    b2.Network(G, mon).run(1 * b2.second, namespace={})
    ref = np.asarray(mon.count)

    beta = float(np.exp(-0.1 / 10.0))
    T = 10_000
    sub = compose({"name": "float", "dtype": "float64"},
                  {"name": "lif", "beta": beta, "threshold": 1.0, "reset": "zero", "T": T})
    # one neuron per current: identity weights on an input of (1 − β)·I held for T steps
    layer = DenseWeights(np.eye(100)[None], np.zeros((1, 100)))
    prog = sub.program([layer], np.random.default_rng(0))
    counts = sub.run(prog, ((1 - beta) * currents)[None], np.random.default_rng(0), ["relu"])[0, 0]
    assert ref.sum() > 1000 and (ref == 0).any()            # silent and fast neurons both present
    assert np.max(np.abs(counts - ref)) <= 1


def test_refractory_period_hand_trace():
    """β = 0, I = 2θ, subtract reset, refractory 2: spike, two silent steps ignoring input
    (U: 2 → −1 → 0), spike again: spikes at t = 0, 3, 6, ..."""
    z = np.full((1, 1, 1), 2.0, dtype=np.float32)
    spikes, counts, first, mem = lif_k.lif_scan(z, 12, 0.0, 1.0, "subtract", refractory=2, record_mem=True)
    np.testing.assert_array_equal(np.flatnonzero(spikes[0, :, 0]), [0, 3, 6, 9])
    np.testing.assert_array_equal(mem[0, :4, 0], [2.0, -1.0, 0.0, 2.0])
    assert counts[0, 0] == 4 and first[0, 0] == 0
    # no refractory: β = 0, I = 2, subtract → U = 2, 2 − 1 = 1 (not > θ), 2, 1, ...
    spikes, _, _, mem = lif_k.lif_scan(z, 6, 0.0, 1.0, "subtract", record_mem=True)
    np.testing.assert_array_equal(np.flatnonzero(spikes[0, :, 0]), [0, 2, 4])
    np.testing.assert_array_equal(mem[0, :, 0], [2, 1, 2, 1, 2, 1])


def test_constant_current_broadcast_equals_repeated_current():
    rng = np.random.default_rng(1)
    z = rng.standard_normal((2, 1, 30)).astype(np.float32) + 0.5
    a = lif_k.lif_scan(z, 20, 0.8, 1.0)
    b = lif_k.lif_scan(np.repeat(z, 20, axis=1), 20, 0.8, 1.0)
    for u, v in zip(a[:3], b[:3]):
        np.testing.assert_array_equal(u, v)


def test_event_driven_accumulate_matches_dense():
    rng = np.random.default_rng(2)
    x = (rng.random((1, 300, 257)) < 0.05).astype(np.float32)
    W = rng.standard_normal((3, 70, 257)).astype(np.float32)
    b = rng.standard_normal((3, 70)).astype(np.float32)
    y = lif_k.spike_accumulate(x, W, b)
    ref = np.einsum("rn,pmn->prm", x[0].astype(np.float64), W.astype(np.float64)) + b[:, None]
    # float32 sums of ≤ ~30 terms of size ~3: rounding error well below 1e-4
    np.testing.assert_allclose(y, ref, atol=1e-4)
    xp = (rng.random((3, 20, 257)) < 0.1) * rng.integers(1, 4, (3, 20, 257))   # graded, per member
    y = lif_k.spike_accumulate(xp.astype(np.float64), W.astype(np.float64), b.astype(np.float64))
    np.testing.assert_allclose(y, np.einsum("prn,pmn->prm", xp, W.astype(np.float64)) + b[:, None],
                               atol=1e-9)


def test_thread_count_does_not_change_results():
    import numba

    rng = np.random.default_rng(4)
    z = rng.standard_normal((3, 10, 2000)).astype(np.float32)
    x = (rng.random((1, 500, 300)) < 0.05).astype(np.float32)
    W = rng.standard_normal((2, 130, 300)).astype(np.float32)
    b = np.zeros((2, 130), np.float32)
    n0 = numba.get_num_threads()
    outs = []
    for n in sorted({1, n0}):
        numba.set_num_threads(n)
        outs.append((lif_k.lif_scan(z, 10, 0.9, 1.0)[0], lif_k.spike_accumulate(x, W, b),
                     coding_k.rate_code(z[0, :5, :100], 8, seed=11)))
    numba.set_num_threads(n0)
    for a, c in zip(outs[0], outs[-1]):
        np.testing.assert_array_equal(a, c)


def test_rate_code_statistics_and_seed():
    x = np.linspace(0, 1, 50)[None].repeat(4, 0)
    T = 4000
    s = coding_k.rate_code(x, T, seed=5)
    assert set(np.unique(s)) <= {0.0, 1.0}
    p = s.mean(axis=0)
    # Bernoulli mean over T draws: 5 standard errors sqrt(p(1−p)/T) (plus 1e-12 for p ∈ {0, 1})
    assert np.all(np.abs(p - x) <= 5 * np.sqrt(x * (1 - x) / T) + 1e-12)
    np.testing.assert_array_equal(s, coding_k.rate_code(x, T, seed=5))
    assert not np.array_equal(s, coding_k.rate_code(x, T, seed=6))


def test_latency_code_times():
    x = np.array([[1.0, 0.5, 0.0, 0.2]])
    s = coding_k.latency_code(x, 11)
    assert s.sum(axis=0).tolist() == [[1, 1, 0, 1]]     # one spike each, none for a dark input
    np.testing.assert_array_equal(np.argmax(s[:, 0, [0, 1, 3]], axis=0), [0, 5, 8])


@pytest.mark.parametrize("encoding", ["current", "rate", "latency"])
@pytest.mark.parametrize("readout", ["counts", "membrane", "first_spike"])
def test_lif_substrate_runs_every_coding_and_readout(encoding, readout):
    sub = neurozo.substrates.get("lif", encoding=encoding, readout=readout, T=8, record=True)
    model = neurozo.models.get("mlp", sizes=[64, 20, 10])
    task = neurozo.tasks.get("digits")
    rng = np.random.default_rng(0)
    theta = model.init(rng)
    x, _ = task.batch(rng, 16)
    pop = np.stack([theta, theta * 2])
    out = model.forward(pop, x, sub, rng)
    assert out.shape == (2, 16, 10) and np.all(np.isfinite(out))
    tr = sub.neuron.trace
    assert tr["membrane"][0].shape == (2, 8, 16, 20)
    if readout == "counts":
        np.testing.assert_array_equal(out, tr["spikes"][1].sum(axis=1))
    elif readout == "first_spike":
        s = tr["spikes"][1]
        t_first = np.where(s.any(axis=1), s.argmax(axis=1), 8)
        np.testing.assert_array_equal(out, 8 - t_first)
    else:
        np.testing.assert_allclose(out, tr["membrane"][1].mean(axis=1), rtol=1e-5, atol=1e-5)


def test_costs_count_spikes_updates_and_event_acs():
    sub = neurozo.substrates.get("lif", T=10)
    model = neurozo.models.get("mlp", sizes=[64, 32, 10])
    rng = np.random.default_rng(0)
    theta = model.init(rng)
    x = neurozo.tasks.get("digits").batch(rng, 8)[0]
    with_rec = neurozo.substrates.get("lif", T=10, record=True)
    model.forward(theta, x, with_rec, rng)
    model.forward(theta, x, sub, rng)
    tr = with_rec.neuron.trace
    c = sub.costs.counts
    s0, s1 = tr["spikes"]
    assert c["neuron_updates"] == 10 * 8 * (32 + 10)
    assert c["spikes"] == s0.sum() + s1.sum()
    assert c["macs"] == 8 * 64 * 32                 # constant current: one product, held over T
    assert c["acs"] == np.count_nonzero(s0) * 10    # each spike of layer 0 reaches 10 outputs
    assert 0 < activation_sparsity(sub.costs) < 1
    assert activation_sparsity(sub.costs) == pytest.approx(1 - c["spikes"] / c["neuron_updates"])


@pytest.mark.parametrize("kw, name", [
    ({"beta": 1.5}, "beta"), ({"beta": -0.1}, "beta"), ({"T": 0}, "T"), ({"threshold": 0.0}, "threshold"),
    ({"threshold": -1.0}, "threshold"), ({"reset": "none"}, "reset"), ({"refractory": -1}, "refractory"),
    ({"encoding": "poisson"}, "encoding"), ({"readout": "max"}, "readout"), ({"gain": 0}, "gain"),
])
def test_bad_lif_parameters_raise(kw, name):
    with pytest.raises(ValueError, match=rf"^{name}=.* is invalid: must be"):
        neurozo.substrates.get("lif", **kw)
    with pytest.raises(ValueError, match=rf"^{name}="):
        compose("float", {"name": "lif", **kw})


def test_bad_beta_message_names_the_range():
    with pytest.raises(ValueError, match=r"beta=1.5 is invalid: .*>= 0.0 and <= 1.0"):
        neurozo.substrates.get("lif", beta=1.5)
    with pytest.raises(ValueError, match=r"T=0 is invalid: .*>= 1"):
        neurozo.substrates.get("lif", T=0)


def test_time_resolved_input_must_have_T_steps():
    sub = neurozo.substrates.get("lif", T=5)
    with pytest.raises(ValueError, match="T=5"):
        sub.neuron.encode(np.zeros((4, 2, 3)), np.random.default_rng(0))


def test_rate_coded_input_counts_acs_on_the_first_layer():
    """Rate-coded inputs are spikes: the first layer accumulates events (ACs), no MACs."""
    sub = neurozo.substrates.get("lif", T=10, encoding="rate", record=True)
    model = neurozo.models.get("mlp", sizes=[64, 32, 10])
    rng = np.random.default_rng(0)
    x = neurozo.tasks.get("digits").batch(rng, 8)[0]
    model.forward(model.init(rng), x, sub, rng)
    tr = sub.neuron.trace
    assert sub.costs.counts["macs"] == 0
    assert sub.costs.counts["acs"] == np.count_nonzero(tr["input"]) * 32 + np.count_nonzero(tr["spikes"][0]) * 10


def test_event_path_is_chosen_by_measured_density():
    n = 4096
    thr = lif_k.event_threshold(n)
    assert lif_k.prefer_event(int(0.5 * thr * 100 * n), 100 * n, n)
    assert not lif_k.prefer_event(int(1.5 * thr * 100 * n), 100 * n, n)
    assert lif_k.event_threshold(64) <= lif_k.event_threshold(4096)


def test_row_wise_sparse_accumulate_matches_dense():
    """Very sparse spikes (< ROW_WISE_MAX_EVENTS per row) take the row-parallel path."""
    rng = np.random.default_rng(9)
    x = (rng.random((2, 400, 300)) < 0.002).astype(np.float32)
    assert np.count_nonzero(x) < lif_k.ROW_WISE_MAX_EVENTS * 800
    W = rng.standard_normal((2, 50, 300)).astype(np.float32)
    b = rng.standard_normal((2, 50)).astype(np.float32)
    ref = np.einsum("prn,pmn->prm", x.astype(np.float64), W.astype(np.float64)) + b[:, None]
    np.testing.assert_allclose(lif_k.spike_accumulate(x, W, b), ref, atol=1e-5)

"""Leaky integrate-and-fire neurons (the ``lif`` neuron model and substrate preset).

Semantics of snnTorch ``Leaky`` (Eshraghian et al., "Training spiking neural
networks using lessons from deep learning", Proc. IEEE 2023), run for T
discrete steps with hard thresholds (no surrogate: what the hardware does).
Per neuron, input current I[t], decay β ∈ [0, 1], threshold θ > 0 and
R[t] = S[t−1] (the reset follows the spike by one step, snnTorch's
``reset_delay=True``):

    reset "subtract":  U[t] = β·U[t−1] + I[t] − R[t]·θ
    reset "zero":      U[t] = β·(1 − R[t])·U[t−1] + I[t]
    spike:             S[t] = H(U[t] − θ)

with an optional refractory period (after a spike, ``refractory`` steps
ignore their input and cannot spike). For the exact integration of
τ·dU/dt = −U + R·I(t) with step dt (Brian2 ``method='exact'``) take
β = exp(−dt/τ) and scale a constant current by (1 − β).

Input coding (``encoding``), from an input batch x (B, n):

current   the image as input current every step: I[t] = gain·x. Returned as
          one time step (1, 1, B, n) that the neurons broadcast over T — a
          constant current is computed once per layer (as a held bias current
          on chip), so the first layer costs B·n·m MACs, not T·B·n·m.
rate      Bernoulli spikes, P(S[t] = 1) = clip(gain·x, 0, 1), from a seed
          drawn from the device generator (``kernels.coding``).
latency   one spike per input at t = round((1 − x)(T − 1)), none for x ≤ 0.
An input that already has a time axis, x (T, B, n), is taken as T steps of
currents (or spikes) and passed through unchanged.

Every layer's currents arrive as (P, T or 1, B, m) (the synapse treats the
time and batch axes as one batch: one GEMM per layer for all steps, or an
event-driven accumulate of the active spikes), the LIF scan runs over T and
hands the spikes (P, T, B, m) to the next layer.

Readout of the last layer (``readout``):

counts        spike counts Σ_t S[t] (default), the logits;
membrane      the last layer is a non-spiking leaky integrator
              U[t] = β·U[t−1] + I[t]; logits = mean_t U[t];
first_spike   logits = T − t_first (earlier spike → larger logit; 0 if silent).

Costs (NeuroBench): one ``neuron_update`` per neuron per step, ``spikes``
emitted; the synapse counts MACs for dense inputs and ACs for spikes.
Activation sparsity = 1 − spikes / neuron_updates (``activation_sparsity``).

Long simulations run in time blocks. With spike-coded input (rate or latency), a counts or
first-spike readout and arrays above 16 MB, ``Substrate.run`` takes the T steps in blocks of
about 4 MB: each block goes through every layer and the neurons carry their state (membrane,
last spike, refractory steps, counts, first spike: ``kernels.lif.LIFState``) into the next. The
spikes, readouts and cost counters are those of one pass over all T steps (tested); the arrays
between layers stay in cache instead of being re-allocated page by page, which made 1 s of a
1000 → 1000 Poisson-driven layer at dt = 0.1 ms (T = 10 000) take 24.5 ms instead of 29–31 ms.

``record=True`` keeps the last forward's traces on the neuron object
(``trace``: input drive, and per layer spikes, membrane potentials, counts)
for plots and reference checks.

Energy (45 nm, Horowitz ISSCC 2014): a LIF update is one fp32 multiply and two
adds/compares: 3.7 + 0.9 + 0.9 = 5.5 pJ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

import numpy as np

from kernels import coding as coding_k
from kernels import lif as lif_k

from .._validate import check_bool, check_choice, check_float, check_int
from . import compose, neurons, registry
from .base import NeuronModel
from .costs import CostCounter

__all__ = ["LIFNeuron", "LIFParams", "activation_sparsity", "encode_input", "ENCODINGS", "READOUTS"]

ENCODINGS = ("current", "rate", "latency")
READOUTS = ("counts", "membrane", "first_spike")
RESETS = ("subtract", "zero")


@dataclass(frozen=True)
class LIFParams:
    beta: float = 0.9
    threshold: float = 1.0
    reset: str = "subtract"
    refractory: int = 0
    T: int = 16
    encoding: str = "current"
    readout: str = "counts"
    gain: float = 1.0
    record: bool = False

    def __post_init__(self):
        check_float("beta", self.beta, 0.0, 1.0)
        check_float("threshold", self.threshold, 0.0, lo_open=True)
        check_choice("reset", self.reset, RESETS)
        check_int("refractory", self.refractory, 0)
        check_int("T", self.T, 1, 2**24 - 1)   # spike counts/first-spike steps kept exactly in float32
        check_choice("encoding", self.encoding, ENCODINGS)
        check_choice("readout", self.readout, READOUTS)
        check_float("gain", self.gain, 0.0, lo_open=True)
        check_bool("record", self.record)


def encode_input(x: np.ndarray, T: int, encoding: str, gain: float, rng: np.random.Generator,
                 dtype=np.float32) -> np.ndarray:
    """Input batch (B, n) → drive (1, T or 1, B, n); (T, B, n) passes through."""
    x = np.asarray(x)
    if x.ndim == 3:
        if x.shape[0] != T:
            raise ValueError(f"x has {x.shape[0]} time steps: a time-resolved input must have T={T}")
        return np.ascontiguousarray(x, dtype=dtype)[None]
    if x.ndim != 2:
        raise ValueError(f"x has shape {x.shape}: must be (B, n) or (T, B, n)")
    if encoding == "current":
        return (np.asarray(x, dtype=dtype) * dtype(gain))[None, None]
    seed = int(rng.integers(0, 2**63 - 1)) if encoding == "rate" else None
    return spike_code(x, T, encoding, gain, seed, dtype)


def spike_code(x: np.ndarray, T: int, encoding: str, gain: float, seed: Optional[int], dtype=np.float32,
               t0: int = 0, steps: Optional[int] = None) -> np.ndarray:
    """Steps t0 … t0 + steps − 1 (default: all T) of the rate or latency code of x (B, n), as
    (1, steps, B, n); ``seed`` is the rate code's (unused for latency)."""
    steps = T if steps is None else steps
    if encoding == "rate":
        return coding_k.rate_code(x, steps, seed, gain, dtype, t0=t0)[None]
    return coding_k.latency_code(np.asarray(x, dtype=np.float64) * gain, steps, 0.0, dtype, t0=t0,
                                 T_total=T)[None]


def _readout(readout: str, T: int, counts: np.ndarray, first: np.ndarray, shape, dtype) -> np.ndarray:
    """The last layer's logits: spike counts, or T − first-spike step (0 if silent)."""
    if readout == "counts":
        return counts.reshape(shape).astype(dtype)
    return (T - first).reshape(shape).astype(dtype)


def activation_sparsity(costs: CostCounter) -> float:
    """NeuroBench activation sparsity of spiking layers: 1 − spikes / neuron updates."""
    n = costs.counts["neuron_updates"]
    return float("nan") if n == 0 else 1.0 - costs.counts["spikes"] / n


@neurons.register("lif")
class LIFNeuron(NeuronModel):
    """Discrete-time LIF neurons over T steps (snnTorch ``Leaky`` semantics)."""

    spiking = True
    input_spiking = False
    energy_pj = {"neuron_updates": 5.5}

    def __init__(self, beta: float = 0.9, threshold: float = 1.0, reset: str = "subtract",
                 refractory: int = 0, T: int = 16, encoding: str = "current", readout: str = "counts",
                 gain: float = 1.0, record: bool = False):
        self.params = LIFParams(beta, threshold, reset, refractory, T, encoding, readout, gain, record)
        self.trace: Optional[Dict[str, Any]] = None

    @property
    def T(self) -> int:
        return self.params.T

    def encode(self, x, rng):
        p = self.params
        h = encode_input(x, p.T, p.encoding, p.gain, rng)
        # spike input (rate/latency code, or a 0/1 time-resolved input): the first layer accumulates
        # events (ACs), chosen by the substrate from this flag
        self.input_spiking = p.encoding != "current" if np.ndim(x) == 2 else lif_k.is_binary(h)
        if p.record:
            self.trace = {"input": h[0], "spikes": [], "membrane": [], "counts": []}
        return h

    def activate(self, z, activation, last, rng, costs):
        p = self.params
        if z.ndim == 3:          # (P, B, m): a current without a time axis is constant
            z = z[:, None]
        P, Tz, B, m = z.shape
        z3 = z.reshape(P, Tz, B * m)
        costs.add(neuron_updates=P * p.T * B * m)
        rec = p.record and self.trace is not None
        if last and p.readout == "membrane":
            mean, _, mem = lif_k.leaky_integrate(z3, p.T, p.beta, record_mem=rec)
            if rec:
                self.trace["membrane"].append(mem.reshape(P, p.T, B, m))
                self.trace["spikes"].append(None)
                self.trace["counts"].append(None)
            return mean.reshape(P, B, m).astype(z.dtype, copy=False)
        spikes, counts, first, mem = lif_k.lif_scan(z3, p.T, p.beta, p.threshold, p.reset, p.refractory,
                                                    write_spikes=(not last) or rec, record_mem=rec)
        costs.add(spikes=int(counts.sum()))
        if rec:
            self.trace["spikes"].append(spikes.reshape(P, p.T, B, m))
            self.trace["membrane"].append(mem.reshape(P, p.T, B, m))
            self.trace["counts"].append(counts.reshape(P, B, m))
        if not last:
            return spikes.reshape(P, p.T, B, m)
        return _readout(p.readout, p.T, counts, first, (P, B, m), z.dtype)

    def decode(self, h):
        return h

    # ------------------------------------------------------------------ time-blocked runs
    #: a block's arrays between layers stay below this many bytes (L2/L3-sized; below glibc's
    #: mmap threshold, so they are reused rather than faulted in page by page)
    BLOCK_BYTES = 4 << 20
    #: runs whose largest per-layer array is below this go in one pass
    BLOCK_MIN_BYTES = 16 << 20

    def time_block(self, x, P, widths):
        """Steps per block, or None: only spike-coded 2-D input (rate/latency), counts or
        first-spike readout, no recording, and arrays larger than ``BLOCK_MIN_BYTES``."""
        p = self.params
        if np.ndim(x) != 2 or p.encoding == "current" or p.record or p.readout == "membrane":
            return None
        B = int(np.shape(x)[0])
        per_step = 4 * B * max(P * max(widths[1:]), widths[0])   # float32 bytes of one step
        if per_step * p.T <= self.BLOCK_MIN_BYTES:
            return None
        return int(min(p.T, max(16, self.BLOCK_BYTES // per_step)))

    def block_source(self, x, rng):
        """``source(t0, steps)`` → the input spikes of steps t0 … t0+steps−1, (1, steps, B, n);
        the same train as ``encode`` (the rate code's seed is drawn once, here)."""
        p = self.params
        self.input_spiking = True
        seed = int(rng.integers(0, 2**63 - 1)) if p.encoding == "rate" else None
        return lambda t0, steps: spike_code(x, p.T, p.encoding, p.gain, seed, t0=t0, steps=steps)

    def activate_block(self, z, activation, last, state, steps, costs):
        """``activate`` for one block of steps, continuing from ``state`` (a ``LIFState``)."""
        p = self.params
        P, Tz, B, m = z.shape
        z3 = z.reshape(P, Tz, B * m)
        if state is None:
            state = lif_k.LIFState(P, B * m, p.T, z3.dtype)
        before = float(state.cnt.sum(dtype=np.float64))
        costs.add(neuron_updates=P * steps * B * m)
        spikes, _, _, _ = lif_k.lif_scan(z3, steps, p.beta, p.threshold, p.reset, p.refractory,
                                         write_spikes=not last, state=state)
        costs.add(spikes=int(round(float(state.cnt.sum(dtype=np.float64)) - before)))
        return (None if last else spikes.reshape(P, steps, B, m)), state

    def finish_blocks(self, state, x):
        """The last layer's readout after the final block (counts or T − first spike)."""
        p = self.params
        B = int(np.shape(x)[0])
        P, BM = state.cnt.shape
        return _readout(p.readout, p.T, state.counts(), state.first_spike(), (P, B, BM // B), state.cnt.dtype)


@registry.register("lif")
def lif(dtype: str = "float32", beta: float = 0.9, threshold: float = 1.0, reset: str = "subtract",
        refractory: int = 0, T: int = 16, encoding: str = "current", readout: str = "counts",
        gain: float = 1.0, record: bool = False, backend: str = "cpu"):
    """Float synapses + LIF neurons (hard threshold, T steps, spike-count logits by default)."""
    neuron = {"name": "lif", "beta": beta, "threshold": threshold, "reset": reset, "refractory": refractory,
              "T": T, "encoding": encoding, "readout": readout, "gain": gain, "record": record}
    return compose({"name": "float", "dtype": dtype}, neuron, backend, name="lif")

"""Loihi: bit-accurate fixed-point LIF neurons and 8-bit synapses with a weight exponent.

Davies et al., "Loihi: a neuromorphic manycore processor with on-chip
learning", IEEE Micro 38(1), 2018. Arithmetic of Lava's bit-accurate models
(``PyLifModelBitAcc`` and ``PyDenseModelBitAcc``), see ``kernels.loihi``:

    u ← wrap24( sign(u(4096 − du − 1))·(|u(4096 − du − 1)| >> 12) + (a << 6) )
    v ← clip( sign(v(4096 − dv))·(|v(4096 − dv)| >> 12) + u + (bias_mant << bias_exp),
              −2²³ + 1, 2²³ − 1 )
    spike if v > (vth << 6), then v ← 0

Synapse ``loihi`` (programming a float population onto the chip). A float
weight w is worth ``scale`` units of dendritic input per spike. Per member
and layer, the bias b rides on an always-on input axon (a bias neuron that
spikes every step), and [W | b]·scale is written as 8-bit mantissas with one
exponent e ∈ [−8, 7] (the smallest that fits the largest weight, or the
``weight_exp`` given):

    w_int = truncate(clip(round(w·scale / 2^e)))        (Lava's clip and low-bit drop:
                                                        mixed-sign weights are even)
    a = floor( (Σ_active w_int·s + b_int) · 2^e )       (Lava: << e or >> −e)

Spike inputs s ∈ {0, 1} give Lava's integer sums exactly. Graded inputs
(``encoding="current"``: x quantized to ``input_bits`` bits, s = q/2^bits —
Lava's graded messages with the exponent lowered by ``input_bits``) are exact
too: every sum is a dyadic rational computed without rounding. The sum of a
step arrives at the neurons one step later (Lava's Dense buffers it), so a
layer of a network sees its input one step after the layer below.

Neuron ``loihi`` defaults emulate snnTorch's ``Leaky`` with β ≈ 0.9 and θ = 1
when ``scale`` = 64 = ``vth``: du = 4095 empties the current every step
(u = a << 6, no synaptic memory), dv = 410 ≈ 4096·(1 − 0.9), vth = 64
(threshold 64·64 in v units, i.e. 64 units of a per step).

Readouts and input codings as for ``lif`` (counts, membrane = mean voltage of
a non-firing last layer, first_spike; current, rate, latency).

Energy per operation (Davies et al. 2018, Table 1, 14 nm): synaptic op
23.6 pJ, neuron update 52 pJ, spike within a tile 1.7 pJ; weight writes are
counted (each candidate must be written to the chip) but not priced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

import numpy as np

from kernels import dense as dense_k
from kernels import lif as lif_k
from kernels import loihi as loihi_k

from .._validate import check_bool, check_choice, check_float, check_int, fail
from . import compose, neurons, registry, synapses
from .base import NeuronModel, SynapseModel
from .lif import spike_code
from .weights import LowRankWeights

__all__ = ["LoihiSynapse", "LoihiNeuron", "LoihiSynapseParams", "LoihiNeuronParams", "ProgrammedLoihi"]

LOIHI_PJ = {"acs": 23.6, "macs": 23.6, "neuron_updates": 52.0, "spikes": 1.7}
ENCODINGS = ("current", "rate", "latency")
READOUTS = ("counts", "membrane", "first_spike")


# --------------------------------------------------------------------------- synapse


@dataclass(frozen=True)
class LoihiSynapseParams:
    num_weight_bits: int = 8
    weight_exp: Optional[int] = None
    scale: float = 64.0

    def __post_init__(self):
        check_int("num_weight_bits", self.num_weight_bits, 1, 8)
        if self.weight_exp is not None:
            check_int("weight_exp", self.weight_exp, -8, 7)
        check_float("scale", self.scale, 0.0, lo_open=True)


@dataclass(frozen=True)
class ProgrammedLoihi:
    """A population's layer as written to the chip: integer mantissas (as floats) and exponents."""

    W: np.ndarray          # (P, m, n) integer-valued
    b: np.ndarray          # (P, m) integer-valued (bias axon weights)
    exp: np.ndarray        # (P,) int weight exponents
    modes: tuple           # sign mode per member

    @property
    def P(self) -> int:
        return self.W.shape[0]

    @property
    def shape(self):
        return self.W.shape[1:]


def _auto_exp(wmax: float) -> int:
    """Smallest e in [−8, 7] with wmax / 2^e ≤ 255 (8-bit magnitude)."""
    if wmax <= 0:
        return 0
    e = int(np.ceil(np.log2(wmax / 255.0)))
    return int(min(7, max(-8, e)))


@synapses.register("loihi")
class LoihiSynapse(SynapseModel):
    """Loihi dense synapses: 8-bit weights with a per-matrix exponent, integer accumulate."""

    energy_pj = LOIHI_PJ

    def __init__(self, num_weight_bits: int = 8, weight_exp: Optional[int] = None, scale: float = 64.0):
        self.params = LoihiSynapseParams(num_weight_bits, weight_exp, scale)

    def program(self, layer, rng, costs, index=0):
        p = self.params
        if isinstance(layer, LowRankWeights):
            layer = layer.materialize()       # each candidate is written to the chip
        W = np.asarray(layer.W, dtype=np.float64) * p.scale
        b = np.asarray(layer.b, dtype=np.float64) * p.scale
        P, m, n = W.shape
        Wq = np.empty((P, m, n), dtype=np.float32)
        bq = np.empty((P, m), dtype=np.float32)
        exps = np.empty(P, dtype=np.int64)
        modes = []
        for k in range(P):
            wb = np.concatenate([W[k], b[k][:, None]], axis=1)
            e = p.weight_exp if p.weight_exp is not None else _auto_exp(float(np.abs(wb).max()))
            q, mode = loihi_k.quantize_weights(np.rint(wb / 2.0 ** e), p.num_weight_bits)
            Wq[k], bq[k], exps[k] = q[:, :n], q[:, n], e
            modes.append(mode)
        costs.add(writes=P * m * (n + 1))
        return ProgrammedLoihi(Wq, bq, exps, tuple(modes))

    def read(self, prog, x, rng, costs, t=0.0, spiking=False):
        if not isinstance(prog, ProgrammedLoihi):
            fail("prog", type(prog).__name__, "must come from LoihiSynapse.program")
        lead = x.shape[1:-1]
        x2 = x.reshape(x.shape[0], -1, x.shape[-1])
        m, n = prog.shape
        P = prog.P
        binary = spiking or lif_k.is_binary(x2)
        nnz = np.count_nonzero(x2)
        # integer sums are exact in float32 while |Σ| ≤ 256·(n + 1) < 2^24 (spikes), else float64
        dt = np.float32 if binary and 256 * (n + 1) < 2 ** 24 else np.float64
        W = prog.W.astype(dt, copy=False)
        b = prog.b.astype(dt, copy=False)
        if binary and lif_k.prefer_event(nnz, x2.size, n):
            acc = lif_k.spike_accumulate(x2, W, b)
        else:
            acc = dense_k.dense_population(np.asarray(x2, dtype=dt), W, b)
        scale = np.ldexp(1.0, prog.exp).reshape(P, 1, 1)
        a = np.floor(acc.astype(np.float64) * scale)
        rows = x2.shape[1]
        if binary:
            costs.add(acs=(nnz * (P if x2.shape[0] == 1 else 1) + P * rows) * m)
        else:
            costs.add(macs=dense_k.dense_macs(P, rows, m, n), acs=P * rows * m)
        return a.reshape(P, *lead, m)


# --------------------------------------------------------------------------- neuron


@dataclass(frozen=True)
class LoihiNeuronParams:
    du: int = 4095
    dv: int = 410
    vth: int = 64
    bias_mant: int = 0
    bias_exp: int = 0
    T: int = 16
    encoding: str = "current"
    readout: str = "counts"
    input_bits: int = 8
    gain: float = 1.0
    record: bool = False

    def __post_init__(self):
        check_int("du", self.du, 0, 4095)
        check_int("dv", self.dv, 0, 4095)
        check_int("vth", self.vth, 0, 2 ** 17 - 1)
        check_int("bias_mant", self.bias_mant, -(2 ** 12), 2 ** 12 - 1)
        check_int("bias_exp", self.bias_exp, 0, 7)
        check_int("T", self.T, 1)
        check_choice("encoding", self.encoding, ENCODINGS)
        check_choice("readout", self.readout, READOUTS)
        check_int("input_bits", self.input_bits, 1, 8)
        check_float("gain", self.gain, 0.0, lo_open=True)
        check_bool("record", self.record)


@neurons.register("loihi")
class LoihiNeuron(NeuronModel):
    """Loihi-1 fixed-point LIF (Lava ``PyLifModelBitAcc``), dendritic input delayed one step."""

    spiking = True
    input_spiking = False
    energy_pj = LOIHI_PJ

    def __init__(self, du: int = 4095, dv: int = 410, vth: int = 64, bias_mant: int = 0, bias_exp: int = 0,
                 T: int = 16, encoding: str = "current", readout: str = "counts", input_bits: int = 8,
                 gain: float = 1.0, record: bool = False):
        self.params = LoihiNeuronParams(du, dv, vth, bias_mant, bias_exp, T, encoding, readout, input_bits,
                                        gain, record)
        self.trace: Optional[Dict[str, Any]] = None

    def encode(self, x, rng):
        p = self.params
        x = np.asarray(x)
        if x.ndim == 3:
            if x.shape[0] != p.T:
                raise ValueError(f"x has {x.shape[0]} time steps: a time-resolved input must have T={p.T}")
            h = np.ascontiguousarray(x, dtype=np.float32)[None]
        elif x.ndim != 2:
            raise ValueError(f"x has shape {x.shape}: must be (B, n) or (T, B, n)")
        elif p.encoding == "current":
            levels = 2 ** p.input_bits
            q = np.minimum(np.rint(np.clip(np.asarray(x, np.float64) * p.gain, 0, 1) * levels), levels - 1)
            h = (q / levels).astype(np.float32)[None, None]     # graded message q / 2^bits (exact)
        else:   # rate or latency spikes, as the float LIF codes them
            seed = int(rng.integers(0, 2**63 - 1)) if p.encoding == "rate" else None
            h = spike_code(x, p.T, p.encoding, p.gain, seed)
        self.input_spiking = lif_k.is_binary(h)
        if p.record:
            self.trace = {"input": h[0], "spikes": [], "membrane": [], "current": [], "counts": []}
        return h

    def activate(self, z, activation, last, rng, costs):
        p = self.params
        if z.ndim == 3:
            z = z[:, None]
        P, Tz, B, m = z.shape
        rec = p.record and self.trace is not None
        membrane = last and p.readout == "membrane"
        spikes, counts, first, vmean, u, v = loihi_k.loihi_lif(
            z.reshape(P, Tz, B * m), p.T, p.du, p.dv, p.bias_mant, p.bias_exp, p.vth, delay=1,
            fire=not membrane, write_spikes=(not last) or rec, record=rec)
        costs.add(neuron_updates=P * p.T * B * m, spikes=int(counts.sum()))
        if rec:
            self.trace["spikes"].append(None if membrane else spikes.reshape(P, p.T, B, m))
            self.trace["membrane"].append(v.reshape(P, p.T, B, m))
            self.trace["current"].append(u.reshape(P, p.T, B, m))
            self.trace["counts"].append(counts.reshape(P, B, m))
        if not last:
            return spikes.reshape(P, p.T, B, m)
        if membrane:
            return vmean.reshape(P, B, m) / 64.0          # in units of the dendritic input a
        if p.readout == "counts":
            return counts.reshape(P, B, m).astype(np.float64)
        return (p.T - first).reshape(P, B, m).astype(np.float64)

    def decode(self, h):
        return h


@registry.register("loihi")
def loihi(num_weight_bits: int = 8, weight_exp: Optional[int] = None, scale: float = 64.0, du: int = 4095,
          dv: int = 410, vth: int = 64, bias_mant: int = 0, bias_exp: int = 0, T: int = 16,
          encoding: str = "current", readout: str = "counts", input_bits: int = 8, gain: float = 1.0,
          record: bool = False, backend: str = "cpu"):
    """Loihi 8-bit synapses (weight exponent, mixed sign) + bit-accurate fixed-point LIF."""
    syn = {"name": "loihi", "num_weight_bits": num_weight_bits, "weight_exp": weight_exp, "scale": scale}
    neu = {"name": "loihi", "du": du, "dv": dv, "vth": vth, "bias_mant": bias_mant, "bias_exp": bias_exp,
           "T": T, "encoding": encoding, "readout": readout, "input_bits": input_bits, "gain": gain,
           "record": record}
    return compose(syn, neu, backend, name="loihi")

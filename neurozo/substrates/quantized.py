"""Quantized digital synapses: b-bit integer weights, fixed-point activations,
a saturating integer accumulator.

Synapse ``quantized`` (kernels in ``kernels.quant``; formulas from
REFERENCES.md "Quantization" and Jacob et al., "Quantization and Training of
Neural Networks for Efficient Integer-Arithmetic-Only Inference", CVPR 2018):

    program:  s_w = max|W| / (2^(b−1) − 1)   (per tensor, or per output channel)
              q_W = clip(round(W / s_w), ±(2^(b−1) − 1))     nearest or stochastic (seeded)
              binary (b = 1): q_W = sign(W), s_w = mean|W|   (Courbariaux et al. 2015; Rastegari et al. 2016)
    read:     q_x = clip(round(x / Δ), ±(2^(a−1) − 1)),  Δ = act_range / (2^(a−1) − 1)
              acc = Σ_j q_x,j · q_W,ij  in an acc_bits accumulator saturating at every add
              y   = acc · Δ · s_w + b          (bias added in the digital output stage)

``act_bits=None`` keeps activations in float (weight-only quantisation,
BinaryConnect-style): y = x · (q_W · s_w)ᵀ + b. Spike inputs (0/1) are exact
integers: only active inputs accumulate (ACs, not MACs).

Each candidate of a population is quantised and written to the weight memory
(low-rank populations are materialised first): ``writes`` counts weights.

Presets: ``int8`` (W8A8, 32-bit accumulator), ``int4`` (W4A8), ``binary``
(sign weights, float activations).

Energy table (pJ per operation) — Horowitz, "Computing's energy problem (and
what we can do about it)", ISSCC 2014, 45 nm, 0.9 V: 8-bit integer multiply
0.2 pJ, 32-bit integer add 0.1 pJ, fp32 multiply 3.7 pJ + add 0.9 pJ, 64-bit
read of an 8 kB SRAM 10 pJ. Other widths are scaled from these (a stated
assumption, not a measurement): an array multiplier's energy grows with the
product of its operand widths (0.2 pJ · b_w · b_x / 64), an adder's linearly
with its width (0.1 pJ · acc_bits / 32), an SRAM write with the bits written
(10 pJ / 64 bit). A MAC is one multiply plus one accumulator add; an AC (spike
input) is one accumulator add.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from kernels import dense as dense_k
from kernels import quant as quant_k

from .._validate import check_bool, check_choice, check_float, check_int
from . import registry, synapses
from .base import Substrate, SynapseModel
from .weights import LowRankWeights

__all__ = ["QuantizedSynapse", "QuantizedParams", "QuantizedWeights", "quantized_energy_pj"]

#: Horowitz ISSCC 2014, 45 nm (pJ)
HOROWITZ_PJ = {"int8_mult": 0.2, "int32_add": 0.1, "fp32_mult": 3.7, "fp32_add": 0.9, "sram_64bit": 10.0}


@dataclass(frozen=True)
class QuantizedParams:
    bits: int = 8
    per_channel: bool = False
    rounding: str = "nearest"
    act_bits: Optional[int] = 8
    act_range: float = 4.0
    acc_bits: int = 32

    def __post_init__(self):
        check_int("bits", self.bits, 1, 16)
        check_bool("per_channel", self.per_channel)
        check_choice("rounding", self.rounding, ["nearest", "stochastic"])
        if self.bits == 1 and self.rounding != "nearest":
            check_choice("rounding", self.rounding, ["nearest"])  # binary weights are sign(w)
        if self.act_bits is not None:
            check_int("act_bits", self.act_bits, 2, 16)
        check_float("act_range", self.act_range, 0, lo_open=True)
        check_int("acc_bits", self.acc_bits, 2, 64)


@dataclass(frozen=True)
class QuantizedWeights:
    """A population's integer codes q (P, m, n), scales (P, 1|m, 1), float bias (P, m)."""

    q: np.ndarray
    scale: np.ndarray
    b: np.ndarray
    bits: int

    @property
    def P(self):
        return self.q.shape[0]

    @property
    def shape(self):
        return self.q.shape[1:]

    def dequantized(self, dtype=np.float32) -> np.ndarray:
        return quant_k.dequantize(self.q, self.scale, dtype)


def quantized_energy_pj(bits: int, act_bits: Optional[int], acc_bits: int) -> dict:
    """pJ per MAC / AC / weight write for a b-bit × a-bit datapath (scaling rules in the module docstring)."""
    h = HOROWITZ_PJ
    add = h["int32_add"] * acc_bits / 32
    if act_bits is None:  # weight-only quantisation: fp32 datapath
        mac = h["fp32_mult"] + h["fp32_add"]
        add = h["fp32_add"]
    else:
        mac = h["int8_mult"] * bits * act_bits / 64 + add
    return {"macs": mac, "acs": add, "writes": h["sram_64bit"] * bits / 64}


@synapses.register("quantized")
class QuantizedSynapse(SynapseModel):
    """b-bit symmetric integer weights, optional fixed-point activations, saturating accumulator."""

    def __init__(self, bits: int = 8, per_channel: bool = False, rounding: str = "nearest",
                 act_bits: Optional[int] = 8, act_range: float = 4.0, acc_bits: int = 32):
        self.params = QuantizedParams(bits, per_channel, rounding, act_bits, act_range, acc_bits)
        self.energy_pj = quantized_energy_pj(bits, act_bits, acc_bits)

    # -- program: quantise every candidate and write it ------------------------------------------
    def program(self, layer, rng, costs, index=0):
        p = self.params
        if isinstance(layer, LowRankWeights):
            layer = layer.materialize()
        W = np.asarray(layer.W, dtype=np.float64)
        s = quant_k.symmetric_scale(W, p.bits, p.per_channel)
        seed = int(rng.integers(0, 2**63)) if p.rounding == "stochastic" else 0
        q = quant_k.quantize(W, s, p.bits, p.rounding, seed)
        costs.add(writes=q.size)
        return QuantizedWeights(q, s, np.asarray(layer.b, dtype=np.float32), p.bits)

    # -- read --------------------------------------------------------------------------------
    def read(self, prog, x, rng, costs, t=0.0, spiking=False):
        p = self.params
        lead = x.shape[1:-1]
        x2 = x.reshape(x.shape[0], -1, x.shape[-1])
        P = prog.P
        m, n = prog.shape
        if x2.shape[0] not in (1, P) or x2.shape[-1] != n:
            raise ValueError(f"x shape {x.shape} does not match the programmed weights ({P}, {m}, {n})")
        R = x2.shape[1]
        if spiking:
            nnz = np.count_nonzero(x2) * (P if x2.shape[0] == 1 else 1)
            costs.add(acs=nnz * m)
            acc, _ = quant_k.int_matmul(np.rint(x2).astype(np.int16), prog.q, p.acc_bits)
            y = acc * _row_scale(prog.scale)
        elif p.act_bits is not None:
            costs.add(macs=dense_k.dense_macs(P, R, m, n))
            xq, step = quant_k.fixed_point(x2, p.act_bits, p.act_range)
            acc, _ = quant_k.int_matmul(xq, prog.q, p.acc_bits)
            y = acc * (step * _row_scale(prog.scale))
        else:
            costs.add(macs=dense_k.dense_macs(P, R, m, n))
            y = dense_k.dense_population(np.asarray(x2, np.float32), prog.dequantized(np.float32),
                                         np.zeros((P, m), np.float32))
        y = (y + prog.b[:, None, :]).astype(np.float32)
        return y.reshape(P, *lead, m)


def _row_scale(scale: np.ndarray) -> np.ndarray:
    """Scales (P, 1|m, 1) → broadcastable against outputs (P, R, m)."""
    return np.swapaxes(scale, 1, 2)


def _preset(name, synapse: dict, output_activation: str, backend: str) -> Substrate:
    from . import compose

    return compose(synapse, {"name": "rate", "output_activation": output_activation}, backend, name=name)


@registry.register("int8")
def int8(per_channel: bool = False, rounding: str = "nearest", act_bits: Optional[int] = 8,
         act_range: float = 4.0, acc_bits: int = 32, output_activation: str = "identity",
         backend: str = "cpu") -> Substrate:
    """8-bit weights and activations (W8A8), 32-bit saturating accumulator, rate neurons."""
    return _preset("int8", {"name": "quantized", "bits": 8, "per_channel": per_channel, "rounding": rounding,
                            "act_bits": act_bits, "act_range": act_range, "acc_bits": acc_bits},
                   output_activation, backend)


@registry.register("int4")
def int4(per_channel: bool = False, rounding: str = "nearest", act_bits: Optional[int] = 8,
         act_range: float = 4.0, acc_bits: int = 32, output_activation: str = "identity",
         backend: str = "cpu") -> Substrate:
    """4-bit weights, 8-bit activations (W4A8), 32-bit saturating accumulator, rate neurons."""
    return _preset("int4", {"name": "quantized", "bits": 4, "per_channel": per_channel, "rounding": rounding,
                            "act_bits": act_bits, "act_range": act_range, "acc_bits": acc_bits},
                   output_activation, backend)


@registry.register("binary")
def binary(per_channel: bool = False, act_bits: Optional[int] = None, act_range: float = 4.0,
           acc_bits: int = 32, output_activation: str = "identity", backend: str = "cpu") -> Substrate:
    """Sign weights scaled by mean|W| (BinaryConnect), float activations by default, rate neurons."""
    return _preset("binary", {"name": "quantized", "bits": 1, "per_channel": per_channel, "rounding": "nearest",
                              "act_bits": act_bits, "act_range": act_range, "acc_bits": acc_bits},
                   output_activation, backend)


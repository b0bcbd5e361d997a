"""The ideal substrate: exact floating-point synapses and rate neurons.

Synapse ``float``: y = x·Wᵀ + b in float32 (default) or float64, one GEMM per
population member (``kernels.dense``); low-rank populations use
y = x·Wᵀ + s·(x·B)·Aᵀ + b without forming A·Bᵀ. Programming is free.

Neuron ``rate``: h = φ(y) with φ from ``kernels.activations``; the last layer
uses the model's output activation (identity → logits).

Energy table: 45 nm digital CMOS figures of Horowitz, "Computing's energy
problem" (ISSCC 2014): fp32 multiply 3.7 pJ + add 0.9 pJ → 4.6 pJ per MAC,
0.9 pJ per accumulate and per neuron update (one add-equivalent).

Both models take device (CuPy) arrays on ``backend="cuda"`` (``gpu = True``)
and then run the GPU twins ``kernels.dense_cuda`` (cuBLAS) and
``kernels.activations_cuda``; spike inputs take the dense product there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels import activations as act_k
from kernels import dense as dense_k
from kernels import lif as lif_k

from .._validate import check_choice
from ..backend import kernels_for
from . import neurons, synapses
from .base import NeuronModel, SynapseModel
from .weights import DenseWeights, LowRankWeights

__all__ = ["FloatSynapse", "RateNeuron"]

HOROWITZ_FP32_PJ = {"macs": 4.6, "acs": 0.9}


@dataclass(frozen=True)
class FloatParams:
    dtype: str = "float32"

    def __post_init__(self):
        check_choice("dtype", self.dtype, ["float32", "float64"])


@synapses.register("float")
class FloatSynapse(SynapseModel):
    """Exact float products (the ideal synapse)."""

    energy_pj = HOROWITZ_FP32_PJ
    gpu = True

    time_local = True

    def __init__(self, dtype: str = "float32"):
        self.params = FloatParams(dtype)
        self.dtype = np.dtype(dtype)

    def program(self, layer, rng, costs, index=0):
        dt = self.dtype
        if isinstance(layer, LowRankWeights):
            return LowRankWeights(layer.W.astype(dt, copy=False), layer.b.astype(dt, copy=False),
                                  layer.A.astype(dt, copy=False), layer.B.astype(dt, copy=False), layer.scale)
        return DenseWeights(layer.W.astype(dt, copy=False), layer.b.astype(dt, copy=False))

    def read(self, prog, x, rng, costs, t=0.0, spiking=False):
        lead = x.shape[1:-1]
        x2 = x.reshape(x.shape[0], -1, x.shape[-1])
        m, n = prog.shape
        P = prog.P
        dk = kernels_for(dense_k, prog.W, x2)
        ptr = None
        if spiking and dk is dense_k:   # one pass counts the active inputs of every row
            x2 = np.ascontiguousarray(x2)
            ptr = lif_k.row_pointers(x2)
            nnz = int(ptr[-1])
        else:
            nnz = int((x2 != 0).sum()) if spiking else 0
        if isinstance(prog, LowRankWeights):
            y = dk.dense_lowrank(x2, prog.W, prog.b, prog.A, prog.B, prog.scale)
            macs = dense_k.dense_macs(P, x2.shape[1], m, n, prog.rank)
        elif ptr is not None and lif_k.prefer_event(nnz, x2.size, n):
            # sparse spikes: event-driven accumulate of the active inputs only (kernels.lif)
            y = lif_k.spike_accumulate(x2, prog.W, prog.b, lists=lif_k.active_lists(x2, ptr))
        else:
            y = dk.dense_population(x2, prog.W, prog.b)
            macs = dense_k.dense_macs(P, x2.shape[1], m, n)
        if spiking:  # spike inputs: only active inputs accumulate
            nnz = nnz * (P if x2.shape[0] == 1 else 1)
            costs.add(acs=nnz * m)
        else:
            costs.add(macs=macs)
        return y.reshape(P, *lead, m)


@dataclass(frozen=True)
class RateParams:
    output_activation: str = "identity"

    def __post_init__(self):
        check_choice("output_activation", self.output_activation, sorted(act_k.ACTIVATIONS))


@neurons.register("rate")
class RateNeuron(NeuronModel):
    """Rate neurons: h = φ(z)."""

    energy_pj = {"neuron_updates": 0.9}
    gpu = True

    def __init__(self, output_activation: str = "identity"):
        self.params = RateParams(output_activation)

    def activate(self, z, activation, last, rng, costs):
        name = self.params.output_activation if last else activation
        costs.add(neuron_updates=z.size)
        return kernels_for(act_k, z).apply(name, z, inplace=True)

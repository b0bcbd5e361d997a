"""The substrate interface: a synapse model × a neuron model, with cost counters.

A substrate simulates the device that runs a network's forward pass:

* the **synapse model** decides how a layer's matrix–vector product is done
  (ideal float, quantized integer, analog crossbar). ``program(layer)`` writes
  a population's weights to the device (quantisation, programming noise, stuck
  cells — and the write cost); ``read(programmed, x)`` performs the product
  (DAC/ADC, read noise, drift at the substrate's time ``t``).
* the **neuron model** turns the products into activations: ``encode`` maps
  the input batch to the first layer's drive (identity for rate neurons, T
  time steps of currents or spikes for spiking neurons), ``activate`` applies
  the neuron dynamics to one layer's pre-activations, ``decode`` turns the
  last layer into outputs (logits) of shape (P, B, C).

Arrays flowing between layers have shape (P or 1, ..., features): any axes
between the population axis and the feature axis (batch, time) are batch-like
for the synapse.

``Substrate.forward(layers, x, rng)`` programs and runs a population
end-to-end; the model layer calls it.

On ``backend="cuda"`` a synapse or neuron model whose class sets ``gpu = True``
is handed device (CuPy) arrays and computes with the GPU kernel twins; any
other model is handed host arrays (a CPU fallback, transfers included). The
outputs of ``run`` are host arrays on every backend.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, List, Mapping, Optional, Sequence

import numpy as np

from .._validate import check_float
from ..backend import resolve, to_numpy
from .costs import CostCounter
from .weights import LayerWeights

__all__ = ["SynapseModel", "NeuronModel", "Substrate", "spec_of"]


def spec_of(obj) -> dict:
    """{'name': registry name, **dataclass params} of a synapse/neuron model."""
    p = getattr(obj, "params", None)
    d = dataclasses.asdict(p) if dataclasses.is_dataclass(p) else {}
    return {"name": getattr(type(obj), "registry_name", type(obj).__name__), **d}


class SynapseModel:
    """How a layer's product x·Wᵀ + b is computed on the device."""

    #: pJ per operation for this synapse technology (merged into the substrate's table)
    energy_pj: Mapping[str, float] = {}
    params: Any = None
    #: accepts device (CuPy) arrays on backend="cuda" (else it is handed host arrays)
    gpu: bool = False
    #: ``read`` is the same function at every time step and draws no random numbers, so a
    #: spiking run may read its time steps in blocks (``Substrate.run``) with identical results
    time_local: bool = False

    def program(self, layer: LayerWeights, rng: np.random.Generator, costs: CostCounter, index: int = 0):
        """Write one layer of a population to the device; return the programmed state."""
        raise NotImplementedError

    def read(self, programmed, x: np.ndarray, rng: np.random.Generator, costs: CostCounter,
             t: float = 0.0, spiking: bool = False) -> np.ndarray:
        """Pre-activations (P, ..., m) for input x (Px, ..., n). ``spiking``: x is 0/1 events."""
        raise NotImplementedError


class NeuronModel:
    """How pre-activations become activations, over time if the model is spiking."""

    energy_pj: Mapping[str, float] = {}
    params: Any = None
    spiking: bool = False
    #: accepts device (CuPy) arrays on backend="cuda" (else it is handed host arrays)
    gpu: bool = False

    def encode(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Input batch (B, n) → first-layer drive (1, ..., n)."""
        return x[None]

    def activate(self, z: np.ndarray, activation: str, last: bool, rng: np.random.Generator,
                 costs: CostCounter) -> np.ndarray:
        raise NotImplementedError

    def decode(self, h: np.ndarray) -> np.ndarray:
        """Last layer's activity → outputs (P, B, C)."""
        return h

    # Time-blocked runs (optional; spiking neuron models that keep state between blocks).
    def time_block(self, x: np.ndarray, P: int, widths: Sequence[int]) -> Optional[int]:
        """Steps per block for a time-blocked run of input x (None: run all steps at once)."""
        return None


class Substrate:
    """A synapse model × a neuron model with cost counters and a clock.

    ``t`` is the time in seconds since programming at which reads happen
    (drift, 1/f noise); 0 for devices without time dependence.
    """

    def __init__(self, synapse: SynapseModel, neuron: NeuronModel, name: Optional[str] = None,
                 backend: str = "cpu"):
        self.synapse = synapse
        self.neuron = neuron
        self.name = name or f"{spec_of(synapse)['name']}+{spec_of(neuron)['name']}"
        self.xp = resolve(backend)
        self.backend = backend
        table = dict(synapse.energy_pj)
        table.update(neuron.energy_pj)
        self.costs = CostCounter(table)
        self.t = 0.0

    @property
    def spec(self) -> dict:
        return {"name": self.name, "synapse": spec_of(self.synapse), "neuron": spec_of(self.neuron)}

    @contextlib.contextmanager
    def recording(self):
        """While active, every ``run`` appends, per layer k, the pair (h_{k−1}, z_k): the
        layer's input and its measured pre-activation (after node noise) to the yielded
        list (node perturbation needs them)."""
        prev = getattr(self, "_record", None)
        rec: list = []
        self._record = rec
        try:
            yield rec
        finally:
            self._record = prev

    def _place(self, a, model):
        """On backend='cuda': a device array for a GPU-capable model, a host array otherwise."""
        if self.backend == "cpu" or a is None:
            return a
        return self.xp.asarray(a) if getattr(model, "gpu", False) else to_numpy(a)

    def program(self, layers: Sequence[LayerWeights], rng: np.random.Generator) -> List[Any]:
        if self.backend != "cpu":
            layers = [_layer_to(layer, lambda a: self._place(a, self.synapse)) for layer in layers]
        return [self.synapse.program(layer, rng, self.costs, i) for i, layer in enumerate(layers)]

    def run(self, programmed: Sequence[Any], x: np.ndarray, rng: np.random.Generator,
            activations: Sequence[str], noise: Sequence[Optional[np.ndarray]] = (),
            t: Optional[float] = None) -> np.ndarray:
        """Forward an already programmed population; returns outputs (P, B, C).

        ``t``: read time in seconds after programming (default: the substrate's clock ``self.t``).
        """
        t = self.t if t is None else t
        check_float("t", t, 0)
        gpu = self.backend != "cpu"
        if (not gpu and not any(nz is not None for nz in noise) and getattr(self, "_record", None) is None
                and self.synapse.time_local and programmed):
            P = max(int(getattr(prog, "P", 1)) for prog in programmed)
            widths = [int(np.shape(x)[-1])] + [int(prog.shape[0]) for prog in programmed]
            block = self.neuron.time_block(x, P, widths)
            if block:
                return self._run_blocked(programmed, x, rng, activations, t, block)
        h = self.neuron.encode(self._place(x, self.neuron), rng)
        spiking = bool(getattr(self.neuron, "input_spiking", False))  # encode made 0/1 events
        n = len(programmed)
        for i, prog in enumerate(programmed):
            if gpu:
                h = self._place(h, self.synapse)
            z = self.synapse.read(prog, h, rng, self.costs, t=t, spiking=spiking)
            if i < len(noise) and noise[i] is not None:
                nz = noise[i]
                if gpu:  # the noise goes where z is
                    nz = self.xp.asarray(nz) if not isinstance(z, np.ndarray) else to_numpy(nz)
                z = z + _broadcast_noise(nz, z)
            rec = getattr(self, "_record", None)
            if rec is not None:  # copy: activate may work in place
                rec.append((to_numpy(h), to_numpy(z.copy())) if gpu else (h, z.copy()))
            if gpu:
                z = self._place(z, self.neuron)
            h = self.neuron.activate(z, activations[i], i == n - 1, rng, self.costs)
            spiking = self.neuron.spiking
        out = self.neuron.decode(h)
        return to_numpy(out) if gpu else out

    def _run_blocked(self, programmed, x, rng, activations, t, block: int) -> np.ndarray:
        """``run`` in blocks of ``block`` time steps: each block goes through every layer, the
        neurons carry their state from block to block. The arrays between layers hold one
        block (they stay in cache and are not re-allocated page by page), which is what makes
        long simulations (T in the thousands) fast. Same spikes, counts and costs as one pass
        (the synapse is ``time_local``; a block may take the event-driven or the dense product
        path on its own measured density, which can change float sums in the last bit)."""
        neuron = self.neuron
        source = neuron.block_source(x, rng)
        T = neuron.T
        states: List[Any] = [None] * len(programmed)
        n = len(programmed)
        for t0 in range(0, T, block):
            steps = min(block, T - t0)
            h = source(t0, steps)
            spiking = True
            for i, prog in enumerate(programmed):
                z = self.synapse.read(prog, h, rng, self.costs, t=t, spiking=spiking)
                h, states[i] = neuron.activate_block(z, activations[i], i == n - 1, states[i], steps,
                                                     self.costs)
        return neuron.decode(neuron.finish_blocks(states[-1], x))

    def forward(self, layers: Sequence[LayerWeights], x: np.ndarray, rng: np.random.Generator,
                activations: Sequence[str], t: Optional[float] = None) -> np.ndarray:
        """Program a population's layers, then run the batch x through them (read at time ``t``,
        default ``self.t``)."""
        programmed = self.program(layers, rng)
        noise = [layer.node_noise for layer in layers]
        return self.run(programmed, x, rng, activations, noise, t=t)


def _layer_to(layer, move):
    """The layer with every array field passed through ``move`` (host ↔ device)."""
    if not dataclasses.is_dataclass(layer):
        return layer
    kw = {f.name: move(getattr(layer, f.name)) for f in dataclasses.fields(layer)
          if getattr(layer, f.name) is not None and hasattr(getattr(layer, f.name), "shape")}
    return dataclasses.replace(layer, **kw)


def _broadcast_noise(noise: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Node noise (P, B, m) or (P, m) against pre-activations (P, ..., B, m)."""
    if noise.ndim == z.ndim:
        return noise
    if noise.ndim == 2:
        return noise.reshape(noise.shape[0], *([1] * (z.ndim - 2)), noise.shape[1])
    # (P, B, m) against (P, T, B, m): same noise at every time step
    return noise.reshape(noise.shape[0], *([1] * (z.ndim - noise.ndim)), *noise.shape[1:])

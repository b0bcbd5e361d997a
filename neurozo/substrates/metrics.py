"""NeuroBench-style static metrics and per-evaluation costs.

Definitions from NeuroBench (Yik et al., "NeuroBench: A Framework for
Benchmarking Neuromorphic Computing Algorithms and Systems", Nat. Commun. 16,
1545 (2025); REFERENCES.md "Metrics"):

footprint            bytes of parameters (and buffers) in their storage type:
                     float synapses 4 (or 8) bytes per weight; b-bit integer synapses
                     ⌈m·n·b/8⌉ bytes per layer plus one fp32 scale per tensor or
                     channel; analog crossbars store weights in devices (2 per
                     weight, reported as ``devices``) and keep only the fp32 bias,
                     output scale and drift-compensation factor digitally. Biases
                     are fp32 in every digital periphery.
connection sparsity  zero weights / all weights, on the weights as stored
                     (integer codes, programmed conductance pairs), or on any arrays.

``per_evaluation(costs)`` divides the counters (and the energy) by the
forward evaluations counted so far: the cost of one mini-batch evaluation.
"""

from __future__ import annotations

import math
from typing import Dict, Iterable, List

import numpy as np

from .costs import CostCounter

__all__ = ["footprint", "connection_sparsity", "stored_weights", "per_evaluation"]


def _layer_shapes(layers) -> List[tuple]:
    sizes = getattr(layers, "sizes", None)          # a layered model (duck-typed: MLP.sizes)
    if sizes is not None:
        return [(o, i) for i, o in zip(sizes[:-1], sizes[1:])]
    try:
        shapes = [(int(m), int(n)) for m, n in layers]
    except (TypeError, ValueError):
        raise ValueError(f"layers={layers!r} is invalid: must be a model with `sizes` or a list of (m, n) "
                         "layer shapes") from None
    return shapes


def footprint(substrate, layers) -> Dict[str, int]:
    """Storage of a network on ``substrate``: {'bytes', 'parameters', 'devices'}.

    ``layers``: a model with ``sizes`` (e.g. an MLP) or a list of (out, in) layer shapes.
    """
    syn = substrate.synapse
    kind = getattr(type(syn), "registry_name", type(syn).__name__)
    total, devices, params = 0, 0, 0
    for m, n in _layer_shapes(layers):
        params += m * n + m
        bias = 4 * m
        if kind == "quantized":
            p = syn.params
            scales = m if p.per_channel else 1
            total += math.ceil(m * n * p.bits / 8) + 4 * scales + bias
        elif kind == "crossbar":
            devices += 2 * m * n
            total += bias + 4 + 4          # fp32 bias, output scale, compensation factor
        else:
            item = np.dtype(getattr(syn.params, "dtype", "float32")).itemsize
            total += item * m * n + item * m
    return {"bytes": int(total), "parameters": int(params), "devices": int(devices)}


def stored_weights(substrate, layers, rng=None) -> List[np.ndarray]:
    """The weights as the substrate stores them after programming ``layers`` (member 0 of each).

    ``layers``: LayerWeights (e.g. ``model.layer_weights(theta)``). Integer synapses:
    the codes; crossbars: G⁺ − G⁻ (µS, after programming noise and stuck cells);
    float synapses: the weights. This programming is not counted in the costs.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    with substrate.costs.paused():
        progs = substrate.program(layers, rng)
    out = []
    for prog in progs:
        if hasattr(prog, "q"):
            out.append(np.asarray(prog.q[0]))
        elif hasattr(prog, "gp"):
            out.append(np.asarray(prog.gp[0] - prog.gm[0]))
        elif hasattr(prog, "base"):
            out.append(np.asarray(prog.base.gp[0] - prog.base.gm[0]))
        else:
            out.append(np.asarray(prog.W[0]))
    return out


def connection_sparsity(weights: Iterable[np.ndarray]) -> float:
    """NeuroBench connection sparsity: zero weights / all weights over the given arrays."""
    zeros = total = 0
    for w in weights:
        w = np.asarray(w)
        zeros += int(w.size - np.count_nonzero(w))
        total += int(w.size)
    if total == 0:
        raise ValueError("weights=[] is invalid: must contain at least one weight")
    return zeros / total


def per_evaluation(costs: CostCounter) -> Dict[str, float]:
    """Every counter and the energy (pJ) divided by the forward evaluations counted."""
    snap = costs.snapshot()
    ev = snap.get("evaluations", 0)
    if not ev:
        raise ValueError("costs.evaluations=0 is invalid: no forward evaluation has been counted yet")
    return {k: v / ev for k, v in snap.items() if k != "evaluations"}

"""Multi-layer perceptron as a flat parameter vector.

Layer k maps n_k → n_{k+1}: z_k = h_{k−1}·W_kᵀ + b_k, h_k = φ(z_k), the last
layer's activation left to the neuron model (identity logits for rate
neurons, spike counts for spiking ones). θ = [W0 (row-major), b0, W1, b1, …].

Initialisations: ``pytorch`` (W, b ~ U(±1/√n_in), torch.nn.Linear's default),
``he`` (W ~ N(0, 2/n_in), b = 0), ``xavier`` (W ~ U(±√(6/(n_in+n_out))), b = 0).
"""

from __future__ import annotations

import dataclasses
from typing import List, Sequence

import numpy as np

from kernels import activations as act_k

from .._validate import check_choice, check_float, check_int, fail
from ..substrates.weights import DenseWeights, LowRankWeights
from . import registry
from .base import Model
from .population import LowRank, Members, as_population

__all__ = ["MLP"]


@registry.register("mlp")
class MLP(Model):
    """Multi-layer perceptron: sizes [n_in, hidden..., n_out], hidden activation φ, flat θ."""

    def __init__(self, sizes: Sequence[int] = (64, 32, 10), activation: str = "relu", init: str = "pytorch",
                 init_scale: float = 1.0):
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__") or len(sizes) < 2:
            fail("sizes", sizes, "must be a list of at least two layer widths, e.g. [64, 32, 10]")
        self.sizes = [check_int(f"sizes[{i}]", s, 1) for i, s in enumerate(sizes)]
        self.activation = check_choice("activation", activation, sorted(act_k.ACTIVATIONS))
        self.init_kind = check_choice("init", init, ["pytorch", "he", "xavier"])
        self.init_scale = check_float("init_scale", init_scale, 0, lo_open=True)
        self._params = {"sizes": list(self.sizes), "activation": activation, "init": init, "init_scale": init_scale}
        self.views = {}
        off = 0
        for k, (n_in, n_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            self.views[f"W{k}"] = (slice(off, off + n_in * n_out), (n_out, n_in))
            off += n_in * n_out
            self.views[f"b{k}"] = (slice(off, off + n_out), (n_out,))
            off += n_out
        self.n_params = off
        self.n_layers = len(self.sizes) - 1

    @property
    def io_shape(self):
        return self.sizes[0], self.sizes[-1]

    @property
    def activations(self) -> List[str]:
        return [self.activation] * (self.n_layers - 1) + ["identity"]

    def init(self, rng):
        theta = np.empty(self.n_params)
        for k, (n_in, n_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            W, b = self.view(theta, f"W{k}"), self.view(theta, f"b{k}")
            if self.init_kind == "pytorch":
                bound = 1 / np.sqrt(n_in)
                W[...] = rng.uniform(-bound, bound, W.shape)
                b[...] = rng.uniform(-bound, bound, b.shape)
            elif self.init_kind == "he":
                W[...] = rng.normal(0, np.sqrt(2 / n_in), W.shape)
                b[...] = 0
            else:
                bound = np.sqrt(6 / (n_in + n_out))
                W[...] = rng.uniform(-bound, bound, W.shape)
                b[...] = 0
        return theta * self.init_scale

    def layer_weights(self, population) -> List:
        pop = as_population(population)
        if isinstance(pop, Members):
            if pop.thetas.shape[-1] != self.n_params:
                fail("population", pop.thetas.shape, f"parameter vectors must have length {self.n_params}")
            layers = [DenseWeights(self.view(pop.thetas, f"W{k}"), self.view(pop.thetas, f"b{k}"))
                      for k in range(self.n_layers)]
        else:
            layers = []
            for k in range(self.n_layers):
                b = self.view(pop.base, f"b{k}")[None] + self._delta(pop, f"b{k}")
                Wn = f"W{k}"
                if Wn in pop.factors:
                    A, B = pop.factors[Wn]
                    layers.append(LowRankWeights(self.view(pop.base, Wn), b, A, B, pop.scale))
                else:
                    W = self.view(pop.base, Wn)[None] + self._delta(pop, Wn)
                    layers.append(DenseWeights(W, b))
        if pop.node_noise is not None:
            layers = [dataclasses.replace(L, node_noise=nz) for L, nz in zip(layers, pop.node_noise)]
        return layers

    def _delta(self, pop: LowRank, name: str) -> np.ndarray:
        sl, shape = self.views[name]
        return pop.delta_at(sl).reshape(pop.size, *shape)

    def forward(self, population, x, substrate, rng):
        if x.shape[-1] != self.sizes[0]:
            fail("x", x.shape, f"inputs must have {self.sizes[0]} features (model sizes[0])")
        layers = self.layer_weights(population)
        return substrate.forward(layers, x, rng, self.activations)

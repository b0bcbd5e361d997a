"""Structured population weights handed from a model to a substrate.

A population of P parameter vectors arrives at a layer as base weights plus a
structured perturbation, so that a substrate which can exploit the structure
does, and one which cannot falls back honestly (``materialize``) and pays for
it:

DenseWeights     W (P, m, n), b (P, m): one full matrix per member.
LowRankWeights   W (m, n) shared, b (P, m), factors A (P, m, r), B (P, n, r):
                 W_p = W + scale·A_p·B_pᵀ, never formed by the ideal substrate.

Either may carry ``node_noise`` (P, ..., m): noise added to the layer's
pre-activations (node perturbation), broadcast over the trailing batch/time axes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import numpy as np

__all__ = ["DenseWeights", "LowRankWeights", "LayerWeights"]


@dataclass(frozen=True)
class DenseWeights:
    W: np.ndarray
    b: np.ndarray
    node_noise: Optional[np.ndarray] = None

    @property
    def P(self) -> int:
        return self.W.shape[0]

    @property
    def shape(self):
        return self.W.shape[1:]

    def materialize(self) -> "DenseWeights":
        return self


@dataclass(frozen=True)
class LowRankWeights:
    W: np.ndarray
    b: np.ndarray
    A: np.ndarray
    B: np.ndarray
    scale: float
    node_noise: Optional[np.ndarray] = None

    @property
    def P(self) -> int:
        return self.A.shape[0]

    @property
    def rank(self) -> int:
        return self.A.shape[2]

    @property
    def shape(self):
        return self.W.shape

    def materialize(self) -> DenseWeights:
        """Form every W_p = W + scale·A_p·B_pᵀ (what a device that must be written per candidate pays for)."""
        W = self.W[None] + self.scale * np.einsum("pmr,pnr->pmn", self.A, self.B)
        return DenseWeights(W.astype(self.W.dtype, copy=False), self.b, self.node_noise)


LayerWeights = Union[DenseWeights, LowRankWeights]

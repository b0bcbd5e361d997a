"""How a learner hands a population of parameter vectors to a model.

``Members(thetas)``       P full parameter vectors (OpenES, GA, CBO particles).
``LowRank(base, ...)``    one base vector plus, per weight matrix, rank-r
                          factors: W_p = W + scale·A_p·B_pᵀ; other parameters
                          (biases) as full deltas (EGGROLL) — (P, D), or only
                          the columns ``delta_index`` (P, K) so that a large
                          model's population never holds P·D numbers.
Both may carry ``node_noise``: per layer, noise of shape (P, B, m) (or
(P, m)) added to that layer's pre-activations (node perturbation).

A bare vector of shape (D,) is one member.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = ["Members", "LowRank", "Population", "as_population"]


@dataclass(frozen=True)
class Members:
    thetas: np.ndarray                                  # (P, D)
    node_noise: Optional[Sequence[Optional[np.ndarray]]] = None

    @property
    def size(self) -> int:
        return self.thetas.shape[0]


@dataclass(frozen=True)
class LowRank:
    base: np.ndarray                                    # (D,)
    factors: Dict[str, Tuple[np.ndarray, np.ndarray]]   # matrix view name → (A (P,m,r), B (P,n,r))
    scale: float
    delta: np.ndarray                                   # (P, D) full deltas for the other parameters
    node_noise: Optional[Sequence[Optional[np.ndarray]]] = None
    extra: dict = field(default_factory=dict)
    delta_index: Optional[np.ndarray] = None            # sorted (K,) θ indices of delta's columns; None: all D

    @property
    def size(self) -> int:
        return self.delta.shape[0]

    def delta_at(self, sl: slice) -> np.ndarray:
        """Deltas (P, len) of θ[sl] (zeros where ``delta_index`` leaves θ unperturbed)."""
        if self.delta_index is None:
            return self.delta[:, sl]
        lo, hi = np.searchsorted(self.delta_index, [sl.start, sl.stop])
        out = np.zeros((self.size, sl.stop - sl.start), dtype=self.delta.dtype)
        out[:, self.delta_index[lo:hi] - sl.start] = self.delta[:, lo:hi]
        return out

    def full_delta(self) -> np.ndarray:
        """Deltas (P, D) of the whole θ."""
        return self.delta if self.delta_index is None else self.delta_at(slice(0, self.base.size))


Population = Union[Members, LowRank]


def as_population(p) -> Population:
    if isinstance(p, (Members, LowRank)):
        return p
    a = np.asarray(p, dtype=np.float64)
    if a.ndim == 1:
        return Members(a[None])
    if a.ndim == 2:
        return Members(a)
    raise ValueError(f"population has shape {a.shape}: must be (D,) or (P, D), or a Members/LowRank")

"""Model base: a flat parameter vector with named views.

A model owns the layout of its parameter vector θ ∈ R^D: ``views`` maps a name
(``"W0"``, ``"b0"``, ...) to a slice and a shape. ``init(rng)`` draws θ₀;
``forward(population, x, substrate, rng)`` evaluates every member of a
population on the batch x on the given substrate, returning (P, B, C).
"""

from __future__ import annotations

from typing import Dict, Tuple

import numpy as np

__all__ = ["Model"]


class Model:
    views: Dict[str, Tuple[slice, Tuple[int, ...]]]
    n_params: int

    @property
    def spec(self) -> dict:
        return {"name": getattr(type(self), "registry_name", type(self).__name__), **self._params}

    @property
    def io_shape(self) -> Tuple[int, int]:
        """(input features, outputs) the model expects; checked against the task."""
        raise NotImplementedError

    def init(self, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def view(self, theta: np.ndarray, name: str) -> np.ndarray:
        """Named view into θ (P, D) or (D,); shares memory when possible."""
        sl, shape = self.views[name]
        return theta[..., sl].reshape(*theta.shape[:-1], *shape)

    def unflatten(self, theta: np.ndarray) -> Dict[str, np.ndarray]:
        return {k: self.view(theta, k) for k in self.views}

    def flatten(self, parts: Dict[str, np.ndarray]) -> np.ndarray:
        lead = next(iter(parts.values())).shape[: -len(self.views[next(iter(parts))][1])]
        out = np.empty((*lead, self.n_params))
        for k, (sl, shape) in self.views.items():
            out[..., sl] = np.asarray(parts[k]).reshape(*lead, -1)
        return out

    def forward(self, population, x, substrate, rng):
        raise NotImplementedError

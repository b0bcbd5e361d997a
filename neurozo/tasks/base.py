"""Task interface.

A task knows its data (or objective), its loss and — for classification — its
accuracy, and draws mini-batches from an explicit generator. Losses are
computed for a whole population at once: outputs of shape (P, B, C) give a
loss vector of shape (P,).
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from .._validate import check_int

__all__ = ["Task", "ClassificationTask", "FunctionTask", "cross_entropy"]


def cross_entropy(logits: np.ndarray, y: np.ndarray, per_sample: bool = False) -> np.ndarray:
    """Mean softmax cross-entropy over the batch: (P, B, C), (B,) → (P,).

    ℓ = mean_b [ logsumexp(z_b) − z_b[y_b] ], computed stably in float64.
    ``per_sample=True`` returns the unreduced (P, B) losses (node perturbation needs them).
    """
    z = np.asarray(logits, dtype=np.float64)
    zmax = z.max(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", over="ignore"):
        lse = np.log(np.exp(z - zmax).sum(axis=-1)) + zmax[..., 0]
    picked = np.take_along_axis(z, y[None, :, None].astype(np.intp).repeat(z.shape[0], 0), axis=-1)[..., 0]
    losses = lse - picked
    return losses if per_sample else losses.mean(axis=-1)


class Task:
    """Base class. ``kind`` is "classification" or "function"."""

    kind: str = ""
    n_inputs: int = 0
    n_outputs: int = 0

    @property
    def spec(self) -> dict:
        return {"name": getattr(type(self), "registry_name", type(self).__name__), **self._params}

    def batch(self, rng: np.random.Generator, batch_size: int) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
        raise NotImplementedError

    def loss(self, outputs: np.ndarray, y, per_sample: bool = False) -> np.ndarray:
        """Loss per member (P,), or per member and sample (P, B) with ``per_sample=True``."""
        raise NotImplementedError

    def accuracy(self, outputs: np.ndarray, y) -> Optional[np.ndarray]:
        return None

    def test_data(self):
        return None, None

    def default_model(self) -> dict:
        raise NotImplementedError


class ClassificationTask(Task):
    """Supervised classification on a fixed train/test split."""

    kind = "classification"

    def __init__(self, x_train, y_train, x_test, y_test, n_classes: int, params: dict):
        self.x_train = np.ascontiguousarray(x_train, dtype=np.float32)
        self.y_train = np.asarray(y_train, dtype=np.int64)
        self.x_test = np.ascontiguousarray(x_test, dtype=np.float32)
        self.y_test = np.asarray(y_test, dtype=np.int64)
        self.n_inputs = self.x_train.shape[1]
        self.n_outputs = int(n_classes)
        self._params = dict(params)

    @property
    def n_train(self) -> int:
        return len(self.y_train)

    def batch(self, rng, batch_size):
        batch_size = check_int("batch_size", batch_size, 1, self.n_train)
        idx = rng.choice(self.n_train, size=batch_size, replace=False)
        return self.x_train[idx], self.y_train[idx]

    def loss(self, outputs, y, per_sample=False):
        return cross_entropy(outputs, y, per_sample)

    def accuracy(self, outputs, y):
        return (np.argmax(outputs, axis=-1) == y[None, :]).mean(axis=-1)

    def test_data(self):
        return self.x_test, self.y_test

    def default_model(self) -> dict:
        return {"name": "mlp", "sizes": [self.n_inputs, 32, self.n_outputs], "activation": "relu"}


class FunctionTask(Task):
    """Black-box minimisation of f: R^d → R; the "model" is the point itself.

    Subclasses implement ``evaluate(X)`` for X of shape (..., d).
    ``init_low``/``init_high`` give the uniform start box.
    """

    kind = "function"

    def __init__(self, dim: int, init_low: float, init_high: float, params: dict):
        self.dim = check_int("dim", dim, 1)
        if not init_low < init_high:
            raise ValueError(f"init_low={init_low!r} is invalid: must be < init_high={init_high!r}")
        self.init_low, self.init_high = float(init_low), float(init_high)
        self.n_inputs = 0
        self.n_outputs = self.dim
        self._params = dict(params)

    def evaluate(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def batch(self, rng, batch_size):
        return None, None

    def loss(self, outputs, y=None, per_sample=False):
        f = self.evaluate(np.asarray(outputs, dtype=np.float64))
        return f[:, None] if per_sample else f

    def default_model(self) -> dict:
        return {"name": "point", "dim": self.dim, "init_low": self.init_low, "init_high": self.init_high}

"""Black-box test functions, any dimension d, global minimum 0 at x = 0.

sphere     f(x) = Σ x_i²
rastrigin  f(x) = 10·d + Σ (x_i² − 10·cos 2πx_i)          (as CBXpy computes it)
ackley     f(x) = −a·exp(−b·√(Σx_i²/d)) − exp(Σ cos(c·x_i)/d) + a + e,
           a = 20, b = 0.2, c = 2π
"""

from __future__ import annotations

import numpy as np

from .._validate import check_float
from . import registry
from .base import FunctionTask


class Sphere(FunctionTask):
    """Sphere f(x) = Σ x_i², minimum 0 at x = 0; start U(init_low, init_high)^d."""

    def __init__(self, dim: int = 20, init_low: float = -3.0, init_high: float = 3.0):
        super().__init__(dim, init_low, init_high, dict(dim=dim, init_low=init_low, init_high=init_high))

    def evaluate(self, X):
        return np.sum(X * X, axis=-1)


class Rastrigin(FunctionTask):
    """Rastrigin 10·d + Σ (x_i² − 10 cos 2πx_i), minimum 0 at x = 0 (CBXpy's form)."""

    def __init__(self, dim: int = 20, init_low: float = -3.0, init_high: float = 3.0):
        super().__init__(dim, init_low, init_high, dict(dim=dim, init_low=init_low, init_high=init_high))

    def evaluate(self, X):
        return 10.0 * X.shape[-1] + np.sum(X * X - 10.0 * np.cos(2 * np.pi * X), axis=-1)


class Ackley(FunctionTask):
    """Ackley −a·exp(−b·√(mean x²)) − exp(mean cos cx) + a + e, minimum 0 at x = 0."""

    def __init__(self, dim: int = 20, init_low: float = -3.0, init_high: float = 3.0,
                 a: float = 20.0, b: float = 0.2, c: float = 2 * np.pi):
        self.a = check_float("a", a, 0, lo_open=True)
        self.b = check_float("b", b, 0, lo_open=True)
        self.c = check_float("c", c)
        super().__init__(dim, init_low, init_high,
                         dict(dim=dim, init_low=init_low, init_high=init_high, a=a, b=b, c=c))

    def evaluate(self, X):
        d = X.shape[-1]
        r = np.sqrt(np.sum(X * X, axis=-1) / d)
        return (-self.a * np.exp(-self.b * r) - np.exp(np.sum(np.cos(self.c * X), axis=-1) / d)
                + self.a + np.e)


registry.register("sphere", Sphere)
registry.register("rastrigin", Rastrigin)
registry.register("ackley", Ackley)

__all__ = ["Sphere", "Rastrigin", "Ackley"]

"""The identity model for black-box function tasks: θ is the point x ∈ R^d.

``forward`` returns the population's points (P, d) unchanged; the task's
objective is evaluated on them. No substrate is involved.
"""

from __future__ import annotations

from .._validate import check_float, check_int, fail
from . import registry
from .base import Model
from .population import Members, as_population

__all__ = ["Point"]


@registry.register("point")
class Point(Model):
    """Identity model for function tasks: θ is the point x ∈ R^dim."""

    def __init__(self, dim: int = 20, init_low: float = -3.0, init_high: float = 3.0):
        self.dim = check_int("dim", dim, 1)
        self.init_low = check_float("init_low", init_low)
        self.init_high = check_float("init_high", init_high)
        if not self.init_low < self.init_high:
            fail("init_high", init_high, f"must be > init_low={init_low}")
        self._params = {"dim": dim, "init_low": init_low, "init_high": init_high}
        self.views = {"x": (slice(0, self.dim), (self.dim,))}
        self.n_params = self.dim

    @property
    def io_shape(self):
        return 0, self.dim

    def init(self, rng):
        return rng.uniform(self.init_low, self.init_high, self.dim)

    def forward(self, population, x, substrate, rng):
        pop = as_population(population)
        if not isinstance(pop, Members):
            fail("population", type(pop).__name__, "the point model takes full members only")
        return pop.thetas

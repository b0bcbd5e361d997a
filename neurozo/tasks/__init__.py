"""Tasks: data sets and objectives, generated or shipped, never downloaded.

``get(name, **kw)`` builds a registered task; ``names()`` lists them.

classification  digits (scikit-learn's 8×8 digits), mnist1d (MNIST-1D generator)
functions       sphere, rastrigin, ackley (any dimension, minimum 0 at x = 0)
"""

from ..registry import Registry, autoload
from .base import ClassificationTask, FunctionTask, Task

registry = Registry("task")
autoload(registry, __name__)


def get(name: str, **kw) -> Task:
    return registry.get(name, **kw)


def names():
    return registry.names()


__all__ = ["Task", "ClassificationTask", "FunctionTask", "registry", "get", "names"]

"""Models: architectures as a flat parameter vector with named views.

``mlp``    MLP(sizes, activation) on any substrate
``point``  the identity model for black-box function tasks
"""

from ..registry import Registry, autoload
from .base import Model
from .population import LowRank, Members, as_population

registry = Registry("model")
autoload(registry, __name__)


def get(name: str, **kw) -> Model:
    return registry.get(name, **kw)


def names():
    return registry.names()


__all__ = ["Model", "Members", "LowRank", "as_population", "registry", "get", "names"]

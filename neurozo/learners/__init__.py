"""Learners: gradient-free rules that train networks on any substrate.

``openes``  OpenAI-ES (Salimans et al. 2017)
(more arrive with their own files; each registers itself)
"""

from ..registry import Registry, autoload
from .base import Learner, Problem, centered_ranks, step_rng

registry = Registry("learner")
autoload(registry, __name__)


def get(name: str, **kw) -> Learner:
    return registry.get(name, **kw)


def names():
    return registry.names()


def trains_on_substrate(name) -> bool:
    """Does learner ``name`` train on the substrate, so that the cost model sees its training?
    False for ``bptt`` (float autograd off the device); True for unknown names."""
    try:
        return bool(getattr(registry.factory(str(name)), "trains_on_substrate", True))
    except ValueError:
        return True


__all__ = ["Learner", "Problem", "centered_ranks", "step_rng", "registry", "get", "names", "trains_on_substrate"]

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


__all__ = ["Learner", "Problem", "centered_ranks", "step_rng", "registry", "get", "names"]

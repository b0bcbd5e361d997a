"""Substrates: simulated devices that run a network's forward pass.

A substrate is a synapse model × a neuron model (see ``base``). Three
registries:

``synapses``  synapse models by name (``float``, ...)
``neurons``   neuron models by name (``rate``, ...)
``registry``  named substrate presets (``ideal`` = float synapses + rate neurons)

``get(name, **kw)`` builds a preset; ``compose(synapse, neuron)`` builds any
combination from two specs (a name or a ``{"name": ..., **params}`` dict);
``get("custom", synapse=..., neuron=...)`` does the same through the registry.
"""

from __future__ import annotations

from typing import Union

from ..registry import Registry, autoload
from .base import NeuronModel, Substrate, SynapseModel
from .costs import CostCounter
from .weights import DenseWeights, LowRankWeights

registry = Registry("substrate")
synapses = Registry("synapse")
neurons = Registry("neuron")
autoload(registry, __name__)
autoload(synapses, __name__)
autoload(neurons, __name__)

Spec = Union[str, dict]


def _build(reg: Registry, spec: Spec):
    if isinstance(spec, str):
        return reg.get(spec)
    if isinstance(spec, dict) and "name" in spec:
        kw = dict(spec)
        return reg.get(kw.pop("name"), **kw)
    raise ValueError(f"{reg.kind}={spec!r} is invalid: must be a name or a dict with a 'name' key")


def compose(synapse: Spec = "float", neuron: Spec = "rate", backend: str = "cpu", name: str | None = None) -> Substrate:
    """Any synapse model × any neuron model."""
    return Substrate(_build(synapses, synapse), _build(neurons, neuron), name=name, backend=backend)


@registry.register("ideal")
def ideal(dtype: str = "float32", output_activation: str = "identity", backend: str = "cpu") -> Substrate:
    """Exact float synapses + rate neurons (the software reference)."""
    return compose({"name": "float", "dtype": dtype},
                   {"name": "rate", "output_activation": output_activation}, backend, name="ideal")


@registry.register("custom")
def custom(synapse: Spec = "float", neuron: Spec = "rate", backend: str = "cpu") -> Substrate:
    """Any registered synapse model × neuron model, e.g. synapse={'name': 'float'}."""
    return compose(synapse, neuron, backend)


def get(name: str, **kw) -> Substrate:
    return registry.get(name, **kw)


def names():
    return registry.names()


__all__ = ["Substrate", "SynapseModel", "NeuronModel", "CostCounter", "DenseWeights", "LowRankWeights",
           "registry", "synapses", "neurons", "get", "names", "compose"]

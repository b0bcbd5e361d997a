"""Run configurations: normalise specs, validate, hash.

A component spec is a registered name, a ``{"name": ..., **params}`` dict, or
an already built object with a ``spec``. ``normalize`` turns the arguments of
``neurozo.run`` into one plain, JSON-able config dict; ``config_key`` hashes it
(with the package version) into the result store's key.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, Mapping

import numpy as np

from ._validate import fail

__all__ = ["RUN_KEYS", "COMPONENTS", "component_spec", "config_key", "canonical_json", "split_spec"]

COMPONENTS = ("task", "model", "substrate", "learner")
#: every top-level key a run config (or a TOML run file) may have
RUN_KEYS = COMPONENTS + ("budget", "seed", "batch_size", "eval_every", "backend")


def component_spec(kind: str, value: Any) -> Dict[str, Any] | None:
    """Spec dict of a component given as a name, a dict or an object."""
    if value is None:
        return None
    if isinstance(value, str):
        return {"name": value}
    if isinstance(value, Mapping):
        if "name" not in value:
            fail(kind, dict(value), "a dict spec needs a 'name' key")
        return _plain(dict(value))
    spec = getattr(value, "registry_spec", None) or getattr(value, "spec", None)
    if isinstance(spec, Mapping):
        return _plain(dict(spec))
    fail(kind, value, "must be a registered name, a {'name': ..., ...} dict or a neurozo object")


def split_spec(spec: Mapping[str, Any]):
    kw = dict(spec)
    return kw.pop("name"), kw


def _plain(x):
    """JSON-able copy (tuples → lists, numpy scalars → Python)."""
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return x


def canonical_json(obj) -> str:
    return json.dumps(_plain(obj), sort_keys=True, separators=(",", ":"), default=str)


def config_key(config: Mapping[str, Any], version: str) -> str:
    """Hash of the full config, seed included, and the package version (16 hex digits)."""
    h = hashlib.sha256((canonical_json(config) + "|" + version).encode()).hexdigest()
    return h[:16]

"""Name → factory registries for tasks, substrates, models and learners.

A registry maps a field name (``"openes"``, ``"ideal"``, ``"digits"``) to a
class or factory. ``get(name, **kw)`` builds one; an unknown name or an unknown
keyword raises a ``ValueError`` naming it and listing what is allowed.
``describe()`` gives every name with its parameters and defaults (``neurozo
list`` prints it).

The spec of a built object (its name and every parameter, defaults filled in)
is what configs record and what the result store hashes into a run's key. A
parameter added to a factory after runs were stored is registered with
``added={param: value}``, the value that reproduces the old behaviour: while it
holds that value it stays out of the spec, so the stored runs keep their keys.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
from typing import Any, Callable, Dict

__all__ = ["Registry", "autoload"]


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._items: Dict[str, Callable[..., Any]] = {}
        self._added: Dict[str, Dict[str, Any]] = {}
        self._loader: Callable[[], None] | None = None

    def register(self, name: str, obj: Callable[..., Any] | None = None, added: Dict[str, Any] | None = None):
        """Register ``obj`` under ``name``; usable as a decorator.

        ``added``: parameters introduced after runs were stored, each with the value that reproduces
        those runs; a spec leaves such a parameter out while it has that value (the run keys stay)."""
        def deco(o):
            if name in self._items and self._items[name] is not o:
                raise ValueError(f"{self.kind} name {name!r} is registered twice")
            unknown = sorted(set(added or {}) - set(signature_defaults(o)))
            if unknown:
                raise ValueError(f"{self.kind} {name!r}: added parameter(s) {unknown} are not parameters of it")
            self._items[name] = o
            self._added[name] = dict(added or {})
            try:
                o.registry_name = name
            except (AttributeError, TypeError):
                pass
            return o
        return deco(obj) if obj is not None else deco

    def _load(self):
        if self._loader is not None:
            loader, self._loader = self._loader, None
            loader()

    def names(self):
        self._load()
        return sorted(self._items)

    def __contains__(self, name):
        self._load()
        return name in self._items

    def factory(self, name: str) -> Callable[..., Any]:
        self._load()
        if not isinstance(name, str) or name not in self._items:
            raise ValueError(f"{self.kind}={name!r} is unknown; allowed: {sorted(self._items)}")
        return self._items[name]

    def parameters(self, name: str) -> Dict[str, Any]:
        """Parameter name → default (``inspect.Parameter.empty`` when required)."""
        return signature_defaults(self.factory(name))

    def get(self, name: str, **kw):
        fac = self.factory(name)
        allowed = self.parameters(name)
        if not _accepts_var_kw(fac):
            unknown = sorted(set(kw) - set(allowed))
            if unknown:
                raise ValueError(
                    f"{self.kind} {name!r}: unknown parameter(s) {unknown}; allowed: {sorted(allowed)}")
        obj = fac(**kw)
        spec = {"name": name}
        spec.update({k: v for k, v in allowed.items() if v is not inspect.Parameter.empty})
        spec.update(kw)
        for k, legacy in self._added.get(name, {}).items():
            if k in spec and _same(spec[k], legacy):
                del spec[k]
        try:  # the full spec (defaults filled in) identifies the object in configs and hashes
            obj.registry_spec = spec
        except (AttributeError, TypeError):
            pass
        return obj

    def describe(self) -> Dict[str, Dict[str, Any]]:
        return {n: self.parameters(n) for n in self.names()}


def _same(a, b) -> bool:
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:     # arrays and the like: never treated as the legacy value
        return False


def _target(fac):
    params = getattr(fac, "Params", None)
    if inspect.isclass(fac) and dataclasses.is_dataclass(params):
        return params  # learners: the frozen Params dataclass is the signature
    if inspect.isclass(fac):
        return fac.__init__ if not dataclasses.is_dataclass(fac) else fac
    return fac


def _accepts_var_kw(fac) -> bool:
    try:
        sig = inspect.signature(_target(fac))
    except (TypeError, ValueError):
        return True
    return any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())


def signature_defaults(fac) -> Dict[str, Any]:
    try:
        sig = inspect.signature(_target(fac))
    except (TypeError, ValueError):
        return {}
    out = {}
    for pname, p in sig.parameters.items():
        if pname == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        out[pname] = p.default
    return out


def autoload(registry: Registry, package_name: str) -> None:
    """Import every module of ``package_name`` lazily, on the registry's first use.

    Modules register themselves with decorators, so adding a file is enough to
    add a learner/substrate/task: no central list to edit.
    """
    def loader():
        pkg = importlib.import_module(package_name)
        for info in pkgutil.iter_modules(pkg.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{package_name}.{info.name}")
    registry._loader = loader

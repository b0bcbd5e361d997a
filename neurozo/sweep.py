"""Parameter sweeps: a TOML spec → many runs on Dask → one resumable result store.

A sweep spec is data only (TOML)::

    name = "noise_study"            # optional; default: the file's stem
    description = "learners × read noise on pcm"
    out = "noise_study"             # optional; a relative folder inside the output root (default: name)

    [base]                          # one run config: the keys of neurozo.run
    task = "digits"
    substrate = {name = "pcm"}
    learner = {name = "openes", popsize = 32}
    budget = 20000

    [grid]                          # cartesian product of every axis
    seed = [0, 1, 2]
    "substrate.read_noise_scale" = [0.0, 0.5, 1.0, 2.0]     # any nested parameter, by dotted path
    learner = [{name = "openes"}, {name = "spsa"}]          # or whole components

    [zip]                           # paired axes of equal length, crossed with the grid
    "learner.sigma" = [0.1, 0.05]   # ([[zip]] gives several independent groups)
    "learner.lr" = [0.03, 0.01]

    [report]                        # optional hints for `neurozo report`
    x = "substrate.read_noise_scale"
    target = 0.9

A TOML table under ``[grid]`` (``learner.sigma = [...]`` without quotes) means
the same as the quoted dotted path. Axes that replace a whole component are
applied before axes that set one of its parameters.

**Validation before any run.** Every key of the spec is checked (unknown key,
wrong type, empty axis, unequal zip lengths, an axis given twice), then every
expanded run is built with ``neurozo.build`` (registered names, parameter
ranges, shapes) without computing; all problems are collected into one
``ValueError`` listing each of them.

**Safety.** A spec cannot execute code: TOML is parsed as data, components
are looked up by name in the registries (never imported from a path), no
value is evaluated, and unknown keys are refused. A spec cannot write outside
the output root: ``out`` is resolved (symlinks included) and must stay inside
it, and records are written only as ``<root>/<out>/runs/<hex key>.json``.

**Execution.** Runs are Dask tasks. By default an embedded ``LocalCluster``
sized to the machine (one process per core, one thread per worker, Numba and
BLAS threads per worker = cores // workers so workers do not oversubscribe);
``scheduler="tcp://host:8786"`` uses any running scheduler (e.g. one started
by dask-jobqueue on SLURM, see ``experiments/README.md``). A task whose worker
dies is rescheduled by the scheduler (``retries`` times for the embedded
cluster); a run that raises is recorded as ``failed`` with its error, and one
that diverges as ``diverged`` — the sweep goes on either way.

**Store and resume.** ``<root>/<out>/manifest.json`` lists the plan (every
key and its axis values); ``runs/<key>.json`` holds one record per run
(``neurozo.store``), written atomically under the hash of its full config and
seed. Keys that exist are skipped, so rerunning an interrupted sweep runs only
the missing ones; a worker re-executing a run that another finished finds its
record and does nothing, so every run is recorded exactly once.
"""

from __future__ import annotations

import copy
import datetime as _dt
import itertools
import json
import logging
import math
import os
import sys
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

from . import __version__
from ._validate import check_int, fail
from .config import COMPONENTS, RUN_KEYS, canonical_json
from .store import ResultStore

__all__ = ["SweepSpec", "SweepRun", "SweepResult", "load_spec", "parse_overrides", "plan", "run_sweep", "resolve_out",
           "add_cli_commands", "SPEC_KEYS", "REPORT_KEYS"]

#: top-level keys a sweep spec may have
SPEC_KEYS = ("name", "description", "out", "base", "grid", "zip", "report")
#: keys of the optional [report] table
REPORT_KEYS = ("x", "target", "metric", "by")
MANIFEST = "manifest.json"
RUNS = "runs"


# ---------------------------------------------------------------------------------------------- spec


@dataclass(frozen=True)
class SweepSpec:
    """A parsed, shape-checked sweep spec (see the module docstring)."""

    name: str
    base: Dict[str, Any]
    grid: Dict[str, List[Any]]
    zips: Tuple[Dict[str, List[Any]], ...] = ()
    out: str = ""
    description: str = ""
    report: Dict[str, Any] = field(default_factory=dict)
    source: Optional[str] = None

    @property
    def axes(self) -> List[str]:
        """Every swept path, grid first, in spec order."""
        return list(self.grid) + [p for z in self.zips for p in z]

    def to_dict(self) -> Dict[str, Any]:
        d = {"name": self.name, "description": self.description, "out": self.out, "base": self.base,
             "grid": self.grid, "zip": list(self.zips), "report": self.report}
        return json.loads(canonical_json(d))


@dataclass
class SweepRun:
    """One planned run: its config (as given to ``neurozo.run``), key and axis values."""

    key: str
    config: Dict[str, Any]
    point: Dict[str, Any]

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={_short(v)}" for k, v in self.point.items())


class _Problems:
    def __init__(self):
        self.items: List[str] = []

    def add(self, msg: str) -> None:
        if msg not in self.items:
            self.items.append(msg)

    def raise_if_any(self, where: str, limit: int = 30) -> None:
        if not self.items:
            return
        n = len(self.items)
        shown = self.items[:limit]
        more = [f"... and {n - limit} more"] if n > limit else []
        raise ValueError(f"sweep spec {where} has {n} problem{'s' if n > 1 else ''}:\n"
                         + "\n".join(f"  - {p}" for p in shown + more))


def _short(v) -> str:
    if isinstance(v, dict):
        rest = {k: x for k, x in v.items() if k != "name"}
        inner = ", ".join(f"{k}={_short(x)}" for k, x in rest.items())
        return f"{v.get('name', '?')}({inner})" if inner else str(v.get("name", "?"))
    if isinstance(v, float):
        return f"{v:g}"
    return str(v) if not isinstance(v, str) else v


def _toml_load(path: Path) -> Dict[str, Any]:
    try:
        import tomllib  # Python ≥ 3.11
    except ModuleNotFoundError:  # pragma: no cover
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        fail("FILE", str(path), "file not found")
    except IsADirectoryError:
        fail("FILE", str(path), "is a directory, not a TOML sweep spec")
    except tomllib.TOMLDecodeError as e:
        fail("FILE", str(path), f"not valid TOML ({e})")


def _flatten_axes(table: Mapping[str, Any], where: str, problems: _Problems, prefix: str = "") -> Dict[str, list]:
    """``{"learner": {"sigma": [..]}, "seed": [..]}`` → ``{"learner.sigma": [..], "seed": [..]}``."""
    out: Dict[str, list] = {}
    for k, v in table.items():
        path = f"{prefix}{k}"
        if isinstance(v, Mapping):
            if not v:
                problems.add(f"{where}.{path!r} is an empty table; an axis must be a non-empty list of values")
            out.update(_flatten_axes(v, where, problems, path + "."))
        elif isinstance(v, list):
            if not v:
                problems.add(f"{where}.{path!r} is an empty axis; give at least one value")
            out[path] = v
        else:
            problems.add(f"{where}.{path!r}={v!r} is invalid: an axis must be a list of values, e.g. [{v!r}]")
    return out


def _check_path(path: str, where: str, problems: _Problems) -> bool:
    parts = path.split(".")
    if any(not p for p in parts):
        problems.add(f"{where}.{path!r} is not a valid dotted path")
        return False
    if parts[0] not in RUN_KEYS:
        problems.add(f"{where}.{path!r}: unknown key {parts[0]!r}; allowed: {list(RUN_KEYS)} "
                     f"(and their parameters, e.g. 'learner.sigma')")
        return False
    if parts[0] not in COMPONENTS and len(parts) > 1:
        problems.add(f"{where}.{path!r}: {parts[0]!r} is a number, it has no parameters")
        return False
    return True


def parse_overrides(items: Iterable[str]) -> Dict[str, Any]:
    """``["base.budget=2000", "grid.seed=[0, 1]"]`` → nested dict; values are TOML (strings may go unquoted)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover
        import tomli as tomllib
    out: Dict[str, Any] = {}
    for item in items or []:
        if not isinstance(item, str) or "=" not in item:
            fail("--set", item, "must look like section.key=value, e.g. base.budget=2000 or grid.seed=[0, 1]")
        key, text = item.split("=", 1)
        try:
            val = tomllib.loads(f"v = {text.strip()}")["v"]
        except Exception:
            val = text.strip()
        parts = [p.strip() for p in key.strip().split(".")]
        if any(not p for p in parts):
            fail("--set", item, "the key must be a dotted path such as base.learner.sigma")
        d = out
        for p in parts[:-1]:
            d = d.setdefault(p, {})
            if not isinstance(d, dict):
                fail("--set", item, f"{p!r} is set to a value and used as a table")
        d[parts[-1]] = val
    return out


def _deep_merge(base: Dict[str, Any], over: Mapping[str, Any]) -> Dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        cur = out.get(k)
        if isinstance(v, Mapping) and isinstance(cur, str) and "name" not in v:
            cur = {"name": cur}  # a component given by name, now with parameters
        if isinstance(v, Mapping) and isinstance(cur, Mapping):
            out[k] = _deep_merge(dict(cur), v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def load_spec(spec, name: Optional[str] = None, overrides: Optional[Mapping[str, Any]] = None) -> SweepSpec:
    """Parse and shape-check a spec (a TOML path or a dict). Raises one ``ValueError`` listing every problem.

    ``overrides`` (a nested dict, e.g. from ``parse_overrides``) is merged into
    the spec first: ``{"base": {"budget": 2000}, "grid": {"seed": [0]}}``.
    This checks the spec's own keys and types; ``plan`` then validates every
    expanded run config before anything runs.
    """
    parsed, problems, where = _parse(spec, name, overrides)
    problems.raise_if_any(where)
    return parsed


def _parse(spec, name: Optional[str] = None, overrides: Optional[Mapping[str, Any]] = None):
    """(spec with the invalid parts left out, problems, where): ``plan`` goes on to check the runs."""
    source = None
    if isinstance(spec, SweepSpec):
        if overrides:
            fail("overrides", overrides, "apply overrides to a TOML path or a dict, not a parsed SweepSpec")
        return spec, _Problems(), repr(spec.source) if spec.source else "(dict)"
    if isinstance(spec, (str, os.PathLike)):
        source = str(spec)
        path = Path(spec)
        data = _toml_load(path)
        name = name or path.stem
    elif isinstance(spec, Mapping):
        data = copy.deepcopy(dict(spec))
    else:
        fail("spec", spec, "must be a TOML file path or a dict")
    if overrides:
        if not isinstance(overrides, Mapping):
            fail("overrides", overrides, "must be a nested dict such as {'base': {'budget': 2000}}")
        data = _deep_merge(data, overrides)
    where = repr(source) if source else "(dict)"
    problems = _Problems()

    unknown = [k for k in data if k not in SPEC_KEYS]
    for k in unknown:
        problems.add(f"key {k!r} is unknown; allowed: {list(SPEC_KEYS)}")
    for k in ("name", "description", "out"):
        if k in data and not isinstance(data[k], str):
            problems.add(f"{k}={data[k]!r} is invalid: must be a string")
    sname = data.get("name") if isinstance(data.get("name"), str) else (name or "sweep")
    if not sname or any(c in sname for c in "/\\\0") or sname in (".", ".."):
        problems.add(f"name={sname!r} is invalid: must be a non-empty name without path separators")
    out = data.get("out", sname)
    if not isinstance(out, str):
        out = sname
    elif not out.strip():
        problems.add(f"out={out!r} is invalid: must be a non-empty relative folder name")

    base = data.get("base", {})
    if not isinstance(base, Mapping):
        problems.add(f"base={base!r} is invalid: must be a table of run settings ({list(RUN_KEYS)})")
        base = {}
    for k in base:
        if k not in RUN_KEYS:
            problems.add(f"base.{k!r} is unknown; allowed: {list(RUN_KEYS)}")
    for k in COMPONENTS:
        v = base.get(k)
        if v is not None and not isinstance(v, (str, Mapping)):
            problems.add(f"base.{k}={v!r} is invalid: must be a registered name or a table with a 'name' key")
        if isinstance(v, Mapping) and "name" not in v:
            problems.add(f"base.{k}={dict(v)!r} is invalid: a table needs a 'name' key")

    grid_raw = data.get("grid", {})
    if not isinstance(grid_raw, Mapping):
        problems.add(f"grid={grid_raw!r} is invalid: must be a table of axes (path = [values])")
        grid_raw = {}
    grid = _flatten_axes(grid_raw, "grid", problems)

    zip_raw = data.get("zip", [])
    if isinstance(zip_raw, Mapping):
        zip_raw = [zip_raw] if zip_raw else []
    if not isinstance(zip_raw, list) or not all(isinstance(z, Mapping) for z in zip_raw):
        problems.add(f"zip={zip_raw!r} is invalid: must be a table ([zip]) or tables ([[zip]]) of axes")
        zip_raw = []
    zips = []
    for i, z in enumerate(zip_raw):
        zw = "zip" if len(zip_raw) == 1 else f"zip[{i}]"
        if not z:
            problems.add(f"{zw} is empty; give at least one axis or leave it out")
        axes = _flatten_axes(z, zw, problems)
        lengths = {p: len(v) for p, v in axes.items()}
        if len(set(lengths.values())) > 1:
            problems.add(f"{zw}: paired axes must have equal lengths, got {lengths}")
        zips.append(axes)

    seen: Dict[str, str] = {}
    for where_, axes in [("grid", grid)] + [(f"zip[{i}]", z) for i, z in enumerate(zips)]:
        for p in axes:
            _check_path(p, where_, problems)
            if p in seen:
                problems.add(f"axis {p!r} is given twice ({seen[p]} and {where_})")
            seen[p] = where_
    for p, where_ in seen.items():  # a parameter axis under a component that is itself swept as a plain value
        for q in seen:
            if q != p and p.startswith(q + ".") and q.split(".")[0] not in COMPONENTS:
                problems.add(f"axis {p!r} is under {q!r}, which is not a component")

    report = data.get("report", {})
    if not isinstance(report, Mapping):
        problems.add(f"report={report!r} is invalid: must be a table with keys {list(REPORT_KEYS)}")
        report = {}
    for k, v in report.items():
        if k not in REPORT_KEYS:
            problems.add(f"report.{k!r} is unknown; allowed: {list(REPORT_KEYS)}")
        elif k == "target" and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
            problems.add(f"report.target={v!r} is invalid: must be a finite number")
        elif k in ("x", "metric", "by") and not isinstance(v, str):
            problems.add(f"report.{k}={v!r} is invalid: must be a string")

    # what is left once the invalid parts are set aside, so that the runs can still be checked
    base = {k: v for k, v in base.items() if k in RUN_KEYS
            and not (k in COMPONENTS and not (isinstance(v, str) or (isinstance(v, Mapping) and "name" in v)))}
    ok_path = lambda p: _check_path(p, "", _Problems())  # noqa: E731
    grid = {p: v for p, v in grid.items() if v and ok_path(p)}
    zips = [{p: v for p, v in z.items() if v and ok_path(p)} for z in zips
            if len({len(v) for v in z.values()}) <= 1]
    zips = [z for z in zips if z]
    description = data.get("description", "") if isinstance(data.get("description", ""), str) else ""
    return (SweepSpec(name=sname, base=dict(base), grid=grid, zips=tuple(zips), out=out, description=description,
                      report=dict(report), source=source), problems, where)


# ------------------------------------------------------------------------------------------ expansion


def _set_path(cfg: Dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    d = cfg
    for p in parts[:-1]:
        cur = d.get(p)
        if isinstance(cur, str):  # a component (or nested component) given by name
            cur = {"name": cur}
        elif not isinstance(cur, dict):
            cur = {} if cur is None else cur
        if not isinstance(cur, dict):
            fail(path, value, f"cannot set a parameter inside {p}={cur!r}")
        d[p] = cur = dict(cur)
        d = cur
    d[parts[-1]] = copy.deepcopy(value)


def _points(spec: SweepSpec) -> List[Dict[str, Any]]:
    groups: List[List[Dict[str, Any]]] = []
    for p, values in spec.grid.items():
        groups.append([{p: v} for v in values])
    for z in spec.zips:
        if z:
            n = len(next(iter(z.values())))
            groups.append([{p: z[p][i] for p in z} for i in range(n)])
    points = []
    for combo in itertools.product(*groups):
        pt: Dict[str, Any] = {}
        for c in combo:
            pt.update(c)
        points.append(pt)
    return points


def _config(base: Mapping[str, Any], point: Mapping[str, Any]) -> Dict[str, Any]:
    cfg = copy.deepcopy(dict(base))
    for p in sorted(point, key=lambda s: s.count(".")):  # whole components first, then their parameters
        _set_path(cfg, p, point[p])
    return cfg


def plan(spec, name: Optional[str] = None, overrides: Optional[Mapping[str, Any]] = None
         ) -> Tuple[SweepSpec, List[SweepRun]]:
    """Parse ``spec`` and validate every expanded run (no compute). Returns (spec, runs).

    Raises one ``ValueError`` that lists every problem: the spec's own keys
    first, then each distinct error of ``neurozo.build`` with the axis values
    of a run that shows it and how many runs share it.
    """
    from .run import build

    spec, problems, where = _parse(spec, name, overrides)
    seen_msgs: Dict[str, List[str]] = {}
    runs: List[SweepRun] = []
    keys: Dict[str, int] = {}
    for point in _points(spec):
        label = ", ".join(f"{k}={_short(v)}" for k, v in point.items()) or "base"
        try:
            cfg = _config(spec.base, point)
            b = build(**cfg)
        except (ValueError, TypeError, RuntimeError) as e:
            msg = str(e).replace("\n", " ")
            seen_msgs.setdefault(msg, []).append(label)
            continue
        if b.key in keys:  # two points that give the same full config: run once
            continue
        keys[b.key] = len(runs)
        runs.append(SweepRun(b.key, cfg, dict(point)))
    for msg, labels in seen_msgs.items():
        more = f" (and {len(labels) - 1} more run{'s' if len(labels) > 2 else ''})" if len(labels) > 1 else ""
        problems.add(f"run [{labels[0]}]{more}: {msg}")
    problems.raise_if_any(where)
    return spec, runs


def resolve_out(root, out: str) -> Path:
    """``root/out`` resolved; a ``ValueError`` unless it stays inside ``root`` (symlinks resolved)."""
    root_p = Path(root).expanduser().resolve()
    if not isinstance(out, str) or not out.strip():
        fail("out", out, "must be a non-empty relative folder name")
    if Path(out).is_absolute() or Path(out).drive:
        fail("out", out, f"must be a relative folder inside the output root {str(root_p)!r}, not an absolute path")
    target = (root_p / out).resolve()
    if target != root_p and root_p not in target.parents:
        fail("out", out, f"resolves to {str(target)!r}, outside the output root {str(root_p)!r}; "
                         f"a spec may only write inside it")
    return target


# ------------------------------------------------------------------------------------------- execution


def _set_threads(n: Optional[int]) -> None:
    if not n:
        return
    try:
        import numba

        numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))
    except Exception:  # pragma: no cover - numba missing or threads already fixed
        pass


def _get_threads() -> Optional[int]:
    try:
        import numba

        return int(numba.get_num_threads())
    except Exception:  # pragma: no cover
        return None


def execute_run(config: Dict[str, Any], key: str, runs_dir: str, point: Optional[Dict[str, Any]] = None,
                numba_threads: Optional[int] = None) -> Dict[str, Any]:
    """Run one config and write its record (the Dask task). Never raises for a failing run.

    If the record exists already (another attempt finished it), nothing runs.
    A run that raises is recorded with status ``failed``, its error and
    traceback; one whose loss turns non-finite is ``diverged`` (from ``run``).
    """
    import platform

    store = ResultStore(runs_dir)
    if store.exists(key):
        try:
            rec = store.read(key)
            return {"key": key, "status": rec.get("status"), "message": rec.get("message", ""),
                    "final": rec.get("final") or {}, "existing": True}
        except (OSError, json.JSONDecodeError):
            pass
    _set_threads(numba_threads)
    t0 = time.perf_counter()
    try:
        from .run import run

        res = run(**config, progress=False)
        rec = res.to_record()
    except Exception as e:  # recorded; the sweep goes on
        rec = {"key": key, "config": config, "status": "failed", "message": f"{type(e).__name__}: {e}",
               "traceback": traceback.format_exc(), "history": [], "final": {}, "version": __version__,
               "backend": config.get("backend", "cpu") if isinstance(config, dict) else "cpu",
               "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    if rec["key"] != key:  # e.g. a worker with another neurozo version: file it under the planned key
        rec["run_key"], rec["key"] = rec["key"], key
    rec["sweep"] = {"point": point or {}, "host": platform.node(), "pid": os.getpid(),
                    "numba_threads": _get_threads(), "wall_s": time.perf_counter() - t0}
    store.write(rec)
    return {"key": key, "status": rec["status"], "message": rec.get("message", ""),
            "final": {k: v for k, v in (rec.get("final") or {}).items() if isinstance(v, (int, float))},
            "existing": False}


@dataclass
class SweepResult:
    """What a sweep did: where, how many runs, which ran now, which were skipped, statuses."""

    directory: Path
    planned: List[str]
    ran: List[str] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)
    statuses: Dict[str, str] = field(default_factory=dict)
    interrupted: bool = False
    wall_s: float = 0.0
    dashboard: Optional[str] = None

    @property
    def store(self) -> ResultStore:
        return ResultStore(self.directory / RUNS)

    def counts(self) -> Dict[str, int]:
        out: Dict[str, int] = {}
        for s in self.statuses.values():
            out[s] = out.get(s, 0) + 1
        return out

    def __repr__(self):
        return (f"SweepResult(dir={str(self.directory)!r}, planned={len(self.planned)}, ran={len(self.ran)}, "
                f"skipped={len(self.skipped)}, statuses={self.counts()}, interrupted={self.interrupted})")


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover
        return max(1, os.cpu_count() or 1)


def _write_manifest(directory: Path, spec: SweepSpec, runs: List[SweepRun]) -> None:
    import tempfile

    data = {"name": spec.name, "description": spec.description, "source": spec.source,
            "spec": spec.to_dict(), "axes": spec.axes, "version": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "runs": [{"key": r.key, "point": r.point} for r in runs]}
    fd, tmp = tempfile.mkstemp(prefix=".manifest.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(json.loads(canonical_json(data)), f, indent=1)
        os.replace(tmp, directory / MANIFEST)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_manifest(directory) -> Optional[Dict[str, Any]]:
    p = Path(directory) / MANIFEST
    if not p.exists():
        return None
    with open(p) as f:
        return json.load(f)


def _failed_record(run: SweepRun, message: str) -> Dict[str, Any]:
    return {"key": run.key, "config": run.config, "status": "failed", "message": message, "history": [],
            "final": {}, "version": __version__, "backend": run.config.get("backend", "cpu"),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "sweep": {"point": run.point}}


def _dashboard_line(client) -> str:
    import importlib.util

    link = getattr(client, "dashboard_link", None)
    if not link:
        return "dashboard: not available"
    if importlib.util.find_spec("bokeh") is None:
        return f"dashboard: {link} (serves pages only when bokeh>=3.1 is installed)"
    return f"dashboard: {link}"


def run_sweep(spec, root="results", out: Optional[str] = None, scheduler: Optional[str] = None,
              client=None, n_workers: Optional[int] = None, numba_threads: Optional[int] = None,
              retries: int = 3, rerun_failed: bool = False, progress: Optional[bool] = None,
              callbacks: Iterable[Callable[[Dict[str, Any], "SweepResult"], Any]] = (),
              verbose: bool = True, name: Optional[str] = None,
              overrides: Optional[Mapping[str, Any]] = None) -> SweepResult:
    """Validate, plan and run (or resume) a sweep; returns a :class:`SweepResult`.

    Parameters
    ----------
    spec : TOML path, dict or ``SweepSpec``.
    root : output root; the sweep writes only inside ``root/out`` (``out``
        defaults to the spec's ``out``, which defaults to its name).
    scheduler : address of a running Dask scheduler; default an embedded
        ``LocalCluster`` with ``n_workers`` processes (default: cores, at
        most the number of runs), one thread each.
    client : an existing ``distributed.Client`` (overrides ``scheduler``).
    numba_threads : Numba/BLAS threads per worker (default cores // workers
        for the embedded cluster; left alone on an external scheduler).
    retries : how often a task whose worker died is rescheduled (embedded
        cluster; an external scheduler uses its own
        ``distributed.scheduler.allowed-failures``).
    rerun_failed : also rerun keys whose record has status ``failed``.
    callbacks : ``cb(summary, sweep_result)`` after each finished run; True stops the sweep.
    overrides : nested dict merged into the spec first (``neurozo sweep --set``).
    """
    spec, runs = plan(spec, name, overrides)
    retries = check_int("retries", retries, 0)
    if n_workers is not None:
        n_workers = check_int("n_workers", n_workers, 1)
    if numba_threads is not None:
        numba_threads = check_int("numba_threads", numba_threads, 1)
    directory = resolve_out(root, out if out is not None else spec.out)
    callbacks = list(callbacks)
    for cb in callbacks:
        if not callable(cb):
            fail("callbacks", cb, "each callback must be callable")
    runs_dir = directory / RUNS
    store = ResultStore(runs_dir)
    _write_manifest(directory, spec, runs)

    result = SweepResult(directory, [r.key for r in runs])
    todo = []
    for r in runs:
        if store.exists(r.key):
            status = _status(store, r.key)
            if not (rerun_failed and status == "failed"):
                result.skipped.append(r.key)
                result.statuses[r.key] = status
                continue
        todo.append(r)
    say = (lambda *a: print(*a, flush=True)) if verbose else (lambda *a: None)
    say(f"sweep {spec.name!r}: {len(runs)} runs, {len(result.skipped)} done before, {len(todo)} to run "
        f"→ {directory}")
    if not todo:
        return result

    if rerun_failed:
        for r in todo:
            if store.exists(r.key):
                os.unlink(store.path(r.key))

    t0 = time.perf_counter()
    own_cluster = cluster = None
    try:
        if client is None:
            from distributed import Client

            if scheduler:
                client = own_cluster = Client(scheduler)
            else:
                import dask
                from distributed import LocalCluster

                cores = _cores()
                n = n_workers or max(1, min(cores, len(todo)))
                numba_threads = numba_threads or max(1, cores // n)
                env = {v: str(numba_threads) for v in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS",
                                                       "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
                # Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in workers to hand memory back to the OS;
                # with numpy temporaries allocated and freed every step that costs 15-25% per run here.
                with dask.config.set({"distributed.scheduler.allowed-failures": retries,
                                      "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
                    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                           dashboard_address=":0", env=env, silence_logs=logging.ERROR)
                client = own_cluster = Client(cluster)
                say(f"embedded LocalCluster: {n} worker process(es) × 1 thread, {numba_threads} Numba "
                    f"thread(s) each")
        result.dashboard = getattr(client, "dashboard_link", None)
        say(_dashboard_line(client))
        _drive(client, todo, runs_dir, numba_threads, store, result, callbacks, progress, say)
    finally:
        if own_cluster is not None:
            try:
                own_cluster.close()
            except Exception:  # pragma: no cover
                pass
        if cluster is not None:
            try:
                cluster.close()
            except Exception:  # pragma: no cover
                pass
        result.wall_s = time.perf_counter() - t0
    c = result.counts()
    say(f"sweep {spec.name!r}: {len(result.ran)} ran, {len(result.skipped)} skipped; "
        + ", ".join(f"{k} {v}" for k, v in sorted(c.items()))
        + (" — interrupted; rerun to resume" if result.interrupted else "") + f" ({result.wall_s:.1f} s)")
    return result


def _status(store: ResultStore, key: str) -> str:
    try:
        return store.read(key).get("status", "?")
    except (OSError, json.JSONDecodeError):
        return "?"


def _drive(client, todo: List[SweepRun], runs_dir: Path, numba_threads, store: ResultStore,
           result: SweepResult, callbacks, progress, say) -> None:
    from distributed import as_completed

    token = uuid.uuid4().hex[:8]
    by_future = {}
    for r in todo:
        fut = client.submit(execute_run, r.config, r.key, str(runs_dir), r.point, numba_threads,
                            key=f"neurozo-run-{r.key}-{token}", pure=False)
        by_future[fut] = r
    if progress is None:
        progress = sys.stderr.isatty()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), unit="run", desc="sweep")
    done = 0
    try:
        for fut in as_completed(list(by_future)):
            r = by_future[fut]
            try:
                summary = fut.result()
            except Exception as e:  # the task itself never raises: this is a lost worker (KilledWorker) etc.
                rec = _failed_record(r, f"{type(e).__name__}: {e}")
                if not store.exists(r.key):
                    store.write(rec)
                summary = {"key": r.key, "status": _status(store, r.key), "message": rec["message"],
                           "final": {}, "existing": False}
            done += 1
            result.ran.append(r.key)
            result.statuses[r.key] = summary["status"]
            summary["point"] = r.point
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"{summary['status']}: {r.label}"[:60])
            else:
                fin = summary.get("final") or {}
                acc = fin.get("test_acc")
                metric = (f", test acc {acc:.4f}" if isinstance(acc, (int, float)) and math.isfinite(acc) else
                          f", test loss {fin['test_loss']:.4g}" if isinstance(fin.get("test_loss"), (int, float))
                          else "")
                msg = f" ({summary['message']})" if summary["status"] in ("failed", "diverged") else ""
                say(f"[{done}/{len(todo)}] {r.label}: {summary['status']}{metric}{msg}")
            if any(cb(summary, result) for cb in callbacks):
                result.interrupted = True
                break
    except KeyboardInterrupt:
        result.interrupted = True
        client.cancel(list(by_future))
        raise
    finally:
        if bar is not None:
            bar.close()
    if result.interrupted:
        client.cancel(list(by_future))


# ------------------------------------------------------------------------------------------------ CLI


def cmd_sweep(args) -> int:
    overrides = parse_overrides(args.set)
    if args.dry_run:
        spec, runs = plan(args.file, overrides=overrides)
        directory = resolve_out(args.out, spec.out)
        store = ResultStore(directory / RUNS) if (directory / RUNS).exists() else None
        done = sum(1 for r in runs if store is not None and store.exists(r.key))
        print(f"sweep {spec.name!r}: {len(runs)} runs valid, {done} done before, {len(runs) - done} to run "
              f"→ {directory}")
        for r in runs[: args.show]:
            print(f"  {r.key}  {r.label}")
        if len(runs) > args.show:
            print(f"  ... {len(runs) - args.show} more")
        return 0
    try:
        res = run_sweep(args.file, root=args.out, overrides=overrides, scheduler=args.scheduler, n_workers=args.workers,
                        numba_threads=args.numba_threads, retries=args.retries,
                        rerun_failed=args.rerun_failed, progress=False if args.no_progress else None)
    except KeyboardInterrupt:
        print("interrupted: finished runs are stored; rerun the same command to resume", file=sys.stderr)
        return 130
    if args.report and not res.interrupted:
        from .report import report

        report(res.directory, verbose=True)
    return 130 if res.interrupted else 0


def cmd_report(args) -> int:
    from .report import report

    report(args.dir, out=args.out, x=args.x, target=args.target, metric=args.metric, by=args.by,
           formats=args.format.split(","), verbose=True)
    return 0


def cmd_bench(args) -> int:
    from .bench import bench

    import shlex

    parts = ["neurozo", "bench", *args.scripts]
    for flag, val in [("--dir", args.dir), ("--doc", args.doc), ("--timeout", args.timeout if args.timeout != 1800
                                                                    else None)]:
        if val is not None:
            parts += [flag, str(val)]
    parts += ["--quick"] if args.quick else []
    return bench(scripts=args.scripts, directory=args.dir, doc=args.doc, quick=args.quick,
                 timeout=args.timeout, write=not args.no_write, command=" ".join(shlex.quote(p) for p in parts))


def add_cli_commands(sub) -> None:
    """Register ``sweep``, ``report`` and ``bench`` on the ``neurozo`` command line."""
    s = sub.add_parser("sweep", help="run a TOML sweep spec (grid/zip axes) on Dask; resumable",
                       description="Run a TOML sweep spec on Dask. Every run is validated first; finished runs "
                                   "are skipped, so rerunning an interrupted sweep resumes it. The spec's 'out' "
                                   "folder is created inside --out and nothing is written elsewhere.")
    s.add_argument("file", help="TOML sweep spec (see experiments/README.md)")
    s.add_argument("--out", default="results", help="output root (default: results); the sweep writes to "
                                                    "OUT/<spec out or name>/")
    s.add_argument("--scheduler", metavar="ADDRESS",
                   help="a running Dask scheduler, e.g. tcp://10.0.0.1:8786 (default: an embedded LocalCluster)")
    s.add_argument("--workers", type=int, help="worker processes of the embedded cluster (default: cores)")
    s.add_argument("--numba-threads", dest="numba_threads", type=int,
                   help="Numba/BLAS threads per worker (default: cores // workers on the embedded cluster)")
    s.add_argument("--retries", type=int, default=3, help="reschedules of a run whose worker died (default 3)")
    s.add_argument("--rerun-failed", dest="rerun_failed", action="store_true",
                   help="also rerun runs recorded as failed")
    s.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="change the spec, e.g. base.budget=2000, grid.seed=[0], out=small (repeatable)")
    s.add_argument("--dry-run", dest="dry_run", action="store_true", help="validate and list the runs, run nothing")
    s.add_argument("--show", type=int, default=20, help="runs listed by --dry-run (default 20)")
    s.add_argument("--report", action="store_true", help="write the report (neurozo report) when done")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_sweep)

    s = sub.add_parser("report", help="consolidate a result store into tables, plots and a Markdown summary",
                       description="Consolidate a sweep folder (or any result store) into runs.csv/.parquet, "
                                   "summary.csv, PNG plots and summary.md.")
    s.add_argument("dir", help="a sweep folder (with runs/) or a folder of run records")
    s.add_argument("--out", help="where to write (default: DIR/report)")
    s.add_argument("--x", help="numeric swept parameter for the accuracy-vs-x plot, e.g. substrate.read_noise")
    s.add_argument("--by", help="column that names the curves (default: the other swept parameters)")
    s.add_argument("--target", type=float, help="metric target for evaluations-to-target")
    s.add_argument("--metric", help="test_acc (default for classification) or test_loss")
    s.add_argument("--format", default="csv,parquet",
                   help="table formats, comma-separated: csv, parquet (default both; parquet needs pyarrow)")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("bench", help="run the side-by-side benchmarks and rewrite the table in docs/benchmarks.md",
                       description="Run experiments/bench/bench_*.py (each prints 'BENCH {json}' lines), "
                                   "skip peers that are not installed, and rewrite the table in docs/benchmarks.md "
                                   "with date, machine and command.")
    s.add_argument("scripts", nargs="*", help="only these scripts (names or substrings; default: all)")
    s.add_argument("--dir", help="folder of bench scripts (default: experiments/bench of this checkout)")
    s.add_argument("--doc", help="Markdown file whose table is rewritten (default: docs/benchmarks.md)")
    s.add_argument("--quick", action="store_true", help="smoke sizes (sets NEUROZO_BENCH_QUICK=1)")
    s.add_argument("--timeout", type=float, default=1800, help="seconds per script (default 1800)")
    s.add_argument("--no-write", dest="no_write", action="store_true", help="print the table, do not rewrite the doc")
    s.set_defaults(func=cmd_bench)

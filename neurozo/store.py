"""Result store: one JSON record per run, keyed by the hash of its config.

Layout: ``DIR/<key>.json``. Records are written to a temporary file in the
same directory and ``os.replace``d, so a crash never leaves a half-written
record and a reader never sees one. A sweep skips keys that exist, so an
interrupted sweep resumes and a dead worker loses nothing that finished.
The key hashes every parameter of every component, defaults filled in; a
parameter added later is registered with ``added=`` (see ``neurozo.registry``)
so that runs stored before it keep their keys.

Record fields: key, config, status (finished | diverged | stopped | failed),
message, history (list of rows), final (metrics and cost counters), version,
backend, created (UTC ISO time).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pandas as pd

__all__ = ["ResultStore"]


class ResultStore:
    def __init__(self, root):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def write(self, record: Dict[str, Any]) -> Path:
        key = record["key"]
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=self.root)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(record, f, indent=1, allow_nan=True, default=_json_default)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path(key))
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return self.path(key)

    def read(self, key: str) -> Dict[str, Any]:
        with open(self.path(key)) as f:
            return json.load(f)

    def keys(self) -> List[str]:
        return sorted(p.stem for p in self.root.glob("*.json") if not p.name.startswith("."))

    def records(self) -> Iterator[Dict[str, Any]]:
        for k in self.keys():
            try:
                yield self.read(k)
            except (OSError, json.JSONDecodeError):
                continue

    def table(self) -> pd.DataFrame:
        """One row per run: flattened config, status and final metrics."""
        rows = []
        for r in self.records():
            row = {"key": r["key"], "status": r["status"], "version": r.get("version"),
                   "backend": r.get("backend")}
            row.update(_flatten(r["config"]))
            row.update({f"final.{k}": v for k, v in (r.get("final") or {}).items()})
            rows.append(row)
        return pd.DataFrame(rows)

    def histories(self) -> pd.DataFrame:
        """All learning curves, long format, with the run's key and flattened config."""
        frames = []
        for r in self.records():
            h = pd.DataFrame(r.get("history") or [])
            if h.empty:
                continue
            for k, v in _flatten(r["config"]).items():
                h[k] = v if not isinstance(v, list) else str(v)
            h["key"] = r["key"]
            h["status"] = r["status"]
            h["label"] = r.get("label") or (r["config"].get("learner") or {}).get("name")
            frames.append(h)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _json_default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)

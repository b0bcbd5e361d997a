"""``neurozo report DIR``: consolidate a result store into tables, plots and a Markdown summary.

DIR is a sweep folder (``manifest.json`` + ``runs/``), a ``compare`` output
(``runs/``) or any folder of run records. Written to ``DIR/report`` (or
``out``):

* ``runs.csv`` / ``runs.parquet`` — one row per run: key, status, message,
  flattened config (``learner.sigma``, ``substrate.read_noise``, ``seed``,
  ...), ``final.*`` metrics and cost counters, version, backend, and the
  configuration ``label``.
* ``histories.csv`` / ``.parquet`` — every logged row of every run (long format).
* ``summary.csv`` — one row per configuration (runs grouped over seeds): runs,
  statuses, final and best metric (mean ± 95% CI), evaluations, energy,
  wall time, evaluations-to-target.
* PNG plots (``neurozo.plotting``): ``learning_curves.png``,
  ``<metric>_vs_<x>.png`` (e.g. accuracy vs read-noise level, one line per
  learner) when a numeric parameter was swept, ``pareto.png`` (accuracy vs
  energy with the Pareto front) when the substrate counts energy, and
  ``evals_to_target.png``.
* ``summary.md`` — what ran, statuses, errors of failed runs, the summary
  table and the plots.

Configurations are named by the swept parameters that tell them apart
(the fewest columns that do, ``.name`` columns first); seeds are
replicates. The x of the metric-vs-x plot is ``x`` (or the spec's
``[report] x``), else the first numeric parameter that takes several values
within a configuration (a budget paired with its task is not one). The metric is ``test_acc`` when runs report an accuracy, else
``test_loss``. The default target for evaluations-to-target is 90% of the way
from the mean initial metric to the best configuration's mean final metric.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from ._validate import check_choice, check_float, fail
from .store import ResultStore

__all__ = ["report", "load", "Report", "configuration_columns"]

_META = {"key", "status", "message", "version", "backend", "created", "label", "seed", "run_key"}


@dataclass
class Report:
    """Paths written by :func:`report` and the tables behind them."""

    out: Path
    runs: pd.DataFrame
    histories: pd.DataFrame
    summary: pd.DataFrame
    files: Dict[str, Path] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)
    metric: str = "test_acc"
    x: Optional[str] = None
    target: Optional[float] = None

    def __repr__(self):
        return f"Report(out={str(self.out)!r}, runs={len(self.runs)}, files={sorted(self.files)})"


def _flatten(d, prefix=""):
    out = {}
    for k, v in (d or {}).items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = str(v) if isinstance(v, list) else v
    return out


def _locate(directory) -> tuple:
    d = Path(directory)
    if not d.is_dir():
        fail("DIR", str(directory), "must be a folder: a sweep folder, a compare output or a folder of run records")
    if (d / "runs").is_dir():
        return d, ResultStore(d / "runs")
    if any(p for p in d.glob("*.json") if not p.name.startswith(".") and p.name != "manifest.json"):
        return d, ResultStore(d)
    fail("DIR", str(directory), "holds no run records (no runs/ folder and no <key>.json files)")


def load(directory):
    """(runs table, histories table, manifest or None) of a store, in one pass over its records."""
    from .sweep import read_manifest

    d, store = _locate(directory)
    manifest = read_manifest(d)
    rows, frames = [], []
    for r in store.records():
        if not isinstance(r, dict) or "key" not in r or "config" not in r:
            continue
        cfg = _flatten(r.get("config") or {})
        row = {"key": r["key"], "status": r.get("status"), "message": r.get("message", ""),
               "version": r.get("version"), "backend": r.get("backend"), "created": r.get("created")}
        row.update(cfg)
        row.update({f"final.{k}": v for k, v in (r.get("final") or {}).items()})
        rows.append(row)
        h = pd.DataFrame(r.get("history") or [])
        if not h.empty:
            h.insert(0, "key", r["key"])
            h["status"] = r.get("status")
            for k, v in cfg.items():
                h[k] = v
            frames.append(h)
    runs = pd.DataFrame(rows)
    hist = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return runs, hist, manifest


def configuration_columns(runs: pd.DataFrame, axes: Sequence[str] = (), exclude: Sequence[str] = ()) -> List[str]:
    """The fewest config columns that tell configurations apart (seeds excluded).

    Candidates are the config columns that vary; the swept axes of the
    manifest come first, ``.name`` columns before parameters. A candidate is
    kept only if it splits a configuration the kept ones do not.
    """
    if runs.empty:
        return []
    cand = [c for c in runs.columns
            if c not in _META and not c.startswith("final.") and c not in exclude
            and runs[c].astype(str).nunique(dropna=False) > 1]

    def rank(c):
        ax = next((i for i, a in enumerate(axes) if c == a or c.startswith(a + ".")), len(axes))
        return (ax, 0 if c.endswith(".name") else 1, c.count("."), c)

    cand.sort(key=rank)
    kept: List[str] = []
    ids = pd.Series(0, index=runs.index)
    for c in cand:
        col = runs[c].astype(str)
        new = pd.Series(list(zip(ids, col)), index=runs.index).astype(str)
        if new.nunique() > ids.nunique():
            kept.append(c)
            ids = new
    return kept


def _labels(runs: pd.DataFrame, cols: Sequence[str]) -> pd.Series:
    if not cols:
        name = runs.get("learner.name")
        return name.astype(str) if name is not None else pd.Series("all runs", index=runs.index)

    def fmt(r):
        parts = []
        for c in cols:
            v = r[c]
            if isinstance(v, float) and math.isnan(v):
                continue
            v = f"{v:g}" if isinstance(v, float) else str(v)
            parts.append(v if c.endswith(".name") else f"{c.split('.')[-1]}={v}")
        return " ".join(parts) or "default"

    return runs.apply(fmt, axis=1)


def _numeric(s: pd.Series) -> bool:
    if s.dtype == bool:
        return False
    v = pd.to_numeric(s, errors="coerce")
    return bool(v.notna().all()) and v.nunique() > 1


def _crossed(runs: pd.DataFrame, c: str, axes: Sequence[str]) -> bool:
    """True when ``c`` takes several values inside a configuration (a swept level, not a paired setting)."""
    labels = _labels(runs, configuration_columns(runs, axes, exclude=[c]))
    return bool(runs[c].astype(str).groupby(labels).nunique().max() >= 2)


def _ci(v) -> float:
    from .plotting.curves import mean_ci

    v = np.asarray(v, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return float("nan")
    return float(mean_ci(v[:, None])[1][0])


def _trains_on_substrate(runs: pd.DataFrame) -> pd.Series:
    """Per run: does its learner train on the substrate (False for bptt, which trains in float)?"""
    from .learners import trains_on_substrate

    names = runs["learner.name"] if "learner.name" in runs else pd.Series("", index=runs.index)
    return names.map(trains_on_substrate).astype(bool)


def _mean(v) -> float:
    v = np.asarray(v, dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else float("nan")


def _best(v: np.ndarray, higher: bool) -> float:
    v = v[np.isfinite(v)]
    if not len(v):
        return float("nan")
    return float(v.max() if higher else v.min())


def _fmt(v, digits=4) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def _save(fig, path: Path, files: Dict[str, Path], name: str) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    files[name] = path


def _write_table(df: pd.DataFrame, base: Path, formats: Sequence[str], files: Dict[str, Path], notes: List[str]):
    if "csv" in formats:
        df.to_csv(base.with_suffix(".csv"), index=False)
        files[base.name + ".csv"] = base.with_suffix(".csv")
    if "parquet" in formats:
        try:
            pq = df.copy()
            for c in pq.columns:  # mixed-type config columns (e.g. a name or a number) → text
                if pq[c].dtype == object:
                    pq[c] = pq[c].map(lambda v: v if v is None or isinstance(v, str) else str(v))
            pq.to_parquet(base.with_suffix(".parquet"), index=False)
            files[base.name + ".parquet"] = base.with_suffix(".parquet")
        except ImportError:
            notes.append(f"{base.name}.parquet not written: Parquet needs pyarrow (pip install pyarrow)")


def report(directory, out=None, x: Optional[str] = None, target: Optional[float] = None,
           metric: Optional[str] = None, by: Optional[str] = None, formats: Sequence[str] = ("csv", "parquet"),
           verbose: bool = False) -> Report:
    """Consolidate the store in ``directory``; write tables, PNG plots and ``summary.md`` (see module doc)."""
    import matplotlib

    if not matplotlib.get_backend() or "inline" not in matplotlib.get_backend():
        matplotlib.use("Agg", force=False)
    from .plotting.bars import time_to_target

    formats = [f.strip() for f in formats if f.strip()]
    for f in formats:
        check_choice("format", f, ["csv", "parquet"])
    if target is not None:
        target = check_float("target", target)
    d, _ = _locate(directory)
    runs, hist, manifest = load(d)
    if runs.empty:
        fail("DIR", str(directory), "holds no readable run records")
    hints = ((manifest or {}).get("spec") or {}).get("report") or {}
    x = x or hints.get("x")
    metric = metric or hints.get("metric")
    by = by or hints.get("by")
    target = target if target is not None else hints.get("target")
    out = Path(out) if out is not None else d / "report"
    out.mkdir(parents=True, exist_ok=True)
    files: Dict[str, Path] = {}
    notes: List[str] = []
    axes = list((manifest or {}).get("axes") or [])

    # the metric
    if metric is None:
        acc = pd.to_numeric(runs.get("final.test_acc", pd.Series(dtype=float)), errors="coerce")
        metric = "test_acc" if acc.notna().any() else "test_loss"
    check_choice("metric", metric, ["test_acc", "test_loss", "train_loss"])
    higher = metric == "test_acc"
    fm = f"final.{metric}"
    if fm not in runs:
        runs[fm] = np.nan

    # x axis of the metric-vs-x plot
    if x is not None:
        if x not in runs:
            swept = [c for c in runs.columns if c not in _META and not c.startswith("final.")
                     and runs[c].astype(str).nunique() > 1]
            fail("x", x, f"is not a config column of these runs; swept columns: {swept}")
        if not _numeric(runs[x]):
            fail("x", x, "must be a numeric parameter with at least two values")
    else:
        ordered = [c for a in axes for c in runs.columns if c == a] + sorted(runs.columns)
        x = next((c for c in ordered if c not in _META and c != "seed" and not c.startswith("final.")
                  and c in runs and _numeric(runs[c]) and _crossed(runs, c, axes)), None)

    # configurations
    if by is not None:
        if by not in runs:
            fail("by", by, f"is not a column of these runs; columns: {sorted(runs.columns)}")
        runs["label"] = runs[by].astype(str)
    else:
        cols = configuration_columns(runs, axes, exclude=[x] if x else [])
        runs["label"] = _labels(runs, cols)
    group_cols = ["label"] + ([x] if x else [])
    if not hist.empty:
        hist = hist.merge(runs[["key", "label"]], on="key", how="left")
        if "seed" not in hist:
            hist["seed"] = 0

    # default target: 90% of the way from the mean initial metric to the best configuration's final metric
    if target is None and not hist.empty and metric in hist:
        first = hist.sort_values("evaluations").groupby("key")[metric].first()
        m0 = _mean(pd.to_numeric(first, errors="coerce"))
        gm = runs.groupby(group_cols)[fm].apply(lambda s: _mean(pd.to_numeric(s, errors="coerce")))
        gm = gm[np.isfinite(gm)]
        if len(gm) and math.isfinite(m0):
            best = float(gm.max() if higher else gm.min())
            target = m0 + 0.9 * (best - m0)
    xname = x.split(".")[-1] if x else ""

    def with_x(df):  # configuration label, plus the x level when one is swept
        if not x:
            return df["label"].astype(str)
        return df["label"].astype(str) + " | " + xname + "=" + pd.to_numeric(df[x], errors="coerce").map("{:g}".format)

    ttt = (time_to_target(hist.assign(_g=with_x(hist)),
                          target, metric, "_g", higher_is_better=higher)
           if target is not None and not hist.empty and metric in hist else pd.DataFrame())

    # summary table
    rows = []
    for gkey, g in runs.groupby(group_cols, sort=True, dropna=False):
        gkey = gkey if isinstance(gkey, tuple) else (gkey,)
        row = dict(zip(group_cols, gkey))
        vals = pd.to_numeric(g[fm], errors="coerce").to_numpy(dtype=float)
        row["runs"] = len(g)
        row["status"] = ", ".join(f"{k} {v}" for k, v in sorted(g["status"].value_counts().items()))
        row[f"final_{metric}"] = _mean(vals)
        row[f"final_{metric}_ci95"] = _ci(vals)
        if not hist.empty and metric in hist:
            hh = hist[hist["key"].isin(g["key"])]
            best = [_best(pd.to_numeric(h[metric], errors="coerce").to_numpy(float), higher)
                    for _, h in hh.groupby("key")]
            row[f"best_{metric}"] = _mean(best)
        for col, name, scale in [("final.evaluations", "evaluations", 1), ("final.energy_pj", "energy_uj", 1e-6),
                                 ("final.wall_time", "wall_s", 1)]:
            if col in g:
                v = pd.to_numeric(g[col], errors="coerce")
                if name == "energy_uj":      # off-substrate training (bptt) has no modelled energy: NaN, not 0
                    v = v.where(_trains_on_substrate(g))
                row[name] = _mean(v) * scale
        if not ttt.empty:
            gname = str(gkey[0]) + (f" | {xname}={float(gkey[1]):g}" if x else "")
            t = ttt[ttt["_g"] == gname]["evaluations"].to_numpy(dtype=float)
            row["evals_to_target"] = _mean(t)
            row["reached_target"] = f"{int(np.isfinite(t).sum())}/{len(t)}"
        rows.append(row)
    summary = pd.DataFrame(rows)

    _write_table(runs, out / "runs", formats, files, notes)
    if not hist.empty:
        _write_table(hist, out / "histories", formats, files, notes)
    summary.to_csv(out / "summary.csv", index=False)
    files["summary.csv"] = out / "summary.csv"

    # plots (all-NaN columns of diverged runs are expected: no warnings about them)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _plots(out, runs, hist, x, xname, metric, fm, higher, target, ttt, with_x, files, notes)

    rep = Report(out, runs, hist, summary, files, notes, metric, x, target)
    (out / "summary.md").write_text(_markdown(rep, d, manifest))
    files["summary.md"] = out / "summary.md"
    if verbose:
        print(f"report of {len(runs)} runs ({', '.join(f'{k} {v}' for k, v in runs['status'].value_counts().items())})"
              f" → {out}")
        for n in sorted(files):
            print(f"  {n}")
        for n in notes:
            print(f"  note: {n}")
    return rep


def _plots(out, runs, hist, x, xname, metric, fm, higher, target, ttt, with_x, files, notes):
    import matplotlib.pyplot as plt

    from .plotting import accuracy_vs_energy, accuracy_vs_noise, evaluations_to_target, learning_curves

    ok_hist = hist[hist["status"] != "failed"] if not hist.empty else hist
    if not ok_hist.empty and metric in ok_hist:
        panels = [None]
        if x:
            levels = sorted(pd.to_numeric(ok_hist[x], errors="coerce").dropna().unique())
            panels = [levels[i] for i in sorted(set(np.linspace(0, len(levels) - 1, min(len(levels), 6)).astype(int)))]
        fig, axs = plt.subplots(1, len(panels), figsize=(4.5 * len(panels) + 1, 4), squeeze=False, sharey=True)
        for ax, level in zip(axs[0], panels):
            g = ok_hist if level is None else ok_hist[pd.to_numeric(ok_hist[x], errors="coerce") == level]
            learning_curves(g, metric=metric, by="label", ax=ax,
                            title=None if level is None else f"{xname} = {level:g}")
            if metric == "test_acc":
                ax.set_ylim(-0.02, 1.02)  # the CI band of few seeds may reach past [0, 1]
        _save(fig, out / "learning_curves.png", files, "learning_curves.png")
    else:
        notes.append("learning_curves.png not drawn: no history rows")

    if x:
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        xs = pd.to_numeric(runs[x], errors="coerce")
        span = xs[xs > 0]
        logx = bool(len(span) and span.max() / span.min() >= 100)
        accuracy_vs_noise(runs, x=x, metric=fm, by="label", ax=ax, logx=logx,
                          bounds=(0.0, 1.0) if metric == "test_acc" else None,
                          title=f"final {metric.replace('_', ' ')} vs {xname}\n(mean ± 95% CI over seeds)")
        name = f"{metric}_vs_{x.replace('.', '_')}.png"
        _save(fig, out / name, files, name)
    else:
        notes.append("no metric-vs-x plot: no numeric parameter (other than seed) was swept")

    energy = pd.to_numeric(runs.get("final.energy_pj", pd.Series(dtype=float)), errors="coerce")
    if energy.notna().any() and (energy > 0).any():
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        accuracy_vs_energy(runs, metric=fm, by="label", point=x, ax=ax, higher_is_better=higher,
                           title=f"final {metric.replace('_', ' ')} vs energy (configuration means)")
        _save(fig, out / "pareto.png", files, "pareto.png")
    else:
        notes.append("pareto.png not drawn: the substrates counted no energy")

    if not ttt.empty:
        fig, ax = plt.subplots(figsize=(max(6.0, 0.5 * ttt["_g"].nunique() + 2), 4.2))
        evaluations_to_target(hist.assign(_g=with_x(hist)),
                              target, metric=metric, by="_g", higher_is_better=higher, ax=ax,
                              title=f"evaluations to {metric.replace('_', ' ')} "
                                    f"{'≥' if higher else '≤'} {target:.4g}")
        _save(fig, out / "evals_to_target.png", files, "evals_to_target.png")


def _markdown(rep: Report, d: Path, manifest) -> str:
    runs, s = rep.runs, rep.summary
    lines = [f"# Report: {(manifest or {}).get('name') or d.name}", ""]
    if manifest and manifest.get("description"):
        lines += [manifest["description"], ""]
    planned = len((manifest or {}).get("runs") or [])
    counts = ", ".join(f"{k} {v}" for k, v in sorted(runs["status"].value_counts().items()))
    lines.append(f"- runs recorded: {len(runs)}" + (f" of {planned} planned" if planned else "") + f" ({counts})")
    if manifest and manifest.get("source"):
        lines.append(f"- spec: `{manifest['source']}`")
    lines.append(f"- metric: `{rep.metric}`" + (f"; swept x: `{rep.x}`" if rep.x else "")
                 + (f"; target for evaluations-to-target: {rep.target:.4g}" if rep.target is not None else ""))
    versions = sorted(str(v) for v in runs["version"].dropna().unique()) if "version" in runs else []
    backends = sorted(str(v) for v in runs["backend"].dropna().unique()) if "backend" in runs else []
    lines += [f"- neurozo version: {', '.join(versions) or '?'}; backend: {', '.join(backends) or '?'}", ""]
    bad = runs[runs["status"].isin(["failed", "diverged"])]
    if len(bad):
        lines += ["## Failed and diverged runs", "", "| configuration | seed | status | message |", "|---|---|---|---|"]
        for _, r in bad.head(50).iterrows():
            msg = str(r.get("message") or "").replace("|", "\\|").replace("\n", " ")[:160]
            lines.append(f"| {r['label']} | {r.get('seed', '')} | {r['status']} | {msg} |")
        if len(bad) > 50:
            lines.append(f"| ... {len(bad) - 50} more | | | |")
        lines.append("")
    lines += ["## Summary (mean over seeds, ± 95% CI)", ""]
    cols = [c for c in s.columns if not c.endswith("_ci95")]
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "---|" * len(cols))
    for _, r in s.iterrows():
        cells = []
        for c in cols:
            v = r[c]
            cell = _fmt(v)
            ci = r.get(c + "_ci95")
            if ci is not None and isinstance(ci, float) and math.isfinite(ci):
                cell += f" ± {_fmt(ci, 2)}"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    pngs = [n for n in rep.files if n.endswith(".png")]
    if pngs:
        lines += ["## Plots", ""]
        lines += [f"![{n}]({n})" for n in sorted(pngs)]
        lines.append("")
    tables = [n for n in rep.files if not n.endswith((".png", ".md"))]
    lines += ["## Files", ""] + [f"- `{n}`" for n in sorted(tables)]
    if rep.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in rep.notes]
    return "\n".join(lines) + "\n"

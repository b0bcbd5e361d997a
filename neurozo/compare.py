"""``neurozo compare``: every learner of a preset on every substrate, one table and plots.

A preset names tasks, substrates, learners (names or ``{"name": ..., **params}``
specs), a budget of mini-batch evaluations and seeds. Each (task, substrate,
learner, seed) is one ``neurozo.run`` whose record goes to ``OUT/runs`` under
its config hash; runs whose key exists are skipped, so an interrupted compare
resumes. A run that raises is recorded as ``failed`` with its error and the
others go on.

Outputs in OUT: ``table.csv``, ``table.md`` (final and best test accuracy,
mean ± 95% CI over seeds, evaluations, energy, wall time, statuses) and
``learning_curves.png`` (test accuracy vs evaluations per learner, one panel
per task × substrate).
"""

from __future__ import annotations

import copy
import math
import traceback
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import pandas as pd

from . import __version__
from .config import component_spec
from .run import build, run
from .store import ResultStore

__all__ = ["PRESETS", "compare", "summarize", "plan"]

#: every registered learner with the settings it learns with on digits; "label" names a
#: variant in the table; "on" runs a learner on those substrates only (added to the
#: preset's substrate list if missing).
_ALL_LEARNERS: List[Dict[str, Any]] = [
    {"name": "openes"},
    {"name": "spsa"},
    {"name": "mezo"},
    {"name": "eggroll"},
    {"name": "ga"},
    {"name": "cbo"},
    {"name": "weight-perturbation"},
    {"name": "node-perturbation"},
    # learns from the device's own read noise: only on substrates that have it
    {"name": "intrinsic-np", "on": ["pcm"]},
    # tuned on digits/ideal at 20k evaluations (docs/learner_comparison.md)
    {"name": "polystep", "polytope": "simplex", "eps": 0.3, "particles_per_step": 8, "rank": 8},
    {"name": "ep"},        # trains its own layered energy network (default_model), sized to the task
    {"name": "bptt"},      # the surrogate-gradient / exact-gradient ceiling (baseline)
]

PRESETS: Dict[str, Dict[str, Any]] = {
    # the quick default: every learner once on digits; under 3 minutes on a 2-core laptop
    "quick": {
        "tasks": ["digits"],
        "substrates": ["ideal"],
        "learners": _ALL_LEARNERS,
        "budget": 5_000,
        "seeds": [0],
        "batch_size": 128,
        "logs": 10,
    },
    # the long version: both data sets, the four substrate families, 3 seeds
    "full": {
        "tasks": ["digits", "mnist1d"],
        "substrates": ["ideal", "int8", "lif", "pcm"],
        "learners": _ALL_LEARNERS + [
            # the hard-LIF setting of experiments/spiking_digits.py
            {"name": "openes", "lr": 0.005, "label": "openes[lr=0.005]", "on": ["lif"]},
            {"name": "node-perturbation", "variant": "activity", "label": "node-perturbation[activity]"},
        ],
        "budget": 20_000,
        "seeds": [0, 1, 2],
        "batch_size": 128,
        "logs": 25,
    },
}

_SETTINGS = ("tasks", "substrates", "learners", "budget", "seeds", "batch_size", "logs", "backend")


def plan(preset: str | Dict[str, Any] = "quick", **overrides) -> List[Dict[str, Any]]:
    """The list of run configs of a preset (validated, nothing run)."""
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"preset={preset!r} is unknown; allowed: {sorted(PRESETS)}")
        p = copy.deepcopy(PRESETS[preset])
    else:
        p = copy.deepcopy(dict(preset))
    for k, v in overrides.items():
        if v is None:
            continue
        if k not in _SETTINGS:
            raise ValueError(f"{k}={v!r} is invalid: not a compare setting; allowed: {list(_SETTINGS)}")
        p[k] = v
    configs = []
    substrates = list(p["substrates"])
    names = [component_spec("substrate", x)["name"] for x in substrates]
    for learner in p["learners"]:
        for extra in (learner.get("on") or []) if isinstance(learner, dict) else []:
            if extra not in names:
                substrates.append(extra)
                names.append(extra)
    for task in p["tasks"]:
        for sub in substrates:
            sub_name = component_spec("substrate", sub)["name"]
            for learner in p["learners"]:
                spec = dict(component_spec("learner", learner))
                label = spec.pop("label", spec["name"])
                on = spec.pop("on", None)
                if (on is not None and sub_name not in on) or (on is None and sub not in p["substrates"]):
                    continue
                for seed in p["seeds"]:
                    cfg = {"task": component_spec("task", task), "substrate": component_spec("substrate", sub),
                           "learner": spec, "budget": p["budget"], "seed": seed,
                           "batch_size": p["batch_size"], "backend": p.get("backend", "cpu"),
                           "eval_every": max(1, p["budget"] // p.get("logs", 25))}
                    b = build(**cfg)  # validates before anything runs
                    cfg["model"] = b.config["model"]
                    cfg["_key"] = b.key
                    cfg["_label"] = label
                    configs.append(cfg)
    return configs


def compare(preset: str | Dict[str, Any] = "quick", out: str | Path = "compare-out", progress: Optional[bool] = None,
            verbose: bool = True, **overrides) -> pd.DataFrame:
    """Run (or resume) a preset; write table.csv, table.md and learning_curves.png to ``out``."""
    configs = plan(preset, **overrides)
    out = Path(out)
    store = ResultStore(out / "runs")
    for i, cfg in enumerate(configs):
        key, name = cfg.pop("_key"), cfg.pop("_label")
        label = f"[{i + 1}/{len(configs)}] {cfg['task']['name']} × {cfg['substrate']['name']} × " \
                f"{name} seed {cfg['seed']}"
        if store.exists(key):
            if verbose:
                print(f"{label}: done before, skipped")
            continue
        try:
            with warnings.catch_warnings():  # e.g. EP's non-converged relaxations: counted in the record
                warnings.simplefilter("ignore", RuntimeWarning)
                res = run(**cfg, progress=progress)
            rec = res.to_record()
            rec["label"] = name
            store.write(rec)
            msg = f"{res.status}, test acc {res.final.get('test_acc', float('nan')):.4f}, " \
                  f"{res.final['wall_time']:.1f} s"
        except Exception as e:  # a failed run is recorded, the compare goes on
            store.write({"key": key, "label": name, "config": dict(cfg), "status": "failed",
                         "message": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(),
                         "history": [], "final": {}, "version": __version__, "backend": cfg.get("backend", "cpu")})
            msg = f"failed: {type(e).__name__}: {e}"
        if verbose:
            print(f"{label}: {msg}", flush=True)
    table = summarize(store)
    table.to_csv(out / "table.csv", index=False)
    (out / "table.md").write_text(to_markdown(table))
    plot_curves(store, out / "learning_curves.png")
    if verbose:
        print(f"wrote {out / 'table.csv'}, {out / 'table.md'}, {out / 'learning_curves.png'}")
    return table


def _ci(v: np.ndarray) -> float:
    from .plotting.curves import mean_ci

    v = v[np.isfinite(v)]
    if len(v) < 2:
        return float("nan")
    return float(mean_ci(v[:, None])[1][0])


def summarize(store: ResultStore) -> pd.DataFrame:
    """One row per (task, substrate, learner): accuracy mean ± 95% CI over seeds, costs, statuses."""
    from . import learners as _learners

    groups: Dict[tuple, List[dict]] = {}
    for r in store.records():
        c = r["config"]
        label = r.get("label") or c["learner"]["name"]
        groups.setdefault((c["task"]["name"], c["substrate"]["name"], label, c["learner"]["name"]), []).append(r)
    rows = []
    for (task, sub, learner, learner_name), recs in sorted(groups.items()):
        final = np.array([r["final"].get("test_acc", np.nan) if r["final"] else np.nan for r in recs], float)
        best = np.array([max((h.get("test_acc") or np.nan) for h in r["history"]) if r["history"] else np.nan
                         for r in recs], float)
        try:
            category = getattr(_learners.registry.factory(learner_name), "category", "")
        except ValueError:
            category = ""
        on_device = _learners.trains_on_substrate(learner_name)
        statuses = pd.Series([r["status"] for r in recs]).value_counts().to_dict()
        fin = [r["final"] for r in recs if r["final"]]
        rows.append({
            "task": task, "substrate": sub, "learner": learner, "category": category,
            "trains_on_substrate": on_device, "seeds": len(recs),
            "final_acc": np.nanmean(final) if np.isfinite(final).any() else np.nan, "final_acc_ci95": _ci(final),
            "best_acc": np.nanmean(best) if np.isfinite(best).any() else np.nan,
            "evaluations": np.mean([f.get("evaluations", np.nan) for f in fin]) if fin else np.nan,
            # a learner that trains off the substrate (bptt) has no modelled training energy: NaN, not 0
            "energy_uj": np.mean([f.get("energy_pj", np.nan) for f in fin]) / 1e6 if fin and on_device else np.nan,
            "wall_s": np.mean([f.get("wall_time", np.nan) for f in fin]) if fin else np.nan,
            "status": ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())),
        })
    return pd.DataFrame(rows)


def _fmt(v, pct=False, digits=1):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{100 * v:.{digits}f}" if pct else f"{v:,.{digits}f}"


def to_markdown(table: pd.DataFrame) -> str:
    lines = ["| task | substrate | learner | seeds | final acc % (±95% CI) | best acc % | evaluations | "
             "energy µJ | wall s | status |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        ci = f" ± {_fmt(r['final_acc_ci95'], True)}" if math.isfinite(r["final_acc_ci95"]) else ""
        name = r["learner"] + (" (baseline)" if r["category"] == "baseline" else "")
        lines.append(f"| {r['task']} | {r['substrate']} | {name} | {r['seeds']} | {_fmt(r['final_acc'], True)}{ci} | "
                     f"{_fmt(r['best_acc'], True)} | {_fmt(r['evaluations'], digits=0)} | "
                     f"{_fmt(r['energy_uj'])} | {_fmt(r['wall_s'])} | {r['status']} |")
    off = table[~table["trains_on_substrate"].astype(bool)] if "trains_on_substrate" in table else table[:0]
    if len(off):
        names = ", ".join(sorted(set(off["learner"])))
        lines += ["", f"Energy: training only, from each substrate's pJ table. {names} trains off the substrate, "
                      "so its training energy is not modelled (–); it is tested on the "
                      "substrate like every learner."]
    return "\n".join(lines) + "\n"


def plot_curves(store: ResultStore, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from .plotting.curves import learning_curves

    h = store.histories()
    if h.empty:
        return
    h = h[h["status"] != "failed"]
    panels = sorted(h.groupby(["task.name", "substrate.name"]).groups)
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    for ax, (task, sub) in zip(axes[0], panels):
        g = h[(h["task.name"] == task) & (h["substrate.name"] == sub)].copy()
        learning_curves(g, metric="test_acc", by="label", ax=ax, title=f"{task} on {sub}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

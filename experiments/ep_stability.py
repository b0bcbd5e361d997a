"""Linear stability and state offset of EP networks along training, from stored EP-ablation histories
(nothing is run).

Reads the ``contraction`` and ``offset_gain`` columns that the EP learner logs with ``spectrum_every``
(``neurozo.learners.ep``: per example, at its free state on the device's weights, ρ = max|1 + dt·λ(J)| and
‖J⁻¹‖₂, J = W_rec·diag(φ') − I; the batch's median and max) and compares networks paired by seed:

* per run, the mean over the rows of the second half of training (step ≥ ``--from-step``) of each column,
  and the offset a residual-based stop may leave, ``offset_gain × noise_floor_free`` (state units RMS: the
  floor is the stop's residual per unit, ‖F‖/√N);
* per pair ``A:B`` (``--paired``), the per-seed ratio A/B of each figure, its mean with a 95 % bootstrap
  interval over seeds (whole seeds resampled), and the number of seeds where A > B;
* ``--same A:B`` checks that run A's history equals run B's in every column B has (wall time aside), seed by
  seed — a diagnostic that takes no random draw leaves the rest of the history as it was;
* a plot of the medians (solid) and maxima (dashed) over training, mean over seeds with 95 % bands.

Runs that logged the state offset (``offset_every``: ``state_offset``, ``state_offset_mean``,
``state_offset_max`` — the batch's median, mean and max of ‖u_stop − ū‖/√N, where the free relaxation
stopped against where the device settles — and ``state_spread``, the batch median of the read noise's scatter
of a settled state; ``EnergyNet.settle_offset``) get, per run, the row means of

    offset_ratio = state_offset / state_spread          (≈ 1 for a state that has settled)
    excess_offset = state_offset_mean / state_spread    (the batch mean: an early stop's cost is in its tail)
    offset_ratio_max = state_offset_max / state_spread

in a table of their own, in the pairs, and in a panel of the plot (a row whose spread is 0 — a noiseless
substrate, where the offset is the distance to the fixed point itself — has no ratio). A run may have logged
either diagnostic or both.

    python experiments/ep_stability.py docs/ep_homeostasis_pcm_rnes_spec_s8_history.csv.gz \\
        --variants pcm_sym_rnes_spec pcm_untied_rnes_spec --paired pcm_sym_rnes_spec:pcm_untied_rnes_spec \\
        --same pcm_sym_rnes_spec:pcm_sym_rnes pcm_untied_rnes_spec:pcm_untied_rnes --out docs/ep_pcm_stability
    python experiments/ep_stability.py docs/ep_homeostasis_pcm_off_s8_history.csv.gz \\
        --variants pcm_sym_rnes_off pcm_untied_rnes_off --paired pcm_sym_rnes_off:pcm_untied_rnes_off \\
        --same pcm_sym_rnes_off:pcm_sym_rnes --out docs/ep_pcm_offset

Writes ``PREFIX.md`` (the tables) and ``PREFIX.png``.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

import pandas as pd  # noqa: E402

COLUMNS = ("contraction", "offset_gain", "contraction_max", "offset_gain_max")
#: the state-offset diagnostic's columns (``offset_every``) and the ratios formed from them
OFFSET_COLUMNS = ("state_offset", "state_offset_mean", "state_offset_max", "state_spread")
OFFSET_RATIOS = {"offset_ratio": "state_offset", "excess_offset": "state_offset_mean",
                 "offset_ratio_max": "state_offset_max"}
#: columns that differ between two runs of the same history (not part of what a run computes)
IGNORED = ("wall_time", "variant", "label", "key")


def _logged(h: pd.DataFrame, columns) -> bool:
    return all(c in h and h[c].notna().any() for c in columns)


def _offset_ratios(h: pd.DataFrame) -> pd.DataFrame:
    """``h`` with OFFSET_RATIOS added (NaN where the spread is not positive)."""
    spread = h["state_spread"].where(h["state_spread"] > 0)
    return h.assign(**{r: h[c] / spread for r, c in OFFSET_RATIOS.items()})


def per_run(hist: pd.DataFrame, task: str, variant: str, from_step: int) -> pd.DataFrame:
    """Per seed (index) the mean over rows with step ≥ ``from_step`` of COLUMNS and of the stop's possible
    offset ``offset_gain × noise_floor_free`` where the run logged its spectrum, and of OFFSET_RATIOS where it
    logged the state offset (NaN rows — steps without the diagnostic — left out of each column's mean)."""
    h = hist[(hist["task"] == task) & (hist["variant"] == variant)]
    if h.empty:
        raise ValueError(f"variants: the history has no run of task {task!r} variant {variant!r}; it has "
                         f"{sorted(set(hist.loc[hist['task'] == task, 'variant']))}")
    spectrum, offset = _logged(h, COLUMNS), _logged(h, OFFSET_COLUMNS)
    if not (spectrum or offset):
        raise ValueError(f"variants: {variant!r} logged neither {list(COLUMNS)} nor {list(OFFSET_COLUMNS)} "
                         "(run it with spectrum_every ≥ 1 or offset_every ≥ 1)")
    h = h[h["step"] >= from_step]
    cols = []
    if spectrum:
        cols += COLUMNS
        if "noise_floor_free" in h:
            h = h.assign(stop_offset=h["offset_gain"] * h["noise_floor_free"])
            cols.append("stop_offset")
    if offset:
        h = _offset_ratios(h)
        cols += OFFSET_RATIOS
    return h.groupby("seed")[cols].mean()


def paired_ratio(a: pd.Series, b: pd.Series, boot: int = 20000, seed: int = 0) -> dict:
    """Mean over the seeds both have of a/b, with a 95 % bootstrap interval (seeds resampled), and the
    number of seeds where a > b."""
    seeds = sorted(set(a.dropna().index) & set(b.dropna().index))
    if len(seeds) < 2:
        raise ValueError(f"paired: {len(seeds)} seed(s) in common; need ≥ 2 for an interval")
    x, y = a.loc[seeds].to_numpy(), b.loc[seeds].to_numpy()
    r = x / y
    idx = np.random.default_rng(seed).integers(0, len(seeds), size=(boot, len(seeds)))
    lo, hi = np.percentile(r[idx].mean(1), [2.5, 97.5])
    return {"n": len(seeds), "ratio": float(r.mean()), "lo": float(lo), "hi": float(hi),
            "a_larger": int(np.sum(x > y)), "a": float(x.mean()), "b": float(y.mean())}


def same_history(hist: pd.DataFrame, task: str, a: str, b: str) -> dict:
    """Seeds where run ``a``'s history equals run ``b``'s in every column ``b`` logged (IGNORED aside)."""
    ha = hist[(hist["task"] == task) & (hist["variant"] == a)]
    hb = hist[(hist["task"] == task) & (hist["variant"] == b)]
    cols = [c for c in hb.columns if c not in IGNORED and hb[c].notna().any()]
    seeds = sorted(set(ha["seed"]) & set(hb["seed"]))
    if not seeds:
        raise ValueError(f"same: no seed has runs of both {a!r} and {b!r}")
    equal = []
    for s in seeds:
        xa = ha[ha["seed"] == s].sort_values("evaluations")[cols].reset_index(drop=True)
        xb = hb[hb["seed"] == s].sort_values("evaluations")[cols].reset_index(drop=True)
        if xa.shape == xb.shape and xa.equals(xb):
            equal.append(s)
    return {"n": len(seeds), "equal": equal, "columns": len(cols)}


def parse_pair(text: str, known) -> tuple:
    a, sep, b = text.partition(":")
    if not sep or a not in known or b not in known:
        raise ValueError(f"pair {text!r}: give A:B with both among {sorted(known)}")
    return a, b


def plot(hist: pd.DataFrame, task: str, variants, out: str, labels=None):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = hist[(hist["task"] == task) & hist["variant"].isin(list(variants))]
    # one panel per diagnostic some variant logged: (columns drawn solid and dashed, log scale, line at 1, title)
    panels = []
    if _logged(rows, COLUMNS):
        panels += [(("contraction", "contraction_max"), False, True,
                    "contraction per step ρ = max|1 + dt·λ(J)|\n(≥ 1: not stable there; mean over seeds)"),
                   (("offset_gain", "offset_gain_max"), True, False,
                    "offset gain ‖J⁻¹‖, state offset per unit residual\n(geometric mean over seeds)")]
    if _logged(rows, OFFSET_COLUMNS):
        rows = _offset_ratios(rows)
        panels.append((("offset_ratio", "excess_offset"), False, True,
                       "state offset / read-noise spread of a settled state\n(1: settled; mean over seeds)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), squeeze=False)
    axes = axes[0]
    for i, v in enumerate(variants):
        h = rows[rows["variant"] == v]
        color = f"C{i}"
        for ax, (cols, log, _, _) in zip(axes, panels):
            for c, ls in zip(cols, ("-", "--")):
                if c not in h or h[c].isna().all():
                    continue                                  # this variant did not log this diagnostic
                x = h.dropna(subset=[c])
                vals = np.log10(x[c].clip(lower=1e-300)) if log else x[c]    # the gain: geometric mean over seeds
                g = vals.groupby(x["step"])
                m, se, n = g.mean(), g.std(), g.count()
                half = (1.96 * se / np.sqrt(n.clip(lower=1))).fillna(0.0)
                lo, hi = m - half, m + half
                if log:
                    m, lo, hi = 10 ** m, 10 ** lo, 10 ** hi
                ax.plot(m.index, m.values, ls, color=color,
                        label=(labels or {}).get(v, v) + (" (batch median)" if ls == "-" else
                                                          " (batch max)" if c.endswith("_max") else " (batch mean)"))
                ax.fill_between(m.index, lo.values, hi.values, color=color, alpha=0.15, lw=0)
    for ax, (_, log, one, title) in zip(axes, panels):
        if one:
            ax.axhline(1.0, color="k", lw=0.6, ls=":")
        ax.set_title(title, fontsize=9)
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("training step")
    handles, names = [], []
    for ax in axes:                                          # every variant's lines, each label once
        for hd, nm in zip(*ax.get_legend_handles_labels()):
            if nm not in names:
                handles.append(hd)
                names.append(nm)
    fig.tight_layout()
    fig.legend(handles, names, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)


def markdown(runs: dict, pairs: dict, same: dict, cmd: str, from_step: int) -> str:
    lines = [f"`{cmd}`", "",
             f"Per run: mean over the rows with step ≥ {from_step} of the batch's median (max) at each row; "
             "mean over seeds ± half a 95 % Student-t interval."]
    from neurozo.plotting.curves import mean_ci

    def ci(x):
        x = x.dropna()
        m, h = mean_ci(x.to_numpy())
        return f"{m:.4g} ± {h if len(x) > 1 else np.nan:.2g}"      # no interval from one seed

    spectrum = {v: r for v, r in runs.items() if "contraction" in r}
    if spectrum:
        lines += ["", "| variant | n | contraction ρ (median) | ρ (max) | offset gain (median) | offset gain (max) | "
                      "offset gain × stop floor |", "|---|---|---|---|---|---|---|"]
    for v, r in spectrum.items():
        off = ci(r["stop_offset"]) if "stop_offset" in r else "—"
        lines.append(f"| {v} | {len(r)} | {ci(r['contraction'])} | {ci(r['contraction_max'])} | "
                     f"{ci(r['offset_gain'])} | {ci(r['offset_gain_max'])} | {off} |")
    offset = {v: r for v, r in runs.items() if "offset_ratio" in r}
    if offset:
        lines += ["", "State offset over the read noise's spread of a settled state (per run the row mean; "
                      "per-seed range in brackets):", "",
                  "| variant | n | offset/spread (batch median) | excess offset (batch mean/spread) | "
                  "batch max/spread |", "|---|---|---|---|---|"]
    for v, r in offset.items():
        cells = [f"{ci(r[c])} [{r[c].min():.3g} … {r[c].max():.3g}]" for c in OFFSET_RATIOS]
        lines.append(f"| {v} | {len(r)} | " + " | ".join(cells) + " |")
    if pairs:
        lines += ["", "| A : B | figure | n | mean A | mean B | mean of A/B (95 % CI) | seeds A > B |",
                  "|---|---|---|---|---|---|---|"]
        for (a, b, col), p in pairs.items():
            lines.append(f"| {a} : {b} | {col} | {p['n']} | {p['a']:.4g} | {p['b']:.4g} | "
                         f"{p['ratio']:.3f} ({p['lo']:.3f} … {p['hi']:.3f}) | {p['a_larger']} of {p['n']} |")
    if same:
        lines += ["", "| A = B? | seeds | identical histories (columns of B) |", "|---|---|---|"]
        for (a, b), s in same.items():
            lines.append(f"| {a} = {b} | {s['n']} | {len(s['equal'])} of {s['n']} ({s['columns']} columns) |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("history", nargs="+", help="…_history.csv.gz files written by ep_homeostasis.py")
    ap.add_argument("--task", default="mnist1d")
    ap.add_argument("--variants", nargs="+", required=True,
                    help="variants that logged the spectrum (spectrum_every) or the state offset (offset_every)")
    ap.add_argument("--paired", nargs="*", default=[], metavar="A:B")
    ap.add_argument("--same", nargs="*", default=[], metavar="A:B")
    ap.add_argument("--from-step", type=int, default=750)
    ap.add_argument("--labels", nargs="*", default=[], metavar="VARIANT=LABEL",
                    help="legend labels")
    ap.add_argument("--out", required=True, help="prefix of the written PREFIX.md and PREFIX.png")
    a = ap.parse_args(argv)
    hist = pd.concat([pd.read_csv(p) for p in a.history], ignore_index=True)
    hist = hist.drop_duplicates(subset=["task", "variant", "seed", "evaluations"])
    have = set(hist["variant"])
    pairs = [parse_pair(p, a.variants) for p in a.paired]
    sames = [parse_pair(p, have) for p in a.same]
    runs = {v: per_run(hist, a.task, v, a.from_step) for v in a.variants}
    cols = ["offset_gain", "contraction", "stop_offset", "offset_ratio", "excess_offset"]
    pr = {(x, y, c): paired_ratio(runs[x][c], runs[y][c]) for x, y in pairs for c in cols
          if c in runs[x] and c in runs[y]}
    sm = {(x, y): same_history(hist, a.task, x, y) for x, y in sames}
    cmd = "python experiments/ep_stability.py " + " ".join(argv if argv is not None else sys.argv[1:])
    md = markdown(runs, pr, sm, cmd, a.from_step)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out + ".md", "w") as f:
        f.write(md + "\n")
    labels = dict(x.split("=", 1) for x in a.labels if "=" in x)
    plot(hist, a.task, a.variants, a.out + ".png", labels)
    print(md)


if __name__ == "__main__":
    main()

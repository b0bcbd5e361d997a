"""Recovery along training for several stored EP-ablation studies in one figure.

Each ``--curve NAME=HISTORY:TASK:VARIANT`` reads a history written by ``ep_homeostasis.py``
(``<out>_history.csv.gz``) and computes, at every logged step, the share R of the
symmetric − untied accuracy gap that the homeostasis ``VARIANT`` recovers (from its own untied
baseline), with a 95 % paired bootstrap over seeds, and the paired deficit symmetric − homeostasis
(``ep_homeostasis.recovery_over_training``: each seed's accuracy at a step is the mean of its last
three evaluations ending there, so the last point is the reported final recovery). Only the
seeds that have all three runs are used. ``--metric train_loss`` (or ``test_loss``) measures the
recovery of a loss instead, R = (L_untied − L_homeo)/(L_untied − L_sym), gap and deficit in nats.
Writes ``PREFIX.csv`` and ``PREFIX.png``::

    python experiments/ep_recovery_curves.py --out docs/ep_homeostasis_recovery_settings \\
        --curve "orthogonal, 62 seeds=docs/ep_homeostasis_long_mnist1d_b01_s62_history.csv.gz:mnist1d:homeo5orth" \\
        --curve "Gaussian, 28 seeds=docs/ep_homeostasis_long_mnist1d_b01_s28_history.csv.gz:mnist1d:homeo5s50"

``--between A B --project POP_HISTORY [POP_HISTORY ...]`` also projects the recovery at step B of the
seeds in the POP_HISTORY files (runs that end at step A, or longer runs of other seeds: each file's
values at A are its own windows; no seed may be in two files) from each curve's changes between A and
B (``ep_homeostasis.projected_recovery``: the difference estimator, and the regression estimator beside
it). ``--looks K`` (K looks at the growing data, fixed in advance) adds both estimators' Bonferroni
bounds over the K looks, the 2.5/K-th and (100 − 2.5/K)-th percentiles, and the verdict they give on
80 % (established, refuted or undecided)::

    python experiments/ep_recovery_curves.py --out /tmp/rc --between 4500 9000 \
        --project docs/ep_homeostasis_long_mnist1d_b01_s62_history.csv.gz \
        --curve "9000 steps=docs/ep_homeostasis_long2_mnist1d_b01_s9_history.csv.gz:mnist1d:homeo5orth"

Nothing is run: the figures come from the stored histories only.
"""

from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import ep_homeostasis as E  # noqa: E402


def parse_curve(spec: str):
    """``NAME=HISTORY:TASK:VARIANT`` → (name, history path, task, variant); ValueError if malformed.
    NAME may contain "=" (e.g. "λ = 5"): the split is at the last "=", so HISTORY may not."""
    name, eq, rest = spec.rpartition("=")
    parts = rest.rsplit(":", 2)
    if not eq or not name or len(parts) != 3 or not all(parts):
        raise ValueError(f"--curve {spec!r}: must be NAME=HISTORY:TASK:VARIANT")
    path, task, variant = parts
    if not variant.startswith("homeo"):
        raise ValueError(f"--curve {spec!r}: VARIANT={variant!r} must be a homeostasis variant (homeo…)")
    return name, path, task, variant


def curves_of(specs, boot: int = 4000, seed: int = 0, metric: str = "test_acc") -> dict:
    """{(name, variant label): recovery_over_training frame} for the parsed ``specs``."""
    if boot < 100:
        raise ValueError(f"--boot={boot}: needs at least 100 bootstrap resamples for a 95 % interval")
    out, cache = {}, {}
    for name, path, task, variant in specs:
        if path not in cache:
            cache[path] = pd.read_csv(path)
        hist = cache[path]
        have = set(hist.loc[hist["task"] == task, "variant"])
        need = {"sym", E.untied_base(variant), variant}
        if not need <= have:
            raise ValueError(f"--curve {name!r}: {path} lacks task {task!r} variant(s) {sorted(need - have)}; "
                             f"it has {sorted(have)}")
        label = E.VARIANTS[variant][0] if variant in E.VARIANTS else variant
        out[(name, label)] = E.recovery_over_training(hist, task, variant, boot=boot, seed=seed, metric=metric)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--curve", action="append", required=True, metavar="NAME=HISTORY:TASK:VARIANT",
                    help="one study; NAME may contain '=' (split at the last one), HISTORY may not")
    ap.add_argument("--out", required=True, help="output prefix (PREFIX.csv, PREFIX.png)")
    ap.add_argument("--boot", type=int, default=4000, help="bootstrap resamples per step")
    ap.add_argument("--metric", default="test_acc", choices=sorted(E.RECOVERY_METRICS),
                    help="what is recovered: test accuracy (default) or a loss (gap and deficit in nats)")
    ap.add_argument("--between", nargs=2, type=int, metavar=("STEP_A", "STEP_B"), default=None,
                    help="also print, per curve, how the gap and the deficit change from STEP_A to STEP_B in the "
                         "same runs (paired by seed; ep_homeostasis.change_between)")
    ap.add_argument("--project", metavar="POP_HISTORY", nargs="+", default=None,
                    help="with --between: project the recovery at STEP_B of the seeds in the POP_HISTORY files (runs "
                         "that end at STEP_A, or longer runs of other seeds; disjoint seeds) from each curve's "
                         "changes (ep_homeostasis.projected_recovery)")
    ap.add_argument("--looks", type=int, default=1,
                    help="with --project: the number of looks at the growing data the study fixed in advance (this "
                         "one included); also print the Bonferroni bounds over them and their verdict on 80 %%")
    a = ap.parse_args(argv)
    if a.looks < 1:
        ap.error(f"--looks {a.looks}: the number of looks must be ≥ 1")
    if a.looks > 1 and not a.project:
        ap.error(f"--looks {a.looks} needs --project")
    if a.project and not a.between:
        ap.error(f"--project {a.project!r} needs --between STEP_A STEP_B")
    try:
        specs = [parse_curve(c) for c in a.curve]
    except ValueError as e:
        ap.error(str(e))
    try:
        curves = curves_of(specs, a.boot, metric=a.metric)
        changes = changes_of(specs, *a.between, boot=a.boot, metric=a.metric) if a.between else {}
        projections = (projections_of(specs, a.project, *a.between, boot=a.boot, metric=a.metric, looks=a.looks)
                       if a.project else {})
    except ValueError as e:
        ap.error(str(e))
    if os.path.dirname(a.out):
        os.makedirs(os.path.dirname(a.out), exist_ok=True)
    table = pd.concat([c.assign(setting=n, label=lab) for (n, lab), c in curves.items()], ignore_index=True)
    table.to_csv(a.out + ".csv", index=False)
    E.plot_recovery(curves, a.out + ".png", metric=a.metric)
    _, unit, k = E.RECOVERY_METRICS[a.metric]
    d = 2 if unit == "pp" else 4
    for (n, lab), c in curves.items():
        last = c.iloc[-1]
        print(f"{n}: {a.metric}, step {int(last['step'])}, n = {int(last['n'])}: R = {100 * last['R']:.0f} % "
              f"({100 * last['R_lo']:.0f} … {100 * last['R_hi']:.0f}), gap {k * last['gap']:.{d}f} {unit}, "
              f"deficit {k * last['deficit']:.{d}f} {unit} ({k * last['deficit_lo']:.{d}f} … "
              f"{k * last['deficit_hi']:.{d}f})")

    for n, ch in changes.items():
        print(change_text(n, ch, *a.between, a.metric))
    for n, pr in projections.items():
        print(projection_text(n, pr, *a.between, a.metric, looks=a.looks))


def changes_of(specs, step_a: int, step_b: int, boot: int = 4000, seed: int = 0, metric: str = "test_acc") -> dict:
    """{name: ep_homeostasis.change_between(...)} for the parsed ``specs``."""
    return {name: E.change_between(pd.read_csv(path), task, variant, step_a, step_b, boot=boot, seed=seed,
                                   metric=metric) for name, path, task, variant in specs}


def projections_of(specs, pop_paths, step_a: int, step_b: int, boot: int = 4000, seed: int = 0,
                   metric: str = "test_acc", looks: int = 1) -> dict:
    """{name: ep_homeostasis.projected_recovery(population histories, curve history, ...)} for the paths
    in ``pop_paths``."""
    pop = [pd.read_csv(p) for p in pop_paths]
    return {name: E.projected_recovery(pop, pd.read_csv(path), task, variant, step_a, step_b, boot=boot, seed=seed,
                                       metric=metric, looks=looks) for name, path, task, variant in specs}


def projection_text(name: str, pr: dict, step_a: int, step_b: int, metric: str = "test_acc", looks: int = 1) -> str:
    """The projected recovery as one paragraph: the population's gap and deficit at STEP_A, the changes,
    the projection at STEP_B with its interval, the correlations that would warn of regression to
    the mean, and the regression estimator with its slopes; with ``looks`` > 1 also both estimators'
    Bonferroni bounds over the looks and their verdicts."""
    _, unit, k = E.RECOVERY_METRICS[metric]
    d = 2 if unit == "pp" else 4
    return (f"{name}: {metric} recovered by the {pr['n_pop']} seeds at step {step_a}: R = {100 * pr['R_a']:.0f} % "
            f"({100 * pr['R_lo_a']:.0f} … {100 * pr['R_hi_a']:.0f}), P(R ≥ 80 %) = {pr['p_goal_a']:.2f}; "
            f"projected to step {step_b} from the changes "
            f"of {pr['n_long']} seeds: gap {k * pr['G']:.{d}f} {pr['dG'] * k:+.{d}f} = {k * pr['gap']:.{d}f} {unit} "
            f"({k * pr['gap_lo']:.{d}f} … {k * pr['gap_hi']:.{d}f}), deficit {k * pr['D']:.{d}f} "
            f"{k * pr['dD']:+.{d}f} = {k * pr['deficit']:.{d}f} {unit} ({k * pr['deficit_lo']:.{d}f} … "
            f"{k * pr['deficit_hi']:.{d}f}); R = {100 * pr['R']:.0f} % ({100 * pr['R_lo']:.0f} … "
            f"{100 * pr['R_hi']:.0f}), P(R ≥ 80 %) = {pr['p_goal']:.2f}; correlation of a seed's value at step "
            f"{step_a} with its change: gap {pr['corr_gap']:+.2f}, deficit {pr['corr_deficit']:+.2f}; regression "
            f"estimator (slope of step {step_b} on step {step_a}: gap {pr['slope_gap']:.2f}, deficit "
            f"{pr['slope_deficit']:.2f}): gap {k * pr['reg_gap']:.{d}f} {unit}, deficit {k * pr['reg_deficit']:.{d}f} "
            f"{unit}, R = {100 * pr['reg_R']:.0f} % ({100 * pr['reg_R_lo']:.0f} … {100 * pr['reg_R_hi']:.0f}), "
            f"P(R ≥ 80 %) = {pr['reg_p_goal']:.2f}" + ("" if looks == 1 else
            f"; over {looks} looks (one-sided {2.5 / looks:.2g} % each side): difference estimator "
            f"{100 * pr['R_lo_looks']:.0f} … {100 * pr['R_hi_looks']:.0f} %, {pr['verdict']}; regression "
            f"estimator {100 * pr['reg_R_lo_looks']:.0f} … {100 * pr['reg_R_hi_looks']:.0f} %, {pr['reg_verdict']}"))


def change_text(name: str, ch: dict, step_a: int, step_b: int, metric: str = "test_acc") -> str:
    """Markdown lines: each quantity at both steps (mean over seeds) and its paired change. The three
    variants' rows are the metric itself (a loss as a loss); gap and deficit keep ``change_between``'s
    sign (> 0: the symmetric network is better)."""
    sign, unit, k = E.RECOVERY_METRICS[metric]
    d = 2 if unit == "pp" else 4
    f = ch["seeds"]
    lines = [f"{name}: {metric} from step {step_a} to step {step_b}, {ch['n']} seeds (paired by seed)", "",
             f"| | step {step_a} | step {step_b} | change (95 % CI) |", "|---|---|---|---|"]
    for q in ("sym", "untied", "homeo", "gap", "deficit"):
        c, m = ch[q], k * (sign if q in ("sym", "untied", "homeo") else 1.0)
        lo, hi = sorted((m * c.get("lo", np.nan), m * c.get("hi", np.nan)))
        ci = f" ({lo:+.{d}f} … {hi:+.{d}f})" if "lo" in c else ""
        lines.append(f"| {q} | {m * f[f'{q}_{step_a}'].mean():.{d}f} | {m * f[f'{q}_{step_b}'].mean():.{d}f} | "
                     f"{m * c.get('diff', np.nan):+.{d}f} {unit}{ci} |")
    for tag, st in (("R_a", step_a), ("R_b", step_b)):
        r = ch[tag]
        if "R" in r:
            lines.append(f"\nR at step {st}: {100 * r['R']:.0f} % ({100 * r['R_lo']:.0f} … {100 * r['R_hi']:.0f}), "
                         f"P(R ≥ 80 %) = {r['p_goal']:.2f}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

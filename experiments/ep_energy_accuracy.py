"""Energy against accuracy per EP variant, from stored EP-ablation histories (nothing is run).

Each run's energy is its history's last ``energy_pj`` (every device read, neuron update, write and
periphery operation of training, priced by the substrate's energy table, ``neurozo.substrates.costs``);
its accuracy is the mean test accuracy of its last three evaluations (``ep_homeostasis.per_seed_final``).
Variants are grouped into networks (``--groups``: a label and the variants that are the same network
under different relaxation rules, e.g. early stop at ``tol``, full relaxation, noise-aware early stop)
and drawn as one line per network, one marker per rule, with 95 % intervals (Student t, as the ablation's
tables) over the seeds common to a group's variants on both axes. Writes ``PREFIX.png`` and ``PREFIX.csv`` (per variant: n, mean energy in mJ
and accuracy in %, with their half-intervals)::

    python experiments/ep_energy_accuracy.py docs/ep_homeostasis_pcm_rnes_s8_history.csv.gz \\
        --groups "tied:pcm_sym_all,pcm_sym_rn,pcm_sym_rnes" "untied:pcm_untied_all,pcm_untied_rn,pcm_untied_rnes" \\
        --rules "early stop at tol" "full relaxation" "noise-aware stop" --out docs/ep_pcm_energy_accuracy
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

import pandas as pd  # noqa: E402

import ep_homeostasis as E  # noqa: E402


def parse_group(text: str):
    """``"label:v1,v2,..."`` → (label, [v1, v2, ...])."""
    if ":" not in text:
        raise ValueError(f"groups: {text!r} must be 'label:variant,variant,...'")
    label, vs = text.split(":", 1)
    variants = [v for v in vs.split(",") if v]
    if not label or not variants:
        raise ValueError(f"groups: {text!r} must be 'label:variant,variant,...' with a label and a variant")
    return label, variants


def _half(x: pd.Series) -> float:
    """Half-width of the 95 % interval of the mean (Student t, as the ablation's tables)."""
    from neurozo.plotting.curves import mean_ci

    return float(mean_ci(x.to_numpy())[1])


def energy_accuracy(hist: pd.DataFrame, task: str, groups) -> pd.DataFrame:
    """Per variant of each group, over the seeds every variant of the group ran: mean energy (mJ) and final
    test accuracy (%) with 95 % half-intervals over seeds."""
    rows = []
    for label, variants in groups:
        missing = [v for v in variants if not ((hist.task == task) & (hist.variant == v)).any()]
        if missing:
            raise ValueError(f"groups: variants {missing} of {label!r} have no {task} runs in the history")
        seeds = E.common_seeds(hist, task, variants)
        if not seeds:
            raise ValueError(f"groups: the variants of {label!r} share no seed")
        for i, v in enumerate(variants):
            g = hist[(hist.task == task) & (hist.variant == v) & hist.seed.isin(seeds)]
            en = g.groupby("seed").energy_pj.max() / 1e9
            acc = 100 * E.per_seed_final(hist, task, v).loc[seeds]
            rows.append({"group": label, "rule": i, "variant": v, "n": len(seeds),
                         "energy_mJ": float(en.mean()), "energy_ci": _half(en),
                         "acc": float(acc.mean()), "acc_ci": _half(acc)})
    return pd.DataFrame(rows)


def plot(table: pd.DataFrame, rules, out_path: str, title: str = ""):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    markers = "os^Dvx"
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for j, (label, g) in enumerate(table.groupby("group", sort=False)):
        color = f"C{j}"
        by_energy = g.sort_values("energy_mJ")
        ax.plot(by_energy.energy_mJ, by_energy.acc, "-", color=color, alpha=0.5)
        for _, r in g.iterrows():
            ax.errorbar(r.energy_mJ, r.acc, xerr=r.energy_ci, yerr=r.acc_ci, fmt=markers[int(r.rule) % len(markers)],
                        color=color, capsize=2, ms=6)
        ax.plot([], [], "-", color=color, label=f"{label} (n = {int(g.n.iloc[0])})")
    for i, name in enumerate(rules):
        ax.plot([], [], markers[i % len(markers)], color="0.3", ls="none", label=name)
    ax.set_xlabel("energy of the training run (mJ)")
    ax.set_ylabel("final test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out_path, dpi=120)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("history", nargs="+", help="history files written by ep_homeostasis.py (concatenated)")
    ap.add_argument("--task", default="mnist1d")
    ap.add_argument("--groups", nargs="+", required=True, help="'label:variant,variant,...' per network")
    ap.add_argument("--rules", nargs="+", default=None,
                    help="names of the relaxation rules, in the order of each group's variants")
    ap.add_argument("--title", default="")
    ap.add_argument("--out", required=True, help="output prefix (PREFIX.png, PREFIX.csv)")
    a = ap.parse_args(argv)
    groups = [parse_group(t) for t in a.groups]
    width = max(len(v) for _, v in groups)
    rules = a.rules or [f"rule {i + 1}" for i in range(width)]
    if len(rules) < width:
        ap.error(f"--rules names {len(rules)} rules but a group has {width} variants")
    hist = pd.concat([pd.read_csv(p) for p in a.history], ignore_index=True)
    hist = hist.drop_duplicates(subset=["task", "variant", "seed", "step"])
    table = energy_accuracy(hist, a.task, groups)
    table.to_csv(a.out + ".csv", index=False)
    plot(table, rules, a.out + ".png", a.title)
    with pd.option_context("display.width", 200):
        print(table.round(3).to_string(index=False))


if __name__ == "__main__":
    main()

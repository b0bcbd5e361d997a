"""Training loss, test loss and their difference over training, per variant, from a stored EP-ablation history.

Reads a history written by ``ep_homeostasis.py`` (``<out>_history.csv.gz``) and, for the chosen
task and variants, averages over the seeds that ran every variant, at each logged step:

* ``train_loss`` — cross-entropy of the free phase on the minibatches seen since the last
  evaluation (before each update): the fit to the training data;
* ``test_loss`` — cross-entropy on the whole test set;
* ``gen_gap`` = test_loss − train_loss — how much worse the network does on unseen data;
* ``symmetry`` ‖S‖/(‖S‖+‖A‖) of W_rec and ``a_over_s`` = ‖A‖/‖S‖ = (1 − symmetry)/symmetry
  (untied variants only; NaN for tied networks).

Each mean comes with a 95 % interval over seeds (mean ± 1.96 standard errors); ``d_<column>`` is
the paired difference to the first variant named (the reference; per seed, then averaged), with
its interval. Writes ``PREFIX.csv`` (one row per step and variant) and ``PREFIX.png`` (top row:
training loss, test loss, test − training; bottom row: the same minus the reference), and prints
the table at a few steps and each variant's final values minus the reference's, paired over seeds
(``paired_finals``). Nothing is run::

    python experiments/ep_loss_curves.py docs/ep_homeostasis_long_mnist1d_b01_l20_s30_history.csv.gz \\
        --variants sym homeo5orth homeo20orth --out docs/ep_homeostasis_long_mnist1d_b01_l20_s30_losses
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

COLUMNS = ("train_loss", "test_loss", "gen_gap", "symmetry", "a_over_s")


def loss_curves(hist: pd.DataFrame, task: str, variants) -> pd.DataFrame:
    """Per (variant, step): mean and 95 % half-width over the seeds that ran all ``variants``
    of ``task`` (columns ``<c>``, ``<c>_ci`` for c in COLUMNS, and ``n`` seeds), and the paired
    difference to ``variants[0]`` (``d_<c>``, ``d_<c>_ci``; 0 for the reference itself)."""
    variants = list(variants)
    if not variants:
        raise ValueError("--variants: name at least one variant")
    seeds = E.common_seeds(hist, task, variants)
    h = hist[(hist["task"] == task) & hist["variant"].isin(variants) & hist["seed"].isin(seeds)].copy()
    h["gen_gap"] = h["test_loss"] - h["train_loss"]
    if "symmetry" not in h:
        h["symmetry"] = np.nan
    h["a_over_s"] = (1.0 - h["symmetry"]) / h["symmetry"]
    cols = list(COLUMNS)
    ref = h.loc[h["variant"] == variants[0], ["seed", "step"] + cols]
    h = h.merge(ref, on=["seed", "step"], how="left", suffixes=("", "_ref"), validate="many_to_one")
    for c in COLUMNS:
        h["d_" + c] = h[c] - h[c + "_ref"]
    g = h.groupby(["variant", "step"])
    cols = cols + ["d_" + c for c in COLUMNS]
    mean, sem, n = g[cols].mean(), g[cols].sem(), g["seed"].nunique()
    out = mean.join((1.96 * sem).add_suffix("_ci")).assign(n=n).reset_index()
    out["label"] = [E.VARIANTS[v][0] if v in E.VARIANTS else v for v in out["variant"]]
    order = {v: i for i, v in enumerate(variants)}
    return out.sort_values(["variant", "step"], key=lambda s: s.map(order) if s.name == "variant" else s,
                           ignore_index=True)


FINAL_COLUMNS = ("test_acc", "train_loss", "test_loss", "gen_gap")


def paired_finals(hist: pd.DataFrame, task: str, variants, boot: int = 20000) -> pd.DataFrame:
    """Each variant after the first minus the first (the reference), paired over seeds: per seed the
    final value (``ep_homeostasis.per_seed_final``, mean of the last three evaluations) of each of
    FINAL_COLUMNS (gen_gap = final test loss − final training loss), then ``paired_difference``
    (95 % bootstrap, whole seeds resampled). One row per (variant, column)."""
    def final(v, col):
        return E.per_seed_final(hist, task, v, col=col)

    rows = [{"variant": v, "column": col, **E.paired_difference(final(v, col), final(variants[0], col), boot)}
            for v in variants[1:] for col in FINAL_COLUMNS]
    return pd.DataFrame(rows)


def plot_loss_curves(curves: pd.DataFrame, out_path: str, title: str = ""):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(14, 7.5), sharex=True)
    panels = (("train_loss", "training loss (nats)"), ("test_loss", "test loss (nats)"),
              ("gen_gap", "test − training loss (nats)"))
    groups = list(curves.groupby("variant", sort=False))
    ref_label = groups[0][1]["label"].iloc[0]
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (variant, c) in enumerate(groups):
        color = palette[i % len(palette)]
        for row, prefix in ((0, ""), (1, "d_")):
            if row == 1 and i == 0:
                continue
            for ax, (col, name) in zip(axes[row], panels):
                col = prefix + col
                ax.plot(c["step"], c[col], color=color, label=c["label"].iloc[0] if row == 0 else None)
                ax.fill_between(c["step"], c[col] - c[col + "_ci"], c[col] + c[col + "_ci"], color=color, alpha=0.2)
                ax.set_ylabel(name if row == 0 else name.replace(" (nats)", "") + ", minus reference")
                ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xlabel("step")
    n = int(curves["n"].min())
    axes[0][1].set_title(f"{title}mean over {n} seeds, 95 % interval".strip())
    axes[1][1].set_title(f"paired difference to the reference: {ref_label}", fontsize=9)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 2), fontsize=8)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(out_path, dpi=110)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("history", help="…_history.csv.gz written by ep_homeostasis.py")
    ap.add_argument("--task", default="mnist1d")
    ap.add_argument("--variants", nargs="+", default=["sym", "untied", "homeo5orth"])
    ap.add_argument("--out", required=True, help="output prefix (PREFIX.csv, PREFIX.png)")
    ap.add_argument("--steps", nargs="+", type=int, default=[300, 1500, 2250, 3000, 4500],
                    help="steps printed in the table (those logged)")
    a = ap.parse_args(argv)
    hist = pd.read_csv(a.history)
    try:
        curves = loss_curves(hist, a.task, a.variants)
    except ValueError as e:
        ap.error(str(e))
    if os.path.dirname(a.out):
        os.makedirs(os.path.dirname(a.out), exist_ok=True)
    curves.to_csv(a.out + ".csv", index=False)
    plot_loss_curves(curves, a.out + ".png", title=f"{a.task}: ")
    last = int(curves["step"].max())
    show = curves[curves["step"].isin(set(a.steps) | {last})]
    cols = ["label", "step", "n", "train_loss", "test_loss", "gen_gap", "d_train_loss", "d_test_loss",
            "d_gen_gap", "symmetry", "a_over_s"]
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.4f}".format):
        print(show[cols].to_string(index=False))
    best = curves.loc[curves.groupby("variant", sort=False)["test_loss"].idxmin(), ["label", "step", "test_loss"]]
    print("lowest mean test loss:\n" + best.to_string(index=False))
    with pd.option_context("display.width", 200, "display.float_format", "{:.4f}".format):
        print(f"final (mean of the last three evaluations), minus {a.variants[0]}, paired over seeds:\n"
              + paired_finals(hist, a.task, a.variants).to_string(index=False))


if __name__ == "__main__":
    main()

"""Final accuracy, losses and weight symmetry against the homeostasis weight λ, from a stored EP-ablation history.

Reads a history written by ``ep_homeostasis.py`` (``<out>_history.csv.gz``); each variant named
with ``--lam VARIANT=λ`` is one point of the curve (``untied=0`` is the network without
homeostasis), and ``--ref`` (default ``sym``, the symmetric network) is the level the curve is
compared with. Only the seeds that ran every named variant and the reference are used. Per
variant and column, the seed's final value is the mean of its last three evaluations
(``ep_homeostasis.per_seed_final``), and the table gives

* the mean with a 95 % Student-t interval over seeds (``neurozo.plotting.curves.mean_ci``);
* the paired difference to the reference, with a 95 % bootstrap interval (whole seeds resampled,
  ``ep_homeostasis.paired_difference``);

for the columns test accuracy, training loss, test loss, test − training loss (``gen_gap``) and,
for untied networks, the symmetry ‖S‖/(‖S‖+‖A‖) of W_rec. With a λ = 0 point it also gives the
recovery R = (acc(λ) − acc(0)) / (acc(ref) − acc(0)) of the accuracy gap, paired bootstrap
(``ep_homeostasis.recovery_bootstrap``). Writes ``PREFIX.csv`` and ``PREFIX.png`` (one panel per
column, λ on a symlog axis, the reference as a band). Nothing is run::

    python experiments/ep_lambda_curve.py docs/ep_homeostasis_long_mnist1d_b01_l2_s30_history.csv.gz \\
        --lam untied=0 homeo2orth=2 homeo5orth=5 homeo20orth=20 --out docs/ep_homeostasis_long_mnist1d_b01_lambda
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

COLUMNS = ("test_acc", "train_loss", "test_loss", "gen_gap", "symmetry")
NAMES = {"test_acc": "test accuracy", "train_loss": "training loss (nats)", "test_loss": "test loss (nats)",
         "gen_gap": "test − training loss (nats)", "symmetry": "symmetry ‖S‖/(‖S‖+‖A‖)"}


def parse_lam(items) -> dict:
    """``["untied=0", "homeo5orth=5"]`` → {"untied": 0.0, "homeo5orth": 5.0}; a malformed item or a
    negative λ is a ValueError naming it."""
    out = {}
    for it in items:
        name, sep, lam = it.partition("=")
        try:
            value = float(lam)
        except ValueError:
            value = None
        if not sep or not name or value is None or not np.isfinite(value) or value < 0:
            raise ValueError(f"--lam: {it!r} is not VARIANT=λ with a finite λ ≥ 0")
        if name in out:
            raise ValueError(f"--lam: variant {name!r} named twice")
        out[name] = value
    if not out:
        raise ValueError("--lam: name at least one VARIANT=λ")
    return out


def _finals(hist: pd.DataFrame, task: str, variant: str, seeds) -> dict:
    """Per-seed final value of each of COLUMNS (a NaN Series where the history lacks its columns)."""
    out = {}
    for c in COLUMNS:
        needs = ("test_loss", "train_loss") if c == "gen_gap" else (c,)
        out[c] = (E.per_seed_final(hist, task, variant, col=c).loc[seeds] if set(needs) <= set(hist)
                  else pd.Series(np.nan, index=seeds))
    return out


def lambda_curve(hist: pd.DataFrame, task: str, lam: dict, ref: str = "sym", boot: int = 20000) -> pd.DataFrame:
    """One row per variant of ``lam`` (sorted by λ) and one for ``ref`` (λ NaN): n seeds, and for
    each of COLUMNS ``<c>``, ``<c>_ci`` (mean, 95 % Student-t half-width over seeds) and ``d_<c>``,
    ``d_<c>_lo``, ``d_<c>_hi`` (paired difference to ``ref``, 95 % bootstrap interval); with a
    λ = 0 variant, ``R``, ``R_lo``, ``R_hi``, ``P_R80`` (recovery of the accuracy gap)."""
    from neurozo.plotting.curves import mean_ci

    order = sorted(lam, key=lam.get) + ([ref] if ref not in lam else [])     # by λ, the reference last
    seeds = E.common_seeds(hist, task, order)
    fin = {v: _finals(hist, task, v, seeds) for v in order}
    zero = [v for v, x in lam.items() if x == 0]
    rows = []
    for v in order:
        row = {"variant": v, "label": E.VARIANTS[v][0] if v in E.VARIANTS else v,
               "lam": lam.get(v, np.nan), "n": len(seeds)}
        for c in COLUMNS:
            x = fin[v][c].to_numpy(float)
            row[c], row[c + "_ci"] = map(float, mean_ci(x)) if np.isfinite(x).all() else (np.nan, np.nan)
            if v != ref and np.isfinite(x).all() and np.isfinite(fin[ref][c].to_numpy(float)).all():
                d = E.paired_difference(fin[v][c], fin[ref][c], boot)
                row["d_" + c], row["d_" + c + "_lo"], row["d_" + c + "_hi"] = d["diff"], d["lo"], d["hi"]
        if zero and v not in (ref, zero[0]):
            r = E.recovery_bootstrap({"sym": fin[ref]["test_acc"], "untied": fin[zero[0]]["test_acc"],
                                      "homeo": fin[v]["test_acc"]}, boot)
            row.update(R=r["R"], R_lo=r["R_lo"], R_hi=r["R_hi"], P_R80=r["p_goal"])
        rows.append(row)
    return pd.DataFrame(rows)


def plot_lambda_curve(curve: pd.DataFrame, out_path: str, title: str = ""):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = curve[curve["lam"].notna()]
    ref = curve[curve["lam"].isna()]
    fig, axes = plt.subplots(2, 3, figsize=(13, 7.5))
    axes = axes.ravel()
    lam = pts["lam"].to_numpy()
    for ax, c in zip(axes, COLUMNS + ("d_test_acc",)):
        if c.startswith("d_"):      # the paired difference: its own bootstrap interval, the reference at 0
            y = pts[c].to_numpy() if c in pts else np.full(len(pts), np.nan)
            yerr = np.abs(np.stack([pts[c + "_lo"], pts[c + "_hi"]]) - y) if c in pts else None
            ax.errorbar(lam, y, yerr=yerr, marker="o", capsize=3)
            ax.axhline(0, color="k", lw=1)
            name = f"{NAMES[c[2:]]} minus {ref['label'].iloc[0] if len(ref) else 'reference'}, paired"
        else:
            ax.errorbar(lam, pts[c], yerr=pts[c + "_ci"], marker="o", capsize=3, label="untied, homeostasis λ")
            if len(ref) and np.isfinite(ref[c].iloc[0]):
                m, h = ref[c].iloc[0], ref[c + "_ci"].iloc[0]
                ax.axhline(m, color="k", lw=1, label=ref["label"].iloc[0])
                ax.axhspan(m - h, m + h, color="k", alpha=0.1)
            name = NAMES[c]
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlim(min(lam.min(), 0) - 0.3, lam.max() * 1.3 + 0.3)
        ax.set_xticks(lam, [f"{x:g}" for x in lam])
        ax.set_xlabel("λ")
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{title}final values (mean of the last three evaluations), mean over {int(curve['n'].iloc[0])} "
                 "seeds, 95 % interval", fontsize=10)
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("history", help="…_history.csv.gz written by ep_homeostasis.py")
    ap.add_argument("--task", default="mnist1d")
    ap.add_argument("--lam", nargs="+", required=True, metavar="VARIANT=λ",
                    help="the curve's points, e.g. untied=0 homeo5orth=5 homeo20orth=20")
    ap.add_argument("--ref", default="sym", help="the reference variant (default: the symmetric network)")
    ap.add_argument("--out", required=True, help="output prefix (PREFIX.csv, PREFIX.png)")
    a = ap.parse_args(argv)
    try:
        lam = parse_lam(a.lam)
        curve = lambda_curve(pd.read_csv(a.history), a.task, lam, a.ref)
    except ValueError as e:
        ap.error(str(e))
    if os.path.dirname(a.out):
        os.makedirs(os.path.dirname(a.out), exist_ok=True)
    curve.to_csv(a.out + ".csv", index=False)
    plot_lambda_curve(curve, a.out + ".png", title=f"{a.task}: ")
    cols = ["label", "lam", "n"] + [k for c in COLUMNS for k in (c, "d_" + c, "d_" + c + "_lo", "d_" + c + "_hi")]
    cols += [k for k in ("R", "R_lo", "R_hi", "P_R80") if k in curve]
    with pd.option_context("display.width", 250, "display.max_columns", 40, "display.float_format", "{:.4f}".format):
        print(curve[[k for k in cols if k in curve]].T.to_string(header=False))


if __name__ == "__main__":
    main()

"""Deploy-after-drift noise study: an MLP trained in float, deployed on the `pcm`
crossbar (aihwkit 1.2 PCM model and IO defaults) and read at t = 1 s, 1 h,
1 day and 1 year after programming, with and without global drift
compensation, over 5 programming seeds.

The network (MLP 64-32-10, ReLU, the project's default for `digits`) is
trained with exact gradients in numpy: softmax cross-entropy, Adam (lr 0.01,
β = 0.9/0.999), mini-batches of 64, 150 epochs, seed 0. Each deployment seed
programs the whole network once (programming noise, drift exponents); the
same programmed chip is then read at every time t (the drifted conductances
and 1/f noise at t are drawn once per time, as aihwkit's
``drift_analog_weights(t)``), and the 397 test images are classified.

Writes the table to docs/noise_study_pcm.md (+ .csv) and the plot to
docs/noise_study_pcm.png.

``--aihwkit-src DIR`` deploys the same trained network on IBM aihwkit 1.2
itself as well — its pure-PyTorch inference tiles (``TorchInferenceRPUConfig``:
PCMLikeNoiseModel, GlobalDriftCompensation, default IOParameters) run from an
unpacked source tree with the unbuilt C++ extension stubbed (see
``validate_aihwkit_source.py``), with the same weight scaling (ω = 1) — and
adds those rows to the table: a direct check of the whole deployment against
the reference simulator.

    pip download aihwkit==1.2.0 --no-deps -d /tmp/aihwkit && tar xzf /tmp/aihwkit/aihwkit-1.2.0.tar.gz -C /tmp/aihwkit
    A=/tmp/aihwkit/aihwkit-1.2.0/src
    python experiments/noise_study_pcm.py --aihwkit-src $A                                     # docs/noise_study_pcm.*
    python experiments/noise_study_pcm.py --aihwkit-src $A --seeds 25 --name noise_study_pcm_25seeds
    python experiments/noise_study_pcm.py --aihwkit-src $A --seeds 25 --hidden 128 --name noise_study_pcm_h128

(without ``--aihwkit-src`` only the neurozo rows; ≈ 20 s per 5 seeds on 2 cores)
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time

import numpy as np
import pandas as pd

import neurozo
from neurozo import models, substrates, tasks
from neurozo.models.population import Members

TIMES = [("1 s", 1.0), ("1 h", 3600.0), ("1 day", 86400.0), ("1 year", 365 * 86400.0)]


def train_float_mlp(task, sizes=(64, 32, 10), epochs=150, lr=0.01, batch=64, seed=0):
    """Exact-gradient training (backprop in numpy) of the model's flat θ; returns θ (float64)."""
    mlp = models.get("mlp", sizes=list(sizes))
    rng = np.random.default_rng(seed)
    theta = mlp.init(rng)
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    x_all, y_all = task.x_train.astype(np.float64), task.y_train
    k = 0
    L = mlp.n_layers
    for _ in range(epochs):
        perm = rng.permutation(len(y_all))
        for s in range(0, len(perm), batch):
            idx = perm[s:s + batch]
            x, y = x_all[idx], y_all[idx]
            Ws = [mlp.view(theta, f"W{i}") for i in range(L)]
            bs = [mlp.view(theta, f"b{i}") for i in range(L)]
            hs, zs = [x], []
            for i in range(L):
                z = hs[-1] @ Ws[i].T + bs[i]
                zs.append(z)
                hs.append(np.maximum(z, 0) if i < L - 1 else z)
            z = zs[-1] - zs[-1].max(1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(1, keepdims=True)
            d = p
            d[np.arange(len(y)), y] -= 1
            d /= len(y)
            grads = {}
            for i in reversed(range(L)):
                grads[f"W{i}"] = d.T @ hs[i]
                grads[f"b{i}"] = d.sum(0)
                if i:
                    d = (d @ Ws[i]) * (zs[i - 1] > 0)
            g = mlp.flatten({kk: grads[kk] for kk in mlp.views})
            k += 1
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            theta = theta - lr * (m / (1 - 0.9 ** k)) / (np.sqrt(v / (1 - 0.999 ** k)) + 1e-8)
    return mlp, theta


def accuracy(out, y):
    return float(np.mean(out[0].argmax(-1) == y))


def deploy_aihwkit(src, mlp, theta, xt, yt, seeds, omega=1.0):
    """The same network on aihwkit 1.2's torch inference tiles: rows like neurozo's, simulator='aihwkit'."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from validate_aihwkit_source import import_aihwkit

    import_aihwkit(src)
    import torch
    from aihwkit.nn import AnalogLinear, AnalogSequential
    from aihwkit.simulator.configs import TorchInferenceRPUConfig

    rows = []
    x = torch.from_numpy(np.asarray(xt, dtype=np.float32))
    for comp in (True, False):
        for seed in range(seeds):
            torch.manual_seed(1000 + seed)
            rc = TorchInferenceRPUConfig()
            rc.mapping.weight_scaling_omega = omega
            if not comp:
                rc.drift_compensation = None
            mods = []
            for k in range(mlp.n_layers):
                W, b = mlp.view(theta, f"W{k}"), mlp.view(theta, f"b{k}")
                lin = AnalogLinear(W.shape[1], W.shape[0], bias=True, rpu_config=rc)
                lin.set_weights(torch.from_numpy(W.astype(np.float32)), torch.from_numpy(b.astype(np.float32)))
                mods.append(lin)
                if k < mlp.n_layers - 1:
                    mods.append(torch.nn.ReLU())
            net = AnalogSequential(*mods).eval()
            net.program_analog_weights()
            for label, t in TIMES:
                net.drift_analog_weights(t)
                with torch.no_grad():
                    pred = net(x).argmax(-1).numpy()
                rows.append({"simulator": "aihwkit", "compensation": comp, "seed": seed, "time": label, "t_s": t,
                             "test_acc": float(np.mean(pred == yt))})
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "docs"))
    ap.add_argument("--aihwkit-src", default=None, help="also deploy on aihwkit 1.2 (source tree, torch tiles)")
    ap.add_argument("--hidden", type=int, nargs="*", default=[32], help="hidden layer widths (default 32)")
    ap.add_argument("--name", default="noise_study_pcm", help="base name of the output files")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()

    task = tasks.get("digits")
    mlp, theta = train_float_mlp(task, sizes=(64, *args.hidden, 10), epochs=args.epochs)
    xt, yt = task.test_data()
    ideal = substrates.get("ideal")
    float_acc = accuracy(mlp.forward(Members(theta[None]), xt, ideal, np.random.default_rng(0)), yt)
    print(f"float MLP {mlp.sizes}: test accuracy {float_acc:.4f}")

    rows = []
    layers = mlp.layer_weights(Members(theta[None]))
    for comp in (True, False):
        for seed in range(args.seeds):
            sub = substrates.get("pcm", drift_compensation=comp, device_seed=seed)
            rng = np.random.default_rng([seed, int(comp)])
            prog = sub.program(layers, rng)                     # one programming of the chip
            for label, t in TIMES:
                out = sub.run(prog, xt, rng, mlp.activations, t=t)
                rows.append({"simulator": "neurozo", "compensation": comp, "seed": seed, "time": label, "t_s": t,
                             "test_acc": accuracy(out, yt)})
    if args.aihwkit_src:
        rows += deploy_aihwkit(args.aihwkit_src, mlp, theta, xt, yt, args.seeds)
    df = pd.DataFrame(rows)
    summary = (df.groupby(["simulator", "compensation", "t_s", "time"], sort=True)["test_acc"]
               .agg(["mean", "std", "min", "max", "count"]).reset_index()
               .sort_values(["simulator", "compensation", "t_s"], ascending=[False, False, True]))
    ref = {(s_, c): float(g["mean"].iloc[0]) for (s_, c), g in summary[summary.t_s == 1.0].groupby(
        ["simulator", "compensation"])}
    summary["drop_vs_1s_pp"] = [100 * (ref[(s_, c)] - mu)
                                for s_, c, mu in zip(summary.simulator, summary.compensation, summary["mean"])]
    summary["drop_vs_float_pp"] = 100 * (float_acc - summary["mean"])

    os.makedirs(args.out, exist_ok=True)
    csv = os.path.join(args.out, args.name + ".csv")
    df.to_csv(csv, index=False)
    png = os.path.join(args.out, args.name + ".png")
    plot(summary, df, float_acc, png)
    md = os.path.join(args.out, args.name + ".md")
    write_markdown(md, summary, float_acc, mlp, args, time.perf_counter() - t_start)
    print(summary.to_string(index=False))
    print(f"wrote {md}, {csv}, {png}")
    return summary


def plot(summary, df, float_acc, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neurozo.plotting.curves import mean_ci

    fig, ax = plt.subplots(figsize=(6, 4))
    for (sim, comp), g in df.groupby(["simulator", "compensation"], sort=False):
        style = ("o-" if comp else "s--") if sim == "neurozo" else ("^:" if comp else "v:")
        ts = sorted(g.t_s.unique())
        stats = [mean_ci(g[g.t_s == t].test_acc.to_numpy()) for t in ts]
        mu = np.array([s[0] for s in stats])
        half = np.array([s[1] for s in stats])
        lo, hi = mu - half, mu + half
        ax.plot(ts, 100 * mu, style, label=f"{sim} pcm, drift compensation {'on' if comp else 'off'}")
        ax.fill_between(ts, 100 * lo, 100 * hi, alpha=0.2)
    ax.axhline(100 * float_acc, color="k", lw=0.8, ls=":", label="float (software)")
    ax.set_xscale("log")
    ax.set_xticks([t for _, t in TIMES])
    ax.set_xticklabels([lab for lab, _ in TIMES])
    ax.set_xlabel("read time after programming")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("digits MLP on PCM: mean and 95% CI over seeds", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_markdown(path, summary, float_acc, mlp, args, wall):
    lines = [
        "# PCM deploy-after-drift noise study",
        "",
        f"MLP {mlp.sizes} (ReLU) trained in float with exact gradients (Adam 0.01, batch 64, {args.epochs} epochs) "
        f"on `digits` (1400/397); float test accuracy **{100 * float_acc:.2f} %**. Deployed on the `pcm` "
        "substrate (aihwkit 1.2 PCM noise model: programming noise, drift, 1/f read noise; 7-bit DAC, "
        "9-bit ADC, output noise 0.06, iterative bound management; weight scaling ω = 1) and read at "
        f"each time after one programming, {args.seeds} programming seeds per setting.",
        "",
        "| simulator | drift compensation | read time | accuracy mean (%) | std (pp) | min–max (%) | drop vs 1 s (pp) | drop vs float (pp) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for _, r in summary.iterrows():
        lines.append(f"| {r.simulator} | {'on' if r.compensation else 'off'} | {r.time} | {100 * r['mean']:.2f} | {100 * r['std']:.2f} "
                     f"| {100 * r['min']:.2f}–{100 * r['max']:.2f} | {r.drop_vs_1s_pp:+.2f} | {r.drop_vs_float_pp:+.2f} |")
    lines += [
        "",
        f"![accuracy vs time]({args.name}.png)",
        "",
        f"Command: `python experiments/noise_study_pcm.py --seeds {args.seeds} --epochs {args.epochs}"
        f"{' --hidden ' + ' '.join(map(str, args.hidden)) if args.hidden != [32] else ''}"
        f"{' --aihwkit-src DIR' if args.aihwkit_src else ''}{' --name ' + args.name if args.name != 'noise_study_pcm' else ''}` "
        f"({datetime.date.today().isoformat()}, {platform.machine()} {os.cpu_count()}-core CPU, shared; "
        f"{wall:.0f} s wall). Per-seed values: `{args.name}.csv`.",
        "",
    ]
    with open(path, "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)

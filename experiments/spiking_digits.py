"""Hard-LIF 64-64-10 on ``digits`` trained by OpenAI-ES (no surrogate gradient).

Model ``{"name": "mlp", "sizes": [64, 64, 10]}`` on the ``lif`` substrate:
T = 16 steps, constant-current input (pixels in [0, 1] as currents), β = 0.9,
threshold 1, reset by subtraction, spike counts of the output layer as
logits. Learner ``openes`` (antithetic, centered ranks, Adam). The reference
for the same network trained by surrogate-gradient BPTT with snnTorch is
98.5% (REFERENCES.md); the goal here is > 80% test accuracy without any
gradient.

Writes the history (CSV), and a figure — test accuracy against evaluations,
a raster of the hidden layer for one test digit, and the histogram of hidden
spike counts of the trained network — to ``--out``.

    python experiments/spiking_digits.py --budget 60000 --seeds 0 1 2 --jobs 3 --out docs/bench
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # many tiny per-member GEMMs: no BLAS threads

import numpy as np  # noqa: E402

MODEL = {"name": "mlp", "sizes": [64, 64, 10]}
SUBSTRATE = {"name": "lif", "T": 16, "beta": 0.9, "threshold": 1.0, "reset": "subtract",
             "encoding": "current", "readout": "counts"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=60_000)
    ap.add_argument("--seeds", type=int, nargs="*", default=[0])
    ap.add_argument("--popsize", type=int, default=64)
    ap.add_argument("--sigma", type=float, default=0.05)
    ap.add_argument("--lr", type=float, default=0.005)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--jobs", type=int, default=1, help="seeds run in parallel processes")
    ap.add_argument("--out", default="docs/bench")
    args = ap.parse_args()

    import neurozo
    import pandas as pd

    learner = {"name": "openes", "popsize": args.popsize, "sigma": args.sigma, "lr": args.lr}
    os.makedirs(args.out, exist_ok=True)
    jobs = [(seed, learner, args.budget, args.batch_size) for seed in args.seeds]
    if args.jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(args.jobs) as ex:
            results = list(ex.map(run_seed, jobs))
    else:
        results = [run_seed(j) for j in jobs]
    hist, finals, best = [], [], None
    for fin, h, theta in results:
        print(json.dumps(fin), flush=True)
        hist.append(h)
        finals.append(fin)
        if best is None or fin["test_acc"] > best[0]:
            best = (fin["test_acc"], theta)
    hist = pd.concat(hist, ignore_index=True)
    hist.to_csv(os.path.join(args.out, "spiking_digits_history.csv"), index=False)
    accs = np.array([f["test_acc"] for f in finals])
    summary = {"model": MODEL, "substrate": SUBSTRATE, "learner": learner, "budget": args.budget,
               "batch_size": args.batch_size, "seeds": args.seeds, "final_test_acc": accs.tolist(),
               "mean": float(accs.mean()), "min": float(accs.min()), "runs": finals}
    with open(os.path.join(args.out, "spiking_digits.json"), "w") as fh:
        json.dump(summary, fh, indent=1)
    print(f"final test accuracy {accs.mean():.4f} (min {accs.min():.4f}) over seeds {args.seeds}")
    figure(best[1], hist, os.path.join(args.out, "spiking_digits.png"))


def run_seed(job):
    import neurozo

    seed, learner, budget, batch_size = job
    t0 = time.perf_counter()
    res = neurozo.run(task="digits", model=MODEL, substrate=SUBSTRATE, learner=learner,
                      budget=budget, seed=seed, batch_size=batch_size)
    h = res.history.assign(seed=seed, label="openes on lif")
    fin = {"seed": seed, "status": res.status, "test_acc": res.final["test_acc"],
           "best_test_acc": float(h.test_acc.max()), "evaluations": res.final["evaluations"],
           "wall_s": time.perf_counter() - t0, "spikes": res.final["spikes"],
           "neuron_updates": res.final["neuron_updates"]}
    return fin, h, res.theta


def figure(theta, hist, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import neurozo
    from neurozo.plotting import learning_curves, raster, spike_count_hist

    task = neurozo.tasks.get("digits")
    model = neurozo.models.get(**MODEL)
    sub = neurozo.substrates.get(**{**SUBSTRATE, "record": True})
    x, y = task.test_data()
    out = model.forward(theta, x, sub, np.random.default_rng(0))
    acc = float((out[0].argmax(-1) == y).mean())
    tr = sub.neuron.trace
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    learning_curves(hist, metric="test_acc", ax=axes[0], title="hard-LIF 64-64-10 on digits, OpenAI-ES")
    axes[0].axhline(0.8, color="0.5", ls=":", lw=1)
    raster(tr["spikes"][0], ax=axes[1], sample=0, markersize=6,
           title=f"hidden spikes, test digit {y[0]} (T = 16)")
    spike_count_hist(tr["spikes"][0], ax=axes[2], title=f"hidden spike counts (test acc {acc:.3f})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"figure → {path}")


if __name__ == "__main__":
    main()

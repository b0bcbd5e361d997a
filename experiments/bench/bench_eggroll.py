"""EGGROLL generation time against full-rank OpenAI-ES and against plain inference.

Configuration of issue 5: population N = 256, MLP 512-512-512-10 (ReLU),
mini-batch 64 (one shared batch), ideal substrate (float32), Adam. Measured
in one process, each the best of ``--repeats`` after a warm-up:

  eggroll r=1, r=4   one generation: ask (rank-r factors, bias noise) →
                     problem.evaluate (x·Wᵀ + s·(x·B)·Aᵀ per layer, loss) → tell
                     (low-rank gradient sums, Adam)
  openes             one generation of full-rank OpenAI-ES (N full Gaussian
                     vectors of D = 530 442, N full weight sets evaluated)
  inference          plain batched inference of N distinct networks: problem.evaluate
                     of a fixed Members population (N weight sets, no noise, no update)
  single-net         the strictest floor: one network on N·64 samples (one GEMM per
                     layer; EGGROLL's paper compares with this "pure batch inference")

Goals: eggroll r=1 ≥ 5× faster per generation than openes; ≥ 85 % of plain
inference throughput (samples/s), i.e. t_inference / t_eggroll ≥ 0.85.
Run from the repository root:  python experiments/bench/bench_eggroll.py
(unset OPENBLAS_CORETYPE for numpy/OpenBLAS figures; see REFERENCES.md).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def best_of(fn, repeats):
    fn()                                                  # warm-up: JIT, first touch
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return min(ts)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--population", type=int, default=256)
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 512, 512, 10])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)
    if os.environ.get("NEUROZO_BENCH_QUICK"):
        args.population, args.sizes, args.repeats = 32, [128, 128, 128, 10], 2

    from neurozo.learners import get as get_learner
    from neurozo.learners.base import Problem
    from neurozo.models.mlp import MLP
    from neurozo.models.population import Members
    from neurozo.substrates import get as get_substrate
    from neurozo.tasks.base import cross_entropy

    P, B, sizes = args.population, args.batch, list(args.sizes)
    rng = np.random.default_rng(0)
    model = MLP(sizes, activation="relu")
    theta0 = model.init(rng)
    sub = get_substrate("ideal")
    problem = Problem(model, sub, cross_entropy, np.random.default_rng(1))
    x = rng.random((B, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], B)
    problem.set_batch(x, y)

    def generation_runner(learner, **init_kw):
        state = [learner.init(theta0, 0, **init_kw)]

        def gen():
            pop, st = learner.ask(state[0])
            losses = problem.evaluate(pop)
            state[0] = learner.tell(st, pop, losses)
        return gen

    times = {}
    for r in (1, 4):
        egg = get_learner("eggroll", popsize=P, rank=r, sigma=0.05, lr=0.03)
        times[f"eggroll r={r}"] = best_of(generation_runner(egg, views=model.views), args.repeats)
    openes = get_learner("openes", popsize=P, sigma=0.05, lr=0.03)
    times["openes"] = best_of(generation_runner(openes), args.repeats)
    thetas = theta0[None] + 0.05 * rng.standard_normal((P, model.n_params))
    fixed = Members(thetas)
    times["inference"] = best_of(lambda: problem.evaluate(fixed), args.repeats)
    del thetas, fixed
    big = Problem(model, sub, cross_entropy, np.random.default_rng(1))
    big.set_batch(np.tile(x, (P, 1)), np.tile(y, P))
    one = Members(theta0[None])
    times["single-net"] = best_of(lambda: big.evaluate(one), args.repeats)

    samples = P * B
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows = []
    for name, t in times.items():
        rows.append({"case": name, "neurozo": round(t, 4), "unit": "s/generation",
                     "throughput": round(samples / t), "load1": round(load, 2)})
    t1, t4, to, ti, ts = (times[k] for k in ("eggroll r=1", "eggroll r=4", "openes", "inference", "single-net"))
    rows += [
        {"case": "r=1 speed-up vs full-rank openes", "neurozo": round(t1, 4), "peer": "openes",
         "peer_value": round(to, 4), "unit": "s", "ratio": round(to / t1, 2), "goal": ">= 5x", "met": to / t1 >= 5},
        {"case": "r=4 speed-up vs full-rank openes", "neurozo": round(t4, 4), "peer": "openes",
         "peer_value": round(to, 4), "unit": "s", "ratio": round(to / t4, 2)},
        {"case": "r=1 throughput / plain inference of N nets", "neurozo": round(t1, 4), "peer": "inference",
         "peer_value": round(ti, 4), "unit": "s", "ratio": round(ti / t1, 3), "goal": ">= 0.85",
         "met": ti / t1 >= 0.85},
        {"case": "r=4 throughput / plain inference of N nets", "neurozo": round(t4, 4), "peer": "inference",
         "peer_value": round(ti, 4), "unit": "s", "ratio": round(ti / t4, 3)},
        {"case": "r=1 throughput / single-net batch inference", "neurozo": round(t1, 4), "peer": "single-net",
         "peer_value": round(ts, 4), "unit": "s", "ratio": round(ts / t1, 3)},
    ]
    for row in rows:
        print("BENCH " + json.dumps(row), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"config": vars(args), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()

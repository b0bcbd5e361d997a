"""CBO (the ``cbo`` learner, Carrillo et al. 2021 recipe) training MLP 64-32-10 on ``digits``.

Reproduces the network table of docs/bench/cbo.md: one ``neurozo.run`` per
(substrate, seed) with data batches of 60, printing the final and best test
accuracy. One run of 138 000 evaluations takes 1–3 minutes on one core.

    NUMBA_NUM_THREADS=1 python experiments/cbo_digits.py --substrates ideal int8 lif --seeds 0 1 2 --budget 138000
"""

from __future__ import annotations

import argparse
import json
import time

import neurozo


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--substrates", nargs="+", default=["ideal"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--budget", type=int, default=138_000)
    ap.add_argument("--learner", default="{}", help='extra cbo parameters as JSON, e.g. \'{"sigma": 0.7}\'')
    args = ap.parse_args()
    extra = json.loads(args.learner)
    for sub in args.substrates:
        for seed in args.seeds:
            t = time.time()
            r = neurozo.run(task="digits", substrate=sub, learner={"name": "cbo", **extra}, budget=args.budget,
                            seed=seed, batch_size=60, progress=False)
            print(json.dumps({"substrate": sub, "seed": seed, "budget": args.budget, "learner": extra,
                              "status": r.status, "test_acc": round(r.final["test_acc"], 4),
                              "best_test_acc": round(float(r.history["test_acc"].max()), 4),
                              "seconds": round(time.time() - t, 1)}), flush=True)


if __name__ == "__main__":
    main()

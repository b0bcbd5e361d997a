"""perturb="program" vs "periphery" on the `pcm` crossbar: accuracy and device cost at equal budget.

EGGROLL (low-rank perturbations: periphery mode writes the base once per step
and adds s·(x·B)·Aᵀ digitally) and OpenAI-ES (full perturbations: periphery
mode writes the population mean and adds x·(W_p − W̄)ᵀ digitally, i.e. a full
digital layer per candidate) on digits, MLP 64-32-10, budget 6400 evaluations,
seeds 0 and 1. Prints one row per run: test accuracy, writes, analog MACs,
periphery MACs, ADC conversions and energy (the crossbar's cited pJ table).

    python experiments/perturb_tradeoff_pcm.py
"""

import sys
import time

import pandas as pd

import neurozo


def main(budget=6400, seeds=(0, 1)):
    rows = []
    for learner in ("eggroll", "openes"):
        for perturb in ("program", "periphery"):
            for seed in seeds:
                t = time.perf_counter()
                r = neurozo.run(task="digits", substrate={"name": "pcm", "perturb": perturb},
                                learner={"name": learner}, budget=budget, seed=seed)
                f = r.final
                rows.append({"learner": learner, "perturb": perturb, "seed": seed, "status": r.status,
                             "test_acc": f["test_acc"], "writes": f["writes"], "macs": f["macs"],
                             "periphery_macs": f["periphery_macs"], "adc": f["adc"],
                             "energy_uJ": f["energy_pj"] / 1e6, "wall_s": time.perf_counter() - t})
                print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    agg = df.groupby(["learner", "perturb"]).agg(test_acc=("test_acc", "mean"), writes=("writes", "mean"),
                                                 macs=("macs", "mean"), periphery_macs=("periphery_macs", "mean"),
                                                 energy_uJ=("energy_uJ", "mean"), wall_s=("wall_s", "mean"))
    print(agg.to_string())
    return df


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 6400)

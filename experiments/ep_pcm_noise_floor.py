"""The relaxation's noise floor on PCM along training: is hEP's "non-convergence" there the dynamics or
the read noise?

Trains one variant of experiments/ep_homeostasis.py on PCM (default tied hEP on mnist1d, the run that
collapses), keeps θ at every logged row (a ``neurozo.run`` callback), and measures for each θ on the first
``--examples`` test examples:

* ``sigma_read``: the RMS read noise of the drive d_k = W_k·r_{k−1} + B_k·r_{k+1} (+ b_k) of every state
  unit, from two reads of the same programmed arrays at the same rates r* (the noise-free fixed point):
  σ = RMS(d⁽¹⁾ − d⁽²⁾)/√2 over units and examples. The relaxation u ← u + dt·F(u) cannot settle below this.
* ``max_w``: the largest |W| over the arrays read in the relaxation (W_k, B_k; ``max_w_rec``: without
  W_0). The crossbar model's digital output scale is max|W|/ω, and its output noise and ADC steps are
  relative to that scale, so σ ∝ max|W| if nothing else changes (``sigma_per_maxw`` = σ/max|W|).
* ``res_pcm_median``: the median residual ‖F(u)‖/√N after T1 steps on PCM without early stop (the floor
  the convergence test meets); ``nonconv_pcm``: the fraction above the model's ``tol`` with its early stop
  (what training sees; an example stops relaxing the first time a noisy residual dips below ``tol``).
* ``nonconv_ideal``: the fraction whose noise-free relaxation (ideal substrate, same θ, same T1 and dt)
  ends above ``--ideal-tol``: examples whose dynamics do not settle at all.
* ``nonconv_pcm_rn``: the fraction the model's read-noise convergence test (``convergence="read_noise"``,
  tol = ``--ideal-tol``, false-alarm rate ``noise_alpha`` = 0.01) flags on PCM after T1 steps: each
  example's residual against tol and the floor measured from two extra reads at its end state
  (``floor_rn_median``: the median floor). Meant to say "not settled" where ``nonconv_ideal`` does.
* ``acc_ideal`` / ``acc_pcm``: the test accuracy of θ read noise-free and on PCM.

    python experiments/ep_pcm_noise_floor.py --out docs/ep_pcm_noise_floor          # 7–10 min here
    python experiments/ep_pcm_noise_floor.py --variant pcm_sym_all --out /tmp/f     # every example kept

Writes OUT.csv (one row per logged θ) and OUT.png.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from ep_homeostasis import VARIANTS, run_config  # noqa: E402


def drive_noise(model, prog, x1, r, substrate, rng) -> float:
    """RMS read noise of every state unit's drive d_k = W_k·(x or r_{k−1}) + B_k·r_{k+1} at rates r, from two
    reads of the same programmed arrays (``EnergyNet.read_noise_floor``): RMS(d⁽¹⁾ − d⁽²⁾)/√2 over units and
    examples."""
    s, _ = model.read_noise_floor(prog, x1, r, substrate, rng)
    return float(np.sqrt(np.mean(s ** 2)))


def measure(theta, b_pcm, b_ideal, x, y, ideal_tol: float, rng) -> dict:
    from neurozo.models.energy import EnergyNet

    model, pcm, ideal = b_pcm.model, b_pcm.substrate, b_ideal.substrate
    spec = {k: v for k, v in model.spec.items() if k != "name"}
    m_rn = EnergyNet(**{**spec, "convergence": "read_noise", "tol": ideal_tol, "noise_alpha": 0.01})
    th = theta[None]
    with pcm.costs.paused(), ideal.costs.paused(), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        prog_i = model.program(th, ideal, rng)
        rel_i = model.relax(prog_i, x, ideal, rng, tol=0.0)
        acc_i = float(np.mean(np.argmax(model.logits(prog_i, rel_i.r[-1], ideal, rng)[0], -1) == y))
        prog_p = model.program(th, pcm, rng)
        rel_p = model.relax(prog_p, x, pcm, rng)                 # as training sees it (early stop at tol)
        acc_p = float(np.mean(np.argmax(model.logits(prog_p, rel_p.r[-1], pcm, rng)[0], -1) == y))
        rel_p0 = model.relax(prog_p, x, pcm, rng, tol=0.0)       # no early stop: the floor itself
        rel_rn = m_rn.relax(prog_p, x, pcm, rng)                  # the read-noise convergence test
        r_star = [np.ascontiguousarray(a) for a in rel_i.r]
        sig = drive_noise(model, prog_p, np.ascontiguousarray(x[None]), r_star, pcm, rng)
    arrays = [model.view(theta, f"W{k}") for k in range(model.L)] + \
             [model.feedback(theta, k) for k in range(model.L - 1)]
    return {"sigma_read": sig, "max_w": float(max(np.abs(a).max() for a in arrays)),
            "max_w_rec": float(max(np.abs(a).max() for a in arrays[1:])) if len(arrays) > 1 else float("nan"),
            "res_pcm_median": float(np.median(rel_p0.residual)),
            "res_pcm_p90": float(np.quantile(rel_p0.residual, 0.9)),
            "nonconv_pcm": float(np.mean(~rel_p.converged)),
            "nonconv_ideal": float(np.mean(rel_i.residual > ideal_tol)),
            "nonconv_pcm_rn": float(np.mean(~rel_rn.converged)), "floor_rn_median": float(np.median(rel_rn.floor)),
            "res_ideal_max": float(rel_i.residual.max()), "acc_ideal": acc_i, "acc_pcm": acc_p}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default="pcm_sym", choices=[v for v in VARIANTS if VARIANTS[v][1] == "pcm"])
    ap.add_argument("--task", default="mnist1d", choices=["digits", "mnist1d"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps-scale", type=float, default=1.0)
    ap.add_argument("--beta", type=float, default=None)
    ap.add_argument("--examples", type=int, default=400, help="test examples measured at every row")
    ap.add_argument("--ideal-tol", type=float, default=5e-4,
                    help="residual below which a noise-free relaxation counts as converged (the ideal runs' tol)")
    ap.add_argument("--out", required=True, help="prefix of OUT.csv and OUT.png")
    a = ap.parse_args(argv)
    if a.examples < 1:
        raise ValueError(f"examples={a.examples}: must be ≥ 1")
    if not a.ideal_tol > 0:
        raise ValueError(f"ideal-tol={a.ideal_tol}: must be > 0")

    import neurozo

    cfg = run_config(a.task, a.variant, a.seed, a.steps_scale, beta=a.beta)
    b_pcm = neurozo.build(**cfg)
    b_ideal = neurozo.build(**dict(cfg, substrate="ideal"))
    x, y = b_pcm.task.test_data()
    x, y = np.asarray(x[:a.examples], dtype=np.float64), np.asarray(y[:a.examples])
    kept = []

    def keep(row, state):
        kept.append((int(row["step"]), np.array(state.mean, copy=True)))
        return False

    t0 = time.time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = neurozo.run(**cfg, callbacks=[keep])
    print(f"{a.variant} seed {a.seed}: {res.status}, test acc {res.final['test_acc']:.4f}, {time.time() - t0:.0f} s",
          flush=True)
    hist = res.history.set_index("step")
    rng = np.random.default_rng(12345)
    rows = []
    for step, theta in kept:
        m = measure(theta, b_pcm, b_ideal, x, y, a.ideal_tol, rng)
        m["step"] = step
        for c in ("test_acc", "train_loss", "nonconverged", "skipped"):
            m[c] = float(hist.loc[step, c]) if step in hist.index and c in hist else float("nan")
        rows.append(m)
    df = pd.DataFrame(rows)
    df["sigma_per_maxw"] = df["sigma_read"] / df["max_w"]
    df.insert(0, "seed", a.seed)
    df.insert(0, "variant", a.variant)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    df.to_csv(a.out + ".csv", index=False)
    tol = b_pcm.model.tol
    cols = ["step", "max_w", "sigma_read", "sigma_per_maxw", "res_pcm_median", "nonconv_pcm", "nonconv_ideal",
            "nonconv_pcm_rn", "res_ideal_max", "acc_ideal", "acc_pcm", "skipped", "train_loss"]
    print(df[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    plot(df, tol, a)


def plot(df: pd.DataFrame, tol: float, a) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    ax[0].plot(df["step"], df["sigma_read"], "o-", label="read noise σ of a unit's drive")
    ax[0].plot(df["step"], df["res_pcm_median"], "s-", label="median residual after T1 (no early stop)")
    ax[0].axhline(tol, color="k", ls=":", label=f"tol = {tol:g}")
    ax[0].set(xlabel="training step", ylabel="‖F(u)‖/√N", title="PCM: the relaxation's noise floor")
    t = ax[0].twinx()
    t.plot(df["step"], df["max_w"], "^--", color="C2", label="max |W| (arrays read in the relaxation)")
    t.set_ylabel("max |W|", color="C2")
    ax[0].legend(fontsize=7, loc="upper left")
    ax[1].plot(df["step"], 100 * df["nonconv_pcm"], "o-", label="PCM, above tol (as training sees it)")
    ax[1].plot(df["step"], 100 * df["nonconv_ideal"], "s-", label=f"noise-free, same θ, above {a.ideal_tol:g}")
    ax[1].plot(df["step"], 100 * df["nonconv_pcm_rn"], "^-",
               label=f"PCM, read-noise test (tol {a.ideal_tol:g} + measured floor, α = 0.01)")
    ax[1].set(xlabel="training step", ylabel="% of test examples", title="not converged within T1")
    ax[1].legend(fontsize=7)
    ax[2].plot(df["step"], 100 * df["acc_pcm"], "o-", label="θ on PCM")
    ax[2].plot(df["step"], 100 * df["acc_ideal"], "s-", label="θ noise-free")
    ax[2].set(xlabel="training step", ylabel="test accuracy (%)",
              title=f"{a.task}, {VARIANTS[a.variant][0]}, seed {a.seed}")
    ax[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(a.out + ".png", dpi=110)


if __name__ == "__main__":
    main()

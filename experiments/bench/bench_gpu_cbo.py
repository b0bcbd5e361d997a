"""CBO benchmark (issue 7's configuration) on the GPU against the CPU kernel, same process.

Rastrigin d = 20, M = 100 runs, N = 40 particles, anisotropic noise, α = 30 with the
×1.05 schedule (capped at 1e5, CBXpy's default), σ = 10.1, dt = 0.01, λ = 1,
5000 steps, start U(−3, 3)^d, success ‖c_m − 0‖∞ < 0.25 for the final consensus c_m.

CPU   ``kernels.cbo.cbo_step`` (fused Numba step) + numpy Rastrigin, per step.
GPU   ``kernels.cbo_cuda.cbo_step`` (consensus kernel + per-particle move kernel) +
      the Rastrigin on CuPy arrays; x never leaves the device.

Both draw the same noise (the counter-based streams are shared), so the two
trajectories agree to rounding for a while and the success counts should match.
Reported: ms per step, successes out of M, and the GPU speed-up per step. Without
a GPU only the CPU row is printed.

Run:  python experiments/bench/bench_gpu_cbo.py [--steps 5000] [--dim 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np


def run(xp, step_fn, f, M, N, d, steps, seed, sync=None):
    rng = np.random.default_rng(seed)
    x = xp.asarray(rng.uniform(-3, 3, (M, N, d)))
    alpha = 30.0
    c = None
    out = None
    # warm-up: compile and first touch, not timed (on a copy)
    xw = x.copy()
    step_fn(xw, f(xw), alpha, noise="anisotropic", sigma=10.1, dt=0.01, lam=1.0, seed=seed, step=0)
    if sync:
        sync()
    t0 = time.perf_counter()
    for k in range(steps):
        out = step_fn(x, f(x), alpha, noise="anisotropic", sigma=10.1, dt=0.01, lam=1.0, seed=seed, step=k,
                      consensus=c)
        c = out.consensus
        alpha = min(alpha * 1.05, 1e5)
    if sync:
        sync()
    secs = time.perf_counter() - t0
    cons = out.consensus[:, 0, :]
    cons = cons.get() if hasattr(cons, "get") else np.asarray(cons)
    success = int((np.abs(cons).max(axis=1) < 0.25).sum())
    return secs / steps, success, cons


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--dim", type=int, default=20)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--particles", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    from kernels import cbo
    from neurozo.backend import cuda_status
    from neurozo.tasks.functions import Rastrigin

    f = Rastrigin(dim=args.dim).evaluate
    M, N, d = args.runs, args.particles, args.dim
    r = {"dim": d, "runs": M, "particles": N, "steps": args.steps}
    r["cpu_ms_per_step"], r["cpu_success"], c_cpu = run(np, cbo.cbo_step, f, M, N, d, args.steps, args.seed)
    r["cpu_ms_per_step"] *= 1e3
    line = f"CBO Rastrigin d={d} M={M} N={N} {args.steps} steps: CPU {r['cpu_ms_per_step']:.3f} ms/step, " \
           f"{r['cpu_success']}/{M} successes"
    reason = cuda_status()
    if reason is None:
        import cupy as cp

        from kernels import cbo_cuda

        r["gpu_ms_per_step"], r["gpu_success"], c_gpu = run(cp, cbo_cuda.cbo_step, f, M, N, d, args.steps,
                                                            args.seed, cp.cuda.Device().synchronize)
        r["gpu_ms_per_step"] *= 1e3
        r["speedup"] = r["cpu_ms_per_step"] / r["gpu_ms_per_step"]
        r["max_abs_consensus_diff"] = float(np.abs(c_gpu - c_cpu).max())
        r["gpu_name"] = cp.cuda.runtime.getDeviceProperties(0)["name"].decode()
        line += (f" | GPU {r['gpu_ms_per_step']:.3f} ms/step, {r['gpu_success']}/{M} successes, "
                 f"{r['speedup']:.2f}x CPU; final consensus max|GPU − CPU| {r['max_abs_consensus_diff']:.2e}")
    else:
        line += f" | GPU skipped: {reason}"
    print(line, flush=True)
    meta = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "loadavg": os.getloadavg(), "numpy": np.__version__, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    print(json.dumps(meta))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"meta": meta, "rows": [r]}, fh, indent=1)
    return r


if __name__ == "__main__":
    main()

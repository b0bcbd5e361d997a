"""LIF layer on the GPU against the CPU: Open Neuromorphic configuration (issue 3's benchmark).

Linear(n, n) + LIF, T = 500 steps, batch 16, randn input (T, B, n), float32,
forward only, spike train written (P = 1). Measured in one process, best of
``--repeats`` after a warm-up:

CPU   floor: one float32 GEMM (T·B)×n by n×n (numpy); neurozo: the same GEMM
      through ``kernels.dense`` + ``kernels.lif.lif_scan`` (write_spikes).
GPU   cuBLAS GEMM (CuPy) + ``kernels.lif_cuda.lif_scan``, inputs already on the
      device; also the LIF scan alone on both sides.

Parity: the GPU LIF scan on the CPU's currents must give the identical spike
train (bit-exact kernel); the full GPU layer (its own GEMM, rounded differently
from the CPU's BLAS) is reported as the fraction of identical spikes.

Run:  python experiments/bench/bench_gpu_lif.py [--sizes 4096] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np


def best_of(fn, repeats, sync=None):
    fn()
    if sync:
        sync()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        ts.append(time.perf_counter() - t0)
    return min(ts)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[4096])
    ap.add_argument("--T", type=int, default=500)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    from kernels import dense as dense_k
    from kernels import lif as lif_k
    from neurozo.backend import cuda_status

    reason = cuda_status()
    rows = []
    T, B = args.T, args.batch
    for n in args.sizes:
        rng = np.random.default_rng(n)
        x = rng.standard_normal((T, B, n), dtype=np.float32)
        bound = 1 / np.sqrt(n)
        W = rng.uniform(-bound, bound, (n, n)).astype(np.float32)
        b = rng.uniform(-bound, bound, n).astype(np.float32)
        x2 = x.reshape(1, T * B, n)
        r = {"n": n, "T": T, "batch": B}

        def cpu_layer():
            z = dense_k.dense_population(x2, W[None], b[None])
            return lif_k.lif_scan(z.reshape(1, T, B * n), T, 0.9, 1.0, write_spikes=True)

        z_cpu = dense_k.dense_population(x2, W[None], b[None]).reshape(1, T, B * n)
        r["cpu_floor_s"] = best_of(lambda: x2[0] @ W.T, args.repeats)
        r["cpu_neurozo_s"] = best_of(cpu_layer, args.repeats)
        r["cpu_scan_s"] = best_of(lambda: lif_k.lif_scan(z_cpu, T, 0.9, 1.0, write_spikes=True), args.repeats)
        s_cpu = lif_k.lif_scan(z_cpu, T, 0.9, 1.0, write_spikes=True)[0]
        r["spike_density"] = float(s_cpu.mean())
        line = (f"n={n}: CPU floor {r['cpu_floor_s']:.3f} s | neurozo CPU {r['cpu_neurozo_s']:.3f} s "
                f"({r['cpu_neurozo_s'] / r['cpu_floor_s']:.2f}x floor), scan {r['cpu_scan_s']:.3f} s")
        if reason is None:
            import cupy as cp

            from kernels import dense_cuda as dense_g
            from kernels import lif_cuda as lif_g

            sync = cp.cuda.Device().synchronize
            xd, Wd, bd = cp.asarray(x2), cp.asarray(W[None]), cp.asarray(b[None])
            zd_cpu = cp.asarray(z_cpu)

            def gpu_layer():
                z = dense_g.dense_population(xd, Wd, bd)
                return lif_g.lif_scan(z.reshape(1, T, B * n), T, 0.9, 1.0, write_spikes=True)

            r["gpu_layer_s"] = best_of(gpu_layer, args.repeats, sync)
            r["gpu_scan_s"] = best_of(lambda: lif_g.lif_scan(zd_cpu, T, 0.9, 1.0, write_spikes=True),
                                      args.repeats, sync)
            s_kernel = lif_g.lif_scan(zd_cpu, T, 0.9, 1.0, write_spikes=True)[0].get()
            s_layer = gpu_layer()[0].get()
            r["parity_scan_identical"] = bool(np.array_equal(s_kernel, s_cpu))
            r["parity_layer_spikes_equal_frac"] = float((s_layer == s_cpu).mean())
            r["speedup_layer"] = r["cpu_neurozo_s"] / r["gpu_layer_s"]
            r["speedup_scan"] = r["cpu_scan_s"] / r["gpu_scan_s"]
            r["gpu_name"] = cp.cuda.runtime.getDeviceProperties(0)["name"].decode()
            line += (f" | GPU layer {r['gpu_layer_s'] * 1e3:.1f} ms ({r['speedup_layer']:.1f}x CPU neurozo), "
                     f"scan {r['gpu_scan_s'] * 1e3:.1f} ms ({r['speedup_scan']:.1f}x) | scan bit-exact: "
                     f"{r['parity_scan_identical']}, full-layer spikes equal: "
                     f"{100 * r['parity_layer_spikes_equal_frac']:.4f}%")
        else:
            line += f" | GPU skipped: {reason}"
        print(line, flush=True)
        rows.append(r)

    meta = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "loadavg": os.getloadavg(), "numpy": np.__version__,
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    print(json.dumps(meta))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"meta": meta, "rows": rows}, fh, indent=1)
    return rows


if __name__ == "__main__":
    main()

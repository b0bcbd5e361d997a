"""Population forward of an MLP: CPU against the numpy GEMM floor, and GPU against CPU.

Configuration of issue 9: population P = 1024, MLP 784-256-10 (ReLU), batch 256,
float32, one shared input batch (what every population learner evaluates). All
figures are measured in one process, best of ``--repeats`` after a warm-up, and
reported as ratios (the machine may be shared):

CPU
  floor        numpy float32 GEMMs of the same products: layer 1 as one
               (B × n)·(n × P·m) GEMM, layer 2 as a batched matmul (no bias, no φ)
  kernels      kernels.dense.dense_population + kernels.activations on float32
               weights already laid out (P, m, n) (what the substrate calls)
  substrate    model.forward(Members(θ), x, ideal substrate): slicing the flat
               float64 θ (P, D) into layers, the float32 cast, then the kernels

GPU (only where CuPy and a CUDA GPU are usable; skipped otherwise)
  cublas       kernels.dense_cuda (CuPy → cuBLAS) + kernels.activations_cuda,
               weights resident on the device (the kernel speed-up)
  numba        the same with the Numba CUDA tiled GEMM (method="numba")
  substrate    model.forward on ``ideal`` with backend="cuda" from host θ
               (includes the host→device copy of the whole population)
  substrate_dev  the same with θ already on the device (a learner that keeps
               its population on the GPU)
  parity       max |GPU − CPU| of the outputs (float32 rounding only)

Speed-ups are given against the CPU kernels (what neurozo runs on the CPU) and
against the CPU GEMM floor (what any CPU code could reach at best).

Run:  python experiments/bench/bench_population_forward.py [--population 1024] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np


def best_of(fn, repeats, sync=None):
    fn()                                  # warm-up (JIT, cuBLAS handles, first touch)
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
    ap.add_argument("--population", type=int, default=1024)
    ap.add_argument("--sizes", type=int, nargs="+", default=[784, 256, 10])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-gpu", action="store_true", help="CPU rows only")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)

    from kernels import activations as act_k
    from kernels import dense as dense_k
    from neurozo.backend import cuda_status
    from neurozo.models.mlp import MLP
    from neurozo.models.population import Members
    from neurozo.substrates import get

    P, B, sizes = args.population, args.batch, list(args.sizes)
    rng = np.random.default_rng(0)
    model = MLP(sizes, activation="relu")
    theta0 = model.init(rng)
    thetas = theta0[None] + 0.01 * rng.standard_normal((P, model.n_params))
    x = rng.random((B, sizes[0]))
    layers = model.layer_weights(Members(thetas))
    Ws = [np.ascontiguousarray(L.W, dtype=np.float32) for L in layers]
    bs = [np.ascontiguousarray(L.b, dtype=np.float32) for L in layers]
    x32 = x.astype(np.float32)
    acts = model.activations
    flops = 2 * P * B * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    r = {"population": P, "sizes": sizes, "batch": B, "gflop_per_forward": flops / 1e9}

    W1flat = Ws[0].reshape(-1, sizes[0])

    def floor():
        h = (x32 @ W1flat.T).reshape(B, P, sizes[1]).transpose(1, 0, 2)
        for W in Ws[1:]:
            h = np.matmul(h, W.transpose(0, 2, 1))
        return h

    def cpu_kernels():
        h = x32[None]
        for W, b, a in zip(Ws, bs, acts):
            h = act_k.apply(a, dense_k.dense_population(h, W, b), inplace=True)
        return h

    sub = get("ideal")

    def cpu_substrate():
        return model.forward(Members(thetas), x, sub, rng)

    r["cpu_floor_s"] = best_of(floor, args.repeats)
    r["cpu_kernels_s"] = best_of(cpu_kernels, args.repeats)
    r["cpu_substrate_s"] = best_of(cpu_substrate, args.repeats)
    ref = cpu_kernels()
    print(f"P={P} MLP {'-'.join(map(str, sizes))} batch {B} ({flops / 1e9:.1f} GFLOP): "
          f"CPU floor {r['cpu_floor_s']:.3f} s | kernels {r['cpu_kernels_s']:.3f} s "
          f"({r['cpu_kernels_s'] / r['cpu_floor_s']:.2f}x floor) | substrate {r['cpu_substrate_s']:.3f} s "
          f"({r['cpu_substrate_s'] / r['cpu_floor_s']:.2f}x floor)", flush=True)

    reason = "disabled by --no-gpu" if args.no_gpu else cuda_status()
    r["gpu"] = reason is None
    if reason is not None:
        print(f"GPU rows skipped: {reason}")
    else:
        import cupy as cp

        from kernels import activations_cuda as act_g
        from kernels import dense_cuda as dense_g

        sync = cp.cuda.Device().synchronize
        Wd = [cp.asarray(W) for W in Ws]
        bd = [cp.asarray(b) for b in bs]
        xd = cp.asarray(x32)[None]

        def gpu(method):
            def f():
                h = xd
                for W, b, a in zip(Wd, bd, acts):
                    h = act_g.apply(a, dense_g.dense_population(h, W, b, method=method), inplace=True,
                                    method="cupy" if method == "cupy" else "numba")
                return h
            return f

        sub_g = get("ideal", backend="cuda")
        th_d = cp.asarray(thetas)
        r["gpu_cublas_s"] = best_of(gpu("cupy"), args.repeats, sync)
        r["gpu_numba_s"] = best_of(gpu("numba"), args.repeats, sync)
        r["gpu_substrate_s"] = best_of(lambda: model.forward(Members(thetas), x, sub_g, rng), args.repeats, sync)
        r["gpu_substrate_dev_s"] = best_of(lambda: model.forward(Members(th_d), x, sub_g, rng), args.repeats, sync)
        out_c = gpu("cupy")().get()
        out_n = gpu("numba")().get()
        out_s = model.forward(Members(thetas), x, sub_g, rng)
        r["parity_max_abs_cublas"] = float(np.abs(out_c - ref).max())
        r["parity_max_abs_numba"] = float(np.abs(out_n - ref).max())
        r["parity_max_abs_substrate"] = float(np.abs(out_s - ref).max())
        r["speedup_kernels_cublas"] = r["cpu_kernels_s"] / r["gpu_cublas_s"]
        r["speedup_vs_cpu_floor_cublas"] = r["cpu_floor_s"] / r["gpu_cublas_s"]
        r["speedup_kernels_numba"] = r["cpu_kernels_s"] / r["gpu_numba_s"]
        r["speedup_substrate_host_pop"] = r["cpu_substrate_s"] / r["gpu_substrate_s"]
        r["speedup_substrate_device_pop"] = r["cpu_substrate_s"] / r["gpu_substrate_dev_s"]
        r["gpu_name"] = cp.cuda.runtime.getDeviceProperties(0)["name"].decode()
        print(f"GPU ({r['gpu_name']}): cuBLAS {r['gpu_cublas_s'] * 1e3:.2f} ms "
              f"({r['speedup_kernels_cublas']:.0f}x CPU kernels, {r['speedup_vs_cpu_floor_cublas']:.0f}x the CPU GEMM floor) | "
              f"Numba CUDA {r['gpu_numba_s'] * 1e3:.2f} ms "
              f"({r['speedup_kernels_numba']:.0f}x) | substrate from host θ {r['gpu_substrate_s'] * 1e3:.1f} ms "
              f"({r['speedup_substrate_host_pop']:.1f}x CPU substrate) | θ on device "
              f"{r['gpu_substrate_dev_s'] * 1e3:.1f} ms ({r['speedup_substrate_device_pop']:.0f}x) | parity max|Δ| "
              f"cuBLAS {r['parity_max_abs_cublas']:.2e}, Numba {r['parity_max_abs_numba']:.2e}, "
              f"substrate {r['parity_max_abs_substrate']:.2e}", flush=True)

    meta = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "loadavg": os.getloadavg(), "numpy": np.__version__,
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    print(json.dumps(meta))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"meta": meta, "rows": [r]}, fh, indent=1)
    return r


if __name__ == "__main__":
    main()

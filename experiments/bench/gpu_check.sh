#!/usr/bin/env bash
# neurozo GPU check (issue 9): one call on a machine with an NVIDIA GPU.
#
#   bash experiments/bench/gpu_check.sh [OUTDIR]        (from anywhere; OUTDIR default $OUT or /tmp/neurozo-gpu-check)
#
# 1. reports the GPU, installs what is missing (CuPy for the machine's CUDA major version,
#    numba-cuda, test deps) — from wheels in ./.whl when the machine is offline, else pip;
# 2. runs the GPU parity tests for real on the GPU (tests/test_gpu_parity*.py: every Numba
#    CUDA kernel and every CuPy path against its CPU twin, backend="cuda" end to end, and
#    the CUDASIM suite once more);
# 3. runs the GPU benchmarks, each against the CPU in the same process:
#    population forward (P = 1024, MLP 784-256-10, batch 256), the LIF layer at n = 4096
#    (T = 500, batch 16), and the CBO benchmark (Rastrigin d = 20, M = 100, N = 40);
# 4. prints a summary and writes it with the logs and JSON results to OUTDIR.
# Every step has its own time limit and a failing step does not stop the others; the
# exit status is non-zero when the parity tests failed.
# Environment: PYTHON (default python3); GPU_CHECK_NO_INSTALL=1 installs nothing;
# GPU_CHECK_QUICK=1 shrinks the benchmarks (P = 64, n = 512, fewer CBO steps) to try the script out.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
ROOT=$PWD
OUTDIR="${1:-${OUT:-/tmp/neurozo-gpu-check}}"
mkdir -p "$OUTDIR"
PY="${PYTHON:-python3}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
log() { echo "[gpu_check $(date +%H:%M:%S)] $*"; }
T0=$(date +%s)

log "repo $ROOT, python $($PY -c 'import sys; print(sys.version.split()[0], sys.executable)')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || log "nvidia-smi not found"
CUDA_MAJOR=$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9]*\).*/\1/p' | head -1)
CUDA_MAJOR=${CUDA_MAJOR:-12}
[ "$CUDA_MAJOR" -ge 13 ] 2>/dev/null && CUPY_PKG=cupy-cuda13x || CUPY_PKG=cupy-cuda12x

# ---------------------------------------------------------------- 1. install what is missing
NO_INSTALL=${GPU_CHECK_NO_INSTALL:-0}
pip_install() { [ "$NO_INSTALL" = 1 ] && { log "not installing $* (GPU_CHECK_NO_INSTALL=1)"; return 1; }
                timeout 300 $PY -m pip install -q "$@"; }
if [ "$NO_INSTALL" != 1 ] && ls .whl/*.whl >/dev/null 2>&1; then
    log "installing carried wheels from .whl/"
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/neurozo-site .whl/*.whl \
        && export PYTHONPATH="$PYTHONPATH:/tmp/neurozo-site"
fi
have() { $PY -c "import $1" >/dev/null 2>&1; }
for spec in "cupy:$CUPY_PKG" "numba:numba" "numpy:numpy" "scipy:scipy" "pandas:pandas" "sklearn:scikit-learn" \
            "tqdm:tqdm" "matplotlib:matplotlib" "pytest:pytest"; do
    mod=${spec%%:*}; pkg=${spec#*:}
    have "$mod" || { log "installing $pkg"; pip_install "$pkg" || log "could not install $pkg"; }
done
if ! $PY -c "from numba import cuda; assert cuda.is_available()" >/dev/null 2>&1; then
    log "Numba sees no CUDA device: trying numba-cuda[cu$CUDA_MAJOR]"
    pip_install "numba-cuda[cu$CUDA_MAJOR]" || log "could not install numba-cuda"
fi
$PY - <<'EOF' 2>&1 | tee "$OUTDIR/versions.txt"
import importlib, platform
for m in ("numpy", "numba", "cupy", "scipy", "pandas", "pytest"):
    try:
        print(f"{m} {importlib.import_module(m).__version__}")
    except Exception as e:
        print(f"{m} MISSING ({type(e).__name__}: {e})")
try:
    from numba import cuda
    import kernels  # noqa: F401  (numpy-compat shim before numba.cuda compiles anything)
    name = cuda.gpus[0].name if cuda.is_available() else ""
    print("numba.cuda available:", cuda.is_available(), name.decode() if isinstance(name, bytes) else name)
except Exception as e:
    print("numba.cuda:", type(e).__name__, e)
from neurozo.backend import cuda_status
print("neurozo cuda_status:", cuda_status() or "usable")
print("cpus:", __import__("os").cpu_count(), "machine:", platform.machine())
EOF

# ---------------------------------------------------------------- 2. parity tests on the GPU
# The CUDASIM re-run of every family (tests/test_gpu_parity.py::test_cudasim_parity, about
# 80 s of CPU there) is CI's job; GPU_CHECK_CUDASIM=1 runs it here too.
PARITY_K=(); [ "${GPU_CHECK_CUDASIM:-0}" = 1 ] || PARITY_K=(-k "not cudasim_parity")
log "parity tests on the GPU${PARITY_K:+ (CUDASIM re-run left to CI)}"
timeout 240 $PY -m pytest -q -rfEs -p no:cacheprovider --junitxml="$OUTDIR/parity.xml" tests/test_gpu_parity*.py "${PARITY_K[@]}" \
    2>&1 | tee "$OUTDIR/parity.log"
PARITY_RC=${PIPESTATUS[0]}
log "parity exit status $PARITY_RC"

# ---------------------------------------------------------------- 3. benchmarks
run_bench() {  # name, time limit, command...
    local name=$1 limit=$2; shift 2
    if [ ! -f "${2:-}" ]; then log "$name: ${2:-?} not found, skipped"; return; fi
    log "benchmark $name"
    timeout "$limit" "$@" 2>&1 | tee "$OUTDIR/bench_$name.log"
    log "$name exit status ${PIPESTATUS[0]}"
}
if [ "${GPU_CHECK_QUICK:-0}" = 1 ]; then POP=64; LIFN=512; CBO_ARGS="--steps 200"; else POP=1024; LIFN=4096; CBO_ARGS=""; fi
run_bench population 150 $PY experiments/bench/bench_population_forward.py --population $POP \
    --json "$OUTDIR/bench_population.json"
run_bench lif 120 $PY experiments/bench/bench_gpu_lif.py --sizes $LIFN --json "$OUTDIR/bench_lif.json"
run_bench cbo 150 $PY experiments/bench/bench_gpu_cbo.py $CBO_ARGS --json "$OUTDIR/bench_cbo.json"

# ---------------------------------------------------------------- 4. summary
$PY - "$OUTDIR" "$PARITY_RC" "$(( $(date +%s) - T0 ))" <<'EOF' 2>&1 | tee "$OUTDIR/summary.md"
import json, sys, xml.etree.ElementTree as ET
from pathlib import Path
out, rc, secs = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
print("# neurozo GPU check summary\n")
print((out / "versions.txt").read_text() if (out / "versions.txt").exists() else "")
if (out / "parity.xml").exists():
    cases = list(ET.parse(out / "parity.xml").getroot().iter("testcase"))
    st = {"passed": 0, "failure": 0, "error": 0, "skipped": 0}
    for tc in cases:
        st[next((c.tag for c in tc if c.tag in st), "passed")] += 1
    print(f"parity tests: {st['passed']} passed, {st['failure']} failed, {st['error']} errors, "
          f"{st['skipped']} skipped (pytest exit {rc})")
    for tc in cases:
        for c in tc:
            if c.tag in ("failure", "error", "skipped"):
                print(f"  {c.tag}: {tc.get('classname')}::{tc.get('name')}: {(c.get('message') or '')[:160]}")
else:
    print(f"parity tests: no report (pytest exit {rc})")
def rows(name):
    p = out / f"bench_{name}.json"
    return json.loads(p.read_text())["rows"] if p.exists() else []
for r in rows("population"):
    print(f"\npopulation forward P={r['population']} MLP {'-'.join(map(str, r['sizes']))} batch {r['batch']}:"
          f" CPU kernels {r['cpu_kernels_s']:.3f} s, CPU substrate {r['cpu_substrate_s']:.3f} s,"
          f" numpy floor {r['cpu_floor_s']:.3f} s")
    if r.get("gpu"):
        print(f"  GPU cuBLAS {r['gpu_cublas_s']*1e3:.2f} ms -> {r['speedup_kernels_cublas']:.0f}x CPU kernels"
              f" (goal >= 50x), {r['speedup_vs_cpu_floor_cublas']:.0f}x the CPU GEMM floor; Numba CUDA {r['gpu_numba_s']*1e3:.2f} ms -> {r['speedup_kernels_numba']:.0f}x;"
              f" substrate from host theta {r['speedup_substrate_host_pop']:.1f}x, theta on device"
              f" {r['speedup_substrate_device_pop']:.0f}x; parity max|dy| {r['parity_max_abs_cublas']:.1e}")
for r in rows("lif"):
    line = (f"\nLIF n={r['n']} T={r['T']} batch {r['batch']}: CPU neurozo {r['cpu_neurozo_s']:.3f} s"
            f" (floor {r['cpu_floor_s']:.3f} s)")
    if "gpu_layer_s" in r:
        line += (f"; GPU {r['gpu_layer_s']*1e3:.1f} ms -> {r['speedup_layer']:.1f}x; scan bit-exact"
                 f" {r['parity_scan_identical']}")
    print(line)
for r in rows("cbo"):
    print("\nCBO: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()))
print(f"\ntotal {secs} s; logs and JSON in {out}")
EOF
exit $(( PARITY_RC != 0 ))

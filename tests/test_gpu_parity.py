"""GPU backend: parity of every GPU kernel with its CPU twin, and the cuda plumbing.

* ``test_cudasim_parity[<family>]``: every ``tests/test_gpu_parity_<family>.py`` runs in
  one subprocess with ``NUMBA_ENABLE_CUDASIM=1`` (it must be set before numba is
  imported, and this process has numba imported already): every Numba CUDA kernel
  against its CPU twin, on the CPU. A failure, an error, a skipped test or no test at
  all for a family inside the subprocess fails that family's test here, with the
  subprocess's output in the message.
* The placement tests check, without a GPU, that a ``backend="cuda"`` substrate hands
  device arrays only to models that declare ``gpu = True`` and host arrays back.
* Tests marked ``gpu`` need CuPy and a CUDA GPU and skip cleanly without them; they
  check the CuPy paths (cuBLAS, ElementwiseKernels) and ``backend="cuda"`` end to end.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import neurozo
from neurozo.backend import cuda_status, to_numpy

ROOT = Path(__file__).resolve().parents[1]
SIM_FILES = sorted(p for p in (ROOT / "tests").glob("test_gpu_parity_*.py"))
NO_GPU = cuda_status()
gpu = pytest.mark.skipif(NO_GPU is not None, reason=f"no usable CUDA GPU: {NO_GPU}")


# --------------------------------------------------------------------------- CUDASIM parity


@pytest.fixture(scope="module")
def cudasim_run(tmp_path_factory):
    """One simulator subprocess for every parity file (the interpreter start is paid once)."""
    xml = tmp_path_factory.mktemp("cudasim") / "junit.xml"
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTEST_ADDOPTS", None)
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfEs",
                        f"--junitxml={xml}", *map(str, SIM_FILES)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    cases = {}
    if xml.exists():
        for tc in ET.parse(xml).getroot().iter("testcase"):
            mod = tc.get("classname", "").split(".")[-1]
            status = next((c.tag for c in tc if c.tag in ("failure", "error", "skipped")), "passed")
            cases.setdefault(mod, []).append((tc.get("name"), status))
    return r, cases


@pytest.mark.parametrize("path", SIM_FILES, ids=[p.stem.replace("test_gpu_parity_", "") for p in SIM_FILES])
def test_cudasim_parity(cudasim_run, path):
    r, cases = cudasim_run
    out = (r.stdout + r.stderr)[-6000:]
    mine = cases.get(path.stem, [])
    assert mine, f"no test of {path.name} ran under CUDASIM (exit {r.returncode}):\n{out}"
    bad = [(n, s) for n, s in mine if s != "passed"]
    assert not bad, f"CUDASIM parity in {path.name}: {bad}\n{out}"


def test_cudasim_subprocess_exit_status(cudasim_run):
    r, _ = cudasim_run
    assert r.returncode == 0, (r.stdout + r.stderr)[-6000:]


def test_every_gpu_kernel_family_has_a_parity_file():
    """Each kernels/<family>_cuda.py has tests/test_gpu_parity_<family>.py."""
    families = sorted(p.stem[:-5] for p in (ROOT / "kernels").glob("*_cuda.py"))
    assert families, "no GPU kernel twins found"
    tested = {p.stem.replace("test_gpu_parity_", "") for p in SIM_FILES}
    assert set(families) <= tested, f"GPU families without a parity test: {sorted(set(families) - tested)}"


# --------------------------------------------------------------------------- placement (no GPU needed)


class _Dev(np.ndarray):
    """Stands in for a device array: a numpy subclass that a host copy turns back into ndarray."""

    def get(self):
        return np.asarray(self)


def _fake_cuda(sub):
    sub.backend = "cuda"
    sub.xp = types.SimpleNamespace(asarray=lambda a: np.asarray(a).view(_Dev))
    return sub


def _population(model, P, rng):
    from neurozo.models.population import Members

    return Members(np.stack([model.init(rng) for _ in range(P)]))


def test_cuda_substrate_places_device_arrays_only_for_gpu_models(monkeypatch):
    from neurozo.models.mlp import MLP
    from neurozo.substrates import get

    model = MLP([6, 5, 3])
    rng = np.random.default_rng(0)
    pop = _population(model, 4, rng)
    x = rng.standard_normal((7, 6))
    ref = model.forward(pop, x, get("ideal"), rng)

    sub = _fake_cuda(get("ideal"))
    seen = []
    syn, neu = sub.synapse, sub.neuron
    monkeypatch.setattr(type(syn), "gpu", True)
    monkeypatch.setattr(type(neu), "gpu", False)   # a neuron model without a GPU path
    read, act = syn.read, neu.activate

    def spy_read(prog, h, *a, **k):
        seen.append(("read", type(h), type(prog.W)))
        return read(prog, np.asarray(h), *a, **k).view(_Dev)

    def spy_act(z, *a, **k):
        seen.append(("activate", type(z)))
        return act(z, *a, **k)

    monkeypatch.setattr(syn, "read", spy_read)
    monkeypatch.setattr(neu, "activate", spy_act)
    out = model.forward(pop, x, sub, rng)
    assert type(out) is np.ndarray
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6)
    reads = [s for s in seen if s[0] == "read"]
    acts = [s for s in seen if s[0] == "activate"]
    assert len(reads) == len(acts) == 2
    assert all(t is _Dev and w is _Dev for _, t, w in reads)      # the GPU synapse got device arrays
    assert all(t is np.ndarray for _, t in acts)                   # the CPU neuron got host arrays


def test_cuda_substrate_records_and_node_noise_on_host(monkeypatch):
    from neurozo.models.mlp import MLP
    from neurozo.models.population import Members
    from neurozo.substrates import get

    model = MLP([4, 3, 2])
    rng = np.random.default_rng(1)
    th = _population(model, 3, rng).thetas
    noise = [rng.standard_normal((3, 5, 3)), None]
    x = rng.standard_normal((5, 4))
    cpu = get("ideal")
    with cpu.recording() as rec_cpu:
        ref = model.forward(Members(th, noise), x, cpu, rng)
    sub = _fake_cuda(get("ideal"))
    monkeypatch.setattr(type(sub.synapse), "gpu", True)
    monkeypatch.setattr(type(sub.neuron), "gpu", True)
    with sub.recording() as rec:
        out = model.forward(Members(th, noise), x, sub, rng)
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6)
    assert len(rec) == len(rec_cpu) == 2
    for (h, z), (hc, zc) in zip(rec, rec_cpu):
        assert type(h) is np.ndarray and type(z) is np.ndarray
        np.testing.assert_allclose(z, zc, rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------- errors without a GPU


@pytest.mark.skipif(NO_GPU is None, reason="a GPU is present")
def test_cuda_substrate_without_gpu_is_one_line_error():
    with pytest.raises(RuntimeError) as e:
        neurozo.substrates.get("ideal", backend="cuda")
    msg = str(e.value)
    assert "\n" not in msg and "backend='cuda'" in msg and ("CuPy" in msg or "CUDA" in msg)


@pytest.mark.skipif(NO_GPU is None, reason="a GPU is present")
def test_cupy_method_without_cupy_names_it():
    pytest.importorskip("numba")
    from kernels import dense_cuda

    if dense_cuda.cupy_or_none() is not None:
        pytest.skip("CuPy is importable here")
    with pytest.raises(RuntimeError, match="CuPy"):
        dense_cuda.dense_population(np.zeros((1, 2, 3)), np.zeros((2, 4, 3)), np.zeros((2, 4)), method="cupy")


# --------------------------------------------------------------------------- CuPy-only (real GPU)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("method", ["cupy", "numba"])
@pytest.mark.parametrize("shared", [True, False])
def test_cupy_dense_parity(method, shared):
    import cupy as cp

    from kernels import dense, dense_cuda

    rng = np.random.default_rng(2)
    P, B, n, m, r = 7, 33, 45, 19, 3
    x = rng.standard_normal((1 if shared else P, B, n)).astype(np.float32)
    W, b = rng.standard_normal((P, m, n)).astype(np.float32), rng.standard_normal((P, m)).astype(np.float32)
    got = dense_cuda.dense_population(cp.asarray(x), cp.asarray(W), cp.asarray(b), method=method)
    assert isinstance(got, cp.ndarray)
    np.testing.assert_allclose(got.get(), dense.dense_population(x, W, b), rtol=1e-4, atol=1e-4)
    W0, A, Bf = (rng.standard_normal(s).astype(np.float32) for s in ((m, n), (P, m, r), (P, n, r)))
    got = dense_cuda.dense_lowrank(*(cp.asarray(a) for a in (x, W0, b, A, Bf)), 0.3, method=method)
    np.testing.assert_allclose(got.get(), dense.dense_lowrank(x, W0, b, A, Bf, 0.3), rtol=1e-4, atol=1e-4)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("method", ["cupy", "numba"])
def test_cupy_activation_parity(method):
    import cupy as cp

    from kernels import activations, activations_cuda

    z = (4 * np.random.default_rng(3).standard_normal((5, 301))).astype(np.float32)
    for name in activations.ACTIVATIONS:
        got = activations_cuda.apply(name, cp.asarray(z), method=method)
        np.testing.assert_allclose(got.get(), activations.apply(name, z), rtol=1e-6, atol=1e-6, err_msg=name)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("lowrank", [False, True])
def test_cuda_ideal_substrate_matches_cpu(lowrank):
    from neurozo.models.mlp import MLP
    from neurozo.models.population import LowRank, Members
    from neurozo.substrates import get

    model = MLP([64, 32, 10])
    rng = np.random.default_rng(4)
    th = np.stack([model.init(rng) for _ in range(16)])
    if lowrank:
        pop = LowRank(th[0], {"W0": (rng.standard_normal((16, 32, 2)), rng.standard_normal((16, 64, 2)))},
                      0.1, th - th[0])
    else:
        pop = Members(th)
    x = rng.random((50, 64))
    cpu, dev = get("ideal"), get("ideal", backend="cuda")
    ref = model.forward(pop, x, cpu, rng)
    out = model.forward(pop, x, dev, rng)
    assert type(out) is np.ndarray
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
    assert dev.costs.counts == cpu.costs.counts


@pytest.mark.gpu
@gpu
def test_cuda_backend_run_finishes_and_starts_like_cpu():
    kw = dict(task="digits", learner={"name": "openes", "popsize": 16}, budget=320, seed=0)
    cpu = neurozo.run(**kw)
    dev = neurozo.run(backend="cuda", **kw)
    assert dev.status == "finished" and dev.backend == "cuda"
    # the first logged row is the untrained centre: the same network on both backends
    np.testing.assert_allclose(dev.history["test_loss"].iloc[0], cpu.history["test_loss"].iloc[0], rtol=1e-5)
    assert to_numpy(dev.theta).shape == cpu.theta.shape


def test_kernels_for_picks_the_cpu_family_for_host_arrays():
    from kernels import activations, dense
    from neurozo.backend import is_cupy, kernels_for

    a = np.zeros(3)
    assert kernels_for(dense, a) is dense and kernels_for(activations, a, a) is activations
    assert not is_cupy(a) and not is_cupy(a.view(_Dev))

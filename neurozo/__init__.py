"""neurozo — a testbed for learning on hardware that backpropagation cannot reach.

    import neurozo
    res = neurozo.run(task="digits", substrate="ideal", learner="openes", budget=20_000, seed=0)
    res.history            # pandas table, one row per logged step

Registries: ``neurozo.tasks``, ``neurozo.substrates``, ``neurozo.models``,
``neurozo.learners`` — each with ``get(name, **kw)`` and ``names()``.
"""

import os as _os

# OpenBLAS's worker threads spin-wait for ~2^28 cycles after every GEMM; on a small
# machine they then steal the cores of the Numba parallel region that follows (the
# crossbar read measured 16x the GEMM floor on 2 threads, 2.6x with 2^16 cycles; a much
# shorter timeout slows back-to-back GEMMs instead).
# OpenBLAS reads this when numpy first loads it: effective when neurozo is imported
# before numpy (CLI, sweep workers, tests); set it in the shell otherwise.
_os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "16")

__version__ = "0.1.0"

from . import learners, models, substrates, tasks  # noqa: E402
from .run import Result, build, run  # noqa: E402
from .store import ResultStore  # noqa: E402

__all__ = ["run", "build", "Result", "ResultStore", "tasks", "substrates", "models", "learners", "__version__"]

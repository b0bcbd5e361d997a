"""neurozo — a testbed for learning on hardware that backpropagation cannot reach.

    import neurozo
    res = neurozo.run(task="digits", substrate="ideal", learner="openes", budget=20_000, seed=0)
    res.history            # pandas table, one row per logged step

Registries: ``neurozo.tasks``, ``neurozo.substrates``, ``neurozo.models``,
``neurozo.learners`` — each with ``get(name, **kw)`` and ``names()``.
"""

# first: kernels sets OPENBLAS_THREAD_TIMEOUT before numpy loads OpenBLAS (see kernels/__init__.py)
import kernels as _kernels  # noqa: F401

__version__ = "0.1.0"

from . import learners, models, substrates, tasks  # noqa: E402
from .run import Result, build, run  # noqa: E402
from .store import ResultStore  # noqa: E402

__all__ = ["run", "build", "Result", "ResultStore", "tasks", "substrates", "models", "learners", "__version__"]

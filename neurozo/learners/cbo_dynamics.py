"""Consensus-based optimization of a black-box objective: M independent runs of N particles in R^d.

Pinnau, Totzeck, Tse & Martin (2017), "A consensus-based model for global
optimization and its mean-field limit"; Carrillo, Jin, Li & Zhu (2021), "A
consensus-based global optimization method for high dimensional machine
learning problems"; array layout, defaults and heuristics as CBXpy 1.0
(Bailo, Barbaro, Gomes, Riedl, Roith, Totzeck & Vaes 2024).

For each run m and step:

    E_k   = f(x_k) on the particle batch k ∈ I_m (all N, or B drawn without replacement)
    c     = Σ_k w_k x_k,   w = softmax(−α E) by log-sum-exp (non-finite E ⇒ w = 0)
    x_i  ← x_i − λ dt h_i (x_i − c) + σ·noise_i         for the movers (the batch: "partial", or all N)

with noise isotropic √dt‖D‖ξ, anisotropic √dt D⊙ξ, covariance √(2dt) C^{1/2}ξ or
sampling √(2dt(1+α)) C^{1/2}ξ (C the weighted covariance of the batch, CBS),
D = h_i (x_i − c), and h_i = 1, or the Heaviside correction 1[f(x_i) > f(c)]
(``heaviside``) or ½(1 + tanh((f(x_i) − f(c))/ε)) (``heaviside_reg``), which
costs one evaluation of f(c) per run and step. Schemes: ``cbo`` (above),
``hopping`` (x_i ← c + σξ, Riedl et al. 2023) and ``polar`` (each particle its
own consensus c_i with weights ∝ exp(−α E_k − a·k(x_i, x_k)), Bungert, Roith &
Wacker 2022; a = α when ``kernel_alpha``, else 1; k = ‖·‖²/(2κ²) Gaussian or
‖·‖/κ Laplace).

Schedules of α and σ: see ``cbo_schedules``. Resampling heuristics add
σ_r √dt ξ to every particle of a run when its consensus stagnates
(max over the last ``resample_patience`` steps of ‖c_t − c_{t−1}‖ <
``resample_tol``) or when its best value has not improved for
``resample_patience`` steps. Termination is decided per run after every step
(``max_it``, ``max_eval``, ``energy_tol`` on the best value of the step,
``diff_tol`` on ‖x_new − x_old‖_F / N, and ``stagnation``: the standard
deviation of f(c) over the last ``stagnation_patience`` steps below
``stagnation_tol``); a finished run is switched off and no longer evaluated.

The update itself is one fused Numba kernel (``kernels/cbo.py``): consensus,
noise draw and Euler–Maruyama step in one call, seeded per (run, particle,
step), so the result does not depend on the number of threads.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import numpy as np

from kernels import cbo as _k

from .._validate import check_bool, check_choice, check_float, check_int, check_seed, fail
from . import cbo_schedules as sched

__all__ = ["CBOConfig", "CBODynamics", "NOISES", "SCHEMES", "CORRECTIONS", "RESAMPLINGS"]

NOISES = tuple(_k.NOISES)
SCHEMES = ("cbo", "hopping", "polar")
CORRECTIONS = ("none", "heaviside", "heaviside_reg")
RESAMPLINGS = ("consensus_stagnation", "no_improvement")
TERMINATIONS = ("max_it", "max_eval", "energy_tol", "diff_tol", "stagnation")


def _opt(check, name, value, *a, **kw):
    return None if value is None else check(name, value, *a, **kw)


def check_dynamics(p) -> None:
    """Checks of the parameters the dynamics and the network learner share (ValueError naming each)."""
    check_float("dt", p.dt, 0, lo_open=True)
    check_float("lam", p.lam, 0)
    check_float("sigma", p.sigma, 0)
    check_float("alpha", p.alpha, 0)
    check_choice("noise", p.noise, NOISES)
    check_choice("scheme", p.scheme, SCHEMES)
    check_choice("correction", p.correction, CORRECTIONS)
    check_float("correction_eps", p.correction_eps, 0, lo_open=True)
    check_choice("polar_kernel", p.polar_kernel, ("gaussian", "laplace"))
    check_float("kappa", p.kappa, 0, lo_open=True)
    check_bool("kernel_alpha", p.kernel_alpha)
    check_choice("alpha_schedule", p.alpha_schedule, sched.ALPHA_SCHEDULES)
    check_float("alpha_factor", p.alpha_factor, 0, lo_open=True)


@dataclass(frozen=True)
class CBOConfig:
    """Every setting of the dynamics (CBXpy 1.0 defaults where CBXpy has the feature)."""

    dt: float = 0.01
    lam: float = 1.0
    sigma: float = 5.1
    alpha: float = 1.0
    noise: str = "isotropic"
    scheme: str = "cbo"
    correction: str = "none"
    correction_eps: float = 1e-3
    polar_kernel: str = "gaussian"
    kappa: float = 1.0
    kernel_alpha: bool = True
    alpha_schedule: str = "multiply"
    alpha_factor: float = 1.05
    alpha_min: float = 1e-5
    alpha_max: float = 1e5
    eta: float = 0.5
    sigma_schedule: str = "constant"
    batch_size: Optional[int] = None
    batch_partial: bool = True
    epoch_steps: Optional[int] = None
    resample: Tuple[str, ...] = ()
    resample_patience: int = 5
    resample_tol: float = 1e-4
    resample_norm: str = "l2"
    resample_sigma: Optional[float] = 0.1
    max_it: Optional[int] = 1000
    max_eval: Optional[int] = None
    energy_tol: Optional[float] = None
    diff_tol: Optional[float] = None
    stagnation_patience: Optional[int] = None
    stagnation_tol: float = 1e-9
    clip: float = 1e8

    def __post_init__(self):
        check_dynamics(self)
        check_float("alpha_min", self.alpha_min, 0, lo_open=True)
        check_float("alpha_max", self.alpha_max, self.alpha_min)
        check_float("eta", self.eta, 0, 1, lo_open=True)
        check_choice("sigma_schedule", self.sigma_schedule, sched.SIGMA_SCHEDULES)
        _opt(check_int, "batch_size", self.batch_size, 1)
        check_bool("batch_partial", self.batch_partial)
        _opt(check_int, "epoch_steps", self.epoch_steps, 1)
        if isinstance(self.resample, str) or not isinstance(self.resample, (tuple, list)):
            fail("resample", self.resample, f"must be a list of names from {list(RESAMPLINGS)}")
        for r in self.resample:
            check_choice("resample", r, RESAMPLINGS)
        object.__setattr__(self, "resample", tuple(self.resample))
        check_int("resample_patience", self.resample_patience, 1)
        check_float("resample_tol", self.resample_tol, 0)
        check_choice("resample_norm", self.resample_norm, ("l2", "linf"))
        _opt(check_float, "resample_sigma", self.resample_sigma, 0)
        _opt(check_int, "max_it", self.max_it, 0)
        _opt(check_int, "max_eval", self.max_eval, 0)
        _opt(check_float, "energy_tol", self.energy_tol)
        _opt(check_float, "diff_tol", self.diff_tol, 0)
        _opt(check_int, "stagnation_patience", self.stagnation_patience, 2)
        check_float("stagnation_tol", self.stagnation_tol, 0)
        check_float("clip", self.clip, 0, lo_open=True)

    @classmethod
    def fields(cls):
        return [f.name for f in dataclasses.fields(cls)]


class CBODynamics:
    """CBO on M runs × N particles × d dimensions; a stateful object like CBXpy's dynamics.

    Parameters
    ----------
    f : callable X (M', B, d) → (M', B), or a function task (anything with ``evaluate``).
        It is called once per step on the particle batches of the active runs only.
    x : initial positions (M, N, d) (or (N, d) for M = 1); otherwise drawn U(init_low, init_high)
        with shape (M, N, d) from ``seed``.
    seed : the only source of randomness (noise, particle batches, initial positions).
    track_update_diff : keep ``update_diff`` = ‖x_new − x_old‖_F / N per run up to date (always on with
        ``diff_tol``; otherwise NaN, as it costs a sequential sum in the kernel).
    **config : the fields of :class:`CBOConfig`.

    After ``optimize()``: ``best_x`` (M, d) and ``best_energy`` (M,) — the best particle seen per
    run — ``consensus`` (M, d), ``alpha`` (M,), ``num_f_eval`` (M,), ``term_reason`` (M,).
    """

    def __init__(self, f: Callable, x: Optional[np.ndarray] = None, *, M: int = 1, N: int = 20,
                 d: Optional[int] = None, init_low: float = -1.0, init_high: float = 1.0, seed: int = 0,
                 track_update_diff: bool = False, **config):
        unknown = sorted(set(config) - set(CBOConfig.fields()))
        if unknown:
            raise ValueError(f"CBODynamics: unknown parameter(s) {unknown}; allowed: {sorted(CBOConfig.fields())}")
        self.config = cfg = CBOConfig(**config)
        self.seed = check_seed("seed", seed)
        check_bool("track_update_diff", track_update_diff)
        if getattr(f, "kind", None) == "function" and hasattr(f, "evaluate"):
            f = f.evaluate  # a neurozo function task
        if not callable(f):
            fail("f", f, "must be callable (X of shape (M, B, d) → (M, B)) or a function task")
        self._f = f
        ss = np.random.SeedSequence(self.seed)
        seeds = ss.generate_state(2, np.uint64)
        self._seed_step, self._seed_resample = int(seeds[0]), int(seeds[1])
        kid_batches, kid_init = ss.spawn(2)
        self._batch_rng = np.random.default_rng(kid_batches)
        if x is None:
            M = check_int("M", M, 1)
            N = check_int("N", N, 2)
            if d is None:
                fail("d", d, "must be given (an integer >= 1) when x is not")
            d = check_int("d", d, 1)
            lo, hi = check_float("init_low", init_low), check_float("init_high", init_high)
            if not lo < hi:
                fail("init_high", init_high, f"must be > init_low={init_low}")
            x = np.random.default_rng(kid_init).uniform(lo, hi, (M, N, d))
        else:
            x = np.array(x, dtype=np.float64, order="C")
            if x.ndim == 2:
                x = x[None]
            if x.ndim != 3:
                fail("x", f"array of shape {x.shape}", "must have shape (M, N, d) or (N, d)")
            check_int("N", x.shape[1], 2)
            check_int("d", x.shape[2], 1)
            if not np.all(np.isfinite(x)):
                fail("x", "array with non-finite entries", "initial positions must be finite")
        self.x = x
        self.M, self.N, self.d = M, N, d = x.shape
        B = N if cfg.batch_size is None else cfg.batch_size
        if B > N:
            fail("batch_size", B, f"must be <= the number of particles N={N}")
        self.batch_size = B
        self.epoch_steps = cfg.epoch_steps or -(-N // B)
        self._batched = B < N
        self._all_idx = np.tile(np.arange(N, dtype=np.int64), (M, 1))
        self._perm = np.empty((M, 0), dtype=np.int64)
        self._polar = _k.POLAR_KERNELS[cfg.polar_kernel] if cfg.scheme == "polar" else 0
        self._noise = cfg.noise
        self._kscheme = "hopping" if cfg.scheme == "hopping" else "cbo"
        # state
        self.alpha = np.full(M, cfg.alpha)
        self.sigma = cfg.sigma
        self.energy = np.full((M, N), np.inf)
        Nc = N if self._polar else 1
        self._c = np.repeat(x.mean(axis=1, keepdims=True), Nc, axis=1)
        self.best_x = x[:, 0].copy()
        self.best_energy = np.full(M, np.inf)
        self.f_min = np.full(M, np.inf)
        self.active = np.ones(M, dtype=bool)
        self.term_reason = np.array([""] * M, dtype=object)
        self.num_f_eval = np.zeros(M, dtype=np.int64)
        self._want_diff = cfg.diff_tol is not None or track_update_diff
        self.update_diff = np.full(M, np.inf if self._want_diff else np.nan)
        self.it = 0
        self.epoch = 0
        self.t = 0.0
        self.num_resampled = np.zeros(M, dtype=np.int64)
        self._c_moves = []            # recent consensus moves (for resampling), each (M,)
        self._wait = np.zeros(M, dtype=np.int64)
        self._best_seen = np.full(M, np.inf)
        self._fc_hist = []            # recent f(consensus) (stagnation termination), each (M,)
        self.weights = None
        self.check_termination()

    # ------------------------------------------------------------------ views
    @property
    def consensus(self) -> np.ndarray:
        """(M, d) consensus of the last step (for ``polar``: the mean of the particles' own consensus points)."""
        return self._c[:, 0] if not self._polar else self._c.mean(axis=1)

    @property
    def local_consensus(self) -> np.ndarray:
        """(M, 1 or N, d) as the kernel holds it."""
        return self._c

    def evaluate(self, X: np.ndarray) -> np.ndarray:
        E = np.asarray(self._f(X), dtype=np.float64)
        if E.shape != X.shape[:2]:
            fail("f", f"output of shape {E.shape}", f"must return one value per particle, shape {X.shape[:2]}")
        return E

    # ------------------------------------------------------------------ step
    def _batch(self):
        if not self._batched:
            return self._all_idx, self._all_idx
        B = self.batch_size
        if self._perm.shape[1] < B:
            self._perm = self._batch_rng.permuted(self._all_idx, axis=1)
        idx = np.ascontiguousarray(self._perm[:, :B])
        self._perm = self._perm[:, B:]
        return idx, (idx if self.config.batch_partial else self._all_idx)

    def step(self) -> bool:
        """One step of every active run; returns False when no run is active."""
        if not self.active.any():
            return False
        cfg = self.config
        act = self.active
        all_on = bool(act.all())
        idx, mov = self._batch()
        if not self._batched:
            X = self.x if all_on else self.x[act]
        else:
            X = np.take_along_axis(self.x, idx[:, :, None], axis=1)
            if not all_on:
                X = X[act]
        Ea = self.evaluate(X)
        if all_on:
            self.num_f_eval += idx.shape[1]
            E = Ea
        else:
            self.num_f_eval[act] += idx.shape[1]
            E = np.full(idx.shape, np.inf)
            E[act] = Ea
        if self._batched:
            rows = np.flatnonzero(act)
            self.energy[rows[:, None], idx[rows]] = Ea
        elif all_on:
            np.copyto(self.energy, Ea)
        else:
            self.energy[act] = Ea
        if cfg.alpha_schedule == "ess":
            sched.ess_alpha(E, cfg.eta, cfg.alpha_min, cfg.alpha_max, active=act, out=self.alpha)

        h = None
        need_fc = cfg.correction != "none" or cfg.stagnation_patience is not None
        if cfg.correction != "none":
            c, w = _k.consensus(self.x, E, self.alpha, idx, polar=cfg.polar_kernel if self._polar else "none",
                                kappa=cfg.kappa, kernel_alpha=cfg.kernel_alpha)
            fc = self._f_consensus(c)
            h = self._correction(fc)
            # the kernel recomputes the same consensus (cheap) and does the bookkeeping
        out = _k.cbo_step(self.x, E, self.alpha, idx=idx, mov=mov, active=act, h=h, lam=cfg.lam, dt=cfg.dt,
                          sigma=self.sigma, noise=self._noise, scheme=self._kscheme,
                          polar=cfg.polar_kernel if self._polar else "none", kappa=cfg.kappa,
                          kernel_alpha=cfg.kernel_alpha, seed=self._seed_step, step=self.it, clip=cfg.clip,
                          consensus=self._c, best_x=self.best_x, best_e=self.best_energy,
                          want_step_sq=self._want_diff)
        self.weights = out.weights
        self.f_min = out.fmin if all_on else np.where(act, out.fmin, self.f_min)
        if self._want_diff:
            self.update_diff = np.where(act, np.sqrt(out.step_sq) / self.N, self.update_diff)
        if need_fc and cfg.correction == "none":
            fc = self._f_consensus(self._c)
        if cfg.stagnation_patience is not None:
            fcr = fc if fc.ndim == 1 else fc.mean(axis=1)
            self._fc_hist.append(np.where(act, fcr, np.nan))
            self._fc_hist = self._fc_hist[-cfg.stagnation_patience:]
        self._resample(act)
        self.it += 1
        self.t += cfg.dt
        if self.it % self.epoch_steps == 0:
            self.epoch += 1
            sched.alpha_after_epoch(self.alpha, cfg.alpha_schedule, cfg.alpha_max, None if all_on else act)
            self.sigma = sched.sigma_after_epoch(self.sigma, cfg.sigma_schedule, self.epoch)
        sched.alpha_after_step(self.alpha, cfg.alpha_schedule, cfg.alpha_factor, cfg.alpha_max,
                               None if all_on else act)
        self.check_termination()
        return True

    def _f_consensus(self, c: np.ndarray) -> np.ndarray:
        """f at the consensus point(s) c (M, 1 or N, d) of the active runs → (M,) or (M, N); counts evaluations."""
        act = self.active
        fc = np.full(c.shape[:2], np.inf)
        fc[act] = self.evaluate(np.ascontiguousarray(c[act]))
        self.num_f_eval[act] += c.shape[1]
        return fc[:, 0] if c.shape[1] == 1 else fc

    def _correction(self, fc: np.ndarray) -> np.ndarray:
        """Drift factor h (M, N) from the latest energies of every particle and f(c)."""
        z = self.energy - (fc[:, None] if fc.ndim == 1 else fc)
        with np.errstate(invalid="ignore", over="ignore"):
            if self.config.correction == "heaviside":
                h = (z > 0).astype(np.float64)
            else:
                h = 0.5 + 0.5 * np.tanh(z / self.config.correction_eps)
        return np.where(np.isfinite(h), h, 1.0)

    def _resample(self, act: np.ndarray) -> None:
        cfg = self.config
        if not cfg.resample:
            return
        hit = np.zeros(self.M, dtype=bool)
        if "consensus_stagnation" in cfg.resample:
            c = self.consensus
            if hasattr(self, "_c_prev"):
                diff = c - self._c_prev
                mv = (np.abs(diff).max(axis=1) if cfg.resample_norm == "linf"
                      else np.sqrt((diff * diff).sum(axis=1)))
                self._c_moves.append(np.where(act, mv, np.inf))
                self._c_moves = self._c_moves[-cfg.resample_patience:]
                if len(self._c_moves) == cfg.resample_patience:
                    hit |= np.max(self._c_moves, axis=0) < cfg.resample_tol
            self._c_prev = c.copy()
        if "no_improvement" in cfg.resample:
            better = self.best_energy < self._best_seen
            self._best_seen = np.where(better, self.best_energy, self._best_seen)
            self._wait = np.where(better, 0, self._wait + 1)
            due = self._wait >= cfg.resample_patience
            hit |= due
            self._wait[due] = 0
        hit &= act
        if hit.any():
            s = self.sigma if cfg.resample_sigma is None else cfg.resample_sigma
            _k.add_noise(self.x, hit, s * np.sqrt(cfg.dt), self._seed_resample, self.it, cfg.clip)
            self.num_resampled += hit
            self._c_moves = []

    # ------------------------------------------------------------ termination
    def check_termination(self) -> np.ndarray:
        """Switch off runs that meet a criterion; returns the active mask."""
        cfg = self.config
        done = {}
        if cfg.max_it is not None and self.it >= cfg.max_it:
            done["max_it"] = np.ones(self.M, dtype=bool)
        if cfg.max_eval is not None:
            extra = (1 if cfg.correction != "none" or cfg.stagnation_patience is not None else 0)
            done["max_eval"] = self.num_f_eval + self.batch_size + extra > cfg.max_eval
        if cfg.energy_tol is not None:
            done["energy_tol"] = self.f_min < cfg.energy_tol
        if cfg.diff_tol is not None:
            done["diff_tol"] = self.update_diff < cfg.diff_tol
        if cfg.stagnation_patience is not None and len(self._fc_hist) == cfg.stagnation_patience:
            with np.errstate(invalid="ignore"):
                done["stagnation"] = np.std(np.array(self._fc_hist), axis=0) < cfg.stagnation_tol
        for name, mask in done.items():
            newly = mask & self.active
            self.term_reason[newly] = name
            self.active &= ~mask
        return self.active

    def optimize(self, max_it: Optional[int] = None, callback: Optional[Callable] = None) -> np.ndarray:
        """Step until every run is switched off (or ``max_it`` more steps); returns ``best_x`` (M, d).

        ``callback(dyn)`` is called after every step; returning True stops.
        """
        if max_it is not None:
            max_it = check_int("max_it", max_it, 0)
        n = 0
        while (max_it is None or n < max_it) and self.step():
            n += 1
            if callback is not None and callback(self):
                break
        return self.best_x

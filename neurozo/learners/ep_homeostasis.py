"""Jacobian homeostasis — Laborieux & Zenke (2024), "Improving equilibrium propagation
without weight symmetry through Jacobian homeostasis" (ICLR 2024).

Untied forward and feedback weights make the Jacobian of the network's vector
field asymmetric, and that asymmetry biases EP's gradient estimate. With
J = ∂F/∂r at the fixed point (for a layered network J = W_rec − I, W_rec the
block matrix of forward and feedback weights) split as J = S + A,
S = (J + Jᵀ)/2, A = (J − Jᵀ)/2, the homeostatic loss

    L_h = E_ε[ ‖J·ε‖² − εᵀ·J²·ε ] = tr(JᵀJ) − tr(J²) = 2‖A‖²_F ,   ε ~ N(0, I)

is estimated from two Jacobian–vector products per draw, v₁ = J·ε and
v₂ = J·v₁:  ℓ̂(ε) = ‖v₁‖² − εᵀv₂, averaged over a few draws (5) and divided by
the number N of state variables. Its gradient with the fixed point held is

    ∇_J L_h = 2(J − Jᵀ) = 4A ,    estimated unbiasedly by  ĝ(ε) = 2(v₁εᵀ − εv₁ᵀ)

(E[v₁εᵀ] = J, E[εv₁ᵀ] = Jᵀ), restricted to the forward/feedback blocks of θ:
only forward JVPs and local outer products (post-synaptic v₁ times
pre-synaptic ε), which a device can measure. It is multiplied by λ (paper:
FMNIST 1.0, CIFAR-10 15, ImageNet32 10) and added to the EP gradient.

``jvp="device"`` reads J·ε through the substrate's programmed forward and
feedback arrays (so it sees programming noise and read noise: what a chip
would measure); ``jvp="closed"`` uses θ's weights exactly. The symmetry
ratio ‖S‖/(‖S‖ + ‖A‖) of W_rec is logged (1 symmetric, ≈ 0.5 independent).

``probes="orthogonal"`` draws the ε of one estimate as √N times the columns of a
Haar-random N×N orthogonal matrix (blocks of N; a new matrix per block), the
structured probes of orthogonal ES (Choromanski et al., ICML 2018). Each ε is
still isotropic with E[εεᵀ] = I, so both estimates stay unbiased, but the draws
of a block are exactly orthogonal: with S = N draws Σ εεᵀ/S = I, the gradient
estimate equals 4A and the loss estimate tr(JᵀJ) − tr(J²) = 2‖A‖²_F exactly
(no sampling noise; the device's read noise remains). Gaussian probes leave a
zero-mean noise of size ≈ 2√2‖J_row‖/√S on every entry of the gradient, and that
noise lies entirely in the antisymmetric directions (the W and B blocks get
opposite transposed copies), i.e. a random walk of A that homeostasis must undo.
The orthogonal draws go through LAPACK's QR: one seed gives the same draws on one
machine, but across LAPACK builds only to rounding, which training amplifies
(docs/ep_homeostasis.md, "Noise-free homeostasis"); Gaussian draws are bit-identical.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from .._validate import check_choice, check_float, check_int

__all__ = ["JacobianHomeostasis", "symmetry_ratio", "antisymmetric_norm2"]


def antisymmetric_norm2(model, theta: np.ndarray) -> float:
    """‖A‖²_F of J = W_rec − I for θ (closed form; the identity is symmetric)."""
    W = model.recurrent_matrix(theta)
    A = 0.5 * (W - W.T)
    return float(np.sum(A * A))


def symmetry_ratio(W: np.ndarray) -> float:
    """‖S‖_F/(‖S‖_F + ‖A‖_F) of a square matrix, e.g. the recurrent weights W_rec (1 = symmetric)."""
    W = np.asarray(W, dtype=np.float64)
    s = np.linalg.norm(0.5 * (W + W.T))
    a = np.linalg.norm(0.5 * (W - W.T))
    return float(s / (s + a)) if s + a > 0 else 1.0


class JacobianHomeostasis:
    """Estimator of L_h = 2‖A‖²_F and of its gradient for a layered ``EnergyNet``.

    lam      λ ≥ 0, weight of the gradient added to the EP update (0: measure only)
    samples  draws of ε per estimate (the paper uses 5)
    jvp      "device" (J·ε read through the substrate) or "closed" (exact, from θ)
    probes   "gaussian" (ε ~ N(0, I), the paper) or "orthogonal" (blocks of N orthogonal
             directions of length √N; ``samples`` = N gives the exact loss and gradient)
    """

    def __init__(self, lam: float = 1.0, samples: int = 5, jvp: str = "device", probes: str = "gaussian"):
        self.lam = check_float("lam", lam, 0)
        self.samples = check_int("samples", samples, 1)
        self.jvp = check_choice("jvp", jvp, ["device", "closed"])
        self.probes = check_choice("probes", probes, ["gaussian", "orthogonal"])

    def draw(self, model, rng: np.random.Generator) -> list:
        """The ε of one estimate, per state layer: ``samples`` rows each."""
        S, sizes = self.samples, model.state_sizes
        if self.probes == "gaussian":
            return [rng.standard_normal((S, n)) for n in sizes]
        N = int(sum(sizes))
        blocks = []
        for start in range(0, S, N):
            Q, R = np.linalg.qr(rng.standard_normal((N, N)))
            Q = Q * np.sign(np.diag(R))          # Haar: fixes the signs QR leaves arbitrary
            blocks.append(np.sqrt(N) * Q.T[: min(N, S - start)])
        E = np.concatenate(blocks, axis=0)
        return np.split(E, np.cumsum(sizes)[:-1], axis=1)

    def _apply(self, model, theta, eps, substrate, prog, rng):
        """W_rec·ε − ε per layer, eps per layer (S, n_k)."""
        if self.jvp == "closed":
            out = []
            for k in range(model.L):
                v = -eps[k]
                if k > 0:
                    v = v + eps[k - 1] @ model.view(theta, f"W{k}").T
                if k < model.L - 1:
                    v = v + eps[k + 1] @ model.feedback(theta, k).T
                out.append(v)
            return out
        Wv = model.jvp(prog, [e[None] for e in eps], substrate, rng)
        return [w[0] - e for w, e in zip(Wv, eps)]

    def sample(self, model, theta: np.ndarray, rng: np.random.Generator, substrate=None,
               prog=None) -> Tuple[np.ndarray, np.ndarray]:
        """Per-draw ℓ̂(ε) = ‖Jε‖² − εᵀJ²ε (S,) and the mean gradient estimate (θ-shaped, not ÷N, not ×λ)."""
        theta = np.asarray(theta, dtype=np.float64)
        if self.jvp == "device":
            if substrate is None:
                raise ValueError("substrate=None is invalid: jvp='device' reads J·ε through a substrate")
            if prog is None:
                prog = model.program(theta[None], substrate, rng)
        S = self.samples
        eps = self.draw(model, rng)
        v1 = self._apply(model, theta, eps, substrate, prog, rng)
        v2 = self._apply(model, theta, v1, substrate, prog, rng)
        vals = sum(np.sum(a * a, axis=-1) for a in v1) - sum(np.sum(e * w, axis=-1) for e, w in zip(eps, v2))
        L = model.L
        g_fwd = [np.zeros(model.views[f"W{k}"][1]) for k in range(L)]
        g_fbk = [np.zeros((model.state_sizes[k], model.state_sizes[k + 1])) for k in range(L - 1)]
        for k in range(L - 1):
            # block (k+1, k) of 2(v₁εᵀ − εv₁ᵀ) → W_{k+1}; block (k, k+1) → B_k
            g_fwd[k + 1] = 2.0 * (v1[k + 1].T @ eps[k] - eps[k + 1].T @ v1[k]) / S
            g_fbk[k] = 2.0 * (v1[k].T @ eps[k + 1] - eps[k].T @ v1[k + 1]) / S
        zeros_b = [np.zeros(n) for n in model.state_sizes]
        g = model.pack_grad(g_fwd, zeros_b, g_fbk, np.zeros(model.views["Wout"][1]),
                            np.zeros(model.views["bout"][1]))
        return vals, g

    def loss_and_grad(self, model, theta, rng, substrate=None, prog=None) -> Tuple[float, np.ndarray]:
        """(L_h/N estimate, λ·∇L_h/N estimate) — what the EP learner logs and adds."""
        vals, g = self.sample(model, theta, rng, substrate, prog)
        N = model.n_state
        return float(np.mean(vals) / N), (self.lam / N) * g

    @staticmethod
    def exact(model, theta) -> float:
        """2‖A‖²_F, the estimator's expectation (un-normalised)."""
        return 2.0 * antisymmetric_norm2(model, theta)

    @staticmethod
    def symmetry_ratio(model, theta) -> float:
        """‖S‖/(‖S‖ + ‖A‖) of θ's recurrent weights W_rec."""
        return symmetry_ratio(model.recurrent_matrix(theta))


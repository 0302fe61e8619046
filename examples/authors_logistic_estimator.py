"""Regret of the meTS authors' logistic estimator, written from its description, on fig2-logistic.

Not library code and not a recommended estimator: it exists to measure where the paper's
logistic numbers can come from (docs/experiments.md, "Fig. 2 (logistic)"). The math sheet
(§6) describes the authors' public code as refitting each action's logistic model by IRLS on a
*resampled minibatch of 30* observations per iteration, with a ridge of 1e-5, a tolerance of 1e-3
on the step and at most 1000 iterations, and as discarding the action's estimate (back to its
prior mean) when the fit does not converge. The policies here use that estimator:

* ``GLM-TS-authors``: N((Λ0 + G)⁻¹ (Λ0 θ0 + G θ̂), (Λ0 + G)⁻¹) per action, with the marginal
  prior N(θ0, Λ0⁻¹), G the last minibatch's Gram matrix and θ̂ the fit (or θ0 after a failure).
* ``meTS-GLM-authors`` / ``meTS-GLM-Fa-authors``: the pseudo-observation (G, G θ̂) of every
  action in the effect posterior (joint, or factored over effects), then each action given the
  sampled effects. A failed fit restarts from the last sampled conditional mean.

Every random draw goes through the run's generator, so results are reproducible per seed::

    .venv/bin/python examples/authors_logistic_estimator.py --runs 12 --policies GLM-TS-authors
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy.special import expit

from mixedts.evaluation import load_experiment, simulate

CONFIG = Path(__file__).resolve().parents[1] / "src" / "mixedts" / "configs" / "fig2-logistic.toml"


def minibatch_irls(X, y, theta, rng, batch=30, ridge=1e-5, tol=1e-3, max_iter=1000):
    """IRLS on a fresh minibatch each iteration; returns (theta, Gram, converged)."""
    n, d = X.shape
    for _ in range(max_iter):
        rows = slice(None) if n <= batch else rng.integers(0, n, batch)
        Xb, yb = X[rows], y[rows]
        p = expit(np.clip(Xb @ theta, -500, 500))
        gram = ridge * np.eye(d) + (Xb * (p * (1 - p))[:, None]).T @ Xb
        new = np.linalg.solve(gram, gram @ theta - (p - yb) @ Xb)
        moved = np.linalg.norm(new - theta)
        theta = new
        if moved < tol:
            return theta, gram, True
    return theta, gram, False


def _sample_rows(mean, cov, rng):
    """One draw per row of N(mean[k], cov[k]); (K, d)."""
    chol = np.linalg.cholesky(cov)
    return mean + np.einsum("kij,kj->ki", chol, rng.standard_normal(mean.shape))


class _AuthorsEstimator:
    """Per-action histories, the minibatch fit and the per-action pseudo-observations."""

    def __init__(self, n_actions, dim, rng):
        self.rng = rng
        self.gram = np.zeros((n_actions, dim, dim))
        self.fit = np.zeros((n_actions, dim))
        self.X = [[] for _ in range(n_actions)]
        self.y = [[] for _ in range(n_actions)]
        self.restart = np.zeros((n_actions, dim))  # where a failed fit starts again

    def refit(self, x, a, r):
        self.X[a].append(np.array(x[a], dtype=float))
        self.y[a].append(float(r))
        theta, gram, ok = minibatch_irls(np.array(self.X[a]), np.array(self.y[a]),
                                         self.fit[a].copy(), self.rng)
        self.fit[a] = theta if ok else self.restart[a]
        self.gram[a] = gram
        return theta


class AuthorsGLMTS(_AuthorsEstimator):
    def __init__(self, prior, rng):
        mean, cov = prior.marginal_action_prior()
        super().__init__(prior.n_actions, prior.dim, rng)
        self.mean0 = np.asarray(mean, dtype=float)
        self.prec0 = np.linalg.inv(np.asarray(cov, dtype=float))
        self.fit = self.mean0.copy()
        self.restart = self.mean0
        self.gram += 1e-5 * np.eye(prior.dim)  # the first fit of a data-less action

    def select(self, x):
        cov = np.linalg.inv(self.prec0 + self.gram)
        mean = np.einsum("kij,kj->ki", cov, np.einsum("kij,kj->ki", self.prec0, self.mean0)
                         + np.einsum("kij,kj->ki", self.gram, self.fit))
        return int(np.argmax(np.einsum("kd,kd->k", x, _sample_rows(mean, cov, self.rng))))

    def update(self, x, a, r):
        self.refit(x, a, r)


class AuthorsMeTSGLM(_AuthorsEstimator):
    def __init__(self, prior, rng, factored):
        super().__init__(prior.n_actions, prior.dim, rng)
        self.B = prior.mixing.toarray()
        self.L, self.d = prior.n_effects, prior.dim
        self.mu_psi = np.asarray(prior.effect_mean, dtype=float).reshape(-1)
        self.prec_psi = np.linalg.inv(prior.effect_cov_full())
        self.cov0 = np.broadcast_to(np.asarray(prior.action_cov, dtype=float),
                                    (prior.n_actions, self.d, self.d))
        self.prec0 = np.linalg.inv(self.cov0)
        self.b = np.zeros((prior.n_actions, self.d))  # G θ̂ of each action
        self.factored = factored

    def _effects(self):
        eps = 1e-5 * np.eye(self.d)
        inv_g = np.linalg.inv(self.gram + eps)
        adj = np.linalg.inv(self.cov0 + inv_g)  # each action's data seen through Σ0
        adj_b = np.einsum("kij,kjl,kl->ki", adj, inv_g, self.b)
        L, d, B = self.L, self.d, self.B
        if self.factored:
            psi = np.empty((L, d))
            for l in range(L):
                s = slice(l * d, (l + 1) * d)
                prec = self.prec_psi[s, s] + np.einsum("k,kij->ij", B[:, l] ** 2, adj)
                cov = np.linalg.inv(prec)
                m = cov @ (self.prec_psi[s, s] @ self.mu_psi[s] + B[:, l] @ adj_b)
                psi[l] = self.rng.multivariate_normal(m, cov)
            return psi
        prec = self.prec_psi + np.einsum("kl,km,kij->limj", B, B, adj).reshape(L * d, L * d)
        cov = np.linalg.inv(prec)
        m = cov @ (self.prec_psi @ self.mu_psi + np.einsum("kl,ki->li", B, adj_b).reshape(-1))
        return self.rng.multivariate_normal(m, cov).reshape(L, d)

    def select(self, x):
        self.restart = self.B @ self._effects()  # the conditional prior means of this round
        cov = np.linalg.inv(self.prec0 + self.gram)
        mean = np.einsum("kij,kj->ki", cov,
                         np.einsum("kij,kj->ki", self.prec0, self.restart) + self.b)
        return int(np.argmax(np.einsum("kd,kd->k", x, _sample_rows(mean, cov, self.rng))))

    def update(self, x, a, r):
        theta = self.refit(x, a, r)
        self.b[a] = self.gram[a] @ theta


FACTORIES = {
    "GLM-TS-authors": lambda env, rng: AuthorsGLMTS(env.prior, rng),
    "meTS-GLM-authors": lambda env, rng: AuthorsMeTSGLM(env.prior, rng, factored=False),
    "meTS-GLM-Fa-authors": lambda env, rng: AuthorsMeTSGLM(env.prior, rng, factored=True),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--horizon", type=int, default=5000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--policies", default=",".join(FACTORIES),
                    help=f"comma-separated, of {', '.join(FACTORIES)}")
    ap.add_argument("--out", type=Path, default=None, help="write results.parquet here")
    args = ap.parse_args()
    names = [n.strip() for n in args.policies.split(",") if n.strip()]
    unknown = [n for n in names if n not in FACTORIES]
    if unknown:
        ap.error(f"--policies: unknown {unknown}; expected some of {list(FACTORIES)}")
    exp = load_experiment(CONFIG)
    t0 = time.perf_counter()
    res = simulate(exp.environment, {n: FACTORIES[n] for n in names}, args.horizon, args.runs,
                   exp.seed, n_jobs=args.jobs, quiet=True)
    print(f"fig2-logistic environment, {args.runs} runs x {args.horizon} rounds, "
          f"{time.perf_counter() - t0:.0f} s")
    print(res.table())
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        res.to_parquet(args.out / "results.parquet")


if __name__ == "__main__":
    main()

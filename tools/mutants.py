#!/usr/bin/env python
"""Mutation testing of the core formulas: ``make mutants`` (not part of CI).

Each mutant below is one plausible bug in a formula of ``src/mixedts`` (a sign, a transpose, a
missing factor, an off-by-one, a wrong default): the exact original snippet of a file, its
replacement, and the test files that should catch it. For every mutant the script

1. takes a private copy of the repository's ``src/``, ``tests/`` and ``pyproject.toml`` in a
   temporary folder (the working tree is never written to),
2. checks that the snippet occurs exactly once in the copy (else the mutant is reported
   **stale**: the code moved and the mutant must be updated, never silently passed),
3. applies the replacement and runs ``pytest -x -q`` on the mutant's test files *in the copy*,
   with ``PYTHONPATH=<copy>/src``, ``--import-mode=importlib``, ``-p no:cacheprovider`` and no
   bytecode writing, so that the mutated copy, not the editable install, is what gets imported
   (checked before the run: ``mixedts.__file__`` must lie in the copy, and a planted syntax error
   in the copy must fail there while the working tree still imports),
4. records whether the tests failed (*caught*, with the first failing test) or passed
   (*SURVIVED*), and the time.

A mutant that cannot change any output is marked ``equivalent`` with the reason; it is listed
but not counted as a survivor. The Markdown table is printed and written to
``benchmarks/results_mutants.md``; the exit status is 1 when a mutant survives without a
reason, a mutant is stale, or the unmutated baseline fails.

Usage::

    python tools/mutants.py            # every mutant, 2 workers
    python tools/mutants.py -k laplace # mutants whose name or file contains "laplace"
    python tools/mutants.py --list     # the mutants, without running them
    python tools/mutants.py --rev HEAD # src/ from a commit (git archive; tests from the tree)
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = "src/mixedts"


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str  # relative to src/mixedts
    original: str
    replacement: str
    description: str
    tests: tuple[str, ...]
    equivalent: str = ""  # why the mutant cannot change any output (then it is not a survivor)


# test files by area
T_REF = "tests/test_formula_references.py"
T_EXP = "tests/test_experts.py"
T_GLM = "tests/test_glm.py"
T_EXACT = "tests/test_exactness.py"
T_BATCHED = "tests/test_batched.py"
T_KARMED = "tests/test_karmed.py"
T_LIK = "tests/test_likelihoods.py"
T_SAMPLING = "tests/test_sampling.py"
T_UPDATE = "tests/test_update_batch.py"
T_CATALOGUE = "tests/test_catalogue.py"
T_SIMULATE = "tests/test_simulate.py"
T_BDTS = ("tests/test_batched_diffusion.py",)
LAPLACE = (T_REF, T_GLM)
EXPERTS = (T_REF, T_EXP)
ESTIMATORS = (T_REF, "tests/test_offline_estimators.py")
GAUSSIAN = (T_REF, T_EXACT, T_UPDATE, T_CATALOGUE, T_SAMPLING)

MUTANTS: list[Mutant] = [
    # ------------------------------------------------------------------ the survivors
    Mutant(
        "laplace-online-gradient-sign", "models/newton.py",
        "mode = init - np.linalg.solve(H, g[:, :, None])[:, :, 0]",
        "mode = init + np.linalg.solve(H, g[:, :, None])[:, :, 0]",
        "online Laplace: the Newton step of the wrong sign", LAPLACE,
    ),
    Mutant(
        "laplace-minibatch-weight", "models/laplace.py",
        "wj = n_tot / self.batch_size", "wj = 1.0",
        "minibatch rows weighted 1 instead of n/B", LAPLACE,
    ),
    Mutant(
        "gts-eta-dropped", "models/experts.py",
        "return self.log_weights - self.eta * L.sum(axis=0)",
        "return self.log_weights - L.sum(axis=0)",
        "GTS weight update without the learning rate η", EXPERTS,
    ),
    Mutant(
        "exp4-importance-weight-propensities", "models/experts.py",
        "gains = advice * (Y / propensities)[:, None]", "gains = advice * Y[:, None]",
        "EXP4 gains without 1/p (given propensities)", EXPERTS,
    ),
    Mutant(
        "exp4-importance-weight-recomputed", "models/experts.py",
        "lw = lw + self.eta * advice[t] * (Y[t] / p)", "lw = lw + self.eta * advice[t] * Y[t]",
        "EXP4 gains without 1/p (recomputed propensities)", EXPERTS,
    ),
    Mutant(
        "mixing-abs", "_validation.py",
        "    mat.eliminate_zeros()\n    mat.sort_indices()",
        "    mat.data = np.abs(mat.data)\n    mat.eliminate_zeros()\n    mat.sort_indices()",
        "check_mixing takes abs() of the mixing weights", (T_EXACT, T_GLM),
    ),
    # ------------------------------------------------------------------ Laplace fits
    Mutant(
        "laplace-minibatch-off-by-one", "models/laplace.py",
        "if n_tot <= self.batch_size:", "if n_tot < self.batch_size:",
        "a history of exactly B rows is subsampled instead of used whole", LAPLACE,
    ),
    Mutant(
        "laplace-minibatch-never-newest", "models/laplace.py",
        "draw = rng.integers(0, n_tot, self.batch_size)",
        "draw = rng.integers(0, n_tot - 1, self.batch_size)",
        "the minibatch never draws the newest row", LAPLACE,
    ),
    Mutant(
        "laplace-online-forgets-curvature", "models/newton.py",
        "G_new = G_old + G_add", "G_new = G_add",
        "online Laplace drops the previous curvature", LAPLACE,
    ),
    Mutant(
        "laplace-fit-unweighted-gradient", "likelihoods.py",
        "g = seg_sum((w * (likelihood.mean(u) - y))[:, None] * X)",
        "g = seg_sum((likelihood.mean(u) - y)[:, None] * X)",
        "laplace_fit ignores the row weights in the gradient",
        (*LAPLACE, "tests/test_batched_glm.py"),  # newton_fit against laplace_fit, weighted
    ),
    Mutant(
        "laplace-fit-center-ignored", "likelihoods.py",
        'return g + np.einsum("sde,se->sd", P, th - c), curvature(u)',
        'return g + np.einsum("sde,se->sd", P, th), curvature(u)',
        "the penalty's gradient ignores its centre (MAP under the prior)", LAPLACE,
    ),
    Mutant(
        "logistic-derivative", "likelihoods.py",
        "return p * (1.0 - p)", "return p * (1.0 + p)",
        "f'(u) = p(1 + p) for the logistic mean", (T_LIK, *LAPLACE),
    ),
    Mutant(
        "logistic-loglik-sign", "likelihoods.py",
        "return y * log_expit(u) + (1.0 - y) * log_expit(-u)",
        "return y * log_expit(u) + (1.0 - y) * log_expit(u)",
        "the failures' log-likelihood term uses +u", (T_LIK, *LAPLACE),
    ),
    Mutant(
        "mets-glm-posterior-expansion", "models/mixed_effect.py",
        'b = np.einsum("uij,uj->ui", G, mode) + np.einsum("uij,uj->ui", P0, mode - center)',
        'b = np.einsum("uij,uj->ui", G, mode)',
        "meTS-GLM at the posterior mode forgets the prior's gradient in b", LAPLACE,
    ),
    Mutant(
        "glmts-posterior-b", "models/independent.py",
        'b = np.einsum("uij,uj->ui", P0 + G, mode)', 'b = np.einsum("uij,uj->ui", G, mode)',
        "GLM-TS at the MAP: b without the prior precision", LAPLACE,
    ),
    Mutant(
        "glmts-likelihood-prior-b", "models/independent.py",
        'b = np.einsum("uij,uj->ui", G, mode) + self.store.prior_b(U)',
        'b = np.einsum("uij,uj->ui", G, mode)',
        "GLM-TS at the likelihood mode forgets the prior mean", LAPLACE,
    ),
    Mutant(
        "glm-diagonal-precision", "models/glm.py",
        "self.prec[U] += np.diagonal(G, axis1=1, axis2=2)",
        "self.prec[U] = np.diagonal(G, axis1=1, axis2=2)",
        "Chapelle & Li: the precision is replaced, not increased", LAPLACE,
    ),
    Mutant(
        "ucbglm-design-matrix", "models/glm.py",
        "ActionStore(n_actions, np.eye(dim) / self.regularization, 1.0)",
        "ActionStore(n_actions, np.eye(dim) * self.regularization, 1.0)",
        "UCB-GLM: V = I/λ + Σ x xᵀ instead of λI + Σ x xᵀ", LAPLACE,
    ),
    # ------------------------------------------------------------------ experts
    Mutant(
        "gts-log-loss-failures", "models/experts.py",
        "return -(y * np.log(f) + (1.0 - y) * np.log1p(-f))",
        "return -(y * np.log(f) + (1.0 - y) * np.log1p(f))",
        "the fractional-reward log loss uses log(1 + f)", EXPERTS,
    ),
    Mutant(
        "gts-log-loss-no-clip", "models/experts.py",
        "f = np.clip(F, self.clip, 1.0 - self.clip)", "f = F",
        "the log loss does not clip predictions at 0 and 1", EXPERTS,
    ),
    Mutant(
        "experts-ties-not-split", "models/expert_sets.py",
        "return mask / mask.sum(axis=1, keepdims=True)", "return mask * 1.0",
        "greedy advice puts weight 1 on every tied action", EXPERTS,
    ),
    Mutant(
        "exp4-floor-counts-retired", "models/experts.py",
        "floor = gamma / active.sum()", "floor = gamma / len(active)",
        "EXP4's recomputed propensity floors over every action, retired ones too", EXPERTS,
    ),
    Mutant(
        "exp4-propensity-no-mixing", "models/experts.py",
        "p = (1.0 - gamma) * (w @ advice[t]) + floor", "p = (w @ advice[t]) + floor",
        "EXP4's recomputed propensity without the (1 − γ) factor", EXPERTS,
    ),
    Mutant(
        "experts-unnormalised", "models/experts.py",
        "self.log_weights = log_weights - logsumexp(log_weights)",
        "self.log_weights = log_weights",
        "log weights not renormalised after an update", EXPERTS,
    ),
    Mutant(
        "experts-sample-side", "models/experts.py",
        'j = int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))',
        'j = int(np.searchsorted(cdf, rng.random() * cdf[-1], side="left"))',
        "expert draw with searchsorted side='left'", EXPERTS,
        equivalent="the two sides differ only when u·cdf[-1] equals a cumulative weight exactly, "
        "i.e. when rng.random() returns one particular double (probability about 2⁻⁵³ per "
        "draw): no test, and no user, can tell them apart",
    ),
    # ------------------------------------------------------------------ rules
    Mutant(
        "rule-exploration-floor", "rules.py",
        "return (1.0 - e) * advice + e * active / active.sum()",
        "return (1.0 - e) * advice + e * active / len(active)",
        "γ/K over every action instead of the active ones", (*EXPERTS, T_KARMED),
    ),
    Mutant(
        "rule-exploration-rate", "rules.py",
        "if self.gamma > 0 and rng.random() < self.gamma:",
        "if self.gamma > 0 and rng.random() < 0.5 * self.gamma:",
        "the sampler explores with probability γ/2", EXPERTS,
    ),
    Mutant(
        "rule-ucb-sign", "rules.py",
        "return mean + self.multiplier(counts[0] if counts else None) * std",
        "return mean - self.multiplier(counts[0] if counts else None) * std",
        "UCB subtracts the width", (T_REF,),
    ),
    Mutant(
        "rule-ucb-abbasi-yadkori", "rules.py",
        "d * np.log((1.0 + counts / (lam * d)) / self.delta)",
        "d * np.log((1.0 + counts / lam) / self.delta)",
        "the self-normalised width without the 1/d", (T_REF,),
    ),
    Mutant(
        "rule-probability-ucb", "rules.py",
        "return expit(mean) + self.alpha * std", "return mean + self.alpha * std",
        "UCB-GLM's probability score without the sigmoid", (T_REF,),
    ),
    Mutant(
        "rule-ucb1-bonus", "rules.py",
        "bonus = np.sqrt(self.exploration * np.log(t) / n)",
        "bonus = np.sqrt(self.exploration * np.log(t + 1) / n)",
        "UCB1 with ln(t + 1)", (T_KARMED,),
    ),
    Mutant(
        "rule-klucb-counts", "rules.py",
        "ok = nn * _bernoulli_kl(mean, mid) <= budget", "ok = _bernoulli_kl(mean, mid) <= budget",
        "KL-UCB without the arm's count", (T_KARMED,),
    ),
    Mutant(
        "rule-tie-break", "rules.py",
        "best = int(ties[rng.integers(len(ties))])", "best = int(ties[0])",
        "ties broken towards the first action", (*EXPERTS, T_KARMED, T_SAMPLING),
    ),
    # ------------------------------------------------------------------ priors
    Mutant(
        "prior-marginal-mixing-squared", "priors.py",
        "cov = np.asarray(B.power(2) @ diag).reshape(K, d, d)",
        "cov = np.asarray(abs(B) @ diag).reshape(K, d, d)",
        "marginal prior covariance with |b| instead of b²", (T_EXACT, T_GLM),
    ),
    Mutant(
        "prior-marginal-joint-action-cov", "priors.py",
        "cov[np.arange(K), :, np.arange(K), :] += self.action_cov",
        "cov[np.arange(K), :, np.arange(K), :] += 0.5 * self.action_cov",
        "JointTS's marginal prior with half of Σ0", GAUSSIAN,
    ),
    Mutant(
        "prior-effect-blocks", "priors.py",
        "return np.ascontiguousarray(full[np.arange(L), :, np.arange(L), :])",
        "return np.ascontiguousarray(full[np.arange(L), :, np.arange(L)[::-1], :])",
        "effect_cov_blocks returns the blocks in reverse order", (T_EXACT, T_BATCHED),
    ),
    # ------------------------------------------------------------------ K-armed posteriors
    Mutant(
        "beta-std", "models/beta.py",
        "return np.sqrt(a * b / (s * s * (s + 1.0)))", "return np.sqrt(a * b / (s * s * s))",
        "Beta posterior variance ab/s³", (T_KARMED, T_REF),
    ),
    Mutant(
        "beta-failures", "models/beta.py",
        "np.add.at(self.failures, A, 1.0 - Y)", "np.add.at(self.failures, A, 1.0)",
        "batched failures count every reward", (T_KARMED, T_REF),
    ),
    Mutant(
        "beta-variance-scale", "models/beta.py",
        "a, b = a / self.variance_scale, b / self.variance_scale\n        return rng.beta(",
        "a, b = a * self.variance_scale, b * self.variance_scale\n        return rng.beta(",
        "posterior reshaping multiplies (a, b) by v", (T_KARMED, T_REF),
    ),
    Mutant(
        "gaussian-arms-noise", "models/beta.py",
        "prec = prior_prec + self.n * noise_prec", "prec = prior_prec + self.n",
        "Gaussian arms ignore the noise variance", (T_KARMED, T_REF),
    ),
    # ------------------------------------------------------------------ off-policy estimators
    Mutant(
        "est-ips-cap-ignored", "offline/estimators.py",
        "return Estimate.from_terms(np.minimum(data.weights, self.max_weight) * data.rewards)",
        "return Estimate.from_terms(data.weights * data.rewards)",
        "IPS ignores max_weight", ESTIMATORS,
    ),
    Mutant(
        "est-snips-unnormalised", "offline/estimators.py",
        "return _ratio(w * data.rewards, w)", "return _ratio(w * data.rewards, np.ones_like(w))",
        "SNIPS divides by n instead of Σ w", ESTIMATORS,
    ),
    Mutant(
        "est-dr-residual", "offline/estimators.py",
        "return Estimate.from_terms(data.q_policy + w * (data.rewards - data.q_logged))",
        "return Estimate.from_terms(data.q_policy + w * data.rewards)",
        "DR corrects with r instead of the residual r − q̂", ESTIMATORS,
    ),
    Mutant(
        "est-sndr-value", "offline/estimators.py",
        "return Estimate.from_influence(d.mean() + ratio, influence)",
        "return Estimate.from_influence(ratio, influence)",
        "SNDR forgets the direct-method term", ESTIMATORS,
    ),
    Mutant(
        "est-switch-boundary", "offline/estimators.py",
        "kept = np.where(w <= self.tau, w, 0.0)", "kept = np.where(w < self.tau, w, 0.0)",
        "Switch-DR drops weights equal to τ", ESTIMATORS,
    ),
    Mutant(
        "est-mips-denominator", "offline/estimators.py",
        "        return num / den\n", "        return num / den.mean()\n",
        "MIPS divides by the mean logging mass of the embedding", ESTIMATORS,
    ),
    Mutant(
        "est-ratio-influence", "offline/estimators.py",
        "return Estimate.from_influence(value, (u - value * v) / v.mean())",
        "return Estimate.from_influence(value, u - value * v)",
        "self-normalised standard errors without the 1/v̄ of the delta method", ESTIMATORS,
    ),
    Mutant(
        "est-stderr", "offline/estimate.py",
        "se = float(np.sqrt(np.dot(centred, centred) / (n * (n - 1.0))))",
        "se = float(np.sqrt(np.dot(centred, centred) / (n * n)))",
        "standard error with n² instead of n(n − 1)", ESTIMATORS,
    ),
    # ------------------------------------------------------------------ linear algebra
    Mutant(
        "linalg-potter", "linalg.py",
        "return 1.0 / (r * (1.0 + r))", "return 1.0 / (r * (2.0 + r))",
        "Potter's coefficient with 2 + r", GAUSSIAN,
    ),
    Mutant(
        "linalg-lowrank-coef-sign", "linalg.py",
        "coef = -lam / (r * (1.0 + r))", "coef = lam / (r * (1.0 + r))",
        "low-rank square-root update of the wrong sign", GAUSSIAN,
    ),
    Mutant(
        "linalg-lowrank-signs-ignored", "linalg.py",
        "M = R @ R.T if signs is None else (R * signs) @ R.T", "M = R @ R.T",
        "downdates applied as updates", (T_GLM, *GAUSSIAN),
    ),
    Mutant(
        "linalg-sqrt-transpose", "linalg.py",
        "    return np.swapaxes(inv_L, -1, -2)\n", "    return inv_L\n",
        "square root L⁻¹ instead of L⁻ᵀ", GAUSSIAN,
    ),
    Mutant(
        "linalg-stacked-matvec-transpose", "linalg.py",
        "return np.matmul(S, x[:, :, None])[:, :, 0]",
        "return np.matmul(np.swapaxes(S, 1, 2), x[:, :, None])[:, :, 0]",
        "S_iᵀ x_i instead of S_i x_i", GAUSSIAN,
        equivalent="its one caller (ActionStore.prior_var) passes prior covariances Σ0_i, which "
        "are symmetrised on input (MixedEffectPrior and check_independent_prior both store "
        "½(Σ + Σᵀ)), so Σ0_iᵀ = Σ0_i exactly",
    ),
    # ------------------------------------------------------------------ linear-Gaussian formulas
    Mutant(
        "lg-statistics-rewards", "models/linear_gaussian.py",
        "return layout.outer(x, xs), xs * layout.vec(y)",
        "return layout.outer(x, xs), x * layout.vec(y)",
        "b gains y x instead of y x/σ²", GAUSSIAN,
    ),
    Mutant(
        "lg-residual", "models/linear_gaussian.py",
        "gain = (y - lay.dot(v, b)) / root",
        "gain = y / root",
        "the rank-one update's residual ignores the current mean",
        # the one-run round takes observe_one (its own mutant) on a repeated action; observe
        # serves first observations (b = 0 under a zero-mean prior) and the many-runs engine
        (*GAUSSIAN, T_BATCHED, "tests/test_online_fastpaths.py"),
    ),
    Mutant(
        "lg-effect-terms", "models/linear_gaussian.py",
        "M = _sym(P0 - P0 @ S @ P0)", "M = _sym(P0 - S)",
        "M_i = P0 − S_i instead of P0 − P0 S_i P0", GAUSSIAN,
    ),
    Mutant(
        "lg-factored-precision", "models/linear_gaussian.py",
        "data = _mix_t(_square(mixing), M.reshape(*M.shape[:-2], d * d))",
        "data = _mix_t(mixing, M.reshape(*M.shape[:-2], d * d))",
        "factored effect precision with b_il instead of b_il²", (T_EXACT, T_BATCHED),
    ),
    Mutant(
        "lg-marginal-cov-transpose", "models/linear_gaussian.py",
        "return _sym(S + A @ mix_cov_ @ np.swapaxes(A, -1, -2))",
        "return _sym(S + A @ mix_cov_ @ A)",
        "marginal covariance (S P0) T (S P0) instead of (S P0) T (S P0)ᵀ", GAUSSIAN,
    ),
    Mutant(
        "lg-conditional-mean-order", "models/linear_gaussian.py",
        "return m + matvec(S @ P0, mix)", "return m + matvec(P0 @ S, mix)",
        "E[θ | Ψ] with P0 S instead of S P0", GAUSSIAN,
    ),
    Mutant(
        "lg-score-var-factored", "models/linear_gaussian.py",
        "return np.bincount(B.row, weights=B.data**2 * quad, minlength=K)",
        "return np.bincount(B.row, weights=B.data * quad, minlength=K)",
        "meTS-Fa's score width with b_il instead of b_il²", (*GAUSSIAN, T_BATCHED),
    ),
    Mutant(
        "lg-score-var-joint", "models/linear_gaussian.py",
        "vals = (B.data[:, None] * q[B.row]).ravel()",
        "vals = (np.abs(B.data)[:, None] * q[B.row]).ravel()",
        "meTS's score width with |b_il|", (*GAUSSIAN, T_BATCHED),
    ),
    # ------------------------------------------------------------------ Gaussian models
    Mutant(
        "joint-refactor-b", "models/joint.py",
        "self.b[a] += db", "self.b[a] += db * s",
        "JointTS's stored b (used at the next refactor) divides by σ once", GAUSSIAN,
    ),
    Mutant(
        "joint-rank-one-scale", "models/joint.py",
        "self.gauss.commit(*self.gauss.proposed_rank_one(rows, x / s, db))",
        "self.gauss.commit(*self.gauss.proposed_rank_one(rows, x / s**2, db))",
        "JointTS's rank-one precision term divides by σ²", GAUSSIAN,
    ),
    Mutant(
        "factored-mean-transpose", "models/gaussian.py",
        'return np.einsum("...lij,...lj->...li", C, np.einsum("...lji,...lj->...li", C, h))',
        'return np.einsum("...lij,...lj->...li", C, np.einsum("...lij,...lj->...li", C, h))',
        "factored effect mean C C h instead of C Cᵀ h", (T_EXACT, T_BATCHED),
    ),
    Mutant(
        "store-effect-downdate", "models/actions.py",
        "dM = P0 @ (S_old - S_new) @ P0", "dM = P0 @ (S_new - S_old) @ P0",
        "the change of M_a of the wrong sign (GLM refits)", (T_GLM, *GAUSSIAN),
    ),
    # ------------------------------------------------------- sDM's binary variant (issue #12)
    Mutant(
        "linear-effect-glm-precision-delta", "models/linear_effect.py",
        'np.einsum("uei,uij,ujf->ef", Wt, M_new - M_old, W,',
        'np.einsum("uei,uij,ujf->ef", Wt, M_new, W,',
        "GLM effect precision keeps the old action terms", ("tests/test_linear_effect_glm.py",),
    ),
    Mutant(
        "linear-effect-glm-h-delta", "models/linear_effect.py",
        'np.einsum("uei,ui->e", Wt, eta_new - eta_old)', 'np.einsum("uei,ui->e", Wt, eta_new)',
        "GLM effect h keeps the old action terms", ("tests/test_linear_effect_glm.py",),
    ),
    Mutant(
        "linear-effect-glm-center-prior-mean", "models/linear_effect.py",
        "center = W @ self.effects.mean if", "center = W @ self.prior.effect_mean if",
        "posterior expansion at the prior mean of ψ, not the posterior's",
        ("tests/test_linear_effect_glm.py",),
    ),
    Mutant(
        "laplace-posterior-b-without-gradient", "models/laplace.py",
        'b = np.einsum("uij,uj->ui", G, mode) + np.einsum("uij,uj->ui", P0, mode - center)',
        'b = np.einsum("uij,uj->ui", G, mode)',
        "pseudo-observation at the MAP without ∇log L", ("tests/test_linear_effect_glm.py",),
    ),
    Mutant(
        "probit-pi-over-4", "offline/policy_rewards.py", "(np.pi / 8.0)", "(np.pi / 4.0)",
        "probit approximation with π/4", ("tests/test_policy_rewards.py",),
    ),
    Mutant(
        "probit-std-not-variance", "offline/policy_rewards.py",
        "(np.pi / 8.0) * np.asarray(var, dtype=np.float64)",
        "(np.pi / 8.0) * np.sqrt(np.asarray(var, dtype=np.float64))",
        "the paper's ‖φ‖ typo: standard deviation for variance", ("tests/test_policy_rewards.py",),
    ),
    Mutant(
        "linear-effect-gaussian-precision-rank-one", "models/linear_effect.py",
        "self.precision = self.precision + np.outer(u, u)", "self.precision = self.precision",
        "Gaussian rank-one step forgets the effect precision", ("tests/test_linear_effect.py",),
    ),
    Mutant(
        "score-variances-transposed", "offline/policy_rewards.py",
        'return np.einsum("nkd,kde,nke->nk", X, cov, X)',
        'return np.einsum("nkd,kde,nkd->nk", X, cov, X)',
        "per-action score variance uses the diagonal only", ("tests/test_policy_rewards.py",),
    ),
    Mutant(
        "sdm-binary-relative-reward-plugin", "offline/sdm_binary.py",
        'chosen = np.argmax(predict_rewards_with_policy(policy, inst["X_test"]), axis=1)',
        'chosen = np.argmax(predict_rewards_with_policy(policy, inst["X_test"], '
        'predictive="plug-in"), axis=1)',
        "greedy on the plug-in sigmoid, not the probit r̂", ("tests/test_sdm_binary.py",),
    ),
    # ------------------------------------------------ OBD time-split training (issue #12)
    Mutant(
        'obd-train-rank-worst-first', "offline/obd_training.py",
        'top = np.argpartition(-scores, L - 1, axis=-1)[..., :L]',
        'top = np.argpartition(scores, L - 1, axis=-1)[..., :L]',
        'TS ranks the lowest draws first', ("tests/test_obd_training.py",),
    ),
    Mutant(
        'obd-train-greedy-ascending', "offline/obd_training.py",
        'ranked = np.argsort(-scores, axis=1, kind="stable")[:, :L]',
        'ranked = np.argsort(scores, axis=1, kind="stable")[:, :L]',
        'greedy ranks worst first', ("tests/test_obd_training.py",),
    ),
    Mutant(
        'obd-train-position-1-everywhere', "offline/obd_training.py",
        'dist[(label, mode)] = D[rows, :, pos]',
        'dist[(label, mode)] = D[rows, :, 0]',
        "every row gets position 1's distribution", ("tests/test_obd_training.py",),
    ),
    Mutant(
        'obd-train-no-split', "offline/obd_training.py",
        'fitted = train_obd_policies(train, labels, item_groups, fit_seed)',
        'fitted = train_obd_policies(random_logs, labels, item_groups, fit_seed)',
        'policies see the test rows', ("tests/test_obd_training.py",),
    ),
    Mutant(
        'obd-train-lift-sign', "offline/obd_training.py",
        '"lift": full["estimate"] - ctr',
        '"lift": ctr - full["estimate"]',
        'lift of the wrong sign', ("tests/test_obd_training.py",),
    ),
    Mutant(
        'obd-train-bts-whole-log', "offline/obd_training.py",
        'later = bts_logs.time_split(at=test.timestamps[0])[1]',
        'later = bts_logs',
        'BTS reference over the whole log, not the test period', ("tests/test_obd_training.py",),
    ),
    Mutant(
        'obd-train-mc-one-context', "offline/obd_training.py",
        'base = (np.arange(u) * (K * L))[:, None, None]',
        'base = np.zeros((u, 1, 1), dtype=np.int64)',
        "every context counts into the first one's histogram", ("tests/test_obd_training.py",),
    ),
    Mutant(
        'obd-train-unpaired-lift', "offline/obd_training.py",
        'lift=lambda f: f["estimate"] - f["random_ctr"]',
        'lift=lambda f: f["estimate"] - ctr',
        'lift not paired on the resample', ("tests/test_obd_training.py",),
    ),
    # ------------------------------------------------------------------ dTS (issue #14)
    Mutant(
        'dts-message-map-dropped', 'models/diffusion_chain.py',
        'G = _sym(KP if V is None else _t(V) @ KP @ V)',
        'G = _sym(KP)',
        "upward message ignores the link's map", ("tests/test_diffusion.py",),
    ),
    Mutant(
        'dts-nonlinear-message', 'models/diffusion_chain.py',
        'G = _sym(KP if V is None else _t(V) @ KP @ V)',
        'G = _sym(P if V is None else _t(V) @ KP @ V)',
        'message precision without the gain', ("tests/test_diffusion.py",),
    ),
    Mutant(
        'dts-message-vector-gain', 'models/diffusion_chain.py',
        'B = matvec(np.swapaxes(K[j], -1, -2), B)',
        'B = B',
        'message vector without the gain (linear-map case)', ("tests/test_diffusion.py",),
    ),
    Mutant(
        'dts-top-mean-gain', 'models/diffusion_chain.py',
        'c[L - 1] += K[L - 1] @ top_mean',
        'c[L - 1] += top_mean',
        "top layer's prior mean without its gain", ("tests/test_diffusion.py",),
    ),
    Mutant(
        'dts-lemma2-link', 'models/diffusion_chain.py',
        'A = chain.K[j] @ links[j + 1]',
        'A = chain.K[j]',
        'Lemma 2 covariance drops the link', ("tests/test_diffusion.py",),
    ),
    Mutant(
        'dts-lemma2-transpose', 'models/diffusion_chain.py',
        'cov[j] = _sym(chain.Sbar[j] + A @ cov[j + 1] @ np.swapaxes(A, -1, -2))',
        'cov[j] = _sym(chain.Sbar[j] + A @ cov[j + 1] @ A)',
        'Lemma 2 covariance A Σ A instead of A Σ Aᵀ', ("tests/test_diffusion.py",),
    ),
    Mutant(
        'dts-sampler-sqrt-transpose', 'models/diffusion_chain.py',
        'return v @ M.T if one else matvec(M, v)',
        'return v @ M if one else matvec(M, v)',
        "top-down sampler's square root transposed", ("tests/test_diffusion.py",),
    ),
    Mutant(
        'dts-sampler-link', 'models/diffusion_chain.py',
        'parent = link(j + 1, psi[..., j + 1, :])',
        'parent = psi[..., j + 1, :]',
        'top-down sampler skips the link', ("tests/test_diffusion.py",),
    ),
    Mutant(
        'dts-incremental-precision-sign', 'models/diffusion.py',
        'self.G_act += np.outer(p["w"], p["w"])',
        'self.G_act -= np.outer(p["w"], p["w"])',
        'incremental action-sum precision of the wrong sign', ("tests/test_diffusion.py",),
    ),
    Mutant(
        'dts-incremental-eta', 'models/diffusion.py',
        'self.eta_act += p["dpm"]\n        self._after(1)',
        'self.eta_act += p["dpm"] / 2\n        self._after(1)',
        'incremental information vector halved', ("tests/test_diffusion.py",),
    ),
    Mutant(
        'dts-batch-precision', 'models/diffusion.py',
        'self.G_act += p["dM"].sum(axis=0)',
        'self.G_act += p["dM"][0]',
        "batch update keeps only the first action's term", ("tests/test_diffusion.py",),
    ),
    Mutant(
        'dts-score-direction', 'models/diffusion.py',
        'q[acts] = np.matmul(self.store.S[:n], q[acts][:, :, None])[:, :, 0] @ self.store.P0',
        'q[acts] = np.matmul(self.store.S[:n], q[acts][:, :, None])[:, :, 0]',
        'score direction without P0', ("tests/test_diffusion.py",),
    ),
    Mutant(
        'dts-glm-posterior-gradient', 'models/diffusion.py',
        'b = np.einsum("uij,uj->ui", G, mode) + np.einsum("uij,uj->ui", P0, mode - center)',
        'b = np.einsum("uij,uj->ui", G, mode)',
        'GLM-dTS pseudo-observation without ∇log L', ("tests/test_diffusion_glm.py",),
    ),
    Mutant(
        'dts-hierts1-omega', 'priors_diffusion.py',
        'omega1 = self._covs[0] + np.einsum(',
        'omega1 = 0 * self._covs[0] + np.einsum(',
        'HierTS-1 covariance drops Σ_1', ("tests/test_diffusion.py",),
    ),
    Mutant(
        'dts-omega2-transpose', 'priors_diffusion.py',
        'cov = np.einsum("lij,ljk,lmk->im", B, self._covs[1:], B)',
        'cov = np.einsum("lij,ljk,lkm->im", B, self._covs[1:], B)',
        'Ω₂ = Σ B Σ B instead of B Σ Bᵀ', ("tests/test_diffusion.py",),
    ),
    Mutant(
        'dts-prior-sampler-link', 'priors_diffusion.py',
        'psi[j] = self.link(j + 1, psi[j + 1]) + chol[j + 1] @ rng.standard_normal(d)',
        'psi[j] = psi[j + 1] + chol[j + 1] @ rng.standard_normal(d)',
        'prior sampler skips the link', ("tests/test_diffusion.py",),
    ),
    Mutant(
        'dts-env-sparsity-rows', 'environments/diffusion.py',
        'W[:, layer_dims[j]:] = 0.0',
        'W[layer_dims[j]:, :] = 0.0',
        'sparsity pattern on rows, not columns', ("tests/test_diffusion_env.py",),
    ),
    Mutant(
        'score-map-layout', 'models/mixed_effect.py',
        'JT = (Bt[:, None, :] * np.ascontiguousarray(q.T)[None, :, :]).reshape(L * d, K)',
        'JT = np.swapaxes(Bt[:, None, :] * np.ascontiguousarray(q.T)[None, :, :], 0, 1)'
        '.reshape(L * d, K)',
        'the dense score map of sample_scores_many laid out (d, L) instead of (L, d)',
        ("tests/test_score_draws.py",),
    ),
    # ------------------------------------------------------ the lean online round (issue #15)
    Mutant(
        'lean-observe-one-residual-sign', 'models/linear_gaussian.py',
        'gain = (y - float(v.dot(b))) / root\n    return',
        'gain = (y + float(v.dot(b))) / root\n    return',
        'the one-observation update of the wrong residual sign',
        ("tests/test_online_fastpaths.py", T_EXACT),
    ),
    Mutant(
        'in-place-observe-residual-sign', 'models/actions.py',
        'gain = (y - float(v.dot(b))) / root',
        'gain = (y + float(v.dot(b))) / root',
        'the in-place store step (the online round) of the wrong residual sign',
        ("tests/test_online_fastpaths.py", T_EXACT),
    ),
    Mutant(
        'in-place-observe-covariance-sign', 'models/actions.py',
        "np.subtract(S, s[:, None].dot(s[None]), out=S)",
        "np.add(S, s[:, None].dot(s[None]), out=S)",
        "the in-place store step adds s sᵀ to S instead of removing it",
        ("tests/test_online_fastpaths.py", T_EXACT),
    ),
    Mutant(
        'in-place-observe-gram-noise', 'models/actions.py',
        '        xs = x / nv  # dG',
        '        xs = x * 1.0  # dG',
        'the in-place store step forgets σ² in G and b',
        ("tests/test_online_fastpaths.py", T_EXACT),
    ),
    Mutant(
        'in-place-mean-sign', 'models/gaussian.py',
        'innovation = (gain - float(u.dot(self.mean if full else self.mean[rows]))) / r2',
        'innovation = (gain + float(u.dot(self.mean if full else self.mean[rows]))) / r2',
        'the O(n) effect-mean step adds the prediction uᵀμ instead of removing it',
        ("tests/test_online_fastpaths.py", T_EXACT),
    ),
    Mutant(
        'in-place-mean-radius', 'models/gaussian.py',
        'innovation = (gain - float(u.dot(self.mean if full else self.mean[rows]))) / r2',
        'innovation = (gain - float(u.dot(self.mean if full else self.mean[rows]))) / r',
        'the O(n) effect-mean step divides by r instead of r² = 1 + |z|²',
        ("tests/test_online_fastpaths.py", T_EXACT),
    ),
    Mutant(
        'lean-ordered-scores-mix-sign', 'models/mixed_effect.py',
        '            mean = mean + rowdot(v, mix)\n            scores = v.dot(x)',
        '            mean = mean - rowdot(v, mix)\n            scores = v.dot(x)',
        'the ordered fast draw subtracts the effects\' share of the mean',
        ("tests/test_online_fastpaths.py", T_EXACT),
    ),
    Mutant(
        'lean-context-fast-check-skips-finite', '_validation.py',
        'shape == (n_actions, dim)) and _finite_sum_of_squares(x):',
        'shape == (n_actions, dim)):',
        'the context fast path lets NaN through', ("tests/test_online_fastpaths.py",),
    ),
    # ------------------------------------------------------ dTS: runs stepped together
    Mutant(
        'batched-dts-eta-sign', 'models/batched_diffusion.py',
        '        self.eta_act += obs.eta.T',
        '        self.eta_act -= obs.eta.T',
        'batched dTS sum η_act of the wrong sign', T_BDTS,
    ),
    Mutant(
        'batched-dts-u-without-P1', 'models/batched_diffusion.py',
        '        Pu = matvec(self._precs[0], u)',
        '        Pu = u',
        'batched dTS scores without P_1 on u', T_BDTS,
    ),
    Mutant(
        'batched-dts-draw-order', 'models/batched_diffusion.py',
        '            gen.standard_normal(out=z_r)\n            gen.standard_normal(out=eps_r)',
        '            gen.standard_normal(out=eps_r)\n            gen.standard_normal(out=z_r)',
        'batched dTS draws the action normals before the latents', T_BDTS,
    ),
    Mutant(
        'batched-dts-glm-center', 'models/batched_diffusion.py',
        '            b_new = matvec(G_new, mode) + matvec(P0, mode - center)',
        '            b_new = matvec(G_new, mode) + matvec(P0, mode)',
        'batched GLM-dTS pseudo-observation ignores the centre E[u | H]', T_BDTS,
    ),
    Mutant(
        'batched-dts-joint-cov-order', 'models/batched_diffusion.py',
        '                block = chain.K[j] @ self._links[j + 1] @ block',
        '                block = self._links[j + 1] @ chain.K[j] @ block',
        'batched dTS joint latent covariance multiplies the gain and link in the wrong order',
        T_BDTS,
    ),
    Mutant(
        'batched-dts-cadence', 'models/batched_diffusion.py',
        '        self._since += 1\n',
        '        self._since += 2\n',
        'batched dTS counts each update twice towards its refactor', T_BDTS,
    ),
    # ------------------------------------------------------ dTS: the DDPM-fitted prior
    Mutant(
        'ddpm-forward-mean', 'priors_diffusion_fit.py',
        'xt = np.sqrt(a) * Z[idx] + np.sqrt(1.0 - a) * eps',
        'xt = a * Z[idx] + np.sqrt(1.0 - a) * eps',
        'training noises x_0 with ᾱ instead of √ᾱ', ("tests/test_diffusion_fit.py",),
    ),
    Mutant(
        'ddpm-link-skip', 'priors_diffusion_fit.py',
        'skip=1.0 / np.sqrt(alpha))',
        'skip=1.0)',
        'the link f_ℓ forgets the 1/√α_ℓ rescaling of ψ', ("tests/test_diffusion_fit.py",),
    ),
    Mutant(
        'ddpm-link-gain', 'priors_diffusion_fit.py',
        'gain = -beta / (np.sqrt(alpha) * np.sqrt(1.0 - abar)) * self.scale',
        'gain = -beta / (np.sqrt(alpha) * np.sqrt(1.0 - beta)) * self.scale',
        'the link\'s noise gain uses 1 − β_ℓ for 1 − ᾱ_ℓ', ("tests/test_diffusion_fit.py",),
    ),
    Mutant(
        'ddpm-chain-covs', 'priors_diffusion_fit.py',
        'covs = [b * s2 for b in self.beta] + [s2]',
        'covs = [s2 for b in self.beta] + [s2]',
        'the chain\'s Σ_ℓ ignore the noise schedule', ("tests/test_diffusion_fit.py",),
    ),
    Mutant(
        'ddpm-cosine-ratio', 'priors_diffusion_fit.py',
        'return np.minimum(1.0 - abar[1:] / abar[:-1], 0.999)',
        'return np.minimum(1.0 - abar[1:], 0.999)',
        'the cosine schedule\'s β_ℓ from ᾱ_ℓ, not ᾱ_ℓ/ᾱ_{ℓ−1}', ("tests/test_diffusion_fit.py",),
    ),
    Mutant(
        'swissroll-angle-range', 'environments/diffusion.py',
        't = 1.5 * np.pi * (1.0 + 2.0 * rng.uniform(size=n))',
        't = 1.5 * np.pi * (1.0 + rng.uniform(size=n))',
        'the Swiss roll\'s angle on [1.5π, 3π] instead of [1.5π, 4.5π]',
        ("tests/test_diffusion_env.py",),
    ),
    Mutant(
        'swissroll-spiral-swapped', 'environments/diffusion.py',
        'np.c_[t * np.cos(t), t * np.sin(t)] / 10.0',
        'np.c_[t * np.sin(t), t * np.cos(t)] / 10.0',
        'the Swiss roll mirrored (sin and cos swapped)', ("tests/test_diffusion_env.py",),
    ),
    # ------------------------------------------------------ decision service (issue #13)
    Mutant(
        'service-no-load-shedding', 'service/engine.py',
        'and len(self.queue) >= self.max_queue:',
        'and len(self.queue) >= self.max_queue + 10**9:',
        'an overloaded service queues without bound instead of answering 503',
        ("tests/test_service.py",),
    ),
    Mutant(
        'service-ttl', 'service/state.py',
        'learned = age <= self.settings.ttl',
        'learned = True',
        'late rewards learned', ("tests/test_service.py",),
    ),
    Mutant(
        'service-propensity-count', 'service/decide.py',
        'p = np.count_nonzero(choices == a) / n_draws',
        'p = np.count_nonzero(choices == a) / (n_draws + 1)',
        'propensity over the wrong count', ("tests/test_service_units.py",),
    ),
    Mutant(
        'service-eligible-ignored', 'service/decide.py',
        'choices = argmax_rows(draws, mask, rng)',
        'choices = argmax_rows(draws, core.active, rng)',
        'eligible set ignored', ("tests/test_service_units.py", "tests/test_service.py"),
    ),
    Mutant(
        'service-token-skipped', 'service/security.py',
        'if self.expected is not None and scope["path"] not in OPEN_PATHS:',
        'if False:',
        'no token check', ("tests/test_service_security.py",),
    ),
    Mutant(
        'service-duplicate-always', 'service/state.py',
        '            if prior == y:',
        '            if True:',
        'a different second reward taken as a duplicate', ("tests/test_service.py",),
    ),
    Mutant(
        'service-replay-drops-last', 'service/snapshots.py',
        "        for change in batch:  # the learner's order",
        "        for change in batch[:-1]:  # the learner's order",
        'replay loses a change', ("tests/test_service_crash.py",),
    ),
    Mutant(
        'service-apply-order', 'service/state.py',
        'for _, change in sorted(plan.applies, key=lambda p: p[1].lsn):',
        'for _, change in sorted(plan.applies, key=lambda p: -p[1].lsn):',
        'changes applied out of lsn order', ("tests/test_service_crash.py",),
    ),
    Mutant(
        'service-no-commit', 'service/engine.py',
        '            if events or changes or sequence:\n                with',
        '            if False:\n                with',
        'answers without storing', ("tests/test_service.py",),
    ),
    # ---------------------------------------------------- sDM on MovieLens (issue #12)
    Mutant(
        'sdm-ml-truth-epsilon-swapped', "offline/sdm_movielens.py",
        'truth = float(epsilon * R_test.mean() + (1.0 - epsilon) * R_test.max(axis=1).mean())',
        'truth = float((1.0 - epsilon) * R_test.mean() + epsilon * R_test.max(axis=1).mean())',
        "the target's value swaps its uniform and greedy parts", ("tests/test_sdm_movielens.py",),
    ),
    Mutant(
        'sdm-ml-centred-truth', "offline/sdm_movielens.py",
        'test_fraction=0.0, center=False, seed=seed)',
        'test_fraction=0.0, center=True, seed=seed)',
        'the truth is a centred factorisation, not the rating scale',
        ("tests/test_sdm_movielens.py",),
    ),
    Mutant(
        'sdm-ml-target-argmin', "offline/sdm_movielens.py",
        'a_star = np.argmax(inst["X"] @ theta.T, axis=1)',
        'a_star = np.argmin(inst["X"] @ theta.T, axis=1)',
        'the ε-greedy target is built around the worst movie', ("tests/test_sdm_movielens.py",),
    ),
    Mutant(
        'sdm-ml-control-not-shuffled', "offline/sdm_movielens.py",
        'mixing = prior.mixing[rng.permutation(K)]',
        'mixing = prior.mixing',
        'the negative control keeps the learned memberships', ("tests/test_sdm_movielens.py",),
    ),
    Mutant(
        'sdm-ml-dm-bayes-structured-prior', "offline/sdm_movielens.py",
        '"dm-bayes": LinTS(np.broadcast_to(mean, (K, d)), cov, noise_std=noise_std),',
        '"dm-bayes": LinTS.from_prior(inst["prior"], noise_std=noise_std),',
        "DM (Bayes) gets the mixture's marginal prior, not the paper's N(mean, diag(v))",
        ("tests/test_sdm_movielens.py",),
    ),
    Mutant(
        'sdm-ml-test-on-logged-contexts', "offline/sdm_movielens.py",
        'X_test = U if n_test is None else',
        'X_test = X if n_test is None else',
        'the truth over the logged contexts, not every user', ("tests/test_sdm_movielens.py",),
    ),
    # ------------------------------------------- IPS-family learners, MIPS (issue #12)
    Mutant(
        'softmax-ips-gradient-sign', 'offline/softmax_learning.py',
        '        P *= -cpi[:, None]',
        '        P *= cpi[:, None]',
        'IPS gradient of the wrong sign', ("tests/test_softmax_learning.py",),
    ),
    Mutant(
        'softmax-snips-no-baseline', 'offline/softmax_learning.py',
        '        c = (rewards - value) * inv_prop / total',
        '        c = rewards * inv_prop / total',
        'snIPS gradient without its baseline', ("tests/test_softmax_learning.py",),
    ),
    Mutant(
        'softmax-dr-dm-term', 'offline/softmax_learning.py',
        '        P *= (reward_model - q_pi[:, None]) / n - cpi[:, None]',
        '        P *= reward_model / n - cpi[:, None]',
        "DR gradient's DM term not centred", ("tests/test_softmax_learning.py",),
    ),
    Mutant(
        'softmax-dr-value-dm', 'offline/softmax_learning.py',
        'value = float(np.mean(q_pi, dtype=np.float64) + np.sum(c * pi, dtype=np.float64))',
        'value = float(np.sum(c * pi, dtype=np.float64))',
        'DR value without its DM term', ("tests/test_softmax_learning.py",),
    ),
    Mutant(
        'softmax-mips-cluster-mass', 'offline/softmax_learning.py',
        '        P *= same_cluster - pi[:, None]',
        '        P *= same_cluster',
        "MIPS gradient without the softmax's centring", ("tests/test_softmax_learning.py",),
    ),
    Mutant(
        'softmax-clip-ignored', 'offline/softmax_learning.py',
        '    inv_prop = 1.0 / np.maximum(p, tau)',
        '    inv_prop = 1.0 / p',
        'clipping ignored', ("tests/test_softmax_learning.py",),
    ),
    Mutant(
        'softmax-penalty-gradient', 'offline/softmax_learning.py',
        '(lam * beta - grad).ravel()',
        '(-grad).ravel()',
        'penalty missing from the gradient', ("tests/test_softmax_learning.py",),
    ),
    Mutant(
        'softmax-intercept-dropped', 'offline/softmax_learning.py',
        'np.hstack([X, np.ones((len(X), 1))]) if intercept else X',
        'np.hstack([X, np.zeros((len(X), 1))]) if intercept else X',
        'intercept column of zeros', ("tests/test_softmax_learning.py",),
    ),
    Mutant(
        'expected-rr-greedy', 'offline/softmax_learning.py',
        "    return float(np.sum(P * R, dtype=np.float64)), "
        "float(R.max(axis=1).sum(dtype=np.float64))",
        "    return float(R[np.arange(len(R)), P.argmax(1)].sum()), "
        "float(R.max(axis=1).sum(dtype=np.float64))",
        "expected relative reward of the greedy policy, not of π",
        ("tests/test_softmax_learning.py",),
    ),
    Mutant(
        'sdm-mips-ope-size', 'offline/sdm_ope.py',
        '    w = (epsilon * size / K + (1.0 - epsilon) * hit) / (size / K)',
        '    w = (epsilon * size / K + (1.0 - epsilon) * hit) * K',
        'MIPS weight ignores the cluster size', ("tests/test_offline_learning.py",),
    ),
    Mutant(
        'sdm-dr-learner-model', 'offline/sdm_synthetic.py',
        '                extra["reward_model"] = q_hat["dm-freq"]',
        '                extra["reward_model"] = 0.0 * q_hat["dm-freq"]',
        'DR learner without its reward model', ("tests/test_offline_learning.py",),
    ),
    # ------------------------------------------------------------- Speed II (issue #15)
    Mutant(
        'newton-unweighted-gradient', 'models/newton.py',
        'V *= self.w  # the row weights (counts, or n/B of a minibatch)',
        'V[::2] *= self.w  # the row weights (counts, or n/B of a minibatch)',
        'the row counts weight only every other quantity of the pass (gradient unweighted)',
        ("tests/test_batched_glm.py", "tests/test_glm.py"),
    ),
    Mutant(
        'newton-curvature-sigma-prime', 'models/newton.py',
        'np.multiply(er, r, out=V[2])',
        'np.multiply(er, 1.0, out=V[2])',
        "Newton curvature without σ'",
        ("tests/test_batched_glm.py", "tests/test_glm.py"),
    ),
    Mutant(
        'batched-laplace-repeat-not-counted', 'models/batched_laplace.py',
        'wh[at] += 1.0',
        'wh[at] += 0.0',
        'a repeated row is not counted (batched)',
        ("tests/test_batched_glm.py",),
    ),
    Mutant(
        'laplace-merged-repeat-not-counted', 'models/laplace.py',
        'w[hit[0]] += 1.0',
        'w[hit[0]] += 0.0',
        'a repeated row is not counted',
        ("tests/test_glm.py", "tests/test_batched_glm.py"),
    ),
    Mutant(
        'batched-glm-posterior-b-center', 'models/batched_glm.py',
        'b = b + matvec(P0, mode - center)',
        'b = b + matvec(P0, mode)',
        'batched pseudo-observation ignores the centre',
        ("tests/test_batched_glm.py",),
    ),
    Mutant(
        'batched-glm-dM-sign', 'models/batched_glm.py',
        'dM = P0 @ (S_old - S_new) @ P0',
        'dM = P0 @ (S_new - S_old) @ P0',
        'batched change of M_a of the wrong sign',
        ("tests/test_batched_glm.py",),
    ),
    Mutant(
        'batched-glm-sqrt-coef-sign', 'models/batched_glm.py',
        'coef = -lam / (r * (1.0 + r))',
        'coef = lam / (r * (1.0 + r))',
        'batched square-root update of the wrong sign',
        ("tests/test_batched_glm.py",),
    ),
    Mutant(
        'batched-glm-factored-untouched-mean', 'models/batched_glm.py',
        'mean = np.where(touched, BlockSqrtGaussian._mean(C, h), eff.mean)',
        'mean = eff.mean',
        'factored effect means not refreshed',
        ("tests/test_batched_glm.py",),
    ),
    Mutant(
        'mixed-effect-P0-fold-dropped', 'models/mixed_effect.py',
        'self._mix(psi @ self.store.P0), True)',
        'self._mix(psi), True)',
        'score direction without P0 (folded into Ψ)',
        ("tests/test_online_round.py", "tests/test_exactness.py"),
    ),
    Mutant(
        'actions-sort-slots-no-permute', 'models/actions.py',
        '            arr[:n] = arr[perm]\n',
        '            arr[:n] = arr[:n]\n',
        'slots reordered without their data',
        ("tests/test_online_round.py", "tests/test_exactness.py"),
    ),
    Mutant(
        'gaussian-in-place-potter-sign', 'models/gaussian.py',
        'alpha = -1.0 / (r * (1.0 + r))',
        'alpha = 1.0 / (r * (1.0 + r))',
        'in-place Potter update of the wrong sign',
        ("tests/test_exactness.py",),
    ),
    Mutant(
        'linalg-potter-1d-alpha', 'linalg.py',
        'return C - np.outer((C @ z) / (r * (1.0 + r)), z)',
        'return C - np.outer((C @ z) / r, z)',
        "Potter's α without 1 + r",
        ("tests/test_exactness.py", "tests/test_batched.py"),
    ),
    Mutant(
        'plan-units-not-longest-first', 'evaluation/simulate.py',
        'return sorted(units, key=lambda u: -u[2])',
        'return units',
        'tasks not scheduled longest first',
        ("tests/test_simulate.py",),
    ),
    Mutant(
        'rounds-score-normals-shifted', 'models/mixed_effect.py',
        'return draw_scores(mean, var, Z[:, L * d :])',
        'return draw_scores(mean, var, Z[:, -K:][:, ::-1])',
        'the vectorised rounds use other normals',
        ("tests/test_online_round.py",),
    ),
    Mutant(
        'reward-fast-path-accepts-nan', '_validation.py',
        'if isinstance(y, float) and math.isfinite(y):',
        'if isinstance(y, float):',
        'the reward fast path lets NaN through',
        ("tests/test_online_round.py", "tests/test_bad_input.py"),
    ),
]


# ---------------------------------------------------------------------------- copies
def _ignore(_dir, names):
    return [n for n in names if n == "__pycache__" or n.endswith((".egg-info", ".pyc"))]


def make_copy(dest: Path, rev: str | None) -> None:
    """src/, tests/ and pyproject.toml of the repository (src/ from ``rev`` when given)."""
    dest.mkdir(parents=True, exist_ok=True)
    if rev is None:
        shutil.copytree(ROOT / "src", dest / "src", ignore=_ignore)
    else:  # a read-only git operation: the repository's state is untouched
        data = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev, "src"],
                              check=True, capture_output=True).stdout
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(dest, filter="data")
    shutil.copytree(ROOT / "tests", dest / "tests", ignore=_ignore)
    shutil.copy2(ROOT / "pyproject.toml", dest / "pyproject.toml")


def env_for(copy_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(copy_dir / "src")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("PYTEST_ADDOPTS", None)
    return env


def run_pytest(copy_dir: Path, tests, timeout: float) -> tuple[bool, str, float]:
    """(passed, first failing test or reason, seconds) of ``pytest -x`` in the copy."""
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
           "--import-mode=importlib", "-o", "addopts=", "-rfE", "--no-header", *tests]
    start = time.perf_counter()
    # its own process group: a timeout kills pytest and whatever it started (a mutant can make
    # a service test's server loop for ever)
    proc = subprocess.Popen(cmd, cwd=copy_dir, env=env_for(copy_dir), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return False, f"timeout after {timeout:.0f} s", time.perf_counter() - start
    out = subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
    seconds = time.perf_counter() - start
    if out.returncode == 0:
        return True, "", seconds
    text = out.stdout + out.stderr
    match = re.search(r"^(FAILED|ERROR) (\S+)", text, re.M)
    if match:
        return False, match.group(2), seconds
    tail = [line for line in text.strip().splitlines() if line.strip()][-1:] or ["?"]
    return False, f"pytest exit {out.returncode}: {tail[0][:80]}", seconds


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_isolation(copy_dir: Path) -> None:
    """The copy's package is what gets imported, and a broken copy breaks only the copy."""
    probe = subprocess.run(
        [sys.executable, "-c", "import mixedts, sys; sys.stdout.write(mixedts.__file__)"],
        cwd=copy_dir, env=env_for(copy_dir), capture_output=True, text=True, check=True)
    if not Path(probe.stdout).resolve().is_relative_to(copy_dir.resolve()):
        sys.exit(f"isolation failed: the copy imports mixedts from {probe.stdout}")
    target = copy_dir / PKG / "linalg.py"
    original = target.read_text()
    before = file_hash(ROOT / PKG / "linalg.py")
    try:
        target.write_text(original + "\ndef broken(:\n")
        passed, why, _ = run_pytest(copy_dir, ["tests/test_likelihoods.py"], timeout=120)
        if passed:
            sys.exit("isolation failed: a syntax error planted in the copy did not fail there")
    finally:
        target.write_text(original)
    home = subprocess.run([sys.executable, "-c", "import mixedts.linalg"], cwd=ROOT,
                          capture_output=True, text=True)
    if home.returncode != 0 or file_hash(ROOT / PKG / "linalg.py") != before:
        sys.exit("isolation failed: the working tree was affected by the planted error")
    print(f"isolation: mixedts imported from the copy; planted syntax error caught there ({why})")


# ---------------------------------------------------------------------------- running
@dataclass
class Result:
    mutant: Mutant
    status: str  # caught, SURVIVED, equivalent, stale
    detail: str
    seconds: float


def run_one(copy_dir: Path, pristine: dict[str, str], m: Mutant, timeout: float) -> Result:
    path = copy_dir / PKG / m.file
    if m.file not in pristine:
        pristine[m.file] = path.read_text() if path.exists() else ""
    text = pristine[m.file]
    count = text.count(m.original)
    if count != 1:
        where = "not found" if count == 0 else f"found {count} times"
        return Result(m, "stale", f"snippet {where} in {m.file}", 0.0)
    path.write_text(text.replace(m.original, m.replacement))
    try:
        passed, detail, seconds = run_pytest(copy_dir, m.tests, timeout)
    finally:
        path.write_text(text)
    if passed:
        return Result(m, "equivalent" if m.equivalent else "SURVIVED", m.equivalent, seconds)
    return Result(m, "caught", detail, seconds)


def run_all(mutants: list[Mutant], jobs: int, rev: str | None, timeout: float,
            baseline: bool) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="mixedts-mutants-") as tmp:
        copies = [Path(tmp) / f"copy{i}" for i in range(jobs)]
        for c in copies:
            make_copy(c, rev)
        check_isolation(copies[0])
        if baseline:
            tests = sorted({t for m in mutants for t in m.tests})
            passed, detail, seconds = run_pytest(copies[0], tests, timeout=1800)
            if not passed:
                sys.exit(f"baseline: the unmutated copy fails {detail}; fix the tree first")
            print(f"baseline: {len(tests)} test files pass unmutated ({seconds:.0f} s)")
        work: queue.Queue = queue.Queue()
        for i, m in enumerate(mutants):
            work.put((i, m))
        results: list[Result | None] = [None] * len(mutants)
        lock = threading.Lock()

        def worker(copy_dir: Path) -> None:
            pristine: dict[str, str] = {}
            while True:
                try:
                    i, m = work.get_nowait()
                except queue.Empty:
                    return
                r = run_one(copy_dir, pristine, m, timeout)
                results[i] = r
                with lock:
                    print(f"  {r.status:10s} {m.name:38s} {r.seconds:6.1f} s  {r.detail}",
                          flush=True)

        threads = [threading.Thread(target=worker, args=(c,)) for c in copies]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return [r for r in results if r is not None]


def table(results: list[Result], rev: str | None, seconds: float) -> str:
    counts = {s: sum(r.status == s for r in results) for s in
              ("caught", "SURVIVED", "equivalent", "stale")}
    lines = [
        "# Mutation testing of the core formulas",
        "",
        "`make mutants` (`tools/mutants.py`): each mutant is applied to a private copy of "
        f"`src/` ({'commit ' + rev if rev else 'the working tree'}) and the listed test files "
        "are run there with `pytest -x`. Not part of CI.",
        "",
        f"{len(results)} mutants: {counts['caught']} caught, {counts['SURVIVED']} survived, "
        f"{counts['equivalent']} equivalent (listed with the reason), {counts['stale']} stale; "
        f"{seconds:.0f} s.",
        "",
        "| # | mutant | file | bug | result | caught by / reason | time |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(results, 1):
        m = r.mutant
        detail = r.detail.replace("|", "\\|")
        if r.status == "caught":
            detail = f"`{detail}`"
        bug = m.description.replace("|", "\\|")
        lines.append(f"| {i} | `{m.name}` | `{m.file}` | {bug} | "
                     f"{'**SURVIVED**' if r.status == 'SURVIVED' else r.status} | {detail} | "
                     f"{r.seconds:.1f} s |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", dest="pattern", help="only mutants whose name or file has this")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="parallel copies (2)")
    parser.add_argument("--rev", help="take src/ from this commit (git archive)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per mutant")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the unmutated run of the test files")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--check", action="store_true",
                        help="only check that every snippet occurs exactly once")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results_mutants.md"),
                        help="where to write the table ('' for nowhere)")
    args = parser.parse_args(argv)
    mutants = [m for m in MUTANTS
               if not args.pattern or args.pattern in m.name or args.pattern in m.file]
    names = [m.name for m in MUTANTS]
    assert len(set(names)) == len(names), "mutant names must be unique"
    if args.list:
        for m in mutants:
            print(f"{m.name:38s} {m.file:24s} {m.description}")
        return 0
    if args.check:
        with tempfile.TemporaryDirectory(prefix="mixedts-mutants-") as tmp:
            make_copy(Path(tmp), args.rev)
            stale = []
            for m in mutants:
                n = (Path(tmp) / PKG / m.file).read_text().count(m.original)
                if n != 1:
                    stale.append(m.name)
                    print(f"stale: {m.name} ({m.file}: snippet found {n} times)")
        print(f"{len(mutants) - len(stale)} of {len(mutants)} snippets occur exactly once")
        return 1 if stale else 0
    start = time.perf_counter()
    print(f"{len(mutants)} mutants, {args.jobs} workers")
    results = run_all(mutants, max(1, args.jobs), args.rev, args.timeout, not args.no_baseline)
    text = table(results, args.rev, time.perf_counter() - start)
    print()
    print(text)
    if args.out and not args.pattern:
        Path(args.out).write_text(text)
        print(f"written to {args.out}")
    bad = [r for r in results if r.status in ("SURVIVED", "stale")]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

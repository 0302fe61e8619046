"""What users hold: a model, a decision rule and a ``numpy.random.Generator``.

:class:`ContextualBandit` is the one contract: ``select(x)``, ``select_batch(X)``,
``update(x, a, y)``, ``update_batch(X, A, Y)``, catalogue changes, inspection and persistence.
:class:`ContextFreeBandit` *wraps* a contextual bandit whose model ignores contexts and offers
the context-free calls (``select()``, ``update(a, y)``); it is not a subclass, so no signature
changes under anyone's feet.

The policy asks the model for the summary its rule declares (``rule.draw``, see
:mod:`mixedts.rules`) and hands it to the rule; rules never see models.
"""

from __future__ import annotations

import copy

import numpy as np

from .. import _validation as V
from ..likelihoods import Gaussian, Likelihood
from ..models.base import Draw, summarise
from ..models.beta import argmax_rows
from ..rules import DecisionRule, ThompsonSampling, argmax_active

#: Monte Carlo draws of ``action_probabilities`` for Thompson sampling
MC_DRAWS = 1000


def split_ties(scores: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Each row's argmax over the active actions as a distribution, ties split evenly, (n, K)."""
    masked = np.where(active, scores, -np.inf)
    top = masked == masked.max(axis=1, keepdims=True)
    return top / top.sum(axis=1, keepdims=True)

_GAUSSIAN = Gaussian()


def check_compatible(model, rule: DecisionRule) -> None:
    """Raise ``ValidationError`` unless ``model`` offers the summary ``rule`` consumes."""
    if rule.draw not in model.draws:
        offered = sorted(d.value for d in model.draws)
        raise V.ValidationError(
            f"rule {rule!r} needs the {rule.draw.value!r} summary, which "
            f"{type(model).__name__} does not offer (it offers {offered})"
        )


class Persistent:
    """``save`` and ``copy``, shared by every policy."""

    def save(self, path) -> None:
        """Save to ``path`` (.npz, no pickle); ``mixedts.load(path)`` continues exactly."""
        from ..persistence import save_policy

        save_policy(self, path)

    def copy(self):
        """A deep copy (posterior and random state)."""
        return copy.deepcopy(self)


class ContextualBandit(Persistent):
    """A model, a decision rule and a ``numpy.random.Generator``.

    Every public method validates its arguments first; a rejected call raises ``ValueError``
    naming the argument and leaves the posterior and the random state exactly as they were.

    Parameters
    ----------
    model : Model
        The posterior (see :mod:`mixedts.models`).
    rule : DecisionRule
        Turns the summary it declares into scores (see :mod:`mixedts.rules`).
    seed : int, SeedSequence or numpy Generator, optional
        Every draw of the policy comes from it.

    Raises
    ------
    ValidationError
        ``model`` does not offer the summary ``rule`` consumes, or an invalid ``seed``.

    Examples
    --------
    >>> import numpy as np
    >>> from mixedts import ContextualBandit, LinTS
    >>> from mixedts.rules import Greedy
    >>> greedy = ContextualBandit(LinTS(np.zeros((3, 2)), np.eye(2)).model, Greedy(), seed=0)
    >>> greedy.update(np.ones(2), 1, 2.0)
    >>> greedy.select(np.ones(2))
    1
    """

    def __init__(self, model, rule: DecisionRule, seed=None) -> None:
        check_compatible(model, rule)
        self.model = model
        self.rule = rule
        self.rng = V.as_generator(seed)
        self.active = np.ones(model.n_actions, dtype=bool)

    @classmethod
    def _restore(cls, model, rule: DecisionRule, rng: np.random.Generator, active: np.ndarray):
        """Rebuild a saved policy of this class from its parts (persistence)."""
        policy = cls.__new__(cls)
        ContextualBandit.__init__(policy, model, rule, rng)
        policy.active = active
        return policy

    # ------------------------------------------------------------------ sizes
    @property
    def n_actions(self) -> int:
        """K, the number of actions (retired ones included)."""
        return self.model.n_actions

    @property
    def dim(self):
        """d, the context dimension (0 for context-free models; None where experts do not fix
        it)."""
        return self.model.dim

    # ------------------------------------------------------------------ contexts
    def _context(self, x):
        """One validated context: (d,) or (K, d); ``None`` for context-free models."""
        model = self.model
        if model.dim == 0:
            if x is not None:
                raise V.ValidationError("x must be omitted: this model has no context")
            return None
        return V.check_context(x, model.n_actions, model.dim)

    def _contexts(self, X, n):
        """Validated contexts of n rounds, (n, d) or (n, K, d); ``[None] * n`` without."""
        if self.model.dim == 0:
            if X is not None:
                raise V.ValidationError("X must be omitted: this model has no context")
            if n is None:
                raise V.ValidationError("n must be given when there are no contexts")
            return [None] * n
        if n is not None:
            raise V.ValidationError("n applies only to context-free policies: pass X")
        return V.check_contexts(X, self.n_actions, self.dim)

    # ------------------------------------------------------------------ decisions
    def _check_any_active(self) -> int:
        """The number of active actions (raises when there is none)."""
        n_active = np.count_nonzero(self.active)
        if not n_active:
            raise V.ValidationError("every action is retired: add_action first")
        return n_active

    def _draw(self) -> Draw:
        fast = self.rule.fast_draw
        return fast if fast is not None and fast in self.model.draws else self.rule.draw

    def _choose(self, x, all_active: bool) -> int:
        rule = self.rule
        if all_active and type(rule) is ThompsonSampling:
            # what argmax_active does without ties to break: the first maximal score
            return int(np.asarray(self.model.sample_scores(x, self.rng)).argmax())
        summary = summarise(self.model, rule.draw, x, self.rng)
        return argmax_active(rule.scores(summary, self.rng), self.active, self.rng,
                             rule.random_ties, all_active)

    def select(self, x=None) -> int:
        """Choose an action for context ``x`` (d,) shared or (K, d) per action."""
        x = self._context(x)
        n_active = self._check_any_active()
        if self.rule.batched:
            return int(self._choose_many(1)[0])
        return self._choose(x, n_active == len(self.active))

    def _choose_many(self, n: int) -> np.ndarray:
        """n context-free decisions from one batched summary per chunk of rounds, (n,)."""
        draw, rule = self._draw(), self.rule
        step = max(1, rule.chunk_entries // max(1, self.n_actions))
        out = np.empty(n, dtype=np.int64)
        for start in range(0, n, step):  # chunks of rounds bound the (rounds, K) memory
            m = min(step, n - start)
            summary = summarise(self.model, draw, None, self.rng, m, self.active)
            out[start:start + m] = rule.choose(summary, m, self.active, self.rng)
        return out

    def select_batch(self, X=None, n=None) -> np.ndarray:
        """Choose n actions from the current posterior (no updates in between), (n,).

        ``X`` is (n, d) or (n, K, d); context-free policies take ``n`` instead.
        """
        if n is not None:
            n = V.check_int(n, "n", low=0)
        X = self._contexts(X, n)
        all_active = self._check_any_active() == len(self.active)
        if self.rule.batched:
            return self._choose_many(len(X))
        rounds = getattr(self.model, "sample_scores_rounds", None)
        if rounds is not None and type(self.rule) is ThompsonSampling and self.model.dim:
            return self._thompson_rounds(X, rounds, all_active)
        out = np.empty(len(X), dtype=np.int64)
        for t in range(len(X)):  # rounds, not actions: each round is one batched pass
            out[t] = self._choose(X[t], all_active)
        return out

    def _thompson_rounds(self, X, rounds, all_active: bool) -> np.ndarray:
        """Thompson sampling's choices for the rounds ``X`` from one draw per chunk of rounds
        (the model's ``sample_scores_rounds``: the normals of the rounds in turn, so the same
        choices as round-by-round ``select``), (n,)."""
        K = self.n_actions
        step = max(1, (1 << 20) // (K * self.dim))  # chunks bound the (rounds, K, d) memory
        out = np.empty(len(X), dtype=np.int64)
        for start in range(0, len(X), step):
            scores = rounds(X[start:start + step], self.rng)
            if not all_active:
                scores = np.where(self.active, scores, -np.inf)
            out[start:start + step] = np.argmax(scores, axis=1)
        return out

    # ------------------------------------------------------------------ propensities
    def _is_batch(self, x, batch: bool | None) -> bool:
        if batch is not None:
            return bool(batch)
        arr = np.asarray(x)
        if arr.ndim != 2:
            return arr.ndim == 3
        return arr.shape != (self.n_actions, self.dim)  # (K, d): one per-action context

    def action_probabilities(self, x=None, *, batch: bool | None = None,
                             n_draws: int = MC_DRAWS, seed=None, return_stderr: bool = False):
        """The probability that ``select`` returns each action, (K,) — or (n, K) for a batch.

        ``x`` is one context ((d,) or (K, d)) or a batch ((n, d) or (n, K, d); an (n, d)
        batch with n = K needs ``batch=True``). Exact where the rule is deterministic (greedy,
        UCB, indices: ties split evenly, as ``select`` breaks them uniformly); for Thompson
        sampling, a Monte Carlo estimate from ``n_draws`` posterior draws taken in one batched
        pass per context, with standard errors √(p(1 − p)/n_draws) (``return_stderr=True``
        returns ``(probabilities, stderr)``; exact rules have stderr 0). Draws come from
        ``seed``'s generator, or from the policy's (advancing it) when ``seed`` is None.
        """
        n_draws = V.check_int(n_draws, "n_draws", low=1)
        rng = self.rng if seed is None else V.as_generator(seed)
        if self.model.dim != 0 and self._is_batch(x, batch):
            X = self._contexts(x, None)
            self._check_any_active()
            pairs = [self._probabilities(X[t], n_draws, rng) for t in range(len(X))]  # rounds
            probs = np.stack([p for p, _ in pairs])
            stderr = np.stack([e for _, e in pairs])
        else:
            x = self._context(x)
            self._check_any_active()
            probs, stderr = self._probabilities(x, n_draws, rng)
        return (probs, stderr) if return_stderr else probs

    def _probabilities(self, x, n_draws: int, rng) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, stderr) of one validated context, each (K,)."""
        rule, active = self.rule, self.active
        sampling = rule.draw in (Draw.SAMPLE, Draw.SAMPLES, Draw.SAMPLES_MEAN)
        if not sampling:  # deterministic scores: exact, ties split as select breaks them
            if rule.batched:
                scores = rule.index(summarise(self.model, rule.draw, x, rng))
            else:
                scores = rule.scores(summarise(self.model, rule.draw, x, rng), rng)
            return split_ties(np.asarray(scores, dtype=np.float64)[None], active)[0], \
                np.zeros(len(active))
        if Draw.SAMPLES not in self.model.draws:
            raise V.ValidationError(
                f"{type(self.model).__name__} cannot draw the posterior n times at once: no "
                "Monte Carlo propensities for it")
        if rule.batched:
            summary = summarise(self.model, rule.draw, x, rng, n_draws, active)
            choices = rule.choose(summary, n_draws, active, rng)
        else:  # Thompson sampling: n_draws scores per action, one argmax per draw
            draws = rule.scores(summarise(self.model, Draw.SAMPLES, x, rng, n_draws), rng)
            choices = argmax_rows(draws, active, rng)
        p = np.bincount(choices, minlength=len(active)) / n_draws
        return p, np.sqrt(p * (1.0 - p) / n_draws)

    def select_with_propensity(self, x=None, *, n_draws: int = MC_DRAWS) -> tuple[int, float]:
        """``select(x)`` and the probability of the chosen action (exact, or a Monte Carlo
        estimate from ``n_draws`` draws for Thompson sampling): what a log should record."""
        a = self.select(x)
        p = self.action_probabilities(x, batch=False, n_draws=n_draws)
        return a, float(p[a])

    # ------------------------------------------------------------------ feedback
    @property
    def likelihood(self) -> Likelihood:
        """The reward likelihood of the model (Gaussian unless a GLM was asked for)."""
        return getattr(self.model, "likelihood", _GAUSSIAN)

    def _rewards(self, Y: np.ndarray, name: str) -> np.ndarray:
        """Check rewards against the likelihood (raises before any state changes), then apply
        the documented Bernoulli conversion of fractional rewards when ``binarize=True``."""
        Y = self.likelihood.check_rewards(Y, name)
        if getattr(self.likelihood, "binarize", False):
            Y = self.rng.binomial(1, Y).astype(np.float64)
        return Y

    def _row(self, x, a: int):
        return None if x is None else np.ascontiguousarray(x if x.ndim == 1 else x[a])

    def update(self, x=None, a=None, y=None) -> None:
        """Condition on reward ``y`` of action ``a`` in context ``x`` ((d,) or (K, d))."""
        x = self._context(x)
        a = V.check_action(a, self.model.n_actions)
        y = V.check_reward(y)
        # Gaussian rewards under the base rules: any finite number (nothing more to check)
        if type(self)._rewards is not ContextualBandit._rewards or (
                type(getattr(self.model, "likelihood", _GAUSSIAN)) is not Gaussian):
            y = float(self._rewards(np.array([y]), "y")[0])
        self.model.update(self._row(x, a), a, y, rng=self.rng)

    def _feedback(self, X, A, Y):
        A = V.check_actions(A, self.n_actions)
        X = self._contexts(X, len(A) if self.model.dim == 0 else None)
        Y = V.as_float_array(Y, "Y", ndim=1)
        if self.model.dim == 0 and len(A) != len(Y):
            raise V.ValidationError(f"A and Y must have the same length, got {len(A)}, {len(Y)}")
        if not (len(X) == len(A) == len(Y)):
            raise V.ValidationError(
                f"X, A and Y must have the same length, got {len(X)}, {len(A)}, {len(Y)}"
            )
        return X, A, self._rewards(Y, "Y")

    def update_batch(self, X=None, A=None, Y=None) -> None:
        """Condition on n rewards at once (delayed or logged feedback).

        ``X`` (n, d) or (n, K, d), ``A`` (n,), ``Y`` (n,). Equivalent to n calls of ``update``
        (exactly for Gaussian rewards; GLM rewards get one joint Laplace refit).
        """
        X, A, Y = self._feedback(X, A, Y)
        if self.model.dim == 0:
            self.model.update_batch(None, A, Y, rng=self.rng)
            return
        Xa = X if X.ndim == 2 else X[np.arange(len(A)), A]
        self.model.update_batch(np.ascontiguousarray(Xa), A, Y, rng=self.rng)

    # ------------------------------------------------------------------ catalogue
    def retire_action(self, i) -> None:
        """Never select action ``i`` again; what it taught the shared structure stays."""
        i = V.check_action(i, self.n_actions, "i")
        self.active[i] = False

    def _add(self, *args, **kwargs) -> int:
        index = self.model.add_action(*args, **kwargs)
        self.active = np.append(self.active, True)
        return index

    # ------------------------------------------------------------------ inspection
    def posterior_mean(self) -> np.ndarray:
        """Marginal posterior mean of each action's parameter, (K, d).

        Context-free arms: (K,) mean rewards; expert policies: the weights (N,)."""
        return self.model.posterior_mean()

    def posterior_cov(self) -> np.ndarray:
        """Marginal posterior covariance of each action's parameter, (K, d, d).

        Context-free arms: (K,) variances; expert policies: diag(w) − wwᵀ, (N, N)."""
        return self.model.posterior_cov()

    def sample_parameters(self, n: int, seed=None) -> np.ndarray:
        """``n`` joint posterior draws of all parameters, (n, K, d).

        Context-free arms: (n, K, 1); expert policies: one-hot expert indicators (n, N).
        With ``seed=None`` the policy's generator is used (and advanced); pass a seed to
        leave it untouched.
        """
        n = V.check_int(n, "n", low=1)
        rng = self.rng if seed is None else V.as_generator(seed)
        return self.model.sample_parameters(n, rng)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n_actions={self.n_actions}, dim={self.dim}, "
            f"rule={self.rule!r}, retired={int((~self.active).sum())})"
        )


class ContextFreeBandit(Persistent):
    """A context-free policy: wraps a :class:`ContextualBandit` whose model has no context.

    ``select()``/``select_batch(n)`` choose arms from the current posterior (no update in
    between), ``update(a, y)``/``update_batch(A, Y)`` condition on rewards, possibly late.

    Parameters
    ----------
    contextual : ContextualBandit
        The wrapped policy, kept as ``contextual`` (``contextual.select(None)`` is
        ``select()``); its model has no context (``dim == 0``).

    Examples
    --------
    The posterior mean's argmax over Beta-Bernoulli arms:

    >>> from mixedts import ContextFreeBandit, ContextualBandit
    >>> from mixedts.models.beta import BetaBernoulliModel
    >>> from mixedts.rules import Greedy
    >>> arms = BetaBernoulliModel(np.ones(3), np.ones(3))
    >>> policy = ContextFreeBandit(ContextualBandit(arms, Greedy(), seed=0))
    >>> policy.update_batch([0, 2, 2], [0.0, 1.0, 1.0])
    >>> policy.select(), policy.select_batch(3).tolist()
    (2, [2, 2, 2])
    """

    #: the class of the wrapped policy (persistence rebuilds it)
    contextual_class: type[ContextualBandit] = ContextualBandit

    def __init__(self, contextual: ContextualBandit) -> None:
        self.contextual = contextual

    @classmethod
    def _restore(cls, model, rule, rng, active):
        policy = cls.__new__(cls)
        ContextFreeBandit.__init__(policy,
                                   cls.contextual_class._restore(model, rule, rng, active))
        return policy

    # the parts persistence and inspection read
    model = property(lambda self: self.contextual.model)
    rule = property(lambda self: self.contextual.rule)
    rng = property(lambda self: self.contextual.rng)
    active = property(lambda self: self.contextual.active)
    n_actions = property(lambda self: self.contextual.n_actions)

    def select(self) -> int:
        """Choose one arm."""
        return self.contextual.select(None)

    def select_batch(self, n) -> np.ndarray:
        """Choose ``n`` arms independently from the current posterior, (n,) int64."""
        return self.contextual.select_batch(None, n)

    def action_probabilities(self, *, n_draws: int = MC_DRAWS, seed=None,
                             return_stderr: bool = False):
        """The probability that ``select()`` returns each arm, (K,) (see
        :meth:`ContextualBandit.action_probabilities`)."""
        return self.contextual.action_probabilities(None, n_draws=n_draws, seed=seed,
                                                    return_stderr=return_stderr)

    def select_with_propensity(self, *, n_draws: int = MC_DRAWS) -> tuple[int, float]:
        """``select()`` and the probability of the chosen arm."""
        return self.contextual.select_with_propensity(None, n_draws=n_draws)

    def update(self, a, y) -> None:
        """Condition on reward ``y`` of arm ``a``."""
        self.contextual.update(None, a, y)

    def update_batch(self, A, Y) -> None:
        """Condition on rewards ``Y`` (n,) of arms ``A`` (n,): the same as n ``update`` calls."""
        self.contextual.update_batch(None, A, Y)

    def retire_action(self, i) -> None:
        """Never select arm ``i`` again (its late rewards are still accepted)."""
        self.contextual.retire_action(i)

    def _add(self, *args) -> int:
        return self.contextual._add(*args)

    def counts(self) -> np.ndarray:
        """Observations per arm, (K,)."""
        return self.model.counts()

    def posterior_mean(self) -> np.ndarray:
        """Posterior mean reward of each arm, (K,)."""
        return self.contextual.posterior_mean()

    def posterior_cov(self) -> np.ndarray:
        """Posterior variance of each arm's mean reward, (K,)."""
        return self.contextual.posterior_cov()

    def sample_parameters(self, n: int, seed=None) -> np.ndarray:
        """``n`` posterior draws of every arm's mean reward, (n, K, 1)."""
        return self.contextual.sample_parameters(n, seed)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n_actions={self.n_actions}, rule={self.rule!r}, "
            f"retired={int((~self.active).sum())})"
        )


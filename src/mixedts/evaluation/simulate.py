"""A single seeded bandit run (the experiment engine of issue 5 builds on this)."""

from __future__ import annotations

import numpy as np


def run_policy(environment, policy, horizon: int, rng: np.random.Generator) -> np.ndarray:
    """Run ``policy`` for ``horizon`` rounds and return the per-round expected regret, (horizon,).

    The environment draws contexts and rewards from ``rng``; the policy uses its own generator,
    so two policies run with equal ``rng`` seeds see the same contexts and reward noise.
    """
    regret = np.empty(horizon)
    for t in range(horizon):
        x = environment.context(rng)
        means = environment.expected_rewards(x)
        a = policy.select(x)
        policy.update(x, a, environment.draw_reward(x, a, rng))
        regret[t] = means.max() - means[a]
    return regret

import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).parent))

from mixedts import MixedEffectPrior


def make_prior(
    seed=0, K=12, L=3, d=2, mixing="dense", action_cov="shared", effect_cov="block"
) -> MixedEffectPrior:
    """Random mixed-effect priors covering every supported form of each argument."""
    rng = np.random.default_rng(seed)
    if mixing == "dense":
        B = rng.uniform(-1, 1, (K, L))
    elif mixing == "negative":
        B = -rng.uniform(0.2, 1.5, (K, L))
    elif mixing == "onehot":
        B = np.eye(L)[rng.integers(L, size=K)]
    elif mixing == "sparse":
        B = sp.random(K, L, density=0.5, random_state=seed, format="csr")
        B.data = rng.uniform(-1, 1, B.nnz)
    else:
        raise ValueError(mixing)

    def spd(n, scale=1.0):
        Q = rng.normal(size=(n, n))
        return scale * (Q @ Q.T / n + 0.5 * np.eye(n))

    if effect_cov == "block":
        S_psi = np.stack([spd(d, 2.0) for _ in range(L)])
    else:
        S_psi = spd(L * d, 2.0)
    S0 = spd(d) if action_cov == "shared" else np.stack([spd(d) for _ in range(K)])
    return MixedEffectPrior(rng.normal(size=(L, d)), S_psi, B, S0)


@pytest.fixture
def prior():
    return make_prior()

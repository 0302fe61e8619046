"""The demo experiment, shared by the full and the core command line."""

from __future__ import annotations

from typing import Any

#: the demo: meTS Fig. 2 (linear, K=100, L=3, d=2) in the authors' code setting, shortened
DEMO: dict[str, Any] = {
    "name": "demo",
    "title": "Linear bandit: K = 100, L = 3, d = 2 (authors' code setting)",
    "environment": {"type": "mixed-effect", "n_actions": 100, "n_effects": 3, "dim": 2,
                    "contexts": "pool"},
    "policies": {
        "meTS-Lin": {"type": "MeTS"},
        "meTS-Lin-Fa": {"type": "FactoredMeTS"},
        "HierTS": {"type": "HierTS", "action_cov": "marginal"},
        "LinTS": {"type": "LinTS"},
        "LinUCB": {"type": "LinUCB"},
    },
    "horizon": 2000,
    "runs": 8,
}

"""What ``mixedts evaluate`` shows: the estimates as a table and a plot with their intervals.

The plot draws each estimator's value with its 95% interval and, where the logs know the
truth (simulated logs carry every action's expected reward), the target policy's true value on
the logged contexts as a line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .logs import LoggedFeedback
from .simulate import true_policy_value


def truth_of(logs: LoggedFeedback, probabilities: np.ndarray) -> float | None:
    """The target's true value on the logged contexts, or None when the logs do not know it."""
    if logs.expected_rewards is None:
        return None
    return float(true_policy_value(logs, probabilities))


def plot_estimates(table: Any, path: Path, truth: float | None = None, title: str = "") -> Path:
    """Estimates (rows of ``table``: value, ci_low, ci_high) with 95% intervals, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(table.index)
    value = table["value"].to_numpy()
    low, high = table["ci_low"].to_numpy(), table["ci_high"].to_numpy()
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 3, 3.6))
    ax.errorbar(np.arange(len(names)), value, yerr=[value - low, high - value], fmt="o",
                capsize=4, color="tab:blue", label="estimate ± 95% interval")
    if truth is not None:
        ax.axhline(truth, color="black", linestyle="--", label=f"true value {truth:.4g}")
    ax.set_xticks(np.arange(len(names)), names)
    ax.set_ylabel("policy value")
    ax.set_title(title or "Off-policy estimates")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

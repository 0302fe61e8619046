"""Plots (matplotlib, Agg canvas: no display needed)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

#: the paper's colours where it has them (Fig. 2), then matplotlib's cycle
PAPER_COLORS = {
    "meTS-Lin": "tab:red",
    "meTS-GLM": "tab:red",
    "meTS-Lin-Fa": "tab:orange",
    "meTS-GLM-Fa": "tab:orange",
    "HierTS": "tab:gray",
    "LinUCB": "tab:cyan",
    "UCB-GLM": "tab:cyan",
    "LinTS": "tab:blue",
    "GLM-TS": "tab:blue",
}
_MARKERS = ("D", "s", "^", "v")
_CYCLE = ("tab:purple", "tab:green", "tab:brown", "tab:pink", "tab:olive", "black")


def policy_colors(names) -> dict[str, str | None]:
    """A colour per policy: the paper's where it has one and no earlier policy took it, then
    a fixed cycle (None past its end: matplotlib's default)."""
    cycle = iter(_CYCLE)
    colors: dict[str, str | None] = {}
    for name in names:
        color = PAPER_COLORS.get(name)
        if color is None or color in colors.values():  # meTS-Lin beside meTS-GLM: no clash
            color = next(cycle, None)
        colors[name] = color
    return colors


def plot_regret(results, path, title: str | None = None, reference: Mapping | None = None,
                points: int = 400) -> Path:
    """Write the cumulative-regret figure of ``results`` (a :class:`Results`) to ``path`` (PNG).

    Mean over runs with a ±1 standard-error band per policy; ``reference`` values
    ({label: {policy: final regret}}) are drawn as markers at the last round.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - the 'plots' extra
        raise ImportError("plots need matplotlib: pip install 'mixedts[plots]'") from exc

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(6.4, 4.4), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    curves = results.curves(points)
    wanted = policy_colors(curves)
    colors = {}
    for name, (rounds, mean, se) in curves.items():
        color = wanted[name]
        (line,) = ax.plot(rounds, mean, label=name, color=color, lw=1.6)
        ax.fill_between(rounds, mean - se, mean + se, color=line.get_color(), alpha=0.2, lw=0)
        colors[name] = line.get_color()
    horizon = results.horizon
    for k, (label, values) in enumerate((reference or {}).items()):
        for name, value in values.items():
            if name in colors:
                ax.plot([horizon], [value], marker=_MARKERS[k % len(_MARKERS)], ms=6,
                        color=colors[name], mfc="none", ls="none", clip_on=False)
        ax.plot([], [], marker=_MARKERS[k % len(_MARKERS)], color="k", mfc="none", ls="none",
                label=f"{label} (at n={horizon})")
    ax.set_xlabel("Round n")
    ax.set_ylabel("Cumulative regret")
    runs = results.n_runs
    ax.set_title(title or f"{runs} runs, mean ± standard error", fontsize=10)
    ax.set_xlim(0, horizon * 1.02)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path

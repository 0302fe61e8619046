"""Results of a simulation: one tidy table, summaries, files and plots."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

COLUMNS = (
    "policy",
    "run",
    "round",
    "action",
    "reward",
    "regret",
    "cum_regret",
    "realised_regret",
    "seconds",
)
#: columns that depend on the machine, not on the seeds
TIMING_COLUMNS = ("seconds",)
_META_KEY = b"mixedts"


def _pandas():
    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover - the 'experiments' extra
        raise ImportError("results need pandas: pip install 'mixedts[experiments]'") from exc
    return pd


class Results:
    """A tidy table with one row per (policy, run, round).

    Parameters
    ----------
    frame : pandas.DataFrame
        Columns ``policy``, ``run`` (0-based), ``round`` (1-based), ``action``, ``reward``,
        ``regret`` (expected regret of the round), ``cum_regret`` (cumulative expected
        regret), ``realised_regret`` (best action's reward minus the received one, the
        authors' measure), ``seconds`` (the policy's select + update time in that round).
    meta : mapping, optional
        The configuration (environment, horizon, seeds, wall time, ...).

    Attributes
    ----------
    frame : pandas.DataFrame
    meta : dict

    Raises
    ------
    ValueError
        ``frame`` lacks one of the columns.

    Examples
    --------
    >>> from mixedts import LinTS
    >>> from mixedts.environments import MixedEffectEnvironment
    >>> from mixedts.evaluation.simulate import simulate
    >>> env = MixedEffectEnvironment(10, 2, 2)
    >>> results = simulate(env, {"LinTS": lambda e, rng: LinTS.from_prior(e.prior, seed=rng)},
    ...                    horizon=50, n_runs=3, seed=0, quiet=True)
    >>> results
    Results(policies=['LinTS'], n_runs=3, horizon=50, rows=150)
    >>> results.summary(rounds=[10, 50])[["round", "n_runs"]].values.tolist()
    [[10, 3], [50, 3]]
    >>> results.final().shape
    (3, 3)
    """

    def __init__(self, frame, meta: Mapping[str, Any] | None = None) -> None:
        missing = [c for c in COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"results table lacks columns {missing}")
        self.frame = frame
        self.meta = dict(meta or {})

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_tasks(
        cls, tasks: Sequence[tuple[int, str]], arrays: Sequence[dict], meta: Mapping[str, Any]
    ) -> Results:
        pd = _pandas()
        names = list(meta.get("policies") or dict.fromkeys(name for _, name in tasks))
        parts = {k: [] for k in COLUMNS}
        for (run, name), out in zip(tasks, arrays):
            n = len(out["regret"])
            parts["policy"].append(np.full(n, names.index(name), dtype=np.int16))
            parts["run"].append(np.full(n, run, dtype=np.int32))
            parts["round"].append(np.arange(1, n + 1, dtype=np.int32))
            parts["action"].append(out["action"].astype(np.int32))
            for key in ("reward", "regret", "realised_regret", "seconds"):
                parts[key].append(np.asarray(out[key], dtype=np.float64))
            parts["cum_regret"].append(np.cumsum(out["regret"]))
        data = {k: np.concatenate(v) if v else np.empty(0) for k, v in parts.items()}
        data["policy"] = pd.Categorical.from_codes(data["policy"], categories=names)
        frame = pd.DataFrame(data, columns=list(COLUMNS))
        return cls(frame, meta)

    # ------------------------------------------------------------------ views
    @property
    def policies(self) -> list[str]:
        """Policy names in the order they were given."""
        pol = self.frame["policy"]
        if hasattr(pol, "cat"):
            return [str(c) for c in pol.cat.categories]
        return list(dict.fromkeys(pol))

    @property
    def horizon(self) -> int:
        return int(self.frame["round"].max())

    @property
    def n_runs(self) -> int:
        return int(self.frame["run"].nunique())

    def final(self):
        """Final cumulative regret of every (policy, run): columns policy, run, cum_regret."""
        f = self.frame
        last_round = f.groupby(["policy", "run"], observed=True)["round"].transform("max")
        last = f[f["round"] == last_round]
        return last[["policy", "run", "cum_regret"]].reset_index(drop=True)

    def summary(self, rounds: int | Iterable[int] | None = None):
        """Mean ± standard error over runs of the cumulative regret at ``rounds``.

        ``rounds``: one round, several, or None for the final round. Columns: ``policy``,
        ``round``, ``cum_regret_mean``, ``cum_regret_se`` (std/√runs, NaN with one run),
        ``n_runs``, ``ms_per_round`` (the policy's mean time per round, all rounds).
        """
        pd = _pandas()
        f = self.frame
        if rounds is None:
            wanted = [self.horizon]
        elif np.ndim(rounds) == 0:
            wanted = [int(rounds)]  # type: ignore[arg-type]
        else:
            wanted = sorted({int(r) for r in rounds})  # type: ignore[union-attr]
        bad = [r for r in wanted if not 1 <= r <= self.horizon]
        if bad:
            raise ValueError(f"rounds must lie in [1, {self.horizon}], got {bad}")
        sel = f[f["round"].isin(wanted)]
        g = sel.groupby(["policy", "round"], observed=True)["cum_regret"]
        out = g.agg(cum_regret_mean="mean", cum_regret_se="sem", n_runs="count").reset_index()
        ms = f.groupby("policy", observed=True)["seconds"].mean() * 1e3
        out["ms_per_round"] = out["policy"].map(ms).astype(float)
        order = {p: i for i, p in enumerate(self.policies)}
        out["policy"] = out["policy"].astype(str)
        out["_order"] = out["policy"].map(order)
        out = out.sort_values(["round", "_order"]).drop(columns="_order")
        return pd.DataFrame(out).reset_index(drop=True)

    def order_swaps(self, reference: Mapping[str, float]) -> list[tuple[str, str, float, float]]:
        """Pairs whose order here differs from ``reference``'s, with their paired difference.

        For every pair of policies in both, ranked a < b by ``reference`` but with a higher
        mean final regret here, returns (a, b, mean, se) of the per-run difference
        regret(a) − regret(b). Every policy of a run faces the same instance and rounds, so the
        paired difference is the fair test of an order: a swap within about 2 s.e. is a tie.
        """
        f = self.final()
        wide = f.pivot(index="run", columns="policy", values="cum_regret")
        means = wide.mean()
        names = sorted((p for p in wide.columns if p in reference), key=lambda p: reference[p])
        out = []
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                if reference[a] < reference[b] and means[a] > means[b]:
                    d = (wide[a] - wide[b]).to_numpy()
                    se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
                    out.append((str(a), str(b), float(d.mean()), se))
        return out

    def curves(self, points: int | None = None) -> dict[str, tuple[np.ndarray, ...]]:
        """Per policy (rounds, mean, se) of the cumulative regret, ``points`` rounds at most."""
        out = {}
        for name in self.policies:
            sub = self.frame[self.frame["policy"] == name]
            runs = sub["run"].nunique()
            cum = sub.sort_values(["run", "round"])["cum_regret"].to_numpy().reshape(runs, -1)
            rounds = np.arange(1, cum.shape[1] + 1)
            if points is not None and cum.shape[1] > points:
                keep = np.unique(np.linspace(0, cum.shape[1] - 1, points).astype(int))
                cum, rounds = cum[:, keep], rounds[keep]
            mean = cum.mean(axis=0)
            se = cum.std(axis=0, ddof=1) / np.sqrt(runs) if runs > 1 else np.zeros_like(mean)
            out[name] = (rounds, mean, se)
        return out

    def table(self, rounds: int | None = None, reference: Mapping | None = None) -> str:
        """A plain-text table of :meth:`summary` (sorted by regret), with reference columns."""
        s = self.summary(rounds).sort_values("cum_regret_mean")
        refs = dict(reference or {})
        head = ["policy", "regret", "± s.e.", *refs, "ms/round"]
        rows = []
        for r in s.itertuples():
            se = "" if np.isnan(r.cum_regret_se) else f"{r.cum_regret_se:.1f}"
            ref = [_fmt_ref(refs[k].get(r.policy)) for k in refs]
            rows.append([r.policy, f"{r.cum_regret_mean:.1f}", se, *ref, f"{r.ms_per_round:.3f}"])
        widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
        lines = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in
                           enumerate(zip(head, widths)))]
        for row in rows:
            lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                                   enumerate(zip(row, widths))))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"Results(policies={self.policies}, n_runs={self.n_runs}, horizon={self.horizon}, "
            f"rows={len(self.frame)})"
        )

    # ------------------------------------------------------------------ files
    def to_parquet(self, path) -> Path:
        """Write the table (and ``meta`` in the file's metadata) as Parquet."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pandas(self.frame, preserve_index=False)
        metadata = dict(table.schema.metadata or {})
        metadata[_META_KEY] = json.dumps(self.meta, default=str).encode()
        pq.write_table(table.replace_schema_metadata(metadata), path)
        return path

    @classmethod
    def read_parquet(cls, path) -> Results:
        """Read what :meth:`to_parquet` wrote."""
        import pyarrow.parquet as pq

        table = pq.read_table(Path(path))
        raw = (table.schema.metadata or {}).get(_META_KEY)
        meta = json.loads(raw) if raw else {}
        return cls(table.to_pandas(), meta)

    def to_csv(self, path) -> Path:
        """Write the whole table as CSV."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.frame.to_csv(path, index=False)
        return path

    def plot(self, path, title: str | None = None, reference: Mapping | None = None,
             points: int = 400) -> Path:
        """Cumulative regret (mean with ±1 s.e. bands) against rounds, saved as PNG.

        ``reference``: {label: {policy: final regret}} drawn as markers at the last round.
        """
        from .plots import plot_regret

        return plot_regret(self, path, title=title, reference=reference, points=points)


def _fmt_ref(value) -> str:
    return "" if value is None else f"{float(value):.0f}"

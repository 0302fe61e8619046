"""What the status page shows, counted by this process since it started: decisions and
rewards in the last minute, the reward rate over time (10-second slots over the last hour),
how often each action was chosen and the recent contexts the posterior summaries are taken at."""

from __future__ import annotations

import time

import numpy as np

#: seconds per slot of the counters, and slots kept (one hour)
SLOT = 10.0
SLOTS = 360
RECENT = 256


class Stats:
    """Per-slot counters in ring buffers, per-action choice counts, recent context rows.

    Examples
    --------
    >>> s = Stats(n_actions=3, now=100.0, slot=10.0)
    >>> s.decided(np.array([2, 2, 0]), np.ones((3, 2)), now=101.0)
    >>> s.rewarded(np.array([1.0, 0.0]), now=125.0)
    >>> s.slots(now=125.0)
    [(100.0, 3, 0, None), (110.0, 0, 0, None), (120.0, 0, 2, 0.5)]
    >>> s.last_minute(now=125.0), s.most_chosen(2)
    ((3, 2), [(2, 2), (0, 1)])
    """

    def __init__(self, n_actions: int, now: float | None = None,
                 slot: float | None = None) -> None:
        now = time.time() if now is None else now
        self.slot = slot = SLOT if slot is None else slot
        self.first = self.last = int(now // slot)
        self.decisions = np.zeros(SLOTS, dtype=np.int64)
        self.rewards = np.zeros(SLOTS, dtype=np.int64)
        self.reward_sum = np.zeros(SLOTS)
        self.chosen = np.zeros(n_actions, dtype=np.int64)
        self.recent: np.ndarray | None = None
        self.recent_n = 0
        self.total_decisions = 0
        self.total_rewards = 0

    def _roll(self, now: float) -> int:
        k = int(now // self.slot)
        if k > self.last:
            stale = np.arange(self.last + 1, min(k, self.last + SLOTS) + 1) % SLOTS
            self.decisions[stale] = self.rewards[stale] = 0
            self.reward_sum[stale] = 0.0
            self.last = k
        return k % SLOTS

    def decided(self, actions: np.ndarray, rows: np.ndarray | None,
                now: float | None = None) -> None:
        """Count decisions (their actions, (n,), and chosen context rows, (n, d))."""
        i = self._roll(time.time() if now is None else now)
        self.decisions[i] += len(actions)
        self.total_decisions += len(actions)
        if len(actions) and actions.max() >= len(self.chosen):
            self.chosen = np.concatenate(
                [self.chosen, np.zeros(actions.max() + 1 - len(self.chosen), dtype=np.int64)])
        np.add.at(self.chosen, actions, 1)
        if rows is not None and len(rows):
            if self.recent is None or self.recent.shape[1] != rows.shape[1]:
                self.recent = np.zeros((RECENT, rows.shape[1]))
            idx = (self.recent_n + np.arange(len(rows))) % RECENT
            self.recent[idx[-RECENT:]] = rows[-RECENT:]
            self.recent_n += len(rows)

    def rewarded(self, rewards: np.ndarray, now: float | None = None) -> None:
        i = self._roll(time.time() if now is None else now)
        self.rewards[i] += len(rewards)
        self.reward_sum[i] += float(np.sum(rewards))
        self.total_rewards += len(rewards)

    def slots(self, now: float | None = None, n: int = SLOTS):
        """(slot start, decisions, rewards, mean reward or None) of the last ``n`` slots since
        the process started, oldest first."""
        self._roll(time.time() if now is None else now)
        ks = np.arange(max(self.first, self.last - min(n, SLOTS) + 1), self.last + 1)
        i = ks % SLOTS
        dec, rew, tot = self.decisions[i], self.rewards[i], self.reward_sum[i]
        rate = np.divide(tot, rew, out=np.zeros(len(i)), where=rew > 0)
        return [(float(k * self.slot), int(a), int(b), float(r) if b else None)
                for k, a, b, r in zip(ks, dec, rew, rate)]

    def last_minute(self, now: float | None = None) -> tuple[int, int]:
        """Decisions and rewards in the last 60 seconds (whole slots)."""
        rows = self.slots(now, max(1, round(60 / self.slot)))
        return sum(r[1] for r in rows), sum(r[2] for r in rows)

    def most_chosen(self, n: int) -> list[tuple[int, int]]:
        """The ``n`` most chosen actions with their counts (most first)."""
        order = np.argsort(-self.chosen, kind="stable")[:n]
        return [(int(a), int(self.chosen[a])) for a in order if self.chosen[a] > 0]

    def mean_context(self) -> np.ndarray | None:
        """The mean of the recent chosen context rows (None before any)."""
        if self.recent is None:
            return None
        return self.recent[: min(self.recent_n, RECENT)].mean(axis=0)

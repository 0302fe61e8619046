"""The service's state — policy, model version, unrewarded events — and what a batch does to it.

:meth:`State.prepare` decides, validates and turns a batch of requests into rows; nothing in
the posterior changes there. Once the rows are committed, :meth:`State.finish` applies the
batch's learned changes in their ``lsn`` order, one at a time (as replay does); if the commit
fails, :meth:`State.abort` forgets the batch. Every method runs in the engine's one thread.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import OrderedDict

import numpy as np

from .._validation import ValidationError
from .decide import check_servable, decide
from .jobs import AddAction, Plan, Rank, RetireAction, Reward, Sequence, ServiceError
from .snapshots import apply_change, arguments, core_of
from .stats import Stats
from .store import Change, StoredEvent, chosen_row, context_bytes

#: unrewarded events kept in memory (older ones are looked up in the store)
CACHE = 200_000


class State:
    """Everything one serve process holds; see the module docstring."""

    def __init__(self, policy, version: int, snapshot_id: int, store, settings, metrics,
                 now: float | None = None) -> None:
        self.store, self.settings, self.metrics = store, settings, metrics
        self.learns = settings.role != "ranker"
        self.set_policy(policy, version, snapshot_id)
        self.snapshot_lsn = version if settings.role == "ranker" else self._snapshot_lsn()
        self.snapshot_time = time.time()
        self.next_lsn = max(store.max_lsn(), version) + 1
        self.rng = np.random.default_rng(settings.seed)
        self.pending: OrderedDict[str, StoredEvent] = OrderedDict()
        self.inflight_events: dict[str, StoredEvent] = {}
        self.inflight_rewards: dict[str, float] = {}
        self.staged_adds = 0
        self.staged_retires: set[int] = set()
        self.stats = Stats(self.core.n_actions, now)
        self._load_pending(time.time() if now is None else now)

    def set_policy(self, policy, version: int, snapshot_id: int) -> None:
        core = core_of(policy)
        check_servable(core)
        self.policy, self.core = policy, core
        self.version, self.snapshot_id = version, snapshot_id
        self.metrics.version.set(version)

    def _snapshot_lsn(self) -> int:
        info = self.store.snapshot_info()
        return 0 if info is None else info[0]

    def _load_pending(self, now: float) -> None:
        for r in reversed(self.store.pending_since(now - self.settings.ttl, CACHE)):
            self.pending[r.event_id] = StoredEvent(
                r.event_id, r.created, r.action, chosen_row(r.context, r.context_rows, r.action))
        self.metrics.pending.set(len(self.pending))

    # ------------------------------------------------------------------ prepare
    def prepare(self, jobs: list, now: float) -> Plan:
        plan = Plan(jobs, [None] * len(jobs), [[] for _ in jobs], [[] for _ in jobs], now=now)
        given = [j.event_id for j in jobs if isinstance(j, Rank) and j.event_id]
        taken = self.store.event_ids_taken(
            e for e in given if e not in self.pending and e not in self.inflight_events)
        for i, job in enumerate(jobs):
            try:
                if isinstance(job, Rank):
                    plan.outcomes[i] = self._rank(plan, i, job, taken)
                elif isinstance(job, Reward):
                    plan.outcomes[i] = self._reward(plan, i, job)
                elif isinstance(job, AddAction):
                    plan.outcomes[i] = self._add(plan, i, job)
                elif isinstance(job, RetireAction):
                    plan.outcomes[i] = self._retire(plan, i, job)
                elif isinstance(job, Sequence):
                    plan.outcomes[i] = self._sequence(plan, i)
            except ServiceError as exc:
                plan.outcomes[i] = exc
        return plan

    def _rank(self, plan: Plan, i: int, job: Rank, taken: set) -> dict:
        core, x = self.core, job.x
        K, d = core.n_actions, core.dim
        if d == 0:
            if x is not None:
                raise ServiceError(422, "context must be omitted: this policy has no context",
                                   "context")
        elif x is None:
            raise ServiceError(422, "context is required", "context")
        elif d is not None and x.ndim == 1 and x.shape[0] != d:
            raise ServiceError(422, f"context must hold d = {d} numbers (or K = {K} rows of "
                               f"{d}), got {x.shape[0]}", "context")
        elif d is not None and x.ndim == 2 and x.shape != (K, d):
            raise ServiceError(422, f"context must be K × d = {K} × {d} (one row per action) "
                               f"or d = {d} numbers, got {x.shape[0]} × {x.shape[1]}",
                               "context")
        mask = core.active
        if job.eligible is not None:
            ids = np.asarray(job.eligible, dtype=np.int64)
            bad = (ids < 0) | (ids >= K)
            if bad.any():
                j = int(np.argmax(bad))
                raise ServiceError(422, f"eligible[{j}]: unknown action {ids[j]} (actions are "
                                   f"0 … {K - 1})", f"eligible.{j}")
            mask = np.zeros(K, dtype=bool)
            mask[ids] = True
            mask &= core.active
            if not mask.any():
                raise ServiceError(422, "eligible: every eligible action is retired",
                                   "eligible")
        elif not mask.any():
            raise ServiceError(409, "every action is retired: add one first")
        eid = job.event_id or uuid.uuid4().hex
        if job.event_id and (eid in taken or eid in self.pending or eid in
                             self.inflight_events or eid in plan.new_events):
            raise ServiceError(409, f"event_id: {eid!r} is already used by another decision")
        try:
            dec = decide(core, x, mask, self.settings.propensity_draws, self.rng, job.top)
        except ValidationError as exc:  # a policy whose own checks refuse the context
            raise ServiceError(422, str(exc), "context") from None
        row = None if x is None else (x if x.ndim == 1 else np.ascontiguousarray(x[dec.action]))
        plan.events[i].append({
            "event_id": eid, "created": plan.now, "context": context_bytes(x),
            "context_rows": 1 if x is None or x.ndim == 1 else len(x), "action": dec.action,
            "probability": dec.probability, "model_version": self.version, "n_actions": K,
            "eligible": None if job.eligible is None else
            np.asarray(job.eligible, dtype="<i8").tobytes()})
        plan.new_events[eid] = StoredEvent(eid, plan.now, dec.action, row)
        return {"event_id": eid, "action": dec.action, "probability": dec.probability,
                "ranking": dec.ranking, "model_version": self.version}

    def _lookup(self, plan: Plan, eid: str) -> StoredEvent:
        for cache in (plan.new_events, self.inflight_events, self.pending):
            ev = cache.get(eid)
            if ev is not None:
                return ev
        stored = self.store.event(eid)
        if stored is None:
            raise ServiceError(404, f"event_id: no decision {eid!r} is stored")
        return stored

    def _reward(self, plan: Plan, i: int, job: Reward) -> dict:
        eid, y = job.event_id, job.reward
        prior = plan.rewarded.get(eid, self.inflight_rewards.get(eid))
        ev = None
        if prior is None:
            ev = self._lookup(plan, eid)
            prior = ev.reward
        if prior is not None:
            if prior == y:
                return {"event_id": eid, "status": "duplicate", "model_version": self.version}
            raise ServiceError(409, f"reward: event {eid!r} already has reward {prior!r}, "
                               f"not {y!r}")
        plan.rewarded[eid] = y
        age = plan.now - ev.created
        learned = age <= self.settings.ttl
        lsn = None
        if learned and self.learns:
            lsn = self._lsn()
            plan.applies.append((i, Change(lsn, "reward", ev.action, y, ev.row)))
        plan.changes[i].append({"lsn": lsn, "kind": "reward", "event_id": eid, "reward": y,
                                "action": None, "payload": None, "learned": learned,
                                "created": plan.now})
        if not learned:
            return ServiceError(410, f"event_id: {eid!r} was decided {age:.0f} s ago, after "
                                f"the time-to-live of {self.settings.ttl:g} s: the reward is "
                                "stored but not learned")
        return {"event_id": eid, "status": "learned" if self.learns else "queued",
                "model_version": self.version}

    def _lsn(self) -> int:
        lsn = self.next_lsn
        self.next_lsn += 1
        return lsn

    def _catalogue(self) -> None:
        if not self.learns:
            raise ServiceError(409, "catalogue changes go to the learner: this process is a "
                               "ranker")

    def _add(self, plan: Plan, i: int, job: AddAction) -> dict:
        self._catalogue()
        trial = self.policy.copy()
        if not hasattr(trial, "add_action"):
            raise ServiceError(409, f"{type(trial).__name__} cannot add actions")
        try:
            trial.add_action(**arguments(job.params))
        except (ValidationError, TypeError) as exc:
            raise ServiceError(422, f"params: {exc}", "params") from None
        index = self.core.n_actions + self.staged_adds + plan.adds
        plan.adds += 1
        lsn = self._lsn()
        payload = json.dumps(job.params)
        plan.changes[i].append({"lsn": lsn, "kind": "add", "event_id": None, "reward": None,
                                "action": index, "payload": payload, "learned": True,
                                "created": plan.now})
        plan.applies.append((i, Change(lsn, "add", index, payload=json.loads(payload))))
        return {"action": index, "status": "added", "n_actions": index + 1,
                "model_version": lsn}

    def _retire(self, plan: Plan, i: int, job: RetireAction) -> dict:
        self._catalogue()
        a, K = job.action, self.core.n_actions + self.staged_adds + plan.adds
        if not 0 <= a < K:
            raise ServiceError(404, f"action {a} does not exist (actions are 0 … {K - 1})")
        if (a < self.core.n_actions and not self.core.active[a]) or a in self.staged_retires \
                or a in plan.retires:
            return {"action": a, "status": "already retired", "n_actions": K,
                    "model_version": max(self.version, self.next_lsn - 1)}
        plan.retires.add(a)
        lsn = self._lsn()
        plan.changes[i].append({"lsn": lsn, "kind": "retire", "event_id": None,
                                "reward": None, "action": a, "payload": None, "learned": True,
                                "created": plan.now})
        plan.applies.append((i, Change(lsn, "retire", a)))
        return {"action": a, "status": "retired", "n_actions": K, "model_version": lsn}

    def _sequence(self, plan: Plan, i: int) -> int:
        rows = self.store.unsequenced()
        for r in rows:
            lsn = self._lsn()
            plan.sequence.append((r.id, lsn))
            plan.applies.append((i, Change(lsn, "reward", int(r.action), float(r.reward),
                                           chosen_row(r.context, r.context_rows, r.action))))
        return len(rows)

    # ------------------------------------------------------------------ after the commit
    def stage(self, plan: Plan) -> None:
        """Mark the batch's events and rewards as in flight (until finish or abort)."""
        self.inflight_events.update(plan.new_events)
        self.inflight_rewards.update(plan.rewarded)
        self.staged_adds += plan.adds
        self.staged_retires |= plan.retires

    def _unstage(self, plan: Plan) -> None:
        for eid in plan.new_events:
            self.inflight_events.pop(eid, None)
        for eid in plan.rewarded:
            self.inflight_rewards.pop(eid, None)
        self.staged_adds -= plan.adds
        self.staged_retires -= plan.retires

    def finish(self, plan: Plan) -> None:
        """The batch is committed: apply its changes in lsn order and update the caches."""
        self._unstage(plan)
        for _, change in sorted(plan.applies, key=lambda p: p[1].lsn):
            apply_change(self.policy, change)
            self.version = change.lsn
        for eid in plan.rewarded:
            self.pending.pop(eid, None)
        for eid, ev in plan.new_events.items():
            if eid not in plan.rewarded:
                self.pending[eid] = ev
        self._sweep(plan.now)
        self._count(plan)

    def _count(self, plan: Plan) -> None:
        if plan.new_events:
            evs = list(plan.new_events.values())
            actions = np.fromiter((e.action for e in evs), dtype=np.int64, count=len(evs))
            rows = None if evs[0].row is None else np.stack([e.row for e in evs])
            self.stats.decided(actions, rows, plan.now)
            self.metrics.decisions.inc(len(evs))
        if plan.rewarded:
            self.stats.rewarded(np.fromiter(plan.rewarded.values(), dtype=np.float64),
                                plan.now)
        m = self.metrics
        for out in plan.outcomes:
            if isinstance(out, ServiceError) and out.status == 410:
                m.rewards.labels("stored").inc()
            elif isinstance(out, dict) and out.get("status") in ("learned", "queued",
                                                                 "duplicate"):
                m.rewards.labels(out["status"]).inc()
        m.version.set(self.version)
        m.pending.set(len(self.pending))

    def _sweep(self, now: float) -> None:
        """Drop cached events past the time-to-live (or beyond the cache size)."""
        limit = now - self.settings.ttl
        while self.pending:
            ev = next(iter(self.pending.values()))
            if ev.created >= limit and len(self.pending) <= CACHE:
                break
            self.pending.popitem(last=False)

    def abort(self, plan: Plan) -> None:
        """The batch's commit failed: forget it (its answers become errors)."""
        self._unstage(plan)

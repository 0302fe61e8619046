"""Group commit: requests are decided in small batches in one thread, and every batch decided
while the store was busy is committed together in another; a response waits for its commit.

Three stages, each in its own thread, so that the event loop only parses and answers HTTP:

1. *prepare* (the state thread): decide and validate a batch of at most ``max_batch``
   requests, turn it into rows (nothing in the posterior changes);
2. *commit* (the store thread): one transaction for every batch prepared since the last
   commit began; once it is committed, the batches' learning is queued on the state thread
   and their requests are answered;
3. *finish* (the state thread, in order, before any later batch is prepared): apply the
   learned changes in lsn order and update the caches.

If a commit fails, its batches and every batch prepared before the failure was known are
answered 503 (their answers may rest on the failed ones) and nothing of them is learned.
When ``max_queue`` requests already wait to be decided, a new decision or reward is answered 503
at once with
``Retry-After: 1`` and nothing of it is stored (load shedding: under overload the latency of
what is accepted stays bounded instead of the queue growing without end).
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.exc import IntegrityError

from .jobs import Plan, Rank, Reward, ServiceError
from .snapshots import to_bytes

log = logging.getLogger("mixedts.service")


class Engine:
    """Runs :class:`~mixedts.service.state.State` batches for the event loop."""

    def __init__(self, state, max_batch: int = 32, max_queue: int = 4096) -> None:
        self.state = state
        self.store = state.store
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.queue: list = []  # (job, future) not prepared yet
        self.prepared: list = []  # (batch, plan, generation) waiting for a commit
        self.preparing = self.committing = False
        self.generation = 0  # bumped by a failed commit: plans prepared before are void
        #: the newest committed lsn (what any later decision will be made with)
        self.committed_lsn = state.version
        self.compute = ThreadPoolExecutor(1, thread_name_prefix="mixedts-state")
        self.commits = ThreadPoolExecutor(1, thread_name_prefix="mixedts-commit")
        self.side = ThreadPoolExecutor(1, thread_name_prefix="mixedts-snapshot")
        self.snapshotting = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.closed = False

    @property
    def version(self) -> int:
        """The model version a request made now is answered with."""
        s = self.state
        return max(s.version, self.committed_lsn) if s.learns else s.version

    # ------------------------------------------------------------------ loop thread
    async def submit(self, job):
        """Run ``job`` in the next batch; its outcome, or raise its ServiceError."""
        if self.closed:
            raise ServiceError(503, "the service is shutting down")
        if isinstance(job, (Rank, Reward)) and len(self.queue) >= self.max_queue:
            # load shedding (decisions and rewards only: catalogue changes and the learner's
            # own sequencing always queue): answer now, store nothing
            raise ServiceError(503, f"overloaded: {len(self.queue)} requests are waiting to be "
                               "decided; nothing was stored, retry later",
                               headers={"Retry-After": "1"})
        loop = self.loop = self.loop or asyncio.get_running_loop()
        fut = loop.create_future()
        self.queue.append((job, fut))
        if not self.preparing:
            self._prepare_next()
        out = await fut
        if isinstance(out, ServiceError):
            raise out
        return out

    def _prepare_next(self) -> None:
        if not self.queue or self.preparing:
            return
        batch, self.queue = self.queue[: self.max_batch], self.queue[self.max_batch:]
        self.preparing = True
        generation = self.generation
        fut = self.loop.run_in_executor(self.compute, self._prepare, [j for j, _ in batch])
        fut.add_done_callback(lambda f: self._prepared(f, batch, generation))

    def _prepared(self, f, batch, generation: int) -> None:
        self.preparing = False
        try:
            plan = f.result()
        except Exception as exc:  # a bug, not bad input: answer 500 and keep serving
            log.exception("batch failed")
            self._answer(batch, [ServiceError(500, f"internal error: {exc!r}")] * len(batch))
        else:
            self.prepared.append((batch, plan, generation))
            self._commit_next()
        self._prepare_next()

    def _commit_next(self) -> None:
        if self.committing or not self.prepared:
            return
        group, self.prepared = self.prepared, []
        self.committing = True
        fut = self.loop.run_in_executor(self.commits, self._commit, group)
        fut.add_done_callback(lambda f: self._committed(f, group))

    def _committed(self, f, group) -> None:
        self.committing = False
        try:
            f.result()
        except Exception as exc:  # pragma: no cover - _commit answers what it expects
            log.exception("commit step failed")
            for _, plan, _ in group:
                plan.outcomes = [ServiceError(500, f"internal error: {exc!r}")] * len(plan.jobs)
        for batch, plan, _ in group:
            self._answer(batch, plan.outcomes)
        self._commit_next()

    @staticmethod
    def _answer(batch, outcomes) -> None:
        for (_, fut), out in zip(batch, outcomes):
            if not fut.done():
                fut.set_result(out)

    # ------------------------------------------------------------------ state thread
    def _prepare(self, jobs: list) -> Plan:
        plan = self.state.prepare(jobs, time.time())
        self.state.stage(plan)
        return plan

    def _finish(self, plans: list) -> None:
        for plan in plans:
            self.state.finish(plan)
        self._maybe_snapshot()

    # ------------------------------------------------------------------ store thread
    def _commit(self, group) -> None:
        """Commit the group's rows in one transaction, queue its learning, fill its answers."""
        live = [plan for _, plan, gen in group if gen == self.generation]
        void = [plan for _, plan, gen in group if gen != self.generation]
        if void:
            self._fail(void, "an earlier batch failed to commit", bump=False)
        if not live:
            return
        events = [r for plan in live for r in plan.rows()[0]]
        changes = [r for plan in live for r in plan.rows()[1]]
        sequence = [s for plan in live for s in plan.sequence]
        start = time.perf_counter()
        try:
            if events or changes or sequence:
                with self.store.engine.begin() as conn:
                    self.store.write_in(conn, events, changes, sequence)
        except IntegrityError:
            for plan in live:
                self._isolate(plan)
        except Exception as exc:
            log.exception("commit failed")
            return self._fail(live, f"the store did not commit: {type(exc).__name__}",
                              bump=True)
        m = self.state.metrics
        m.commit.observe(time.perf_counter() - start)
        m.batch.observe(sum(len(plan.jobs) for plan in live))
        lsns = [c.lsn for plan in live for _, c in plan.applies]
        if lsns:
            self.committed_lsn = max(self.committed_lsn, max(lsns))
        self.compute.submit(self._finish, live)  # before the answers: FIFO with later batches

    def _fail(self, plans: list, why: str, bump: bool) -> None:
        """Forget the plans (in the state thread, before anything prepared later) and answer
        503 for what they stored or what rests on them."""
        for plan in plans:
            self.compute.submit(self.state.abort, plan)
            for i in range(len(plan.jobs)):
                if plan.has_rows(i) or plan.sequence or \
                        not isinstance(plan.outcomes[i], ServiceError):
                    plan.outcomes[i] = ServiceError(503, f"not stored: {why}; try again")
            plan.applies = []
        if bump:
            self.generation += 1

    def _isolate(self, plan: Plan) -> None:
        """A unique key clashed (another process took an event id): commit job by job."""
        for i, job in enumerate(plan.jobs):
            if not plan.has_rows(i):
                continue
            try:
                self.store.write(plan.events[i], plan.changes[i])
            except IntegrityError:
                plan.applies = [(j, c) for j, c in plan.applies if j != i]
                if isinstance(job, Rank):
                    plan.new_events.pop(job.event_id, None)
                    plan.outcomes[i] = ServiceError(
                        409, f"event_id: {job.event_id!r} is already used by another decision")
                elif isinstance(job, Reward):
                    plan.rewarded.pop(job.event_id, None)
                    stored = self.store.event(job.event_id)
                    same = stored is not None and stored.reward == job.reward
                    plan.outcomes[i] = ({"event_id": job.event_id, "status": "duplicate",
                                         "model_version": self.state.version} if same else
                                        ServiceError(409, f"reward: event {job.event_id!r} "
                                                     "already has another reward"))
        if plan.sequence:
            self.store.sequence(plan.sequence)

    # ------------------------------------------------------------------ snapshots
    def _maybe_snapshot(self, force: bool = False) -> None:
        """State thread: copy the policy and write it in the side thread when due."""
        s = self.state
        if not s.learns or self.snapshotting or s.version == s.snapshot_lsn:
            return
        due = s.version - s.snapshot_lsn >= s.settings.snapshot_every
        every = s.settings.publish_seconds
        due = due or force or (every > 0 and time.time() - s.snapshot_time >= every)
        if not due:
            return
        self.snapshotting = True
        policy, lsn = s.policy.copy(), s.version
        self.side.submit(self._write_snapshot, policy, lsn)

    def _write_snapshot(self, policy, lsn: int) -> None:
        try:
            sid = self.store.put_snapshot(lsn, policy.n_actions, to_bytes(policy))
            s = self.state
            s.snapshot_id, s.snapshot_lsn, s.snapshot_time = sid, lsn, time.time()
            s.metrics.snapshots.inc()
        except Exception:  # the next change tries again; replay covers the gap
            log.exception("snapshot failed")
        finally:
            self.snapshotting = False

    async def tick(self) -> None:
        """Periodic: a due snapshot even when no request comes."""
        await self.run(lambda _: self._maybe_snapshot())

    async def run(self, fn):
        """Run ``fn(state)`` in the state thread, after every batch committed so far."""
        loop = self.loop = self.loop or asyncio.get_running_loop()
        return await loop.run_in_executor(self.compute, fn, self.state)

    async def close(self) -> None:
        """Answer what is queued, then write a last snapshot (learners)."""
        self.closed = True
        deadline = time.monotonic() + 30
        while (self.queue or self.prepared or self.preparing or self.committing) and \
                time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await self.run(lambda _: None)  # the last finish has run
        self.side.shutdown(wait=True)
        s = self.state
        if s.learns and s.version != s.snapshot_lsn:
            data = await self.run(lambda st: (st.version, st.policy.n_actions,
                                              to_bytes(st.policy)))
            self.store.put_snapshot(*data)
        self.compute.shutdown(wait=True)
        self.commits.shutdown(wait=True)

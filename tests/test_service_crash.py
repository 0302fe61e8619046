"""kill -9 under load: every acknowledged decision and reward is in the store, and the restarted
service holds, bit for bit, the posterior of a policy that never stopped and was fed the same
rewards (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import os
import signal

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from sqlalchemy import select  # noqa: E402

from mixedts.service import Store  # noqa: E402
from mixedts.service.schema import changes  # noqa: E402
from mixedts.service.snapshots import from_bytes  # noqa: E402
from service_helpers import (  # noqa: E402
    D,
    ProcessServer,
    reference,
    same_state,
    small_policy,
    store_for,
)

WORKERS, ROUNDS, KILL_AFTER = 8, 150, 60  # bounded: at most WORKERS × ROUNDS decisions


def learned_in_order(store: Store) -> list[tuple[str, float]]:
    """(event id, reward) of every learned reward, in the learner's order."""
    with store.engine.connect() as conn:
        rows = conn.execute(select(changes.c.event_id, changes.c.reward)
                            .where(changes.c.lsn.is_not(None), changes.c.kind == "reward")
                            .order_by(changes.c.lsn)).all()
    return [(r.event_id, r.reward) for r in rows]


async def load_then_kill(srv: ProcessServer, seed: int):
    """Rank (and reward every other decision) from WORKERS clients; kill -9 the server once
    KILL_AFTER rewards are acknowledged. Returns what was sent and what was acknowledged."""
    sent, ranks, rewards, sent_rewards = {}, {}, {}, {}
    killed = asyncio.Event()

    async def worker(c, w):
        rng = np.random.default_rng([seed, w])
        for j in range(ROUNDS):
            eid = f"w{w}-{j}"
            x = rng.normal(size=D)
            sent[eid] = x
            try:
                r = await c.post("/rank", json={"context": x.tolist(), "event_id": eid})
            except httpx.TransportError:
                return
            assert r.status_code == 200, r.text
            ranks[eid] = r.json()
            if j % 2 == 0:
                y = float(rng.normal())
                sent_rewards[eid] = y
                try:
                    r = await c.post("/reward", json={"event_id": eid, "reward": y})
                except httpx.TransportError:
                    return
                assert r.status_code == 200, r.text
                rewards[eid] = y
                if len(rewards) >= KILL_AFTER and not killed.is_set():
                    killed.set()
                    os.kill(srv.proc.pid, signal.SIGKILL)  # mid-flight: others are waiting

    async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
        await asyncio.wait_for(asyncio.gather(*(worker(c, w) for w in range(WORKERS))), 120)
    srv.proc.wait(30)
    assert killed.is_set(), "the load ended before the kill"
    return sent, ranks, rewards, sent_rewards


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_kill_9_loses_nothing_acknowledged_and_replay_is_bit_exact(kind, tmp_path):
    source = tmp_path / "policy.npz"
    policy = small_policy()
    policy.save(source)
    url = store_for(kind, tmp_path)
    log = tmp_path / "serve.log"
    # snapshots at 25 and 50 learned rewards: the kill (after 60 to 68) leaves some to replay
    args = ("--snapshot-every", "25", "--publish-seconds", "0", "--seed", "0")
    srv = ProcessServer(source, url, *args, log=log).start()
    sent, ranks, rewards, sent_rewards = asyncio.run(load_then_kill(srv, seed=1))
    assert srv.proc.returncode == -signal.SIGKILL

    store = Store(url)
    try:
        stored = {r.event_id: r for r in store.export(0, 100_000)}
        order = learned_in_order(store)
        snapshot_lsn = store.snapshot_info()[0]
    finally:
        store.close()
    # every acknowledged decision and reward is stored, exactly as acknowledged
    for eid, out in ranks.items():
        assert eid in stored, f"acknowledged decision {eid} was lost"
        assert stored[eid].action == out["action"]
        assert stored[eid].probability == out["probability"]
    for eid, y in rewards.items():
        assert stored[eid].reward == y, f"acknowledged reward {eid} was lost"
    # and nothing else but what was in flight at the kill
    assert set(stored) <= set(sent)
    assert {e for e, r in stored.items() if r.reward is not None} <= set(sent_rewards)
    assert len(set(stored) - set(ranks)) <= WORKERS
    assert 0 < snapshot_lsn < len(order), "the test needs rewards after the last snapshot"

    # restart: newest snapshot + replay; then learn a little more and stop gracefully
    srv = ProcessServer(source, url, *args, log=log).start()
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            assert c.get("/health").json()["model_version"] == len(order)
            rng = np.random.default_rng(7)
            for j in range(5):
                x = rng.normal(size=D)
                out = c.post("/rank", json={"context": x.tolist(), "event_id": f"after-{j}"})
                sent[f"after-{j}"] = x
                y = float(rng.normal())
                assert c.post("/reward", json={"event_id": f"after-{j}",
                                               "reward": y}).status_code == 200
                rewards[f"after-{j}"] = y
                assert out.json()["model_version"] == len(order) + j
    finally:
        # uvicorn shuts down gracefully, then re-raises SIGTERM (the exit status says so)
        assert srv.stop() in (0, -signal.SIGTERM), log.read_text()[-3000:]

    store = Store(url)
    try:
        order = learned_in_order(store)
        _, lsn, data = store.latest_snapshot()
    finally:
        store.close()
    assert lsn == len(order)
    actions = {eid: r.action for eid, r in stored.items()}
    actions.update({f"after-{j}": None for j in range(5)})
    fed = []
    for eid, y in order:  # the client's own contexts, the service's actions
        a = actions[eid] if actions[eid] is not None else _action_after(url, eid)
        fed.append((sent[eid], a, y))
    restarted = from_bytes(data)
    assert same_state(restarted, reference(policy, fed))
    assert not same_state(restarted, reference(policy, fed[:-1]))  # negative control


def _action_after(url: str, eid: str) -> int:
    store = Store(url)
    try:
        return store.event(eid).action
    finally:
        store.close()

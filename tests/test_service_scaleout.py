"""Scale-out on loopback: one learner and two rankers sharing a PostgreSQL store. Rankers decide
from the newest snapshot and store rewards; the learner numbers and applies them and publishes
snapshots; its posterior is that of one policy fed every reward in its order, bit for bit."""

from __future__ import annotations

import signal

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from mixedts.service import Store  # noqa: E402
from mixedts.service.snapshots import from_bytes  # noqa: E402
from service_helpers import (  # noqa: E402
    D,
    ProcessServer,
    reference,
    same_state,
    small_policy,
    store_for,
    wait_until,
)
from test_service_crash import learned_in_order  # noqa: E402

N = 24  # decisions, each rewarded through the ranker that did not decide it


def version(client) -> int:
    return client.get("/health").json()["model_version"]


def test_two_rankers_and_a_learner_share_one_store(tmp_path):
    url = store_for("postgresql", tmp_path)
    source = tmp_path / "policy.npz"
    policy = small_policy()
    policy.save(source)
    log = tmp_path / "serve.log"
    learner = ProcessServer(source, url, "--role", "learner", "--publish-seconds", "0.3",
                            log=log)
    rankers = [ProcessServer(None, url, "--role", "ranker", "--reload-seconds", "0.3",
                             "--seed", str(i), log=log) for i in range(2)]
    servers = [learner, *rankers]
    try:
        for s in servers:  # at once: the rankers wait for the learner's first snapshot
            s.launch()
        for s in servers:
            s.wait()
        clients = [httpx.Client(base_url=s.url, timeout=30) for s in servers]
        lc, r0, r1 = clients
        assert r0.get("/health").json() == {"status": "ok", "role": "ranker",
                                            "model_version": 0}
        rng = np.random.default_rng(0)
        contexts, rewards = {}, {}
        for i in range(N):
            ranker, other = (r0, r1) if i % 2 == 0 else (r1, r0)
            x = rng.normal(size=D)
            out = ranker.post("/rank", json={"context": x.tolist(), "event_id": f"e{i}"})
            assert out.status_code == 200, out.text
            contexts[f"e{i}"] = (x, out.json()["action"])
            y = float(rng.normal())
            got = other.post("/reward", json={"event_id": f"e{i}", "reward": y})
            assert got.status_code == 200 and got.json()["status"] == "queued", got.text
            rewards[f"e{i}"] = y
        # the same reward again, through the other ranker and the learner: a duplicate
        assert r0.post("/reward", json={"event_id": "e1", "reward": rewards["e1"]}
                       ).json()["status"] == "duplicate"
        assert lc.post("/reward", json={"event_id": "e1", "reward": 9.0}).status_code == 409
        # the learner applies all of them; the rankers catch up with its snapshots
        wait_until(lambda: version(lc) == N, 30, "the learner applies the rewards")
        wait_until(lambda: version(r0) == N and version(r1) == N, 30, "rankers reload")
        out = r1.post("/rank", json={"context": [1.0] * D})
        assert out.json()["model_version"] == N
        # catalogue changes go to the learner, and reach the rankers with a snapshot
        assert r0.delete("/actions/2").status_code == 409
        assert lc.delete("/actions/2").json()["status"] == "retired"
        wait_until(lambda: r0.get("/policy").json()["retired"] == [2], 30, "ranker sees it")
        assert all(r0.post("/rank", json={"context": [1.0] * D}).json()["action"] != 2
                   for _ in range(8))
        for c in clients:
            c.close()
    finally:
        for s in servers:
            if s.proc is not None and s.proc.poll() is None:
                s.proc.send_signal(signal.SIGTERM)
        for s in servers:
            if s.proc is not None:
                assert s.stop() in (0, -signal.SIGTERM), log.read_text()[-3000:]
    store = Store(url)
    try:
        order = learned_in_order(store)
        _, lsn, data = store.latest_snapshot()
    finally:
        store.close()
    assert sorted(e for e, _ in order) == sorted(rewards) and lsn == N + 1
    fed = [(contexts[e][0], contexts[e][1], y) for e, y in order]
    expected = reference(policy, fed)
    expected.retire_action(2)
    assert same_state(from_bytes(data), expected)
    assert not same_state(from_bytes(data), reference(policy, fed))  # control: the retire

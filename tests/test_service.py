"""The decision service over real HTTP (uvicorn on 127.0.0.1, httpx), on SQLite and
PostgreSQL: rank, reward, catalogue, events, metrics, and the posterior it learns checked
against a policy fed the same rewards in process."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from mixedts import BernoulliTS, MeTS  # noqa: E402
from mixedts.offline import LoggedFeedback  # noqa: E402
from mixedts.service import Store, logged_feedback  # noqa: E402
from mixedts.service.snapshots import from_bytes  # noqa: E402
from service_helpers import (  # noqa: E402
    D,
    K,
    ThreadServer,
    reference,
    same_state,
    small_policy,
    store_for,
)

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def store_url(request, tmp_path):
    return store_for(request.param, tmp_path)


def rank(client, x, **extra):
    r = client.post("/rank", json={"context": np.asarray(x).tolist(), **extra})
    assert r.status_code == 200, r.text
    return r.json()


def test_rank_reward_learn_and_export(store_url):
    policy = small_policy()
    rng = np.random.default_rng(0)
    with ThreadServer(policy, store_url, seed=3, snapshot_every=5) as srv, \
            httpx.Client(base_url=srv.url, timeout=10) as c:
        assert c.get("/health").json() == {"status": "ok", "role": "single",
                                           "model_version": 0}
        learned = []
        for i in range(12):
            x = rng.normal(size=(K, D)) if i % 3 == 0 else rng.normal(size=D)  # both shapes
            out = rank(c, x, ranking=4)
            a = out["action"]
            assert 0 <= a < K and 0 < out["probability"] <= 1
            assert out["ranking"][0] == a and len(set(out["ranking"])) == 4
            assert out["model_version"] == len(learned)
            y = float(rng.normal())
            r = c.post("/reward", json={"event_id": out["event_id"], "reward": y})
            assert r.status_code == 200 and r.json()["status"] == "learned", r.text
            learned.append((x if x.ndim == 1 else x[a], a, y))
        assert c.get("/health").json()["model_version"] == 12
        summary = c.get("/policy").json()
        assert summary["store"]["events"] == 12 and summary["store"]["rewards"] == 12
        # an event without a reward is exported by /events, not by logged_feedback
        rank(c, rng.normal(size=D))
        page = c.get("/events", params={"since": 0, "limit": 5}).json()
        assert [e["seq"] for e in page["events"]] == [1, 2, 3, 4, 5] and page["next"] == 5
        rest = c.get("/events", params={"since": 5}).json()["events"]
        assert len(rest) == 8 and rest[-1]["reward"] is None
    # the server stopped: its last snapshot holds what it learned, bit for bit
    store = Store(store_url)
    try:
        _, lsn, data = store.latest_snapshot()
        assert lsn == 12
        assert same_state(from_bytes(data), reference(policy, learned))
        assert not same_state(from_bytes(data), reference(policy, learned[:-1]))  # control
        logs = logged_feedback(store)
    finally:
        store.close()
    # shared contexts become K equal rows beside the per-action ones
    assert isinstance(logs, LoggedFeedback) and len(logs) == 12 and logs.contexts.shape[1] == K
    assert logs.actions.tolist() == [a for _, a, _ in learned]
    assert logs.rewards.tolist() == [y for _, _, y in learned]
    assert np.array_equal(logs.logged_action_contexts, np.stack([x for x, _, _ in learned]))
    assert np.all((logs.propensities > 0) & (logs.propensities <= 1))


def test_eligible_sets_restrict_the_choice(store_url):
    with ThreadServer(small_policy(), store_url, seed=0) as srv, \
            httpx.Client(base_url=srv.url, timeout=10) as c:
        chosen = {rank(c, np.ones(D), eligible=[2, 7])["action"] for _ in range(12)}
        assert chosen <= {2, 7}
        out = rank(c, np.ones(D), eligible=[5])
        assert out["action"] == 5 and out["probability"] == 1.0


def test_reward_outcomes_duplicate_conflict_unknown_and_expired(tmp_path):
    with ThreadServer(small_policy(), store_for("sqlite", tmp_path), ttl=0.5) as srv, \
            httpx.Client(base_url=srv.url, timeout=10) as c:
        ev = rank(c, np.ones(D), event_id="click-1")
        assert ev["event_id"] == "click-1"
        r = c.post("/rank", json={"context": [1.0] * D, "event_id": "click-1"})
        assert r.status_code == 409 and "event_id" in r.json()["detail"]
        ok = c.post("/reward", json={"event_id": "click-1", "reward": 1.0})
        assert ok.json()["status"] == "learned"
        dup = c.post("/reward", json={"event_id": "click-1", "reward": 1.0})
        assert dup.status_code == 200 and dup.json()["status"] == "duplicate"
        clash = c.post("/reward", json={"event_id": "click-1", "reward": 0.0})
        assert clash.status_code == 409 and "reward" in clash.json()["detail"]
        missing = c.post("/reward", json={"event_id": "nope", "reward": 1.0})
        assert missing.status_code == 404 and "nope" in missing.json()["detail"]
        late = rank(c, np.ones(D))
        time.sleep(0.7)
        version = c.get("/health").json()["model_version"]
        gone = c.post("/reward", json={"event_id": late["event_id"], "reward": 1.0})
        assert gone.status_code == 410 and "time-to-live" in gone.json()["detail"]
        assert c.get("/health").json()["model_version"] == version  # not learned
        stored = c.get("/events").json()["events"][-1]
        assert stored["reward"] == 1.0 and stored["learned"] is False  # but stored
        again = c.post("/reward", json={"event_id": late["event_id"], "reward": 1.0})
        assert again.json()["status"] == "duplicate"


def test_catalogue_changes_over_http(tmp_path):
    policy = small_policy()
    with ThreadServer(policy, store_for("sqlite", tmp_path), seed=1) as srv, \
            httpx.Client(base_url=srv.url, timeout=10) as c:
        row = [0.5, -0.2, 0.1]
        added = c.post("/actions", json={"params": {"mixing_row": row}})
        assert added.status_code == 200, added.text
        assert added.json() == {"action": K, "status": "added", "n_actions": K + 1,
                                "model_version": 1}
        assert rank(c, np.ones(D), eligible=[K])["action"] == K
        bad = c.post("/actions", json={"params": {"mixing_row": [1.0]}})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "params"]
        assert "mixing_row" in bad.json()["detail"][0]["msg"]
        gone = c.delete("/actions/3")
        assert gone.json()["status"] == "retired" and gone.json()["model_version"] == 2
        assert c.delete("/actions/3").json()["status"] == "already retired"
        assert c.delete(f"/actions/{K + 5}").status_code == 404
        assert all(rank(c, np.ones(D))["action"] != 3 for _ in range(10))
        r = c.post("/rank", json={"context": [1.0] * D, "eligible": [3]})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "eligible"]
        summary = c.get("/policy").json()
        assert summary["n_actions"] == K + 1 and summary["retired"] == [3]
    expected = policy.copy()
    expected.add_action(np.array(row))
    expected.retire_action(3)
    store = Store(store_for("sqlite", tmp_path))
    try:
        assert same_state(from_bytes(store.latest_snapshot()[2]), expected)
    finally:
        store.close()


def test_metrics_docs_and_status_page(tmp_path):
    with ThreadServer(small_policy(), store_for("sqlite", tmp_path)) as srv, \
            httpx.Client(base_url=srv.url, timeout=10) as c:
        for _ in range(3):
            ev = rank(c, np.ones(D))
        c.post("/reward", json={"event_id": ev["event_id"], "reward": 1.0})
        c.post("/reward", json={"event_id": "unknown", "reward": 1.0})
        text = c.get("/metrics").text
        assert "mixedts_decisions_total 3.0" in text
        assert 'mixedts_rewards_joined_total{outcome="learned"} 1.0' in text
        assert "mixedts_model_version 1.0" in text and "mixedts_pending_events 2.0" in text
        assert 'mixedts_requests_total{endpoint="/reward",status="404"} 1.0' in text
        assert 'mixedts_request_seconds_count{endpoint="/rank"} 3.0' in text
        assert c.get("/docs").status_code == 200
        assert "/rank" in c.get("/openapi.json").json()["paths"]
        page = c.get("/")
        assert page.status_code == 200 and "<svg" in page.text and "reward-rate" in page.text


def test_a_context_free_policy_over_http(tmp_path):
    policy = BernoulliTS(6, seed=0)
    with ThreadServer(policy, store_for("sqlite", tmp_path), seed=2) as srv, \
            httpx.Client(base_url=srv.url, timeout=10) as c:
        fed = []
        for i in range(8):
            out = c.post("/rank", json={"ranking": 3}).json()
            assert out["ranking"][0] == out["action"] and 0 < out["probability"] <= 1
            y = float(i % 2)
            assert c.post("/reward", json={"event_id": out["event_id"],
                                           "reward": y}).json()["status"] == "learned"
            fed.append((out["action"], y))
        r = c.post("/rank", json={"context": [1.0]})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "context"]
        r = c.post("/reward", json={"event_id": out["event_id"], "reward": 2.0})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "reward"]
        assert "[0, 1]" in r.json()["detail"][0]["msg"]
    expected = policy.copy()
    for a, y in fed:
        expected.update(a, y)
    store = Store(store_for("sqlite", tmp_path))
    try:
        assert same_state(from_bytes(store.latest_snapshot()[2]), expected)
    finally:
        store.close()


def test_documented_routes_answer_other_content_types(tmp_path):
    """The fast lane takes JSON bodies; FastAPI's routes (the OpenAPI schema) answer the rest
    the same way."""
    with ThreadServer(small_policy(), store_for("sqlite", tmp_path)) as srv, \
            httpx.Client(base_url=srv.url, timeout=10) as c:
        body = b'{"context": [1, 2, 3, 4], "event_id": "x1"}'
        ok = c.post("/rank", content=body,
                    headers={"content-type": "application/json; charset=utf-8"})
        assert ok.status_code == 200 and ok.json()["event_id"] == "x1"
        plain = c.post("/rank", content=body, headers={"content-type": "text/plain"})
        assert plain.status_code == 422 and plain.json()["detail"][0]["loc"] == ["body"]
        bad = c.post("/rank", content=b'{"context": [1, 2]}',
                     headers={"content-type": "application/json"})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "context"]


def test_an_experiment_file_names_the_policy_its_prior_and_catalogue(tmp_path):
    from mixedts.cli_service import load_source
    from mixedts.evaluation import load_experiment

    configs = Path(__file__).resolve().parents[1] / "src" / "mixedts" / "configs"
    policy = load_source(configs / "fig4-k50.toml", "meTS-Lin")
    # the environment is seeded from the file's seed (0): the same catalogue at every start
    exp = load_experiment(configs / "fig4-k50.toml", environment={"seed": 0})
    built = exp.policies["meTS-Lin"](exp.environment, np.random.default_rng(exp.seed))
    assert isinstance(policy, MeTS) and policy.n_actions == 50 and policy.dim == 2
    assert same_state(policy, built)
    assert same_state(load_source(configs / "fig4-k50.toml", "meTS-Lin"), policy)
    with pytest.raises(ValueError, match=r"--policy: fig4-k50\.toml has several policies"):
        load_source(configs / "fig4-k50.toml")
    with pytest.raises(ValueError, match="no policy 'nope'"):
        load_source(configs / "fig4-k50.toml", "nope")
    small = tmp_path / "small.toml"  # horizon and runs may be left out
    small.write_text('[environment]\nn_actions = 7\nn_effects = 2\ndim = 3\n'
                     '[policies.meTS]\ntype = "MeTS"\n')
    assert load_source(small).n_actions == 7


def test_mixedts_export_writes_the_logs_and_the_snapshot(tmp_path):
    typer_testing = pytest.importorskip("typer.testing")
    pytest.importorskip("pyarrow")
    from mixedts import load
    from mixedts.cli import app

    url = store_for("sqlite", tmp_path)
    runner = typer_testing.CliRunner()
    with ThreadServer(small_policy(), url) as srv, \
            httpx.Client(base_url=srv.url, timeout=10) as c:
        empty = runner.invoke(app, ["export", "--store", url, "--out", str(tmp_path / "x")])
        assert empty.exit_code == 2 and "no rewarded decisions" in empty.output
        for i in range(5):
            ev = rank(c, np.full(D, float(i)))
            c.post("/reward", json={"event_id": ev["event_id"], "reward": float(i)})
    out = runner.invoke(app, ["export", "--store", url, "--out", str(tmp_path / "logs.parquet"),
                              "--snapshot", str(tmp_path / "snap.npz")])
    assert out.exit_code == 0, out.output
    assert "5 rewarded decisions" in out.output and "snapshot at version 5" in out.output
    logs = LoggedFeedback.from_parquet(tmp_path / "logs.parquet")
    store = Store(url)
    try:
        assert logs.equals(logged_feedback(store)) and logs.rewards.tolist() == [0, 1, 2, 3, 4]
        assert same_state(load(tmp_path / "snap.npz"), from_bytes(store.latest_snapshot()[2]))
    finally:
        store.close()
    bad = runner.invoke(app, ["export", "--store", "mysql://nowhere/x"])
    assert bad.exit_code == 2 and "--store" in bad.output


def test_an_overloaded_service_sheds_load_with_503_and_stores_nothing_of_it(tmp_path):
    """A burst of 60 concurrent decisions against ``max_queue = 1`` (one batch deciding, one
    request waiting): the rest get 503 with Retry-After at once; every 200 is stored and no
    503 is. Control: the same burst with the default queue is answered 200 throughout."""
    import asyncio

    async def burst(url: str) -> list:
        async with httpx.AsyncClient(base_url=url, timeout=30,
                                     limits=httpx.Limits(max_connections=60)) as c:
            return await asyncio.gather(*(
                c.post("/rank", json={"context": [0.5] * 2, "event_id": f"b{i}"})
                for i in range(60)))

    policy = small_policy(K=2000, d=2)
    for max_queue, expect_shed in ((1, True), (4096, False)):
        (tmp_path / str(max_queue)).mkdir()
        url = store_for("sqlite", tmp_path / str(max_queue))
        with ThreadServer(policy, url, max_queue=max_queue, propensity_draws=200) as srv:
            answers = asyncio.run(burst(srv.url))
            stored = {e["event_id"] for e in
                      httpx.get(f"{srv.url}/events", params={"limit": 1000}).json()["events"]}
        codes = [r.status_code for r in answers]
        assert set(codes) <= {200, 503}
        shed = [r for r in answers if r.status_code == 503]
        assert bool(shed) == expect_shed, codes
        for r in shed:
            assert r.headers["retry-after"] == "1" and "overloaded" in r.json()["detail"]
        assert stored == {f"b{i}" for i, r in enumerate(answers) if r.status_code == 200}

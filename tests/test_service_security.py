"""Who may call the service and what it refuses: the bearer token (401), loopback-only without
one, the body limit (413), bad fields (422 naming the field), unknown things (404)."""

from __future__ import annotations

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from mixedts import ValidationError  # noqa: E402
from mixedts.service import ServiceSettings, is_loopback  # noqa: E402
from service_helpers import D, K, ThreadServer, small_policy, sqlite_url  # noqa: E402

TOKEN = "s3cret-token-for-tests"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    store = sqlite_url(tmp_path_factory.mktemp("security"))
    with ThreadServer(small_policy(), store, token=TOKEN, body_limit=4096) as srv:
        yield srv


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=10,
                      headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        yield c


def test_every_endpoint_but_health_needs_the_token(server):
    with httpx.Client(base_url=server.url, timeout=10) as anon:
        assert anon.get("/health").status_code == 200
        for method, path in [("POST", "/rank"), ("POST", "/reward"), ("POST", "/actions"),
                             ("DELETE", "/actions/1"), ("GET", "/metrics"), ("GET", "/policy"),
                             ("GET", "/events"), ("GET", "/"), ("GET", "/docs"),
                             ("GET", "/openapi.json")]:
            r = anon.request(method, path, json={})
            assert r.status_code == 401, (path, r.status_code)
            assert r.headers["www-authenticate"] == "Bearer"
        wrong = anon.post("/rank", json={"context": [1.0] * D},
                          headers={"Authorization": f"Bearer {TOKEN}x"})
        assert wrong.status_code == 401
        assert anon.get("/policy", headers={"Authorization": TOKEN}).status_code == 401
    with httpx.Client(base_url=server.url, timeout=10,
                      headers={"Authorization": f"Bearer {TOKEN}"}) as ok:
        assert ok.post("/rank", json={"context": [1.0] * D}).status_code == 200


def test_bodies_over_the_limit_are_refused_413(client):
    big = {"context": [1.0] * 2000}  # > 4096 bytes
    r = client.post("/rank", json=big)
    assert r.status_code == 413 and "4096" in r.json()["detail"]

    def chunks():  # no Content-Length: the limit is counted as the body streams in
        yield b'{"context": ['
        for _ in range(400):
            yield b"1.0, 1.0, 1.0, "
        yield b"1.0]}"

    r = client.post("/rank", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert client.post("/rank", json={"context": [1.0] * D}).status_code == 200  # still up


@pytest.mark.parametrize("body, field, words", [
    ({"context": [1.0] * (D + 1)}, ["body", "context"], "d = 4"),
    ({"context": [[1.0] * D] * (K - 1)}, ["body", "context"], f"K × d = {K} × {D}"),
    ({"context": [1.0, "x", 1.0, 1.0]}, ["body", "context"], "numbers"),
    ({"context": [[1.0, 2.0], [3.0]]}, ["body", "context"], "equal length"),
    ({}, ["body", "context"], "required"),
    ({"context": [1.0] * D, "eligible": [1, K + 3]}, ["body", "eligible", "1"], "unknown action"),
    ({"context": [1.0] * D, "eligible": []}, ["body", "eligible"], "at least 1"),
    ({"context": [1.0] * D, "event_id": "a b"}, ["body", "event_id"], "pattern"),
    ({"context": [1.0] * D, "colour": 1}, ["body", "colour"], "Extra inputs"),
    ({"context": [1.0] * D, "ranking": -1}, ["body", "ranking"], "greater than or equal"),
])
def test_bad_rank_bodies_are_422_naming_the_field(client, body, field, words):
    r = client.post("/rank", json=body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"][0]
    assert detail["loc"] == field and words in detail["msg"], detail


@pytest.mark.parametrize("raw, field, words", [
    (b'{"context": [1.0, NaN, 1.0, 1.0]}', ["body", "context"], "context[1] must be a finite"),
    (b'{"context": [1.0, Infinity, 1.0, 1.0]}', ["body", "context"], "finite"),
    (b'{"context": [1.0, 2.0', ["body", 21], "JSON decode error"),  # the position
    (b"not json at all", ["body", 0], "JSON decode error"),
])
def test_nan_and_non_json_are_422(client, raw, field, words):
    r = client.post("/rank", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"][0]
    assert detail["loc"] == field and words in detail["msg"], detail


def test_bad_rewards_and_unknown_things(client):
    r = client.post("/reward", content=b'{"event_id": "e", "reward": NaN}',
                    headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "reward"]
    r = client.post("/reward", json={"event_id": "e"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "reward"]
    assert client.post("/reward", json={"event_id": "e", "reward": 1}).status_code == 404
    assert client.get("/nowhere").status_code == 404
    assert client.delete(f"/actions/{K + 100}").status_code == 404
    r = client.delete("/actions/minus-one")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["path", "action_id"]
    r = client.get("/events", params={"since": -1})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "since"]


def test_settings_refuse_a_public_host_without_a_token(monkeypatch):
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
    with pytest.raises(ValidationError, match=r"host: 0\.0\.0\.0 is not a loopback"):
        ServiceSettings(store="sqlite:///x.sqlite", host="0.0.0.0")
    monkeypatch.delenv("MIXEDTS_TOKEN", raising=False)
    with pytest.raises(ValidationError, match="host"):
        ServiceSettings.from_env(store="sqlite:///x.sqlite", host="10.0.0.1")
    monkeypatch.setenv("MIXEDTS_TOKEN", TOKEN)
    assert ServiceSettings.from_env(store="sqlite:///x.sqlite", host="0.0.0.0").token == TOKEN
    for bad, name in [({"token": "short"}, "token"), ({"store": "mysql://x"}, "store"),
                      ({"ttl": 0}, "ttl"), ({"propensity_draws": 0}, "propensity_draws"),
                      ({"role": "ranker"}, "role"), ({"port": 70000}, "port"),
                      ({"max_queue": 0}, "max_queue"), ({"max_queue": 1.5}, "max_queue"),
                      ({"max_queue": True}, "max_queue")]:
        with pytest.raises(ValidationError, match=f"^{name}:"):
            ServiceSettings(**{"store": "sqlite:///x.sqlite", **bad})


def test_cli_serve_refuses_a_public_host_without_a_token(tmp_path, monkeypatch):
    typer_testing = pytest.importorskip("typer.testing")
    from mixedts.cli import app

    monkeypatch.delenv("MIXEDTS_TOKEN", raising=False)
    small_policy().save(tmp_path / "p.npz")
    runner = typer_testing.CliRunner()
    out = runner.invoke(app, ["serve", str(tmp_path / "p.npz"), "--host", "0.0.0.0"])
    assert out.exit_code == 2 and "not a loopback address" in out.output
    out = runner.invoke(app, ["serve", str(tmp_path / "missing.npz")])
    assert out.exit_code == 2 and "SOURCE" in out.output
    assert not (tmp_path / "p.events.sqlite").exists()  # nothing was started

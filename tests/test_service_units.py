"""The service's parts without HTTP: decisions over eligible sets and their propensities
(checked against the policy's own Monte Carlo law and an exact computation), schema
migrations, snapshots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sqlalchemy")

from scipy import stats
from sqlalchemy import create_engine, inspect, text

from mixedts import LinUCB
from mixedts.service import Store
from mixedts.service.decide import decide
from mixedts.service.schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    SchemaError,
    migrate,
    stored_version,
)
from mixedts.service.snapshots import from_bytes, to_bytes
from service_helpers import D, K, same_state, small_policy, sqlite_url, store_for


def learned_policy(seed=0):
    policy = small_policy()
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(40, D))
    policy.update_batch(X, rng.integers(0, K, 40), rng.normal(size=40) + X[:, 0])
    return policy


def restricted_law(policy, x, mask, n_draws, seed):
    """The policy's own Monte Carlo law of select(x) with only the masked actions active."""
    other = policy.copy()
    other.active = mask.copy()
    return other.action_probabilities(x, n_draws=n_draws, seed=seed, return_stderr=True)


def test_thompson_propensity_over_an_eligible_set_matches_the_restricted_law():
    policy = learned_policy()
    x = np.array([1.0, 0.5, -0.3, 0.2])
    mask = np.zeros(K, dtype=bool)
    mask[[1, 4, 6, 9, 13]] = True
    law, se = restricted_law(policy, x, mask, 40_000, seed=5)
    rng = np.random.default_rng(0)
    d = decide(policy, x, mask, 40_000, rng)
    assert mask[d.action]
    assert abs(d.probability - law[d.action]) < 5 * np.hypot(se[d.action], se[d.action]) + 1e-4
    # negative control: the unrestricted law is another law
    free, _ = policy.action_probabilities(x, n_draws=40_000, seed=5, return_stderr=True)
    assert np.abs(free[mask] - law[mask]).max() > 0.05


def test_decisions_follow_the_restricted_law_chi_square():
    policy = learned_policy(1)
    x = np.array([0.3, -1.0, 0.8, 0.1])
    mask = np.zeros(K, dtype=bool)
    mask[[0, 2, 3, 5, 8, 11]] = True
    law, _ = restricted_law(policy, x, mask, 100_000, seed=9)
    rng = np.random.default_rng(0)
    n = 3000  # (10^5 decisions: p = 0.50; over seeds 0-11 at n = 3000, one p-value < 10^-3)
    chosen = np.array([decide(policy, x, mask, 1, rng).action for _ in range(n)])
    assert mask[chosen].all()
    observed = np.bincount(chosen, minlength=K)[mask]
    assert stats.chisquare(observed, n * law[mask] / law[mask].sum()).pvalue > 1e-3
    # negative control: the law without the eligible set (renormalised on it) is rejected
    free, _ = policy.action_probabilities(x, n_draws=100_000, seed=9, return_stderr=True)
    assert stats.chisquare(observed, n * free[mask] / free[mask].sum()).pvalue < 1e-6


def test_deterministic_rules_are_exact_with_ties_split():
    policy = LinUCB(5, 2, alpha=1.0)  # every score ties
    mask = np.array([True, False, True, True, False])
    rng = np.random.default_rng(0)
    got = [decide(policy, np.ones(2), mask, 10, rng) for _ in range(600)]
    assert {g.probability for g in got} == {1 / 3}
    counts = np.bincount([g.action for g in got], minlength=5)
    assert counts[1] == counts[4] == 0
    assert stats.chisquare(counts[mask]).pvalue > 1e-3  # uniform among the tied
    policy.update(np.ones(2), 3, 5.0)  # action 3 now leads: probability 1
    d = decide(policy, np.ones(2), mask, 10, rng, top=3)
    assert (d.action, d.probability, d.ranking[0]) == (3, 1.0, 3)
    assert sorted(d.ranking) == [0, 2, 3]


def test_the_propensity_counts_the_decision_draw():
    policy = learned_policy()
    rng = np.random.default_rng(0)
    for _ in range(20):
        d = decide(policy, np.ones(D), policy.active, 7, rng)
        assert d.probability >= 1 / 7 and (d.probability * 7) % 1 < 1e-12


def test_migrations_bring_an_old_store_up_and_refuse_a_newer_one(tmp_path):
    url = sqlite_url(tmp_path)
    engine = create_engine(url)
    with engine.begin() as conn:  # a version-1 store: the tables, not the v2 index
        MIGRATIONS[0](conn)
        conn.execute(text("DROP INDEX IF EXISTS mixedts_events_created"))
        conn.execute(text("INSERT INTO mixedts_meta (key, value) "
                          "VALUES ('schema_version', '1')"))
    assert "mixedts_events_created" not in {i["name"] for i in
                                            inspect(engine).get_indexes("mixedts_events")}
    assert migrate(engine) == 1
    with engine.connect() as conn:
        assert stored_version(conn) == SCHEMA_VERSION == 2
    assert "mixedts_events_created" in {i["name"] for i in
                                        inspect(engine).get_indexes("mixedts_events")}
    assert migrate(engine) == 2  # idempotent
    with engine.begin() as conn:
        conn.execute(text("UPDATE mixedts_meta SET value = '99' WHERE key = 'schema_version'"))
    with pytest.raises(SchemaError, match="schema version 99"):
        Store(url)
    engine.dispose()


def test_snapshot_bytes_round_trip_bit_for_bit():
    policy = learned_policy()
    again = from_bytes(to_bytes(policy))
    assert same_state(again, policy)
    assert again.rng.bit_generator.state == policy.rng.bit_generator.state


def test_one_learner_per_postgresql_store(tmp_path):
    url = store_for("postgresql", tmp_path)
    first, second = Store(url), Store(url)
    try:
        assert first.claim_learner() and not second.claim_learner()
        first.close()  # a stopped (or killed) learner's session ends: the lock is free
        assert second.claim_learner()
    finally:
        first.close()
        second.close()
    sqlite = Store(sqlite_url(tmp_path))
    assert sqlite.claim_learner()
    sqlite.close()


def test_a_server_that_never_answers_is_killed_not_left_running(tmp_path):
    """The test servers' hygiene: ``ProcessServer.start`` kills a process that does not answer
    /health in time (a mutant once left a server replaying for ever); and a server dies with
    the process that launched it (Linux), checked with a child that launches one and exits."""
    import subprocess
    import sys
    import time

    from service_helpers import ProcessServer

    srv = ProcessServer(None, "sqlite:///unused.sqlite")
    srv.cmd = [sys.executable, "-c", "import time; time.sleep(120)"]  # never answers
    with pytest.raises(TimeoutError):
        srv.start(timeout=1.0)
    assert srv.proc.poll() is not None  # killed, not left behind
    if not sys.platform.startswith("linux"):
        return
    pid_file = tmp_path / "pid"
    here, out = str(Path(__file__).parent), str(pid_file)
    code = "\n".join([
        f"import sys; sys.path.insert(0, {here!r})",
        "from service_helpers import ProcessServer",
        "s = ProcessServer(None, 'sqlite:///unused.sqlite')",
        "s.cmd = [sys.executable, '-c', 'import time; time.sleep(120)']",
        f"s.launch(); open({out!r}, 'w').write(str(s.proc.pid))",
        "import os; os._exit(0)  # no atexit: only the death signal can end the child"])
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists() and \
            Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z":
        time.sleep(0.05)
    alive = Path(f"/proc/{pid}").exists() and \
        Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"
    assert not alive, "the launched server outlived the process that launched it"

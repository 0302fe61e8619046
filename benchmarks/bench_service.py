#!/usr/bin/env python
"""Load benchmark of ``mixedts serve`` on loopback: meTS with K = 1000, L = 10, d = 10.

Closed-loop clients rank as fast as the service answers (the most it can do: the latency is
then the queue the clients keep full, clients / throughput), or, with ``--rate R``, requests
start on a fixed schedule of R per second (open loop: the latency a front end sending R/s sees,
counted from each request's scheduled start); half of the decisions get a reward after a random
delay (exponential, mean ``--reward-delay`` s), as a user's click would come.
For each store (SQLite, PostgreSQL) it reports the sustained decisions and rewards per second,
p50/p99 latency of /rank and /reward, errors, and lost events — every acknowledged decision
and reward is looked up in the store after a graceful stop — and, measured in the same run,
the in-process cost of the same work (one decision with its propensity, and half an update)
as the reference: the service's throughput over the in-process one.

    python benchmarks/bench_service.py [--seconds 60] [--stores sqlite,postgresql]
        [--driver raw|httpx] [--clients 32] [--rate 0] [--propensity-draws 100] [--out FILE]

``--driver raw`` is a minimal asyncio HTTP/1.1 keep-alive client (a few tens of µs per
request) for when httpx's own cost on the same two cores would cap the numbers; both talk to
the same real uvicorn server over 127.0.0.1. Every loop is bounded in time and count.
"""

from __future__ import annotations

import os

# one BLAS thread per process, as the server runs (set before numpy loads OpenBLAS): on two
# shared cores, BLAS threads fighting the event loop and each other cost more than they give
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import asyncio
import datetime
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the throwaway PostgreSQL cluster of the tests

K, L, D = 1000, 10, 10
MAX_PENDING_REWARDS = 20_000


# ---------------------------------------------------------------------- drivers
class RawClient:
    """One keep-alive HTTP/1.1 connection; one request at a time."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def post(self, path: str, payload: dict) -> tuple[int, dict]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        body = json.dumps(payload).encode()
        self.writer.write(b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n%s" % (path.encode(), self.host.encode(),
                                                             len(body), body))
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        data = await self.reader.readexactly(length)
        return status, json.loads(data)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class HttpxClient:
    def __init__(self, client) -> None:
        self.client = client

    async def post(self, path: str, payload: dict) -> tuple[int, dict]:
        r = await self.client.post(path, json=payload)
        return r.status_code, r.json()

    async def close(self) -> None:
        pass


async def drive(url: str, seconds: float, clients: int, driver: str, delay: float,
                contexts: np.ndarray, rewards: np.ndarray, seed: int, rate: float = 0) -> dict:
    """Ranking for ``seconds``, closed-loop with ``clients`` clients, or open-loop at ``rate``
    decisions/s over as many connections; rewards for half of the decisions after random
    delays (those still waiting at the end are sent then). Returns what was acknowledged."""
    import httpx

    host, port = url.split("//")[1].split(":")
    port = int(port)
    acked, rewarded, rank_lat, reward_lat, errors = {}, {}, [], [], []
    pending: set[asyncio.Task] = set()
    shared = httpx.AsyncClient(base_url=url, timeout=60,
                               limits=httpx.Limits(max_connections=2 * clients + 8))
    pool: asyncio.Queue = asyncio.Queue()
    for _ in range(clients):  # connections for the rewards
        pool.put_nowait(RawClient(host, port) if driver == "raw" else HttpxClient(shared))
    stop_at = time.perf_counter() + seconds

    async def reward(eid: str, y: float, wait: float) -> None:
        await asyncio.sleep(wait)
        c = await pool.get()
        try:
            t = time.perf_counter()
            status, body = await c.post("/reward", {"event_id": eid, "reward": y})
            reward_lat.append(time.perf_counter() - t)
            if status == 200:
                rewarded[eid] = y
            else:
                errors.append(("reward", status, body))
        except (OSError, httpx.TransportError, asyncio.IncompleteReadError) as exc:
            errors.append(("reward", "transport", repr(exc)))
            if driver == "raw":
                await c.close()
                c = RawClient(host, port)
        finally:
            pool.put_nowait(c)

    async def rank(c, wrng, eid: str, t: float):
        """One decision (latency from ``t``), then maybe its reward; the client to use next."""
        i = int(wrng.integers(len(contexts)))
        try:
            status, body = await c.post("/rank", {"context": contexts[i].tolist(),
                                                  "event_id": eid})
        except (OSError, httpx.TransportError, asyncio.IncompleteReadError) as exc:
            errors.append(("rank", "transport", repr(exc)))
            if driver == "raw":
                await c.close()
                c = RawClient(host, port)
            return c
        rank_lat.append(time.perf_counter() - t)
        if status != 200:
            errors.append(("rank", status, body))
            return c
        acked[eid] = body
        if wrng.random() < 0.5 and len(pending) < MAX_PENDING_REWARDS:
            y = float(rewards[i, body["action"]])
            task = asyncio.create_task(reward(eid, y, float(wrng.exponential(delay))))
            pending.add(task)
            task.add_done_callback(pending.discard)
        return c

    async def worker(w: int) -> None:
        """Closed loop: the next request as soon as the answer comes."""
        c = RawClient(host, port) if driver == "raw" else HttpxClient(shared)
        wrng = np.random.default_rng([seed, w])
        j = 0
        while time.perf_counter() < stop_at and j < 10_000_000:
            c = await rank(c, wrng, f"w{w}-{j}", time.perf_counter())
            j += 1
        await c.close()

    async def open_loop() -> None:
        """Open loop: requests start on a fixed schedule of ``rate`` per second whatever the
        answers do; each one's latency counts from its scheduled start (no coordinated
        omission), so a server that falls behind shows it in p99."""
        conns: asyncio.Queue = asyncio.Queue()
        for _ in range(clients):
            conns.put_nowait(RawClient(host, port) if driver == "raw" else HttpxClient(shared))
        tasks: set[asyncio.Task] = set()

        async def one(j: int, t: float) -> None:
            c = await conns.get()
            try:  # request j's context and reward from its own generator: reproducible
                c = await rank(c, np.random.default_rng([seed, 1, j]), f"o-{j}", t)
            finally:
                conns.put_nowait(c)

        t0 = time.perf_counter()
        j = 0
        while j < int(rate * seconds):
            due = t0 + j / rate
            now = time.perf_counter()
            if due > now:
                await asyncio.sleep(due - now)
            while j < int(rate * seconds) and t0 + j / rate <= time.perf_counter():
                task = asyncio.create_task(one(j, t0 + j / rate))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                j += 1
        if tasks:  # a server that fell far behind: what is not answered in 120 s is an error
            _, late = await asyncio.wait(set(tasks), timeout=120)
            for task in late:
                task.cancel()
                errors.append(("rank", "not answered within 120 s after the schedule", ""))
            if late:
                await asyncio.wait(late)
        while not conns.empty():
            await (conns.get_nowait()).close()

    start = time.perf_counter()
    if rate:
        await open_loop()
    else:
        await asyncio.gather(*(worker(w) for w in range(clients)))
    elapsed = time.perf_counter() - start
    n_rewarded_in_time = len(rewarded)
    if pending:
        await asyncio.wait_for(asyncio.gather(*pending), 120)
    while not pool.empty():
        await (pool.get_nowait()).close()
    await shared.aclose()
    return {"elapsed": elapsed, "acked": acked, "rewarded": rewarded,
            "rewarded_in_time": n_rewarded_in_time, "rank_lat": np.array(rank_lat),
            "reward_lat": np.array(reward_lat), "errors": errors}


# ---------------------------------------------------------------------- in process
def in_process(policy, contexts, rewards, draws: int, seconds: float, seed: int) -> float:
    """Decisions per second of the same work in one process: a decision with its propensity
    (as the service makes it) and, for half of them, an update."""
    from mixedts.service.decide import decide

    policy = policy.copy()
    rng = np.random.default_rng(seed)
    n, stop_at = 0, time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < stop_at and n < 10_000_000:
        i = int(rng.integers(len(contexts)))
        x = contexts[i]
        d = decide(policy, x, policy.active, draws, rng)
        if rng.random() < 0.5:
            policy.update(x, d.action, float(rewards[i, d.action]))
        n += 1
    return n / (time.perf_counter() - start)


# ---------------------------------------------------------------------- one store
def run_store(kind: str, args, source: Path, work: Path, contexts, rewards) -> dict:
    import httpx

    from mixedts.service import Store
    from service_helpers import ProcessServer, postgres_cluster

    url = f"sqlite:///{work / kind}.sqlite" if kind == "sqlite" else \
        postgres_cluster().create_db(f"bench_{os.getpid()}")
    log = work / f"serve-{kind}.log"
    srv = ProcessServer(source, url, "--propensity-draws", str(args.propensity_draws),
                        "--seed", "0", log=log).start()
    try:
        with httpx.Client(base_url=srv.url) as c:  # warm-up: caches, first batches
            for i in range(20):
                c.post("/rank", json={"context": contexts[i].tolist()})
        cpu0 = _cpu(srv.proc.pid)
        out = asyncio.run(drive(srv.url, args.seconds, args.clients, args.driver,
                                args.reward_delay, contexts, rewards, seed=1,
                                rate=args.rate))
        cpu = _cpu(srv.proc.pid) - cpu0
    finally:
        srv.stop()
    store = Store(url)
    try:
        stored = {r.event_id: r for r in store.export(0, 50_000_000)}
    finally:
        store.close()
    lost_ranks = sum(1 for e, b in out["acked"].items()
                     if e not in stored or stored[e].action != b["action"])
    lost_rewards = sum(1 for e, y in out["rewarded"].items()
                       if e not in stored or stored[e].reward != y)
    el = out["elapsed"]
    q = lambda a, p: float(np.percentile(a, p) * 1e3) if len(a) else float("nan")  # noqa: E731
    return {
        "store": kind, "seconds": el, "decisions": len(out["acked"]),
        "decisions_per_s": len(out["acked"]) / el,
        "rewards_per_s": out["rewarded_in_time"] / el,
        "rank_p50_ms": q(out["rank_lat"], 50), "rank_p99_ms": q(out["rank_lat"], 99),
        "reward_p50_ms": q(out["reward_lat"], 50), "reward_p99_ms": q(out["reward_lat"], 99),
        "errors": len(out["errors"]), "lost_decisions": lost_ranks,
        "lost_rewards": lost_rewards, "rewards": len(out["rewarded"]),
        "server_cpu_s": cpu,
    }


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def report(rows: list[dict], args, ref: float, load: tuple) -> str:
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"### {when}: {args.seconds:g} s per store, " + (
            f"open loop at {args.rate:g} decisions/s over {args.clients} connections"
            if args.rate else f"{args.clients} clients") +
        f", driver {args.driver}, {args.propensity_draws} propensity draws",
        "",
        f"meTS, K = {K}, L = {L}, d = {D}; rank, and a reward for half of the decisions after "
        f"an exponential delay (mean {args.reward_delay:g} s). Machine: {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}; load average before the "
        f"run {load[0]:.2f} (1 min), after {load[1]:.2f}. In-process reference (one decision "
        f"with its propensity + half an update, one thread): **{ref:.0f} decisions/s**.",
        "",
        "| store | decisions/s | rewards/s | /rank p50 | /rank p99 | /reward p50 | /reward p99 "
        "| errors | lost | server CPU | vs in-process |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['store']} | {r['decisions_per_s']:.0f} | {r['rewards_per_s']:.0f} | "
            f"{r['rank_p50_ms']:.1f} ms | {r['rank_p99_ms']:.1f} ms | {r['reward_p50_ms']:.1f} ms"
            f" | {r['reward_p99_ms']:.1f} ms | {r['errors']} | "
            f"{r['lost_decisions']} + {r['lost_rewards']} of {r['decisions']} + {r['rewards']} "
            f"| {r['server_cpu_s'] / r['seconds']:.2f} cores | "
            + (" – |" if args.rate else f"{r['decisions_per_s'] / ref:.2f} |"))  # open loop:
    # the offered rate, not the service, sets the throughput
    cmd = " ".join(["python", "benchmarks/bench_service.py", *sys.argv[1:]])
    lines += ["", f"Command: `{cmd}`", ""]
    return "\n".join(lines)


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--stores", default="sqlite,postgresql")
    ap.add_argument("--driver", choices=["httpx", "raw"], default="raw")
    ap.add_argument("--clients", type=int, default=32,
                    help="closed-loop clients (open loop: connections)")
    ap.add_argument("--rate", type=_non_negative, default=0.0,
                    help="open loop: start this many decisions per second on a fixed schedule "
                         "(0: closed loop)")
    ap.add_argument("--propensity-draws", type=int, default=100)
    ap.add_argument("--reward-delay", type=float, default=1.0)
    ap.add_argument("--out", type=Path, default=None,
                    help="append the table to this markdown file")
    args = ap.parse_args()
    from mixedts import MeTS
    from mixedts.environments import MixedEffectEnvironment

    env = MixedEffectEnvironment(n_actions=K, n_effects=L, dim=D, seed=0)
    policy = MeTS.from_environment(env, seed=1)
    rounds = env.sample(20_000, np.random.default_rng(2))
    load0 = os.getloadavg()[0]
    ref = in_process(policy, rounds.contexts, rounds.rewards, args.propensity_draws,
                     min(10.0, args.seconds), seed=3)
    print(f"in process: {ref:.0f} decisions/s", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="mixedts-bench-") as tmp:
        work = Path(tmp)
        source = work / "policy.npz"
        policy.save(source)
        for kind in args.stores.split(","):
            row = run_store(kind, args, source, work, rounds.contexts, rounds.rewards)
            print(json.dumps(row), flush=True)
            rows.append(row)
    text = report(rows, args, ref, (load0, os.getloadavg()[0]))
    print(text)
    if args.out is not None:
        with open(args.out, "a") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()

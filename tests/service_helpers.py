"""Real servers for the service tests: uvicorn on 127.0.0.1 (in a thread, or a ``mixedts serve``
process that can be killed), and a throwaway PostgreSQL cluster run by an unprivileged user.

Every wait is bounded in time; every loop in count.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from mixedts import MeTS
from mixedts.environments import MixedEffectEnvironment

#: contexts and catalogue of the small policy most tests serve
K, L, D = 20, 3, 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def small_policy(seed: int = 1, K: int = K, L: int = L, d: int = D):
    env = MixedEffectEnvironment(n_actions=K, n_effects=L, dim=d, seed=0)
    return MeTS.from_environment(env, seed=seed)


def wait_until(predicate, timeout: float, what: str, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = predicate()
        if out:
            return out
        time.sleep(step)
    raise TimeoutError(f"{what}: not within {timeout} s")


def sqlite_url(folder: Path, name: str = "events") -> str:
    return f"sqlite:///{folder / name}.sqlite"


class ThreadServer:
    """``create_app`` under a real uvicorn on 127.0.0.1, in a thread of the test process."""

    def __init__(self, policy, store: str, **settings) -> None:
        import uvicorn

        from mixedts.service import ServiceSettings, create_app

        self.port = free_port()
        self.settings = ServiceSettings(store=store, port=self.port, **settings)
        config = uvicorn.Config(create_app(policy, self.settings), host="127.0.0.1",
                                port=self.port, log_level="warning", lifespan="on",
                                loop="asyncio", timeout_graceful_shutdown=10)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        wait_until(lambda: self.server.started or not self.thread.is_alive(), 30,
                   "uvicorn start")
        if not self.server.started:
            raise RuntimeError("the server did not start (see the log above)")
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        assert not self.thread.is_alive(), "the server did not stop within 30 s"


#: every server process launched by this test process (killed at exit if still running)
_LAUNCHED: list = []


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL when the parent dies (Linux prctl; elsewhere a no-op)."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@atexit.register
def _kill_leftovers() -> None:
    for srv in _LAUNCHED:
        if srv.proc is not None and srv.proc.poll() is None:
            srv.proc.kill()


class ProcessServer:
    """``python -m mixedts serve ...`` as a process (so that it can be killed with -9)."""

    def __init__(self, source: Path | None, store: str, *args: str, port: int | None = None,
                 log: Path | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "mixedts", "serve"]
        if source is not None:
            cmd.append(str(source))
        self.cmd = [*cmd, "--port", str(self.port), "--store", store, *args]
        self.log = log
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> ProcessServer:
        """Launch and wait until it answers; a server that does not is killed, never left."""
        self.launch()
        try:
            return self.wait(timeout)
        except BaseException:
            self.kill()
            raise

    def launch(self) -> ProcessServer:
        """Start the process (without waiting for it to answer). On Linux it is killed when
        the test process dies, so that no test run (or a mutant's) leaves a server behind."""
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        self.proc = subprocess.Popen(self.cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                     preexec_fn=_die_with_parent)
        _LAUNCHED.append(self)
        return self

    def wait(self, timeout: float = 60) -> ProcessServer:
        """Wait until /health answers 200."""
        import httpx

        def healthy():
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited with {self.proc.returncode}: "
                                   f"{self.log.read_text()[-2000:] if self.log else ''}")
            try:
                return httpx.get(self.url + "/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, timeout, "serve /health", step=0.1)
        return self

    def kill(self) -> None:
        """kill -9: no shutdown, no last snapshot."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> int:
        """SIGTERM: a graceful shutdown (last snapshot); returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


# ---------------------------------------------------------------------- PostgreSQL
def postgres_bin() -> Path | None:
    """Where Debian's (or any) PostgreSQL server binaries are, or None."""
    for pattern in ("/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin"):
        for folder in sorted(glob.glob(pattern), reverse=True):
            if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
                return Path(folder)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _as_user(cmd: list[str], user: str | None) -> list[str]:
    return cmd if user is None else ["runuser", "-u", user, "--", *cmd]


class Postgres:
    """A throwaway cluster: initdb in a temporary folder, 127.0.0.1 on a free port, run by an
    unprivileged user when the tests run as root (PostgreSQL refuses to run as root)."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = free_port()
        self.user = None
        if os.geteuid() == 0:
            self.user = "postgres" if _user_exists("postgres") else "nobody"
        self.dir = Path(tempfile.mkdtemp(prefix="mixedts-pg-"))
        if self.user is not None:
            shutil.chown(self.dir, self.user)
        self.data = self.dir / "data"

    def start(self) -> Postgres:
        run = lambda *cmd: subprocess.run(  # noqa: E731
            _as_user([str(self.bindir / cmd[0]), *cmd[1:]], self.user), check=True,
            capture_output=True, timeout=120, cwd=self.dir)
        run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync",
            "-E", "UTF8")
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                "-c max_connections=100 -c shared_buffers=64MB")
        run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.dir / "log"), "-w",
            "-t", "60", "start")
        return self

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def create_db(self, name: str) -> str:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            subprocess.run(_as_user([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m",
                                     "immediate", "stop"], self.user),
                           capture_output=True, timeout=60, cwd=self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


# ---------------------------------------------------------------------- posteriors
def same_state(a, b) -> bool:
    """Bitwise equality of two policies' model states (every array, dtype and value)."""
    cfg_a, arr_a = a.model.get_state()
    cfg_b, arr_b = b.model.get_state()
    if cfg_a != cfg_b or set(arr_a) != set(arr_b):
        return False
    return all(np.asarray(arr_a[k]).dtype == np.asarray(arr_b[k]).dtype and
               np.array_equal(arr_a[k], arr_b[k]) for k in arr_a) and \
        np.array_equal(a.active, b.active)


def reference(source, rewards) -> object:
    """A never-stopped policy fed ``rewards`` — (x_a, a, y) in order — one at a time."""
    policy = source.copy()
    for x, a, y in rewards:  # one update per reward, in the learner's order
        policy.update(x, a, y)
    return policy


# ---------------------------------------------------------------------- fixtures
_CLUSTER: list = []


def postgres_cluster():
    """The session's throwaway cluster (started once, stopped at exit); skips without one."""
    import atexit

    import pytest

    if _CLUSTER:
        return _CLUSTER[0]
    bindir = postgres_bin()
    if bindir is None:
        pytest.skip("no PostgreSQL server binary (initdb, pg_ctl) on this machine")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed (pip install 'mixedts[service]')")
    cluster = Postgres(bindir).start()
    atexit.register(cluster.stop)
    _CLUSTER.append(cluster)
    return cluster


_DBS = iter(range(10_000))


def store_for(kind: str, tmp_path: Path) -> str:
    """A new, empty store of ``kind`` ("sqlite" or "postgresql")."""
    if kind == "sqlite":
        return sqlite_url(tmp_path)
    return postgres_cluster().create_db(f"t{os.getpid()}_{next(_DBS)}")

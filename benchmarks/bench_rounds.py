#!/usr/bin/env python
"""Per-round cost of the mixedts policies against a BLAS floor and peer libraries.

One *round* is one ``select(x)`` plus one ``update(x, a, y)`` with a context ``x ~ U[-1, 1]^d``
shared by all actions. Every policy is measured in steady state: it is first warmed with
``update_batch`` so that *every* action has been observed at least once (the worst case for
per-action work), then a block of rounds is timed one by one with ``time.perf_counter``
(garbage collector off) and the median is reported. The reward computation sits between the
two timed calls and is not counted.

Sections of the report (printed as markdown and written to ``benchmarks/results.md``):

* policies vs K (L=20, d=10) and vs L (K=1e4), each as a multiple of the *floor*: one
  ``mixedts.linalg.batched_quadratic`` pass over K stacked (d, d) matrices;
* peer libraries (MABWiser, contextualbandits, bayesianbandits LinTS-style Thompson sampling),
  each in its own subprocess with a wall-clock cap, extrapolated linearly in K beyond it;
* peak RSS of MeTS at K=1e6 with 1e4 observed actions (separate subprocess);
* the acceptance ratios of the issue, all from this one run.

Run ``python benchmarks/bench_rounds.py --help`` for the options; see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as _dt
import gc
import io
import json
import os
import platform
import pstats
import resource
import subprocess
import sys
import time
from pathlib import Path


def _pin_blas_threads() -> str:
    """Apply ``--blas-threads`` before numpy is imported (BLAS reads its env at load time).

    Default: 1 thread unless the caller already set OPENBLAS/OMP/MKL_NUM_THREADS. ``0`` leaves
    the environment untouched. Subprocesses (peers, memory run) inherit the setting.
    """
    val = None
    for i, arg in enumerate(sys.argv):
        if arg == "--blas-threads" and i + 1 < len(sys.argv):
            val = sys.argv[i + 1]
        elif arg.startswith("--blas-threads="):
            val = arg.split("=", 1)[1]
    names = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    if val is None:
        if any(n in os.environ for n in names):
            return "from environment"
        val = "1"
    if val == "0":
        return "BLAS default (not pinned)"
    for n in names:
        os.environ[n] = val
    return f"pinned to {val} by bench_rounds.py"


# Only as a script: importing this module (e.g. for its helpers) must not touch the environment.
BLAS_THREADS_NOTE = (
    _pin_blas_threads() if __name__ == "__main__" else "not pinned (imported as a module)"
)

import numpy as np  # noqa: E402  (after the BLAS thread pinning above)
import scipy  # noqa: E402
import scipy.sparse as sp  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
try:  # the package is normally installed (pip install -e .); fall back to the src layout
    import mixedts  # noqa: F401
except ImportError:  # pragma: no cover - only without an installed package
    sys.path.insert(0, str(ROOT / "src"))

POLICIES = ("MeTS", "FactoredMeTS", "HierTS", "LinTS", "JointTS")
PEERS = ("mabwiser", "contextualbandits", "bayesianbandits")
PEER_LABEL = {
    "mabwiser": "MABWiser LinTS",
    "contextualbandits": "contextualbandits LinTS",
    "bayesianbandits": "bayesianbandits TS (NormalRegressor)",
}
JOINT_MAX_KD = 2000
SIGMA_PSI = 3.0  # Σ_Ψ = 3 I
NNZ_PER_ROW = 2


# ====================================================================== problem
def make_mixing(K: int, L: int, rng: np.random.Generator, nnz: int = NNZ_PER_ROW) -> sp.csr_matrix:
    """(K, L) CSR with exactly ``min(nnz, L)`` distinct non-zeros per row, values U[-1, 1].

    Built in row chunks so that the harness itself adds little to the peak RSS at K = 1e6.
    """
    m = min(nnz, L)
    cols = np.empty((K, m), dtype=np.int64)
    chunk = max(1, 2**20 // L)
    for lo in range(0, K, chunk):
        hi = min(K, lo + chunk)
        if m == L:
            cols[lo:hi] = np.arange(L)
        else:  # m distinct columns per row: argpartition of random keys
            cols[lo:hi] = np.argpartition(rng.random((hi - lo, L)), m - 1, axis=1)[:, :m]
    cols.sort(axis=1)
    vals = rng.uniform(-1.0, 1.0, (K, m))
    vals[vals == 0.0] = 0.5  # an exact zero would be dropped and change the row's nnz
    return sp.csr_matrix((vals.ravel(), cols.ravel(), np.arange(0, K * m + 1, m)), shape=(K, L))


def make_prior(K: int, L: int, d: int, seed: int):
    from mixedts import MixedEffectPrior

    rng = np.random.default_rng(seed)
    mixing = make_mixing(K, L, rng)
    effect_cov = SIGMA_PSI * np.broadcast_to(np.eye(d), (L, d, d)).copy()
    prior = MixedEffectPrior(np.zeros((L, d)), effect_cov, mixing, np.eye(d))
    psi = rng.normal(0.0, np.sqrt(SIGMA_PSI), (L, d))  # the true effects
    return prior, psi


class Truth:
    """Rewards y = xᵀ(Σ_l b_al ψ_l) + N(0, 1), computed per query (no (K, d) array)."""

    def __init__(self, mixing: sp.csr_matrix, psi: np.ndarray, seed: int) -> None:
        self.indptr, self.indices, self.data = mixing.indptr, mixing.indices, mixing.data
        self.psi = psi
        self.rng = np.random.default_rng(seed)

    def theta(self, a: int) -> np.ndarray:
        lo, hi = self.indptr[a], self.indptr[a + 1]
        return self.data[lo:hi] @ self.psi[self.indices[lo:hi]]

    def reward(self, x: np.ndarray, a: int) -> float:
        return float(x @ self.theta(a) + self.rng.standard_normal())

    def batch(self, X: np.ndarray, A: np.ndarray) -> np.ndarray:
        lo = self.indptr[A]
        w = self.indptr[1] - self.indptr[0]  # constant nnz per row
        idx = self.indices[lo[:, None] + np.arange(w)]
        val = self.data[lo[:, None] + np.arange(w)]
        theta = np.einsum("nw,nwd->nd", val, self.psi[idx])
        return np.einsum("nd,nd->n", X, theta) + self.rng.standard_normal(len(A))


def warm_actions(K: int, rng: np.random.Generator, extra: int | None = None) -> np.ndarray:
    """Every action once (shuffled) plus ``extra`` (default K) uniformly random repeats."""
    extra = K if extra is None else extra
    return np.concatenate([rng.permutation(K), rng.integers(0, K, extra)]).astype(np.int64)


def build_policy(name: str, prior, seed: int):
    from mixedts import FactoredMeTS, HierTS, JointTS, LinTS, MeTS

    d = prior.dim
    if name == "MeTS":
        return MeTS(prior, noise_std=1.0, seed=seed)
    if name == "FactoredMeTS":
        return FactoredMeTS(prior, noise_std=1.0, seed=seed)
    if name == "HierTS":
        return HierTS(
            prior.n_actions, np.zeros(d), SIGMA_PSI * np.eye(d), np.eye(d), noise_std=1.0, seed=seed
        )
    if name == "LinTS":
        return LinTS.from_prior(prior, noise_std=1.0, seed=seed)
    if name == "JointTS":
        return JointTS(prior, noise_std=1.0, seed=seed)
    raise ValueError(name)


# ====================================================================== timing
def _summary(sel: np.ndarray, upd: np.ndarray) -> dict:
    rnd = sel + upd
    return {
        "rounds": len(rnd),
        "select_us": float(np.median(sel) * 1e6),
        "update_us": float(np.median(upd) * 1e6),
        "round_us": float(np.median(rnd) * 1e6),
        "round_mean_us": float(np.mean(rnd) * 1e6),
        "round_p90_us": float(np.quantile(rnd, 0.9) * 1e6),
    }


class PolicySubject:
    """A warmed policy (every action observed) that runs timed rounds on demand."""

    kind = "policy"

    def __init__(
        self, name: str, K: int, L: int, d: int, seed: int, n_observed: int | None = None
    ) -> None:
        self.name, self.K, self.L, self.d = name, K, L, d
        t0 = time.perf_counter()
        prior, psi = make_prior(K, L, d, seed)  # includes MixedEffectPrior's validation
        self.truth = Truth(prior.mixing, psi, seed + 1)
        self.rng = np.random.default_rng(seed + 2)
        self.policy = build_policy(name, prior, seed + 3)
        self.build_s = time.perf_counter() - t0
        if n_observed is None:  # every action observed: the worst case for per-action work
            A = warm_actions(K, self.rng)
        else:  # n_observed distinct actions, each about twice
            A = self.rng.choice(K, n_observed, replace=False).astype(np.int64)
            A = np.concatenate([A, self.rng.choice(A, n_observed)])
        Xw = self.rng.uniform(-1.0, 1.0, (len(A), d))
        Yw = self.truth.batch(Xw, A)
        t0 = time.perf_counter()
        self.policy.update_batch(Xw, A, Yw)
        self.warm_s = time.perf_counter() - t0
        self.warm_obs = len(A)
        store = getattr(self.policy.model, "store", None)
        if store is not None:
            assert store.n == (K if n_observed is None else n_observed), (name, store.n, K)
            self.observed = int(store.n)
        for _ in range(5):  # untimed rounds: caches, lazily grown buffers
            self.step()

    def step(self) -> tuple[float, float]:
        pc = time.perf_counter
        x = self.rng.uniform(-1.0, 1.0, self.d)
        t0 = pc()
        a = self.policy.select(x)
        t1 = pc()
        y = self.truth.reward(x, a)  # not timed
        t2 = pc()
        self.policy.update(x, a, y)
        t3 = pc()
        return t1 - t0, t3 - t2

    def extras(self) -> dict:
        model = self.policy.model
        t0 = time.perf_counter()
        model.refactor()
        t_ref = time.perf_counter() - t0
        every = getattr(model, "refactor_every", 0) or 0
        return {
            "policy": self.name,
            "K": self.K,
            "L": self.L,
            "d": self.d,
            "status": "ok",
            "build_s": self.build_s,
            "warm_s": self.warm_s,
            "warm_obs": self.warm_obs,
            "refactor_ms": t_ref * 1e3,
            "refactor_amortized_us": (t_ref / every * 1e6) if every else float("nan"),
        }


class FloorSubject:
    """One ``batched_quadratic`` over K stacked (d, d) matrices: the per-round floor."""

    kind = "floor"

    def __init__(self, K: int, d: int, seed: int) -> None:
        from mixedts.linalg import batched_quadratic

        self.f = batched_quadratic
        self.K, self.d = K, d
        self.rng = np.random.default_rng(seed)
        self.S = self.rng.standard_normal((K, d, d))
        for _ in range(3):
            self.step()

    def step(self) -> tuple[float, float]:
        x = self.rng.uniform(-1.0, 1.0, self.d)
        t0 = time.perf_counter()
        self.f(self.S, x)
        return time.perf_counter() - t0, 0.0

    def extras(self) -> dict:
        return {"K": self.K, "status": "ok"}


def run_interleaved(
    subjects: list, budget: float, min_rounds: int, max_rounds: int, block: int = 20
) -> list[dict]:
    """Time all ``subjects`` in round-robin blocks of ``block`` rounds.

    Interleaving puts every subject of a group under the same machine conditions (shared VMs
    drift by several times over seconds), so ratios within a group are robust. Stops once every
    subject has ``min_rounds`` and ``budget`` s per subject have passed, or all hit ``max_rounds``.
    """
    n = len(subjects)
    sel = [np.empty(max_rounds) for _ in range(n)]
    upd = [np.empty(max_rounds) for _ in range(n)]
    done = [0] * n
    gc.collect()
    gc.disable()
    start = time.perf_counter()
    try:
        while True:
            for i, sub in enumerate(subjects):
                stop = min(done[i] + block, max_rounds)
                for j in range(done[i], stop):
                    sel[i][j], upd[i][j] = sub.step()
                done[i] = stop
            if all(c >= max_rounds for c in done):
                break
            if min(done) >= min_rounds and time.perf_counter() - start >= budget * n:
                break
    finally:
        gc.enable()
    out = []
    for i, sub in enumerate(subjects):
        res = _summary(sel[i][: done[i]], upd[i][: done[i]])
        res.update(sub.extras())
        out.append(res)
    return out


# ====================================================================== peers (child side)
def _peer_child(name: str, K: int, d: int, seed: int, cap: float, max_rounds: int) -> dict:
    """Runs in a subprocess. Warm-up (every arm observed), then predict+partial_fit rounds."""
    import warnings

    warnings.filterwarnings("ignore")
    t_start = time.perf_counter()
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, 1.0, (K, d))
    A = warm_actions(K, rng)
    Xw = rng.uniform(-1.0, 1.0, (len(A), d))
    Yw = np.einsum("nd,nd->n", Xw, theta[A]) + rng.standard_normal(len(A))
    out = {"peer": name, "K": K, "d": d}
    try:
        from importlib.metadata import version

        out["version"] = version(name)
    except Exception:  # pragma: no cover - metadata missing
        out["version"] = "?"
    if name == "mabwiser":  # imports first: warm_s is the fit alone (used to predict larger K)
        from mabwiser.mab import MAB, LearningPolicy

        t_fit = time.perf_counter()
        agent = MAB(
            arms=list(range(K)),
            learning_policy=LearningPolicy.LinTS(alpha=1.0, l2_lambda=1.0),
            seed=seed,
        )
        agent.fit(A, Yw, Xw)

        def select(x):
            return int(agent.predict(x[None]))

        def update(x, a, y):
            agent.partial_fit([a], [y], x[None])
    elif name == "contextualbandits":
        from contextualbandits.online import LinTS

        t_fit = time.perf_counter()
        agent = LinTS(nchoices=K, random_state=seed + 1)
        agent.fit(Xw, A, Yw)

        def select(x):
            return int(agent.predict(x[None])[0])

        def update(x, a, y):
            agent.partial_fit(x[None], np.array([a]), np.array([y]))
    elif name == "bayesianbandits":
        import bayesianbandits as bb

        t_fit = time.perf_counter()
        arms = [bb.Arm(k, learner=bb.NormalRegressor(alpha=1.0, beta=1.0)) for k in range(K)]
        agent = bb.ContextualAgent(arms, bb.ThompsonSampling(), random_seed=seed)
        order = np.argsort(A, kind="stable")
        bounds = np.searchsorted(A[order], np.arange(K + 1))
        for k in range(K):
            rows = order[bounds[k] : bounds[k + 1]]
            agent.select_for_update(k).update(Xw[rows], Yw[rows])
            if time.perf_counter() - t_fit > cap:
                break

        def select(x):
            return int(agent.pull(x[None])[0])

        def update(x, a, y):
            agent.select_for_update(a).update(x[None], np.array([y]))
    else:
        raise ValueError(name)
    out["warm_s"] = time.perf_counter() - t_fit
    out["import_s"] = t_fit - t_start
    if time.perf_counter() - t_fit > cap:
        out["status"] = "timeout"
        out["reason"] = f"warm-up alone took {out['warm_s']:.1f} s (cap {cap:.0f} s)"
        return out
    X = rng.uniform(-1.0, 1.0, (max_rounds + 1, d))
    a = select(X[-1])  # one untimed round
    update(X[-1], a, float(X[-1] @ theta[a]))
    sel, upd = [], []
    gc.collect()
    gc.disable()
    try:
        for t in range(max_rounds):
            x = X[t]
            t0 = time.perf_counter()
            a = select(x)
            t1 = time.perf_counter()
            y = float(x @ theta[a] + rng.standard_normal())
            t2 = time.perf_counter()
            update(x, a, y)
            t3 = time.perf_counter()
            sel.append(t1 - t0)
            upd.append(t3 - t2)
            if t >= 2 and t3 - t_fit > cap:
                break
    finally:
        gc.enable()
    rnd = np.add(sel, upd)
    out.update(
        {
            "status": "ok",
            "rounds": len(rnd),
            "select_us": float(np.median(sel) * 1e6),
            "update_us": float(np.median(upd) * 1e6),
            "round_us": float(np.median(rnd) * 1e6),
            "total_s": time.perf_counter() - t_start,
        }
    )
    return out


def find_peer_python(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    import importlib.util

    if all(importlib.util.find_spec(p) is not None for p in PEERS):
        return sys.executable
    cand = ROOT / ".venv-bench" / "bin" / "python"
    return str(cand) if cand.exists() else None


def run_peer(
    python: str | None, name: str, K: int, d: int, seed: int, cap: float, max_rounds: int
) -> dict:
    base = {"peer": name, "K": K, "d": d}
    if python is None:
        return {
            **base,
            "status": "not installed",
            "reason": "no interpreter with the peer (create .venv-bench, see README)",
        }
    cmd = [
        python,
        str(Path(__file__).resolve()),
        "--_peer",
        name,
        "--_K",
        str(K),
        "--_d",
        str(d),
        "--seed",
        str(seed),
        "--_cap",
        str(cap),
        "--_max-rounds",
        str(max_rounds),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=cap + 60)
    except subprocess.TimeoutExpired:
        return {**base, "status": "timeout", "reason": f"killed after {cap + 60:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {**base, "status": "failed", "reason": last[:200]}
    return json.loads(lines[-1])


def bench_peers(python, Ks, d, seed, cap, max_rounds, log, required=()) -> dict:
    """Each peer over increasing K; once a run times out (or is predicted to), extrapolate.

    A K in ``required`` is always attempted (the subprocess enforces the cap itself).
    """
    out = {}
    for name in PEERS:
        last_ok = None
        for K in Ks:
            if last_ok is not None and K not in required:
                scale = K / last_ok["K"]
                predicted = last_ok.get("import_s", 0.0) + scale * (
                    last_ok["warm_s"] + 3 * last_ok["round_us"] * 1e-6
                )
                if predicted > 1.5 * cap:
                    out[(name, K)] = {
                        "peer": name,
                        "K": K,
                        "status": "timeout (predicted)",
                        "reason": f"predicted {predicted:.0f} s > cap {cap:.0f} s",
                        "extrapolated_us": last_ok["round_us"] * scale,
                        "from_K": last_ok["K"],
                    }
                    log(f"  peer {name:18s} K={K:>7d}: skipped, predicted {predicted:.0f} s")
                    continue
            t0 = time.perf_counter()
            r = run_peer(python, name, K, d, seed, cap, max_rounds)
            if r["status"] == "ok":
                last_ok = r
            elif r["status"].startswith("timeout") and last_ok is not None:
                r["extrapolated_us"] = last_ok["round_us"] * K / last_ok["K"]
                r["from_K"] = last_ok["K"]
            out[(name, K)] = r
            what = (
                f"{r['round_us'] / 1e3:9.1f} ms/round ({r['rounds']} rounds, warm "
                f"{r['warm_s']:.1f} s)"
                if r["status"] == "ok"
                else f"{r['status']}: {r.get('reason', '')}"
            )
            log(f"  peer {name:18s} K={K:>7d}: {what}  [{time.perf_counter() - t0:.1f} s]")
            if r["status"] in ("not installed", "import failed", "failed"):
                for K2 in Ks[Ks.index(K) + 1 :]:
                    out[(name, K2)] = dict(r, K=K2)
                break
    return out


# ====================================================================== memory (child side)
def _rss_now_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _vm_hwm_mb() -> float:
    """Peak RSS of this process's own address space (VmHWM), MiB; NaN where unavailable."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _maxrss_mb() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return ru / 1024 if sys.platform != "darwin" else ru / 2**20


def _memory_child(K: int, L: int, d: int, n_obs: int, rounds: int, seed: int) -> dict:
    base_rss = _rss_now_mb()
    base_maxrss = _maxrss_mb()
    sub = PolicySubject("MeTS", K, L, d, seed, n_observed=n_obs)
    observed = sub.observed
    (res,) = run_interleaved([sub], budget=0.0, min_rounds=rounds, max_rounds=rounds)
    res.update(
        {
            "observed": observed,
            "observed_end": int(sub.policy.model.store.n),
            "rss_after_imports_mb": base_rss,
            "maxrss_after_imports_mb": base_maxrss,
            "peak_rss_mb": _maxrss_mb(),
            "vm_hwm_mb": _vm_hwm_mb(),
        }
    )
    return res


def run_memory(K, L, d, n_obs, rounds, seed) -> dict:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--_memory",
        "--_K",
        str(K),
        "--_L",
        str(L),
        "--_d",
        str(d),
        "--_n-obs",
        str(n_obs),
        "--_max-rounds",
        str(rounds),
        "--seed",
        str(seed),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"status": "failed", "reason": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    return {"status": "ok", **json.loads(lines[-1])}


# ====================================================================== profile
def profile_rounds(
    K: int,
    L: int,
    d: int,
    rounds: int,
    seed: int,
    top: int,
    policy_name: str = "MeTS",
    n_observed: int | None = None,
) -> str:
    """cProfile of ``rounds`` steady-state rounds (same set-up as the timed runs)."""
    sub = PolicySubject(policy_name, K, L, d, seed, n_observed=n_observed)
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for _ in range(rounds):
        sub.step()
    prof.disable()
    wall = time.perf_counter() - t0
    buf = io.StringIO()
    st = pstats.Stats(prof, stream=buf)
    st.strip_dirs().sort_stats("cumulative").print_stats(top)
    seen = "all actions" if n_observed is None else f"{n_observed} actions"
    head = (
        f"### cProfile: {policy_name}, K={K}, L={L}, d={d}, {seen} observed, "
        f"{rounds} rounds ({wall / rounds * 1e6:.0f} µs/round under the profiler)\n"
    )
    return head + "```\n" + buf.getvalue().strip() + "\n```\n"


# ====================================================================== environment
def blas_info() -> list[str]:
    lines = []
    try:
        from threadpoolctl import threadpool_info

        for p in threadpool_info():
            lines.append(
                f"threadpoolctl: {p.get('user_api')} {p.get('internal_api')} "
                f"{p.get('version')} arch={p.get('architecture')} threads={p.get('num_threads')} "
                f"layer={p.get('threading_layer')} ({Path(p.get('filepath', '')).name})"
            )
    except ImportError:
        lines.append("threadpoolctl: not installed in this interpreter")
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]
        lines.append(
            f"numpy BLAS (build): {blas.get('name')} {blas.get('version')} "
            f"— {blas.get('openblas configuration', '')}".rstrip(" —")
        )
    except Exception as exc:  # pragma: no cover - old numpy
        lines.append(f"numpy BLAS: unavailable ({exc})")
    env = {
        k: os.environ[k]
        for k in ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
        if k in os.environ
    }
    lines.append(f"BLAS threads: {BLAS_THREADS_NOTE}")
    lines.append("BLAS env: " + (", ".join(f"{k}={v}" for k, v in env.items()) or "(none set)"))
    return lines


def git_info() -> str:
    """Commit of the measured source and whether src/ has uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "log", "-1", "--format=%h %ci"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return "git: unavailable"
    state = f"src/ has {len(dirty)} uncommitted change(s)" if dirty else "src/ clean"
    return f"git: {head} ({state})"


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


# ====================================================================== report
def fmt_us(us: float) -> str:
    if us != us:  # nan
        return "–"
    if us >= 1e6:
        return f"{us / 1e6:.2f} s"
    if us >= 1e4:
        return f"{us / 1e3:.1f} ms"
    if us >= 1e3:
        return f"{us / 1e3:.2f} ms"
    return f"{us:.0f} µs"


def fmt_k(K: int) -> str:
    e = round(float(np.log10(K)))
    return f"1e{e}" if 10**e == K else str(K)


def cell(r: dict, floor_us: float | None) -> str:
    if r["status"] != "ok":
        return f"n/a ({r['reason']})"
    s = fmt_us(r["round_us"])
    if floor_us:
        s += f" ({r['round_us'] / floor_us:.1f}×)"
    return s


def peer_cell(r: dict, mets_us: float | None) -> str:
    if r["status"] == "ok":
        s = fmt_us(r["round_us"])
        if mets_us:
            s += f" ({r['round_us'] / mets_us:,.0f}×)"
        return s
    if "extrapolated_us" in r:
        s = f"~{fmt_us(r['extrapolated_us'])} extrap."
        if mets_us:
            s += f" (~{r['extrapolated_us'] / mets_us:,.0f}×)"
        return s + f" [{r['status']}]"
    return f"{r['status']}: {r.get('reason', '')}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="small smoke run (< 1 min)")
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help="markdown output (default benchmarks/results.md, "
        "benchmarks/results_quick.md with --quick)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-peers", action="store_true", help="skip the peer libraries")
    ap.add_argument("--no-memory", action="store_true", help="skip the K=1e6 memory run")
    ap.add_argument(
        "--peer-python",
        default=None,
        help="interpreter that has the peers installed (default: this one if it "
        "imports mabwiser, else .venv-bench/bin/python)",
    )
    ap.add_argument("--peer-cap", type=float, default=None, help="wall-clock cap per peer run (s)")
    ap.add_argument(
        "--profile",
        type=int,
        nargs="*",
        default=None,
        metavar="K",
        help="only cProfile rounds at these K (default 1e4 1e5) and print them",
    )
    ap.add_argument("--profile-policy", default="MeTS", choices=POLICIES)
    ap.add_argument("--profile-L", type=int, default=20, help="L for --profile")
    ap.add_argument(
        "--profile-observed",
        type=int,
        default=None,
        metavar="N",
        help="with --profile: observe N distinct actions instead of all K",
    )
    ap.add_argument(
        "--blas-threads",
        default=None,
        metavar="N",
        help="BLAS threads for this run and its subprocesses (default 1 unless "
        "OPENBLAS/OMP/MKL_NUM_THREADS is set; 0 = leave BLAS alone)",
    )
    # internal: subprocess entry points
    ap.add_argument("--_peer", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--_memory", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--_K", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--_L", type=int, default=20, help=argparse.SUPPRESS)
    ap.add_argument("--_d", type=int, default=10, help=argparse.SUPPRESS)
    ap.add_argument("--_n-obs", type=int, default=10_000, help=argparse.SUPPRESS)
    ap.add_argument("--_cap", type=float, default=20.0, help=argparse.SUPPRESS)
    ap.add_argument("--_max-rounds", type=int, default=200, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args._peer:
        try:
            res = _peer_child(args._peer, args._K, args._d, args.seed, args._cap, args._max_rounds)
        except ImportError as exc:  # reported in the table, the other peers still run
            res = {
                "peer": args._peer,
                "K": args._K,
                "status": "import failed",
                "reason": f"{type(exc).__name__}: {exc}"[:200],
            }
        except Exception as exc:
            res = {
                "peer": args._peer,
                "K": args._K,
                "status": "failed",
                "reason": f"{type(exc).__name__}: {exc}"[:200],
            }
        print(json.dumps(res))
        return 0
    if args._memory:
        print(
            json.dumps(
                _memory_child(args._K, args._L, args._d, args._n_obs, args._max_rounds, args.seed)
            )
        )
        return 0
    if args.profile is not None:
        for K in args.profile or [10_000, 100_000]:
            rounds = 300 if K <= 10_000 else 100
            print(
                profile_rounds(
                    K,
                    args.profile_L,
                    10,
                    rounds,
                    args.seed,
                    25,
                    args.profile_policy,
                    args.profile_observed,
                )
            )
        return 0

    quick = args.quick
    d, L0 = 10, 20
    if quick:
        Ks = [100, 1_000]
        Ls = [5, 20]
        L_K = 1_000
        cfg = {"budget": 0.3, "min_rounds": 30, "max_rounds": 300}
        peer_Ks = [100]
        peer_cap = args.peer_cap or 8.0
        peer_rounds = 20
        mem = {"K": 100_000, "n_obs": 1_000, "rounds": 50}
    else:
        Ks = [100, 1_000, 2_000, 10_000, 100_000]  # 2000: the MABWiser comparison point
        Ls = [5, 20, 100]
        L_K = 10_000
        cfg = {"budget": 1.5, "min_rounds": 200, "max_rounds": 2000}
        peer_Ks = [100, 1_000, 2_000, 10_000, 100_000]
        peer_cap = args.peer_cap or 20.0
        peer_rounds = 200
        mem = {"K": 1_000_000, "n_obs": 10_000, "rounds": 300}
    out_path = args.out or (HERE / ("results_quick.md" if quick else "results.md"))
    t_all = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t_all:6.1f}s] {msg}", file=sys.stderr, flush=True)

    header = [
        f"- date: {_dt.datetime.now().isoformat(timespec='seconds')}, mode: "
        f"{'--quick' if quick else 'full'}, seed {args.seed}",
        f"- machine: {cpu_name()}, {os.cpu_count()} logical CPUs, {platform.system()} "
        f"{platform.release()}",
        f"- python {platform.python_version()} ({sys.executable}), numpy {np.__version__}, "
        f"scipy {scipy.__version__}",
        f"- mixedts source: {git_info()}",
        *[f"- {ln}" for ln in blas_info()],
    ]
    log("header:\n" + "\n".join(header))

    # ---------------------------------------------------------------- memory
    # First, while this parent is small: a child's ru_maxrss starts from the RSS of the
    # process it was forked from (Linux keeps the pre-exec high-water mark), so spawning it
    # after the big groups below would report the parent's footprint, not MeTS's.
    memres = None
    if not args.no_memory:
        log(
            f"memory run: MeTS K={mem['K']}, {mem['n_obs']} observed actions, "
            f"{mem['rounds']} rounds (subprocess)"
        )
        parent_rss = _rss_now_mb()
        memres = run_memory(mem["K"], L0, d, mem["n_obs"], mem["rounds"], args.seed)
        memres["parent_rss_mb"] = parent_rss
        log(f"memory run: {memres}")

    # ---------------------------------------------------------------- policies + floor
    # One group per K, timed in interleaved blocks: floor(K), every policy at (K, L0) and, at
    # K = L_K, the L sweep. The largest-K group also re-times MeTS at the previous K, so that
    # the scaling ratio t(K_max) / t(K_prev) is measured under the same conditions.
    results: dict[tuple[str, int, int], dict] = {}
    floors: dict[int, float] = {}
    pair: dict[int, dict] = {}
    keep = None  # the MeTS subject at Ks[-2], L0

    def na(name, K, L):
        return {
            "policy": name,
            "K": K,
            "L": L,
            "status": "n/a",
            "reason": f"K·d={K * d} > {JOINT_MAX_KD}: O((Kd)²) memory",
        }

    def measure_group(K: int, Ls_here: list[int], extra=None) -> None:
        nonlocal keep
        t0 = time.perf_counter()
        subjects, keys = [FloorSubject(K, d, args.seed)], [("floor", K, 0)]
        for L in Ls_here:
            for name in POLICIES:
                if name == "JointTS" and K * d > JOINT_MAX_KD:
                    results[(name, K, L)] = na(name, K, L)
                    continue
                subjects.append(PolicySubject(name, K, L, d, args.seed))
                keys.append((name, K, L))
        if extra is not None:
            subjects.append(extra)
            keys.append(("pair", extra.K, extra.L))
        t_setup = time.perf_counter() - t0
        out = run_interleaved(subjects, cfg["budget"], cfg["min_rounds"], cfg["max_rounds"])
        for key, sub, r in zip(keys, subjects, out):
            if key[0] == "floor":
                floors[K] = r["round_us"]
                log(f"K={K:>7d} floor: {fmt_us(r['round_us'])} ({r['rounds']} calls)")
            elif key[0] == "pair":
                pair[key[1]] = r
                log(f"K={key[1]:>7d} MeTS (re-timed with K={K}): {fmt_us(r['round_us'])}")
            else:
                results[key] = r
                log(
                    f"K={K:>7d} L={key[2]:>3d} {key[0]:13s}: round {fmt_us(r['round_us']):>9s} "
                    f"(select {fmt_us(r['select_us'])}, update {fmt_us(r['update_us'])}, "
                    f"{r['rounds']} rounds, warm-up {r['warm_s']:.2f} s)"
                )
            if key == ("MeTS", Ks[-2], L0) and len(Ks) > 1:
                keep = sub
        log(f"K={K:>7d} group: setup {t_setup:.1f} s, total {time.perf_counter() - t0:.1f} s")

    for K in Ks:
        Ls_here = [L0] + ([L for L in Ls if L != L0] if K == L_K else [])
        measure_group(K, Ls_here, extra=keep if K == Ks[-1] else None)
        gc.collect()
    keep = None
    if L_K not in Ks:  # pragma: no cover - not used by the built-in configurations
        measure_group(L_K, Ls)
    if not args.no_memory and mem["K"] not in floors:
        (r,) = run_interleaved(
            [FloorSubject(mem["K"], d, args.seed)],
            cfg["budget"],
            cfg["min_rounds"],
            cfg["max_rounds"],
        )
        floors[mem["K"]] = r["round_us"]
        log(f"K={mem['K']:>7d} floor: {fmt_us(r['round_us'])}")
        gc.collect()

    # ---------------------------------------------------------------- peers
    peers = {}
    peer_python = None
    if not args.no_peers:
        peer_python = find_peer_python(args.peer_python)
        log(f"peers via {peer_python}")
        peers = bench_peers(
            peer_python, peer_Ks, d, args.seed, peer_cap, peer_rounds, log, required={2_000}
        )
        for K in peer_Ks:  # MeTS at every peer K (same problem family as the grid)
            if ("MeTS", K, L0) not in results:  # pragma: no cover - peer_Ks ⊆ Ks by default
                (r,) = run_interleaved(
                    [PolicySubject("MeTS", K, L0, d, args.seed)],
                    cfg["budget"],
                    cfg["min_rounds"],
                    cfg["max_rounds"],
                )
                results[("MeTS", K, L0)] = r

    # ---------------------------------------------------------------- report
    cmd = " ".join(
        [
            Path(sys.executable).name,
            "benchmarks/bench_rounds.py",
            *(argv if argv is not None else sys.argv[1:]),
        ]
    )
    md = [
        "# mixedts per-round benchmark",
        "",
        *header,
        "",
        f"Command: `{cmd}`",
        "",
        "One round = `select(x)` + `update(x, a, y)`, shared context x ~ U[-1,1]^d (the "
        "reward computation between the two calls is not timed). Each policy is first warmed "
        "with `update_batch` so that **every action is observed** (K shuffled observations + "
        "K random repeats: the worst case for per-action work), then rounds are timed one by "
        "one with `time.perf_counter` (gc off). All subjects at one K (the floor, every policy, "
        "and at K=1e4 the L sweep) are timed in **interleaved blocks of 20 rounds**, so they "
        "share the machine's conditions; each gets "
        f"{cfg['min_rounds']}–{cfg['max_rounds']} rounds (~{cfg['budget']} s). Cells give the "
        "**median** round and, in brackets, the multiple of the floor (one "
        "`mixedts.linalg.batched_quadratic` over K stacked (d,d) matrices) at the same K. "
        f"Prior: L effects, Σ_Ψ = {SIGMA_PSI:g}·I, Σ0 = I, σ = 1, exactly {NNZ_PER_ROW} "
        "non-zeros per mixing row with values U[-1,1].",
        "",
    ]

    def policy_table(rows: list[tuple[int, int]], title: str, key_label: str) -> None:
        md.extend(
            [
                f"## {title}",
                "",
                f"| {key_label} | floor | " + " | ".join(POLICIES) + " |",
                "|---|---:|" + "---:|" * len(POLICIES),
            ]
        )
        for K, L in rows:
            fl = floors.get(K)
            label = fmt_k(K) if key_label == "K" else str(L)
            cells = [cell(results[(p, K, L)], fl) for p in POLICIES]
            md.append(f"| {label} | {fmt_us(fl) if fl else '–'} | " + " | ".join(cells) + " |")
        md.append("")

    policy_table([(K, L0) for K in Ks], f"Per-round time vs K (L={L0}, d={d})", "K")
    policy_table([(L_K, L) for L in Ls], f"Per-round time vs L (K={fmt_k(L_K)}, d={d})", "L")

    md.extend(
        [
            "## Breakdown",
            "",
            "Medians of select and update separately; mean and p90 of the round; refactor = one "
            "exact `model.refactor()` after timing, amortised over `refactor_every` = 5000 "
            "rounds (no refactor fell inside the timed rounds).",
            "",
            "| policy | K | L | select | update | round (median) | mean | p90 | rounds | "
            "× floor | build (prior + policy) | warm-up `update_batch` | refactor | "
            "refactor amortised |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
    )
    order = sorted(
        results.items(),
        key=lambda kv: (kv[0][2] != L0, kv[0][2], kv[0][1], POLICIES.index(kv[0][0])),
    )
    for (name, K, L), r in order:
        if r["status"] != "ok":
            continue
        fl = floors.get(K)
        md.append(
            f"| {name} | {fmt_k(K)} | {L} | {fmt_us(r['select_us'])} | "
            f"{fmt_us(r['update_us'])} | {fmt_us(r['round_us'])} | "
            f"{fmt_us(r['round_mean_us'])} | {fmt_us(r['round_p90_us'])} | {r['rounds']} | "
            f"{r['round_us'] / fl:.1f} | {r['build_s']:.2f} s | "
            f"{r['warm_s']:.2f} s ({r['warm_obs']} obs) | "
            f"{r['refactor_ms']:.1f} ms | {fmt_us(r['refactor_amortized_us'])} |"
        )
    md.append("")

    if not args.no_peers:
        md.extend(
            [
                f"## Peers (d={d}; round = predict + partial_fit/update of the chosen arm; "
                "ratio = peer / MeTS at the same K)",
                "",
                f"Peer interpreter: `{peer_python}`. Every arm is observed before timing (same "
                "warm-up design as above: K shuffled + K random observations in one fit). Each "
                f"(peer, K) runs in its own subprocess with a {peer_cap:.0f} s wall-clock cap "
                "(warm-up + timed rounds, imports excluded; at most "
                f"{peer_rounds} rounds, median reported); beyond "
                "the cap the round is extrapolated **linearly in K** from the largest K that "
                "finished (all three peers loop over arms in Python, so per-round cost is at "
                "least linear in K). MeTS column: the same run's K sweep above.",
                "",
                "| K | MeTS | " + " | ".join(PEER_LABEL[p] for p in PEERS) + " |",
                "|---|---:|" + "---:|" * len(PEERS),
            ]
        )
        for K in peer_Ks:
            m = results.get(("MeTS", K, L0))
            mu = m["round_us"] if m and m["status"] == "ok" else None
            cells = [peer_cell(peers[(p, K)], mu) for p in PEERS]
            md.append(f"| {fmt_k(K)} | {fmt_us(mu) if mu else '–'} | " + " | ".join(cells) + " |")
        versions = {
            p: next(
                (r.get("version") for (q, _), r in peers.items() if q == p and r.get("version")),
                None,
            )
            for p in PEERS
        }
        timed = "; ".join(
            f"{p} K={fmt_k(K)}: {r['rounds']} / {r['warm_s']:.1f} s"
            for (p, K), r in peers.items()
            if r["status"] == "ok"
        )
        line = "Versions: " + ", ".join(f"{p} {v or '?'}" for p, v in versions.items()) + "."
        if timed:
            line += f" Rounds timed / warm-up (fit) seconds: {timed}."
        md.extend(["", line, ""])

    if memres is not None:
        md.extend([f"## Peak memory (MeTS, K={fmt_k(mem['K'])}, L={L0}, d={d}, subprocess)", ""])
        if memres["status"] == "ok":
            fl = floors.get(mem["K"])
            ok = memres["peak_rss_mb"] < 2048
            md.extend(
                [
                    "| observed actions | rounds | peak RSS (ru_maxrss) | VmHWM | "
                    "RSS after imports | round (median) | select | update | floor | × floor | "
                    "prior + policy build | warm-up |",
                    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
                    f"| {memres['observed']} → {memres['observed_end']} | {memres['rounds']} | "
                    f"**{memres['peak_rss_mb']:.0f} MiB** ({'PASS' if ok else 'FAIL'} < 2 GB) | "
                    f"{memres['vm_hwm_mb']:.0f} MiB | "
                    f"{memres['rss_after_imports_mb']:.0f} MiB | {fmt_us(memres['round_us'])} | "
                    f"{fmt_us(memres['select_us'])} | {fmt_us(memres['update_us'])} | "
                    f"{fmt_us(fl) if fl else '–'} | "
                    f"{memres['round_us'] / fl if fl else float('nan'):.1f} | "
                    f"{memres['build_s']:.1f} s | "
                    f"{memres['warm_s']:.2f} s ({memres['warm_obs']} obs) |",
                    "",
                    "Peak RSS is the whole child process (python + numpy/scipy + harness + "
                    "prior + policy); it was spawned before the parent allocated anything large "
                    f"(parent RSS {memres['parent_rss_mb']:.0f} MiB at spawn; Linux carries "
                    "the forking process's high-water mark into the child's ru_maxrss). VmHWM "
                    "is the child's own address-space peak, as a cross-check. The floor at this "
                    "K reads all K matrices while MeTS keeps (d,d) blocks only for observed "
                    "actions, so the multiple can be below 1; the floor was timed in the parent.",
                    "",
                ]
            )
        else:
            md.extend([f"failed: {memres['reason']}", ""])

    # ---------------------------------------------------------------- ratios
    def rt(name, K, L=L0):
        r = results.get((name, K, L))
        return r["round_us"] if r and r["status"] == "ok" else None

    ratios = []
    kf = 10_000 if not quick else Ks[-1]
    if rt("MeTS", kf) and floors.get(kf):
        v = rt("MeTS", kf) / floors[kf]
        ratios.append(
            (f"t_MeTS(K={fmt_k(kf)}) / floor(K={fmt_k(kf)}) [interleaved]", v, "<= 5", v <= 5)
        )
    ka, kb = Ks[-2], Ks[-1]
    if rt("MeTS", kb) and ka in pair:
        v = rt("MeTS", kb) / pair[ka]["round_us"]
        ratios.append(
            (f"t_MeTS(K={fmt_k(kb)}) / t_MeTS(K={fmt_k(ka)}) [interleaved]", v, "<= 12", v <= 12)
        )
    if rt("MeTS", kb) and rt("MeTS", ka):
        v = rt("MeTS", kb) / rt("MeTS", ka)
        ratios.append(
            (
                f"t_MeTS(K={fmt_k(kb)}) / t_MeTS(K={fmt_k(ka)}) [separate groups]",
                v,
                "<= 12",
                v <= 12,
            )
        )
    if rt("MeTS", kb) and rt("MeTS", ka) and floors.get(ka) and floors.get(kb):
        # the floor itself leaves the cache between these K (K·d² doubles: 8 MB, 80 MB): the
        # round's growth against the floor's is what a policy adds
        ratios.append((f"floor(K={fmt_k(kb)}) / floor(K={fmt_k(ka)}) [the memory hierarchy]",
                       floors[kb] / floors[ka], "(information)", None))
        v = (rt("MeTS", kb) / floors[kb]) / (rt("MeTS", ka) / floors[ka])
        ratios.append((f"(t_MeTS / floor at K={fmt_k(kb)}) / (t_MeTS / floor at K={fmt_k(ka)})",
                       v, "<= 1.2", v <= 1.2))
    kp = 2_000 if not quick else peer_Ks[0]
    if not args.no_peers:
        pr = peers.get(("mabwiser", kp))
        pu = None
        if pr:
            pu = pr.get("round_us") if pr["status"] == "ok" else pr.get("extrapolated_us")
        label = f"t_MABWiser-LinTS / t_MeTS (K={fmt_k(kp)}, d={d})"
        if pu and rt("MeTS", kp):
            v = pu / rt("MeTS", kp)
            if pr["status"] != "ok":
                label += " [extrapolated]"
            ratios.append((label, v, ">= 100", v >= 100))
        else:
            why = f"{pr['status']}: {pr.get('reason', '')}" if pr else "not measured"
            ratios.append((f"{label} [{why}]", float("nan"), ">= 100", False))
    if memres is not None and memres["status"] == "ok":
        ratios.append(
            (
                f"peak RSS, MeTS K={fmt_k(mem['K'])}, {mem['n_obs']} observed (MiB)",
                memres["peak_rss_mb"],
                "< 2048",
                memres["peak_rss_mb"] < 2048,
            )
        )
    md.extend(
        [
            "## Acceptance ratios (all from this run)",
            "",
            "| ratio | value | target | |",
            "|---|---:|---|---|",
        ]
    )
    for label, v, target, ok in ratios:
        verdict = "(smoke run)" if quick else ("" if ok is None else "PASS" if ok else "FAIL")
        md.append(f"| {label} | {v:,.2f} | {target} | {verdict} |")
    if quick:
        md.extend(
            [
                "",
                "(--quick: ratios are taken at the small K of the smoke run, not the "
                "issue's K; run without --quick for the real numbers.)",
            ]
        )
    else:
        md.extend(
            [
                "",
                "The K-scaling target (≤ 12 for 10× the actions) was set when a round was "
                "several times its floor. The floor itself, one read of the K stacked S_i, "
                "grows faster than K once they leave the cache (K·d² doubles: 8 MB at 10⁴, "
                "80 MB at 10⁵, against a 32 MB L3 here), so a round near its floor inherits "
                "that growth; the row against the floor is the policy's own scaling.",
            ]
        )
    md.extend(["", f"Total benchmark wall time: {time.perf_counter() - t_all:.0f} s.", ""])

    text = "\n".join(md)
    print(text)
    out_path.write_text(text)
    print("\nRatios:", file=sys.stderr)
    for label, v, target, ok in ratios:
        verdict = "(smoke run)" if quick else ("" if ok is None else "PASS" if ok else "FAIL")
        print(f"  {label}: {v:,.2f} (target {target}) {verdict}", file=sys.stderr)
    log(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

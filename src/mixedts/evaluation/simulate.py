"""Run policies against environments for many seeded runs, locally or on a Dask cluster.

Seeding: one root ``numpy.random.SeedSequence`` spawns one child per run, and each run's child
spawns three: the problem instance (``environment.reseed``), the rounds (contexts and every
action's reward) and the policies' own generators. Every policy of a run therefore faces the
same instance, the same contexts and the same reward of each action in each round (common
random numbers), and a task's result depends only on its seeds: identical for any ``n_jobs``
or scheduler.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .._validation import ValidationError, check_int
from ..environments.base import BanditEnvironment
from ..policies.base import ContextFreeBandit

#: numbers drawn per block of rounds are bounded by this (memory), see :func:`chunk_size`
CHUNK_ELEMENTS = 2**21


class IgnoreContext:
    """A context-free policy in a contextual experiment: the contexts are dropped."""

    def __init__(self, policy: ContextFreeBandit) -> None:
        self.policy = policy

    def select(self, x) -> int:
        return self.policy.select()

    def update(self, x, a, y) -> None:
        self.policy.update(a, y)

    def update_batch(self, X, A, Y) -> None:
        self.policy.update_batch(A, Y)

    def __repr__(self) -> str:
        return f"IgnoreContext({self.policy!r})"


class Oracle:
    """The policy that knows the truth: plays the action with the highest expected reward.

    Its regret is zero by construction; use it to check an environment or as a reference.

    Parameters
    ----------
    environment : BanditEnvironment
        The environment whose truth it plays.
    seed : ignored
        Kept so that it is built like any policy factory.

    Examples
    --------
    >>> from mixedts.environments import MixedEffectEnvironment
    >>> env = MixedEffectEnvironment(5, 2, 2, seed=0)
    >>> x = np.array([0.3, -0.4])
    >>> Oracle(env).select(x) == int(np.argmax(env.expected_rewards(x)))
    True
    """

    def __init__(self, environment: BanditEnvironment, seed=None) -> None:
        self.environment = environment

    def select(self, x) -> int:
        return self.environment.best_action(np.asarray(x))

    def select_expected(self, expected: np.ndarray) -> np.ndarray:
        """The best action of each round from the expected rewards (n, K)."""
        return np.argmax(expected, axis=1)

    def update(self, x, a, y) -> None:
        pass

    def update_batch(self, X, A, Y) -> None:
        pass

    def __repr__(self) -> str:
        return "Oracle()"


def oracle(environment: BanditEnvironment, seed=None) -> Oracle:
    """A factory for :class:`Oracle` (``policies={"oracle": oracle}``).

    Parameters
    ----------
    environment : BanditEnvironment
        The run's environment.
    seed : ignored
        The run's generator, which the oracle does not need.

    Returns
    -------
    Oracle

    Examples
    --------
    >>> from mixedts.environments import MixedEffectEnvironment
    >>> env = MixedEffectEnvironment(5, 2, 2)
    >>> results = simulate(env, {"oracle": oracle}, horizon=20, seed=0, quiet=True)
    >>> float(results.frame["cum_regret"].iloc[-1])
    0.0
    """
    return Oracle(environment, seed)


def chunk_size(environment: BanditEnvironment) -> int:
    """Rounds drawn per block: a function of the environment's shape only (so deterministic),
    bounded in memory and a multiple of the feedback delay."""
    K, d = environment.n_actions, environment.dim
    per_round = K * (1 if environment.shared_context else d) + 2 * K + d
    size = max(1, min(1024, CHUNK_ELEMENTS // per_round))
    delay = max(1, int(environment.feedback_delay))
    return max(delay, (size // delay) * delay)


def run_rounds(
    environment: BanditEnvironment, policy, horizon: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Run one policy for ``horizon`` rounds; the environment draws rounds from ``rng``.

    Parameters
    ----------
    environment : BanditEnvironment
        Draws the contexts and rewards; its ``feedback_delay`` decides how often the policy
        is updated (with ``update_batch``).
    policy : policy
        Anything with ``select`` and ``update`` (a contextual or context-free bandit, an
        :class:`Oracle`); it draws from its own generator.
    horizon : int
        Rounds (≥ 1).
    rng : numpy.random.Generator
        The environment's draws.

    Returns
    -------
    dict of str to ndarray
        Arrays of length ``horizon``: ``action``, ``reward`` (what the policy received),
        ``regret`` (expected: best expected reward minus the chosen action's),
        ``realised_regret`` (the best action's reward minus the received one, as in the
        authors' code) and ``seconds`` (wall time of the policy's select + update in that
        round).

    Examples
    --------
    >>> from mixedts import LinTS
    >>> from mixedts.environments import MixedEffectEnvironment
    >>> env = MixedEffectEnvironment(10, 2, 2, seed=0)
    >>> out = run_rounds(env, LinTS.from_prior(env.prior, seed=1), 30, np.random.default_rng(2))
    >>> sorted(out), out["action"].shape
    (['action', 'realised_regret', 'regret', 'reward', 'seconds'], (30,))
    """
    horizon = check_int(horizon, "horizon", 1)
    out = {
        "action": np.empty(horizon, dtype=np.int64),
        "reward": np.empty(horizon),
        "regret": np.empty(horizon),
        "realised_regret": np.empty(horizon),
        "seconds": np.zeros(horizon),
    }
    if isinstance(policy, ContextFreeBandit):
        policy = IgnoreContext(policy)
    delay = max(1, int(environment.feedback_delay))
    block = chunk_size(environment)
    perf = time.perf_counter
    select, update = policy.select, policy.update
    for start in range(0, horizon, block):
        rounds = environment.sample(min(block, horizon - start), rng)
        m = len(rounds)
        X, R = rounds.contexts, rounds.rewards
        secs = np.zeros(m)
        if isinstance(policy, Oracle):
            A = policy.select_expected(rounds.expected)
        elif delay == 1:
            A = np.empty(m, dtype=np.int64)
            for i in range(m):
                x = X[i]
                t0 = perf()
                a = select(x)
                update(x, a, float(R[i, a]))
                secs[i] = perf() - t0
                A[i] = a
        else:
            A = np.empty(m, dtype=np.int64)
            for b in range(0, m, delay):
                stop = min(b + delay, m)
                for i in range(b, stop):
                    t0 = perf()
                    A[i] = select(X[i])
                    secs[i] = perf() - t0
                t0 = perf()
                idx = np.arange(b, stop)
                Y = R[idx, A[b:stop]]
                if hasattr(policy, "update_batch"):
                    policy.update_batch(X[b:stop], A[b:stop], Y)
                else:
                    for i, y in zip(idx, Y):
                        update(X[i], int(A[i]), float(y))
                secs[b:stop] += (perf() - t0) / (stop - b)
        idx = np.arange(m)
        best = np.argmax(rounds.expected, axis=1)
        sl = slice(start, start + m)
        out["action"][sl] = A
        out["reward"][sl] = R[idx, A]
        out["regret"][sl] = rounds.expected[idx, best] - rounds.expected[idx, A]
        out["realised_regret"][sl] = R[idx, best] - R[idx, A]
        out["seconds"][sl] = secs
    return out


def run_policy(environment, policy, horizon: int, rng: np.random.Generator) -> np.ndarray:
    """Run ``policy`` for ``horizon`` rounds and return the per-round expected regret, (horizon,).

    The environment draws contexts and rewards from ``rng``; the policy uses its own generator,
    so two policies run with equal ``rng`` seeds see the same contexts and rewards.

    Parameters
    ----------
    environment, policy, horizon, rng
        As for :func:`run_rounds`.

    Returns
    -------
    ndarray
        (horizon,): the best expected reward minus that of the chosen action, per round.

    Examples
    --------
    >>> from mixedts import LinTS
    >>> from mixedts.environments import MixedEffectEnvironment
    >>> env = MixedEffectEnvironment(10, 2, 2, seed=0)
    >>> policy = LinTS.from_prior(env.prior, seed=1)
    >>> regret = run_policy(env, policy, 50, np.random.default_rng(2))
    >>> regret.shape, bool((regret >= 0).all())
    ((50,), True)
    """
    return run_rounds(environment, policy, horizon, rng)["regret"]


# ---------------------------------------------------------------------- seeds and tasks
def run_seeds(seed, n_runs: int) -> tuple[np.random.SeedSequence, list[tuple]]:
    """The root SeedSequence and, per run, its (instance, rounds, policy) children."""
    if isinstance(seed, np.random.SeedSequence):
        root = seed
    elif seed is None or (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)):
        if seed is not None and seed < 0:
            raise ValidationError(f"seed must be a non-negative integer, got {seed}")
        root = np.random.SeedSequence(seed)
    else:
        raise ValidationError(f"seed must be None, an int or a SeedSequence, got {seed!r}")
    # spawn_key is explicit so that a SeedSequence passed in twice gives the same children
    runs = [
        tuple(
            np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, r, k))
            for k in range(3)
        )
        for r in range(n_runs)
    ]
    return root, runs


def run_task(
    environment: BanditEnvironment,
    factory: Callable,
    seeds: tuple,
    horizon: int,
    resample: bool,
) -> dict[str, np.ndarray]:
    """One (run, policy) task: the unit of work sent to processes or Dask workers."""
    instance_seed, rounds_seed, policy_seed = seeds
    env = environment.reseed(instance_seed) if resample else environment
    policy = factory(env, np.random.default_rng(policy_seed))
    return run_rounds(env, policy, horizon, np.random.default_rng(rounds_seed))


#: most runs one task steps together (the per-round overhead of a batch is paid once per
#: round for all of them; beyond a few dozen runs that saving levels off)
MAX_RUNS_PER_TASK = 64
#: fewest runs a policy's task holds when its runs are split between workers
MIN_RUNS_PER_TASK = 8


def run_batch_rounds(
    environments: list[BanditEnvironment], batch, horizon: int, rngs: list[np.random.Generator]
) -> list[dict[str, np.ndarray]]:
    """Run R runs in lockstep with a batched policy (``select(X) -> (R,)``,
    ``update(X, A, Y)``); run r's environment draws its rounds from ``rngs[r]`` exactly as
    :func:`run_rounds` would, so every run sees the contexts and rewards it sees there.

    Returns one :func:`run_rounds`-style dict per run; ``seconds`` is the batched round's
    wall time divided by R (the amortised cost per run).
    """
    horizon = check_int(horizon, "horizon", 1)
    R = len(environments)
    outs = [
        {
            "action": np.empty(horizon, dtype=np.int64),
            "reward": np.empty(horizon),
            "regret": np.empty(horizon),
            "realised_regret": np.empty(horizon),
            "seconds": np.zeros(horizon),
        }
        for _ in range(R)
    ]
    block = chunk_size(environments[0])
    perf = time.perf_counter
    runs = np.arange(R)
    for start in range(0, horizon, block):
        m = min(block, horizon - start)
        rounds = [env.sample(m, rng) for env, rng in zip(environments, rngs)]
        X = np.stack([r.contexts for r in rounds])  # (R, m, d) or (R, m, K, d)
        Rw = np.stack([r.rewards for r in rounds])  # (R, m, K)
        A = np.empty((R, m), dtype=np.int64)
        secs = np.zeros(m)
        for i in range(m):
            t0 = perf()
            a = batch.select(X[:, i])
            batch.update(X[:, i], a, Rw[runs, i, a])
            secs[i] = (perf() - t0) / R
            A[:, i] = a
        idx = np.arange(m)
        sl = slice(start, start + m)
        for r, (rd, out) in enumerate(zip(rounds, outs)):
            best = np.argmax(rd.expected, axis=1)
            a = A[r]
            out["action"][sl] = a
            out["reward"][sl] = rd.rewards[idx, a]
            out["regret"][sl] = rd.expected[idx, best] - rd.expected[idx, a]
            out["realised_regret"][sl] = rd.rewards[idx, best] - rd.rewards[idx, a]
            out["seconds"][sl] = secs
    return outs


def run_unit(
    environment: BanditEnvironment,
    factory: Callable,
    seeds: list[tuple],
    horizon: int,
    resample: bool,
    vectorize: bool = True,
) -> list[dict[str, np.ndarray]]:
    """Several runs of one policy: with ``vectorize``, batched when the factory offers
    ``batch(envs, rngs)`` and it accepts these environments, else one run at a time
    (:func:`run_task`)."""
    batch_of = getattr(factory, "batch", None) if vectorize else None
    # a single run goes through the batch too, so a run's result never depends on n_runs
    if batch_of is not None:
        envs = [environment.reseed(s[0]) if resample else environment for s in seeds]
        batch = batch_of(envs, [np.random.default_rng(s[2]) for s in seeds])
        if batch is not None:
            rngs = [np.random.default_rng(s[1]) for s in seeds]
            return run_batch_rounds(envs, batch, horizon, rngs)
    return [run_task(environment, factory, s, horizon, resample) for s in seeds]


def _progress(quiet: bool, total: int, description: str):
    """A rich progress bar on stderr, or None when quiet or not a terminal."""
    if quiet:
        return None
    try:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
    except ImportError:  # pragma: no cover - rich comes with the 'experiments' extra
        return None
    console = Console(stderr=True)
    if not console.is_terminal:
        return None
    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    progress.start()
    task = progress.add_task(description, total=total)
    return progress, task


def simulate(
    environment: BanditEnvironment,
    policies: Mapping[str, Callable],
    horizon: int,
    n_runs: int = 1,
    seed=0,
    n_jobs: int = 1,
    scheduler=None,
    quiet: bool = False,
    resample: bool = True,
    meta: Mapping[str, Any] | None = None,
    vectorize: bool = True,
):
    """Run every policy on ``n_runs`` seeded runs of ``environment`` and collect the regret.

    Parameters
    ----------
    environment : BanditEnvironment
        Its configuration; with ``resample=True`` (default, as in the paper) each run draws a
        new problem instance with ``environment.reseed``; otherwise every run uses this one.
    policies : mapping name -> factory
        ``factory(environment, rng)`` returns a fresh policy (``select``/``update``) for the
        run's environment and a ``numpy.random.Generator``. A factory with a
        ``with_horizon(n)`` method (see :class:`PolicySpec`) is told the horizon first.
    horizon, n_runs : int
    seed : int, SeedSequence or None
        The root seed. Results are identical for any ``n_jobs`` and scheduler.
    n_jobs : int
        Local processes (-1: all cores): this one and n − 1 of joblib's loky workers, each
        taking the next task as it is free. 1 runs everything in this process.
    scheduler : dask.distributed.Client or str, optional
        Run the tasks on this Dask cluster (a ``"tcp://host:port"`` address or a client).
    quiet : bool
        No progress bar (there is none anyway when stderr is not a terminal).
    resample : bool
        A new problem instance per run (see ``environment``).
    meta : mapping, optional
        Added to the results' ``meta`` (after the configuration, which it may override).
    vectorize : bool
        Step runs of a policy together where its factory can (see :func:`plan_units`; a
        :class:`PolicySpec` of MeTS, FactoredMeTS, HierTS or JointTS with Gaussian rewards,
        LinTS, or LinUCB with a constant width; see :meth:`PolicySpec.batch`): the same
        posteriors, one batched numpy pass per round for all of them, and the same actions as
        the one-run policies (JointTS: the same law, drawn through the effects); ``False``
        runs every policy one run at a time.

    Returns
    -------
    Results
        One row per (policy, run, round).

    Raises
    ------
    ValidationError
        An environment that is not a mixedts one, an empty or malformed ``policies``, a
        ``horizon`` or ``n_runs`` below 1, or ``n_jobs=0``.

    Examples
    --------
    >>> from mixedts import LinTS, MeTS
    >>> from mixedts.environments import MixedEffectEnvironment
    >>> env = MixedEffectEnvironment(20, 2, 2)
    >>> results = simulate(env, {"meTS": lambda e, rng: MeTS(e.prior, seed=rng),
    ...                          "LinTS": lambda e, rng: LinTS.from_prior(e.prior, seed=rng)},
    ...                    horizon=100, n_runs=2, seed=0, quiet=True)
    >>> results.summary().columns.tolist()[:4]
    ['policy', 'round', 'cum_regret_mean', 'cum_regret_se']
    """
    from .results import Results

    if not isinstance(environment, BanditEnvironment):
        raise ValidationError("environment must be a mixedts environment (BanditEnvironment)")
    if not isinstance(policies, Mapping) or not policies:
        raise ValidationError("policies must be a non-empty mapping of names to factories")
    for name, factory in policies.items():
        if not isinstance(name, str) or not callable(factory):
            raise ValidationError(f"policies[{name!r}] must map a string to a callable factory")
    horizon = check_int(horizon, "horizon", 1)
    n_runs = check_int(n_runs, "n_runs", 1)
    n_jobs = check_int(n_jobs, "n_jobs", low=-(2**31))
    if n_jobs == 0:
        raise ValidationError("n_jobs must be a positive number of processes, or -1 for all")
    factories = {
        name: f.with_horizon(horizon) if hasattr(f, "with_horizon") else f
        for name, f in policies.items()
    }
    root, seeds = run_seeds(seed, n_runs)
    names = list(factories)
    tasks = [(run, name) for run in range(n_runs) for name in names]
    units = plan_units(factories, n_runs, _workers(n_jobs, scheduler), vectorize)
    position = {task: i for i, task in enumerate(tasks)}
    args = [(environment, factories[name], [seeds[r] for r in runs], horizon, resample,
             vectorize) for name, runs, _ in units]
    bar = _progress(quiet, len(tasks), f"{n_runs} runs × {len(names)} policies")
    results: list[dict | None] = [None] * len(tasks)
    start = time.perf_counter()
    try:
        for u, unit_results in _execute(args, n_jobs, scheduler):
            name, runs, _ = units[u]
            for run, result in zip(runs, unit_results):
                results[position[(run, name)]] = result
            if bar is not None:
                bar[0].advance(bar[1], len(runs))
    finally:
        if bar is not None:
            bar[0].stop()
    wall = time.perf_counter() - start
    info = {
        "environment": repr(environment),
        "policies": names,
        "horizon": horizon,
        "n_runs": n_runs,
        "seed": int(root.entropy) if isinstance(root.entropy, int) else str(root.entropy),
        "resample": bool(resample),
        "vectorize": bool(vectorize),
        "n_jobs": n_jobs,
        "tasks": len(units),
        "scheduler": None if scheduler is None else str(getattr(scheduler, "scheduler", scheduler)),
        "wall_seconds": wall,
    }
    info.update(meta or {})
    return Results.from_tasks(tasks, results, info)


def _execute(args: list[tuple], n_jobs: int, scheduler):
    """Yield (index, result) for every task, in any order."""
    if scheduler is not None:
        yield from _execute_dask(args, scheduler)
    else:
        n = min(_workers(n_jobs, None), len(args))  # (-k may leave one process; no idle ones)
        if n <= 1:
            for i, a in enumerate(args):
                yield i, run_unit(*a)
        else:
            yield from _execute_local(args, n)


def _execute_local(args: list[tuple], n_processes: int):
    """Yield (index, result) for every task on ``n_processes`` processes: this one and
    n − 1 of joblib's loky workers, each taking the next task in the planned order (longest
    first) as soon as it is free. This process takes the longest task at once, while the
    workers start up (~0.5 s, which a pool of n workers adds to the wall time). BLAS gets
    cpu / n threads in every process, as joblib gives its workers. After an error no new task
    starts (a worker's current one ends unseen); an interrupt also stops the workers."""
    import os
    import queue
    import threading
    from concurrent.futures import FIRST_COMPLETED, wait

    from joblib.externals.loky import get_reusable_executor

    todo = list(range(len(args)))[::-1]  # pop(): the next task in the planned order
    lock = threading.Lock()
    finished: queue.Queue = queue.Queue()

    def take():
        with lock:
            return todo.pop() if todo else None

    threads = max(1, (os.cpu_count() or 1) // n_processes)
    pool = get_reusable_executor(max_workers=n_processes - 1,
                                 env={name: str(threads) for name in _THREAD_VARIABLES})

    def feed():  # keeps every worker busy: the next task as soon as one finishes
        running = {}
        try:
            for _ in range(n_processes - 1):
                if (i := take()) is not None:
                    running[pool.submit(run_unit, *args[i])] = i
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    finished.put((running.pop(future), future))
                    if (i := take()) is not None:
                        running[pool.submit(run_unit, *args[i])] = i
        except BaseException as exc:  # pragma: no cover - a broken pool: raised below
            finished.put((-1, exc))
        finally:
            finished.put(None)  # the feeder is done

    first = take()  # the longest task: this process, which needs no start-up
    threading.Thread(target=feed, name="mixedts-feed", daemon=True).start()
    feeding = True

    def collect(block: bool):
        nonlocal feeding
        while feeding:
            try:
                item = finished.get(block=block)
            except queue.Empty:
                return
            if item is None:
                feeding = False
            elif item[0] < 0:  # pragma: no cover
                raise item[1]
            else:
                yield item[0], item[1].result()

    try:
        with _blas_threads(threads):
            i = first
            while i is not None:
                yield i, run_unit(*args[i])
                yield from collect(block=False)
                i = take()
        yield from collect(block=True)
    except KeyboardInterrupt:  # the user stops: so do the workers, at once
        with lock:
            todo.clear()
        pool.shutdown(wait=False, kill_workers=True)
        raise
    finally:  # after an error no new task starts; a worker's current one ends unseen
        with lock:
            todo.clear()


#: the thread-count variables of the BLAS and OpenMP runtimes (those joblib sets for workers)
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                     "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def _blas_threads(n: int):
    """BLAS limited to ``n`` threads in this process while it runs tasks (threadpoolctl, where
    installed; it comes with the experiments extra)."""
    import contextlib

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        return contextlib.nullcontext()
    return threadpool_limits(limits=n)


def _workers(n_jobs: int, scheduler) -> int:
    """The processes that will run the tasks (joblib's reading of ``n_jobs``; a Dask cluster:
    its threads)."""
    if scheduler is not None:
        try:
            return max(1, sum(getattr(scheduler, "nthreads", lambda: {})().values()))
        except Exception:  # pragma: no cover - an address, or a client without workers yet
            return 8
    if n_jobs > 0:
        return n_jobs
    import os

    return max(1, (os.cpu_count() or 1) + 1 + n_jobs)


def plan_units(factories: Mapping[str, Any], n_runs: int, n_workers: int = 1,
               vectorize: bool = True) -> list[tuple[str, list[int], float]]:
    """The units of work of an experiment, longest first: (policy, its runs, estimated cost).

    A factory with ``batch`` (a :class:`PolicySpec`) gets its runs in contiguous groups, each
    stepped together by one task: with one worker, groups of at most
    :data:`MAX_RUNS_PER_TASK` (the batch's per-round overhead is paid once per group); with
    n workers, about two tasks per worker in all, shared between the policies in proportion
    to their estimated cost (``factory.relative_cost()``, a batched linear-Gaussian policy's
    being 1), in groups of at least :data:`MIN_RUNS_PER_TASK` runs. Any other factory: one
    run per unit. Longest first, a free worker taking the next (LPT scheduling). A run's
    result depends neither on its group nor on the order (tests/test_simulate.py), so no
    result depends on ``n_workers``.

    Examples
    --------
    >>> from mixedts.evaluation import PolicySpec
    >>> specs = {"lin": PolicySpec("MeTS"), "glm": PolicySpec("MeTS", {"likelihood": "logistic"})}
    >>> [(name, len(runs)) for name, runs, _ in plan_units(specs, 50, 1)]
    [('glm', 50), ('lin', 50)]
    >>> [(name, len(runs)) for name, runs, _ in plan_units(specs, 50, 4)][::2]
    [('glm', 9), ('glm', 8), ('glm', 8), ('lin', 25)]
    """
    weight = {name: float(getattr(f, "relative_cost", lambda: 5.0)()) for name, f in
              factories.items()}
    grouped = [name for name, f in factories.items() if vectorize and hasattr(f, "batch")]
    total = sum(weight.values()) * n_runs
    target = total / (2 * n_workers)
    units = []
    for name in factories:
        if name not in grouped:
            units += [(name, [r], weight[name]) for r in range(n_runs)]
            continue
        groups = -(-n_runs // MAX_RUNS_PER_TASK)
        if n_workers > 1:
            wanted = int(np.ceil(weight[name] * n_runs / target))
            groups = max(groups, min(wanted, max(1, n_runs // MIN_RUNS_PER_TASK)))
        units += [(name, runs.tolist(), weight[name] * len(runs))
                  for runs in np.array_split(np.arange(n_runs), groups)]
    return sorted(units, key=lambda u: -u[2])  # stable: ties keep the policies' order


def _execute_dask(args: list[tuple], scheduler):
    try:
        from dask.distributed import Client, as_completed
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise ImportError("scheduler= needs: pip install 'mixedts[dask]'") from exc
    own = not isinstance(scheduler, Client)
    client = Client(scheduler) if own else scheduler
    try:
        env = client.scatter(args[0][0], broadcast=True) if args else None
        futures = {}
        for i, (_, factory, seeds, horizon, resample, vectorize) in enumerate(args):
            fut = client.submit(run_unit, env, factory, seeds, horizon, resample, vectorize,
                                pure=False)
            futures[fut] = i
        for fut in as_completed(futures):
            yield futures[fut], fut.result()
    finally:
        if own:
            client.close()

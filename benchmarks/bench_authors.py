"""The online round against the meTS authors' code: their ``meTS.get_arm`` + ``update``
(``algorithms/linear.py``) against ``mixedts.MeTS.select`` + ``update``, in one process.

Their code is loaded by path from ``--authors`` (default ``../shared/anchors/mets-authors``,
MIT licence); the benchmark is skipped when the folder is absent. Both sides get the same
problem: K actions, L effects of prior N(0, 3 I), Σ0 = I, σ = 1, dense mixing weights
U[-1, 1], and every action observed before timing (``update_batch`` for mixedts, the same
observations for theirs). Each round draws contexts (K, d) (theirs read ``env.X``, one context
per action; mixedts gets the same array, or its first row with ``shared``). The two are timed in
interleaved blocks (so that they share the machine's conditions) and the median round is
reported, with the ratio.

    .venv/bin/python benchmarks/bench_authors.py [--authors PATH] [--out FILE] [--quick]
        [--profile]   # also a cProfile table of mixedts's rounds at each size
"""

from __future__ import annotations

import os

# one BLAS thread for both sides (as bench_rounds.py): set before numpy is imported
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import cProfile  # noqa: E402
import datetime as _dt  # noqa: E402
import importlib.util  # noqa: E402
import io  # noqa: E402
import platform  # noqa: E402
import pstats  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_AUTHORS = HERE.parent.parent / "shared" / "anchors" / "mets-authors"
#: the acceptance sizes of issue #15: (K, L, d, target ratio, rounds of theirs timed)
SIZES = [(1000, 10, 10, 1000.0, 40), (100, 3, 2, 300.0, 200)]


def load_authors(path: Path):
    """Their ``algorithms/linear.py`` as a module (by path: never on the import path)."""
    spec = importlib.util.spec_from_file_location("mets_authors_linear",
                                                  path / "algorithms" / "linear.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class AuthorsEnv:
    """The fields their meTS reads (README there): K, d, A, mu_psi, Sigma_psi, Sigma0, sigma,
    and the contexts X of the round."""

    def __init__(self, K, L, d, mixing):
        self.K, self.d, self.A = K, d, mixing
        self.mu_psi = np.zeros(L * d)
        self.Sigma_psi = 3.0 * np.eye(L * d)
        self.Sigma0 = np.broadcast_to(np.eye(d), (K, d, d)).copy()
        self.sigma = 1.0
        self.X = np.zeros((K, d))


def setup(K, L, d, seed=0):
    from mixedts import MeTS, MixedEffectPrior

    rng = np.random.default_rng(seed)
    mixing = rng.uniform(-1, 1, (K, L))
    prior = MixedEffectPrior(np.zeros((L, d)), 3.0 * np.stack([np.eye(d)] * L), mixing,
                             np.eye(d))
    ours = MeTS(prior, noise_std=1.0, seed=seed)
    warm_X = rng.uniform(-1, 1, (2 * K, d))
    warm_A = np.r_[rng.permutation(K), rng.integers(K, size=K)]
    warm_Y = rng.normal(size=2 * K)
    ours.update_batch(warm_X, warm_A, warm_Y)
    return ours, mixing, (warm_X, warm_A, warm_Y), rng


def time_rounds(K, L, d, authors, rounds, block, shared, theirs_rounds):
    ours, mixing, (wX, wA, wY), rng = setup(K, L, d)
    env = AuthorsEnv(K, L, d, mixing)
    theirs = authors.meTS(env, 10**6, {})
    for x, a, y in zip(wX, wA, wY):  # the same observations
        env.X[a] = x
        theirs.update(0, int(a), float(y))
    np.random.seed(0)  # noqa: NPY002 - their draws use numpy's global generator
    contexts = rng.uniform(-1, 1, (rounds, K, d))
    rewards = rng.normal(size=rounds)
    t_ours, t_theirs = [], []

    def one_ours(t):
        x = contexts[t][0] if shared else contexts[t]
        t0 = time.perf_counter()
        a = ours.select(x)
        t1 = time.perf_counter()
        y = float(rewards[t])
        t2 = time.perf_counter()
        ours.update(x, a, y)
        t_ours.append(time.perf_counter() - t2 + t1 - t0)

    def one_theirs(t):
        env.X[:] = contexts[t][0] if shared else contexts[t]
        t0 = time.perf_counter()
        a = theirs.get_arm(t)
        t1 = time.perf_counter()
        y = float(rewards[t])
        t2 = time.perf_counter()
        theirs.update(t, int(a), y)
        t_theirs.append(time.perf_counter() - t2 + t1 - t0)

    # interleaved blocks; theirs is ~1000× slower: fewer of its rounds in each block
    blocks = range(0, rounds, block)
    per_block = max(1, theirs_rounds // len(blocks))
    for start in blocks:
        for t in range(start, min(start + block, rounds)):
            one_ours(t)
        for t in range(start, start + per_block):
            one_theirs(t)
    return float(np.median(t_ours)), float(np.median(t_theirs)), len(t_ours), len(t_theirs)


def floor_multiples(rounds: int, block: int = 20) -> list[tuple[int, float, float, float]]:
    """MeTS at K = 10⁴, d = 10 (L = 20 and 100) and the floor, one
    ``mixedts.linalg.batched_quadratic`` over K stacked (d, d) matrices, timed in interleaved
    blocks: the problem of benchmarks/bench_rounds.py (2 non-zeros per mixing row, shared
    contexts, every action observed). Rows (L, floor, MeTS, FactoredMeTS) in seconds."""
    sys.path.insert(0, str(HERE))
    from bench_rounds import make_prior
    from mixedts import FactoredMeTS, MeTS
    from mixedts.linalg import batched_quadratic

    K, d = 10_000, 10
    rng = np.random.default_rng(0)
    S = rng.normal(size=(K, d, d))
    out = []
    for L in (20, 100):
        prior = make_prior(K, L, d, 0)[0]
        subjects = {"MeTS": MeTS(prior, seed=0), "Fa": FactoredMeTS(prior, seed=0)}
        warm_A = np.r_[rng.permutation(K), rng.integers(K, size=K)]
        for p in subjects.values():
            p.update_batch(rng.uniform(-1, 1, (2 * K, d)), warm_A, rng.normal(size=2 * K))
        times = {"floor": [], "MeTS": [], "Fa": []}
        X = rng.uniform(-1, 1, (rounds, d))
        for start in range(0, rounds, block):
            for t in range(start, min(start + block, rounds)):
                t0 = time.perf_counter()
                batched_quadratic(S, X[t])
                times["floor"].append(time.perf_counter() - t0)
            for name, p in subjects.items():
                for t in range(start, min(start + block, rounds)):
                    t0 = time.perf_counter()
                    a = p.select(X[t])
                    t1 = time.perf_counter()
                    y = float(rng.normal())
                    t2 = time.perf_counter()
                    p.update(X[t], a, y)
                    times[name].append(time.perf_counter() - t2 + t1 - t0)
        med = {k: float(np.median(v)) for k, v in times.items()}
        out.append((L, med["floor"], med["MeTS"], med["Fa"]))
    return out


def profile(K, L, d, shared, rounds=300) -> str:
    ours, _, _, rng = setup(K, L, d)
    X = rng.uniform(-1, 1, (rounds, K, d))
    pr = cProfile.Profile()
    pr.enable()
    for t in range(rounds):
        x = X[t][0] if shared else X[t]
        ours.update(x, ours.select(x), 0.5)
    pr.disable()
    out = io.StringIO()
    pstats.Stats(pr, stream=out).sort_stats("tottime").print_stats(12)
    return out.getvalue()


def fmt(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.0f} µs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--authors", type=Path, default=DEFAULT_AUTHORS)
    parser.add_argument("--out", type=Path, default=HERE / "results_authors.md")
    parser.add_argument("--quick", action="store_true", help="fewer rounds, printed only")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    if not (args.authors / "algorithms" / "linear.py").is_file():
        print(f"skipped: the authors' code is not at {args.authors}")
        return
    authors = load_authors(args.authors)
    rounds, block = (200, 20) if args.quick else (2000, 100)
    lines = [
        "# The online round against the meTS authors' code", "",
        f"- date: {_dt.datetime.now().isoformat(timespec='seconds')}",
        f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical "
        f"CPUs, {platform.system()} {platform.release()}",
        f"- python {platform.python_version()}, numpy {np.__version__}, BLAS threads 1; "
        f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())} at the start",
        f"- their code: {args.authors} (algorithms/linear.py, meTS)", "",
        f"Command: `python benchmarks/bench_authors.py {' '.join(sys.argv[1:])}`", "",
        "One round: `select` + `update` (mixedts) against `get_arm` + `update` (theirs), every "
        "action observed; median over interleaved blocks.", "",
        "| K | L | d | contexts | mixedts | theirs | ratio | target | rounds (ours / theirs) |",
        "|---:|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    profiles = []
    for K, L, d, target, theirs_rounds in SIZES:
        for shared in (True, False):
            ours, theirs, n_o, n_t = time_rounds(K, L, d, authors, rounds, block, shared,
                                                 theirs_rounds // (5 if args.quick else 1))
            ratio = theirs / ours
            row = (f"| {K} | {L} | {d} | {'shared (d,)' if shared else 'per action (K, d)'} | "
                   f"{fmt(ours)} | {fmt(theirs)} | {ratio:.0f}× | ≥ {target:.0f}× | "
                   f"{n_o} / {n_t} |")
            print(row, flush=True)
            lines.append(row)
            if args.profile:
                profiles.append((K, L, d, shared, profile(K, L, d, shared)))
    lines += ["", "## MeTS at K = 10⁴, d = 10 against the floor", "",
              "The problem of benchmarks/bench_rounds.py (2 non-zeros per mixing row, shared "
              "contexts, every action observed); the floor is one `batched_quadratic` over the "
              "K stacked (d, d) matrices; interleaved blocks of 20 rounds, medians.", "",
              "| L | floor | MeTS | × floor | FactoredMeTS | × floor |",
              "|---:|---:|---:|---:|---:|---:|"]
    for L, floor, mets, fa in floor_multiples(100 if args.quick else 400):
        lines.append(f"| {L} | {fmt(floor)} | {fmt(mets)} | {mets / floor:.2f}× | {fmt(fa)} | "
                     f"{fa / floor:.2f}× |")
        print(lines[-1], flush=True)
    lines.append(f"\nLoad average at the end: {' '.join(f'{v:.1f}' for v in os.getloadavg())}.")
    for K, L, d, shared, text in profiles:
        lines += ["", f"### mixedts profile, K={K}, L={L}, d={d}, "
                  f"{'shared' if shared else 'per-action'} contexts", "", "```", text.strip(),
                  "```"]
    if not args.quick:
        args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-3:]))


if __name__ == "__main__":
    main()

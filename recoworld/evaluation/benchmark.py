"""The task-suite benchmark: ``run_benchmark`` trains each task's algorithms on its frozen
world with a budget in env steps, evaluates every learner and the task's reference policies
with common random numbers, and writes the comparison (``recoworld benchmark``); and
``run_checks``, the phenomenon check of several tasks (``recoworld tasks check``).

This module owns the protocol (``BenchmarkConfig``, the budget -> iterations mapping, the
resumable run layout under ``out_dir``) and the statistics (``aggregate_task``). Rendering
the results as Markdown and HTML lives beside it, in ``benchmark_report``.

Protocol, per task (``recoworld.tasks.TaskSpec``):

1. The references — random, popular, the blind oracle and the exploiting oracle — and the
   task's baselines run once on the task's evaluation seeds (``check_seeds``; ``eval_seeds``
   overrides them) with ``eval_episodes`` user lives over ``eval_users`` parallel users
   (``recoworld.tasks.check.evaluate_on_task``). Cached as ``references/<task>.json``.
2. For each algorithm and training seed: ``recoworld.rl.trainer.train`` for
   ``ceil(budget / steps_per_iteration(algo))`` iterations (``iterations_for``), then the
   greedy policy of its final checkpoint runs on the same evaluation seeds, lives and users:
   common random numbers, so each of its user lives pairs with the same life under every
   reference. Written as ``runs/<task>/<algo>/seed_<n>.json``; training outputs in
   ``runs/<task>/<algo>/seed_<n>/``.
3. ``aggregate_task``: raw metrics with 95% bootstrap CIs, normalized scores (0 = random,
   100 = the exploiting oracle), each learner's paired mean-return difference vs
   most-popular and vs the best baseline, and the fraction of the oracle gap closed.

Resumable: a reference file or run file that exists is reused, so an interrupted benchmark
run again with the same ``out_dir`` continues where it stopped; a run interrupted mid-way
(no result file) is trained again from scratch (its partial training directory is
removed). Every file records its protocol (``fingerprint``); a cached file of another
protocol (other seeds, lives, budget or training settings) is an error, never silently
mixed in.

Budgets are env steps, never wall time: a PPO iteration (``ppo``, ``hrl``, ``rliv_ua``, and
any algorithm registered without a known mapping) consumes ``ppo.train_batch_size`` env
steps, a slate TS iteration ``slate_ts.steps_per_iteration``. RLlib may sample a few more
steps than asked (whole rollout fragments); each run records the steps it actually
sampled. For ``hrl`` (a turn-based two-agent env), an env step is one agent's turn, so the
high level's goal picks (one per session start) count against the budget too.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from recoworld.core.atomic import atomic_write_json
from recoworld.core.config import StrictModel, deep_merge
from recoworld.core.errors import ConfigError
from recoworld.core.manifest import git_state, write_manifest
from recoworld.core.stats import bootstrap_ci
from recoworld.tasks.check import (
    METRICS,
    REFERENCES,
    check_phenomenon,
    evaluate_on_task,
    normalized_score,
    reference_policy,
)
from recoworld.tasks.spec import TaskSpec, all_tasks, load_task, task_files

BENCH_METRICS = tuple(dict.fromkeys((*METRICS, "follows_per_1k_steps", "gifts_per_1k_steps")))
"""The metrics the benchmark reports (``recoworld.policies.rollout.summarize`` names)."""
ORACLES = ("blind", "exploit")
DEFAULT_STEPS_PER_ITERATION = "ppo.train_batch_size"
STEPS_PER_ITERATION = {
    "ppo": "ppo.train_batch_size",
    "hrl": "ppo.train_batch_size",
    "rliv_ua": "ppo.train_batch_size",
    "slate_ts": "slate_ts.steps_per_iteration",
}
"""Algorithm -> the ``TrainConfig`` field (dotted) holding its env steps per iteration."""

BENCH_TRAIN = {"eval_every": 0, "eval_episodes": 16, "eval_users": 16, "checkpoint_every": 0}
"""``TrainConfig`` fields every benchmark run sets: the trainer's own evaluation curve is
off (it evaluates its final policy once, on 16 lives); the benchmark evaluates instead."""

QUICK_TRAIN = {
    "num_envs": 8,
    "ppo": {"train_batch_size": 128, "minibatch_size": 64, "num_epochs": 1},
    "slate_ts": {"steps_per_iteration": 128, "updates_per_iteration": 5, "minibatch_size": 64},
    "eval_episodes": 4,
    "eval_users": 4,
}
QUICK = {"seeds": [0], "budget": 256, "episodes": 16, "users": 16}
"""The quick (CI) profile: 1 training seed, 256 env steps (2 iterations of 128 steps, 8
users per batch), the task's first evaluation seed only, 16 user lives over 16 users; every
task and every algorithm the task lists (each run trains for about a second)."""


def task_keys() -> list[str]:
    """The keys of every task shipped with the package, the population included (the
    benchmark's default)."""
    return [t.key for t in all_tasks()]


POPULATION_ALGOS = ("ppo",)
"""What a population (PettingZoo) task trains: multi-agent PPO with one policy shared by
every user (``recoworld.rl.population``)."""


def check_task_algos(task: TaskSpec, algos: list[str]) -> None:
    """``ConfigError`` when ``task`` cannot train one of ``algos`` (a population task trains
    ``POPULATION_ALGOS`` only)."""
    if task.kind != "pettingzoo":
        return
    bad = [a for a in algos if a not in POPULATION_ALGOS]
    if bad:
        raise ConfigError(
            f"task {task.key} is a population (PettingZoo) task: it trains "
            f"{', '.join(POPULATION_ALGOS)} (one policy shared by every user), not {bad[0]!r}",
            hint="pass --tasks without it, or --algos ppo",
        )


def resolve_task(name: str) -> TaskSpec:
    """A task by key (``MovieLens-v0``), Gymnasium id (``recoworld/MovieLens-v0``) or bare
    name (``MovieLens``: its latest version); ``ConfigError`` naming the valid ones."""
    key = name.strip().removeprefix("recoworld/")
    files = task_files()
    if key not in files:
        versions = sorted(
            (k for k in files if k.rsplit("-v", 1)[0] == key),
            key=lambda k: int(k.rsplit("-v", 1)[1]),
        )
        if not versions:
            raise ConfigError(
                f"unknown task {name!r}; valid tasks: {', '.join(files)}",
                hint="`recoworld tasks` lists them",
            )
        key = versions[-1]
    return load_task(key)


VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "hrl_flat": ("hrl", {"hrl": {"mode": "flat"}}),
    "slate_ts_plain": ("slate_ts", {"slate_ts": {"exploration": "plain"}}),
    "slate_ts_greedy": ("slate_ts", {"slate_ts": {"exploration": "greedy"}}),
}
"""Named variants of registered algorithms the tasks compare: name -> (algorithm, training
settings it fixes). ``hrl_flat``: the HRL paper's flat baseline (the slate module with the
same novelty features and extrinsic reward, no goal); ``slate_ts_plain`` / ``_greedy``: one
posterior draw per slate / the posterior mean while collecting data."""


def base_algo(name: str) -> tuple[str, dict[str, Any]]:
    """(registered algorithm, fixed settings) of an algorithm or variant name."""
    return VARIANTS.get(name, (name, {}))


def check_algos(algos: list[str]) -> list[str]:
    """``algos`` when every name is a registered algorithm or a ``VARIANTS`` name, else
    ``ConfigError`` naming it."""
    from recoworld.rl.registry import ALGORITHMS

    valid = sorted({*ALGORITHMS, *VARIANTS})
    unknown = [a for a in algos if a not in valid]
    if unknown:
        raise ConfigError(f"unknown algorithm {unknown[0]!r}; valid algorithms: {', '.join(valid)}")
    return algos


class BenchmarkConfig(StrictModel):
    """What ``recoworld benchmark`` runs (see the module docstring). Fields left as None take
    the task's own values (or, with ``quick``, the quick profile's: ``QUICK``)."""

    tasks: list[str] = Field(
        default_factory=task_keys,
        min_length=1,
        description="Task keys (MovieLens-v0), ids or bare names; default: every task.",
    )
    algos: list[str] | None = Field(
        None,
        description="Algorithms to train on every task; None: each task's own `algorithms`; "
        "[]: evaluate the references only.",
    )
    seeds: list[int] = Field(
        default_factory=lambda: [0, 1, 2, 3, 4],
        min_length=1,
        description="Training seeds (one run per task, algorithm and seed).",
    )
    budget: int | None = Field(
        None, ge=1, description="Training budget per run in env steps; None: the task's."
    )
    episodes: int | None = Field(
        None, ge=1, description="User lives per evaluation seed; None: the task's."
    )
    users: int | None = Field(None, ge=1, description="Parallel users; None: the task's.")
    eval_seeds: list[int] | None = Field(
        None, min_length=1, description="Evaluation seeds; None: the task's check_seeds."
    )
    train: dict[str, Any] = Field(
        default_factory=dict,
        description="TrainConfig fields for every run (e.g. num_envs, ppo: {lr: ...}); the "
        "budget sets `iterations` and `seed` is the training seed.",
    )
    quick: bool = Field(False, description="The CI profile (QUICK, QUICK_TRAIN).")

    @field_validator("tasks")
    @classmethod
    def _known_tasks(cls, tasks: list[str]) -> list[str]:
        return list(dict.fromkeys(resolve_task(name).key for name in tasks))

    @field_validator("algos")
    @classmethod
    def _known_algos(cls, algos: list[str] | None) -> list[str] | None:
        return None if algos is None else list(dict.fromkeys(check_algos(algos)))

    @field_validator("train")
    @classmethod
    def _no_protocol_fields(cls, train: dict[str, Any]) -> dict[str, Any]:
        fixed = sorted({"algo", "iterations", "seed"} & set(train))
        if fixed:
            raise ValueError(f"{fixed} are set by the benchmark (algos, budget, seeds)")
        return train

    # ------------------------------------------------------------------ effective values
    def _default(self, field: str, value: Any) -> Any:
        """``value`` unless the field was left unset and ``quick`` gives one."""
        if self.quick and field not in self.model_fields_set and field in QUICK:
            return QUICK[field]
        return value

    def training_seeds(self) -> list[int]:
        return list(self._default("seeds", self.seeds))

    def task_algos(self, task: TaskSpec) -> list[str]:
        return list(task.algorithms if self.algos is None else self.algos)

    def budget_for(self, task: TaskSpec) -> int:
        return int(self._default("budget", self.budget) or task.budget_steps)

    def eval_seeds_for(self, task: TaskSpec) -> list[int]:
        if self.eval_seeds is not None:
            return list(self.eval_seeds)
        return list(task.check_seeds[:1] if self.quick else task.check_seeds)

    def episodes_for(self, task: TaskSpec) -> int:
        return int(self._default("episodes", self.episodes) or task.eval_episodes)

    def users_for(self, task: TaskSpec) -> int:
        return int(self._default("users", self.users) or task.eval_users)

    def train_config(self, algo: str, seed: int, budget: int) -> Any:
        """The ``TrainConfig`` of one run: ``BENCH_TRAIN``, the quick profile's settings
        when ``quick``, ``train``, then the algorithm, the seed and the iterations."""
        from recoworld.rl.config import TrainConfig

        base, fixed = base_algo(algo)
        raw: dict[str, Any] = json.loads(json.dumps(BENCH_TRAIN))
        if self.quick:
            quick = json.loads(json.dumps(QUICK_TRAIN))
            if base != "slate_ts":
                quick.pop("slate_ts")
            deep_merge(raw, quick)
        deep_merge(raw, json.loads(json.dumps(self.train)))
        deep_merge(raw, json.loads(json.dumps(fixed)))
        cfg = TrainConfig.model_validate({**raw, "algo": base, "seed": seed})
        return cfg.model_copy(update={"iterations": iterations_for(cfg, budget)})


def steps_per_iteration(cfg: Any) -> int:
    """Env steps one training iteration of ``cfg.algo`` consumes (``STEPS_PER_ITERATION``)."""
    value: Any = cfg
    for part in STEPS_PER_ITERATION.get(cfg.algo, DEFAULT_STEPS_PER_ITERATION).split("."):
        value = getattr(value, part)
    return int(value)


def iterations_for(cfg: Any, budget: int) -> int:
    """Training iterations that spend ``budget`` env steps: ``ceil(budget / steps per
    iteration)`` (at least 1)."""
    return max(1, math.ceil(budget / steps_per_iteration(cfg)))


# ---------------------------------------------------------------------- statistics
def _ci(values: Any) -> dict[str, Any]:
    """Mean with a 95% bootstrap CI (NaN bounds for a single value)."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) > 1:
        return bootstrap_ci(v)
    return {"mean": float(v.mean()), "lo": float("nan"), "hi": float("nan"), "n": len(v)}


def _lives(runs: list[dict[str, Any]]) -> np.ndarray:
    return np.concatenate([np.asarray(r["episode_returns"], np.float64) for r in runs])


def _seed_mean(runs: list[dict[str, Any]], metric: str) -> float:
    """A metric of one policy over the runs of its evaluation seeds (mean return: over the
    pooled lives; else the mean over seeds)."""
    if metric == "mean_return":
        return float(_lives(runs).mean())
    return float(np.mean([r[metric] for r in runs]))


def policy_stats(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """metric -> {mean, lo, hi, n} of a policy evaluated once per evaluation seed (CI: over
    user lives for the return, over evaluation seeds for the other metrics)."""
    out = {}
    for metric in BENCH_METRICS:
        if metric == "mean_return":
            out[metric] = _ci(_lives(runs))
        else:
            out[metric] = _ci([r[metric] for r in runs])
    return out


def learner_stats(by_seed: dict[int, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """metric -> {mean, lo, hi, n, per_seed, pooled} of a learner: the CI is across training
    seeds (each seed's value over its evaluation runs); ``pooled`` pools every training
    seed's lives (return) or runs (other metrics) into one bootstrap."""
    seeds = sorted(by_seed)
    out = {}
    for metric in BENCH_METRICS:
        per_seed = [_seed_mean(by_seed[s], metric) for s in seeds]
        all_runs = [r for s in seeds for r in by_seed[s]]
        pooled = _ci(_lives(all_runs) if metric == "mean_return" else
                     [r[metric] for r in all_runs])  # fmt: skip
        out[metric] = {**_ci(per_seed), "per_seed": per_seed, "seeds": seeds, "pooled": pooled}
    return out


def _normalize(stats: dict[str, Any], random: float, exploit: float) -> dict[str, Any]:
    """The normalized score of a statistic's mean, its CI bounds and its per-seed values."""
    lo, hi = (normalized_score(stats[k], random, exploit) for k in ("lo", "hi"))
    if not (math.isnan(lo) or math.isnan(hi)) and lo > hi:  # exploit below random
        lo, hi = hi, lo
    out = {"mean": normalized_score(stats["mean"], random, exploit), "lo": lo, "hi": hi}
    if "per_seed" in stats:
        out["per_seed"] = [normalized_score(v, random, exploit) for v in stats["per_seed"]]
    return out


def _units(runs: list[dict[str, Any]], metric: str) -> np.ndarray:
    """The paired units of a metric: user lives for the return, evaluation seeds otherwise
    (the summaries hold the other metrics per seed, not per life)."""
    if metric == "mean_return":
        return _lives(runs)
    return np.array([r[metric] for r in runs], dtype=np.float64)


def _paired(
    learner: dict[int, list[dict[str, Any]]],
    baseline: list[dict[str, Any]],
    metric: str = "mean_return",
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Learner - baseline ``metric``, paired unit by unit (every training seed's policy met
    the same evaluation lives as the baseline; units: ``_units``), with a 95% CI from a
    two-level bootstrap that resamples training seeds and units jointly, so the interval
    carries both the spread between training runs and between users. ``n``: the units."""
    seeds = sorted(learner)
    runs = np.stack([_units(learner[s], metric) for s in seeds])  # [training seeds, units]
    base = _units(baseline, metric)
    if runs.shape[1] != len(base):
        raise ValueError("learner and baseline were evaluated on different lives")
    return _two_level(runs - base[None, :], n_boot, seed)


def _paired_learners(
    a: dict[int, list[dict[str, Any]]], b: dict[int, list[dict[str, Any]]]
) -> dict[str, Any] | None:
    """Learner a - learner b mean return, paired by training seed and life (the two-level
    bootstrap of ``_paired``); None when they were trained on different seeds."""
    if sorted(a) != sorted(b):
        return None
    diff = np.stack([_lives(a[s]) - _lives(b[s]) for s in sorted(a)])
    return _two_level(diff, 2000, 0)


def _two_level(diff: np.ndarray, n_boot: int, seed: int) -> dict[str, Any]:
    """Mean of ``diff`` [training seeds, units] with a 95% CI from resampling training
    seeds and units jointly."""
    rng = np.random.default_rng(seed)
    n_seeds, n_lives = diff.shape
    draws = np.empty(n_boot)
    for i in range(n_boot):
        rows = rng.integers(0, n_seeds, n_seeds)
        cols = rng.integers(0, n_lives, n_lives)
        draws[i] = diff[rows][:, cols].mean()
    lo, hi = np.quantile(draws, [0.025, 0.975])
    return {"mean": float(diff.mean()), "lo": float(lo), "hi": float(hi), "n": int(n_lives)}


def aggregate_task(
    task: TaskSpec,
    refs: dict[str, list[dict[str, Any]]],
    learners: dict[str, dict[int, list[dict[str, Any]]]],
) -> dict[str, Any]:
    """One task's results: per policy its kind, raw metrics with CIs, normalized scores per
    metric, the fraction of the oracle gap closed (normalized mean return / 100) and, for
    learners, the paired mean-return difference vs ``popular`` and vs the best baseline, and
    vs ``popular`` the paired return-rate and session-depth differences (units: evaluation
    seeds)."""
    policies: dict[str, dict[str, Any]] = {}
    for name, runs in refs.items():
        kind = "oracle" if name in ORACLES else "baseline"
        policies[name] = {"kind": kind, "metrics": policy_stats(runs)}
    for name, by_seed in learners.items():
        policies[name] = {"kind": "learner", "metrics": learner_stats(by_seed)}
    for entry in policies.values():
        entry["normalized"] = {
            metric: _normalize(
                entry["metrics"][metric],
                policies["random"]["metrics"][metric]["mean"],
                policies["exploit"]["metrics"][metric]["mean"],
            )
            for metric in BENCH_METRICS
        }
        entry["gap_closed"] = entry["normalized"]["mean_return"]["mean"] / 100.0
    baselines = [b for b in task.baselines if b in refs]
    best = max(baselines, key=lambda b: policies[b]["metrics"]["mean_return"]["mean"])
    for name, by_seed in learners.items():
        entry = policies[name]
        if "popular" in refs:
            entry["vs_popular"] = _paired(by_seed, refs["popular"])
            entry["vs_popular_metrics"] = {
                m: _paired(by_seed, refs["popular"], m) for m in ("return_rate", "session_depth")
            }
        entry["vs_best_baseline"] = {"baseline": best, **_paired(by_seed, refs[best])}
        entry["vs_learners"] = {
            other: diff
            for other, other_runs in learners.items()
            if other != name and (diff := _paired_learners(by_seed, other_runs)) is not None
        }
    return {"best_baseline": best, "policies": policies}


# ---------------------------------------------------------------------- running
def reference_names(task: TaskSpec) -> list[str]:
    """The references, then the task's other baselines."""
    return list(dict.fromkeys([*REFERENCES, *task.baselines]))


def _protocol(config: BenchmarkConfig, task: TaskSpec) -> dict[str, Any]:
    return {
        "task": task.key,
        "eval_seeds": config.eval_seeds_for(task),
        "episodes": config.episodes_for(task),
        "users": config.users_for(task),
    }


UNREAD_SECTIONS = {"slate_ts": ("ppo", "model")}
"""TrainConfig sections an algorithm never reads (slate TS has its own model and optimiser):
left out when comparing a cached run's protocol, so changing PPO's defaults does not
invalidate slate TS runs."""


def _relevant(fingerprint: dict[str, Any]) -> dict[str, Any]:
    """``fingerprint`` without the training sections its algorithm does not read."""
    train = fingerprint.get("train")
    if not isinstance(train, dict):
        return fingerprint
    unread = UNREAD_SECTIONS.get(str(train.get("algo")), ())
    return {**fingerprint, "train": {k: v for k, v in train.items() if k not in unread}}


def _read_cached(path: Path, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
    """The cached result at ``path`` (None when absent); ``ConfigError`` when it was made
    under another protocol."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None  # unreadable (atomic writes make this unlikely): redo it
    old, new = _relevant(data.get("fingerprint") or {}), _relevant(fingerprint)
    if old != new:
        diff = sorted(k for k in {*old, *new} if old.get(k) != new.get(k))
        raise ConfigError(
            f"{path} was made under another protocol (differs in: {', '.join(diff)})",
            hint="pass another --out directory, or delete that file to redo it",
        )
    return data


def evaluate_references(
    config: BenchmarkConfig, task: TaskSpec, out_dir: Path, progress: Any = None
) -> dict[str, list[dict[str, Any]]]:
    """The references' and baselines' runs on the task's evaluation protocol, cached as
    ``references/<task>.json``."""
    names = reference_names(task)
    fingerprint = {**_protocol(config, task), "policies": names}
    path = out_dir / "references" / f"{task.key}.json"
    cached = _read_cached(path, fingerprint)
    if cached is not None:
        return cached["runs"]
    start = time.time()
    policies = {name: reference_policy(task, name) for name in names}
    runs = evaluate_on_task(task, policies, config.eval_seeds_for(task), config.episodes_for(task),
                            config.users_for(task), progress)  # fmt: skip
    atomic_write_json(
        {"fingerprint": fingerprint, "seconds": time.time() - start, "runs": runs}, path
    )
    return runs


def train_run(task: TaskSpec, cfg: Any, train_dir: Path) -> dict[str, Any]:
    """Train one run into ``train_dir`` (no progress bar of its own): a gym task through
    ``recoworld.rl.trainer.train``, a population task through
    ``recoworld.rl.population.algorithm.train_population`` (multi-agent PPO, one shared
    module, ``cfg``'s PPO and model settings); returns what the benchmark records of the
    training (``env_steps``: user steps sampled, the budget's unit)."""
    start = time.time()
    if task.kind == "pettingzoo":
        from recoworld.core.manifest import write_manifest
        from recoworld.rl.population.algorithm import train_population
        from recoworld.tasks.population import population_config

        pop = population_config(task)
        train_dir.mkdir(parents=True, exist_ok=True)
        write_manifest(train_dir, {"population": pop.model_dump(mode="json"),
                                   "train": cfg.model_dump(mode="json")}, cfg.seed)  # fmt: skip
        train_population(pop, cfg.iterations, train_dir, seed=cfg.seed, ppo=cfg.ppo,
                         model=cfg.model, show_progress=False)  # fmt: skip
        steps = sampled_env_steps(train_dir, "num_agent_steps_sampled_lifetime")
    else:
        from recoworld.rl.trainer import train

        train(task.world_config(), cfg, train_dir, show_progress=False)
        steps = sampled_env_steps(train_dir)
    return {"seconds": time.time() - start, "env_steps": steps}


def sampled_env_steps(
    train_dir: Path, counter: str = "num_env_steps_sampled_lifetime"
) -> int | None:
    """The steps a finished training run sampled (``counter`` of its last ``result.json``
    line; a per-agent counter, as a population run's ``num_agent_steps_sampled_lifetime``,
    is summed: user steps)."""
    try:
        lines = (train_dir / "result.json").read_text().splitlines()
        runners = json.loads(lines[-1]).get("env_runners") or {}
        steps = runners.get(counter)
    except (OSError, IndexError, json.JSONDecodeError):
        return None
    if isinstance(steps, dict):
        steps = sum(v for v in steps.values() if isinstance(v, int | float) and math.isfinite(v))
    return None if steps is None else int(steps)


def evaluate_learner(
    config: BenchmarkConfig, task: TaskSpec, algo: str, checkpoint: Path, progress: Any = None
) -> list[dict[str, Any]]:
    """The trained greedy policy on the task's evaluation protocol (a fresh recommender per
    evaluation seed, as every reference gets)."""
    from recoworld.rl.registry import load_recommender

    def factory(world: Any) -> Any:
        return load_recommender(checkpoint, algo, base_algo(algo)[0])

    seeds, episodes, users = (config.eval_seeds_for(task), config.episodes_for(task),
                              config.users_for(task))  # fmt: skip
    runs = evaluate_on_task(task, {algo: factory}, seeds, episodes, users, progress)
    return runs[algo]


def run_learner(
    config: BenchmarkConfig,
    task: TaskSpec,
    algo: str,
    seed: int,
    out_dir: Path,
    progress: Any = None,
) -> dict[str, Any]:
    """One (task, algorithm, training seed) run: cached result, or train + evaluate and
    write ``runs/<task>/<algo>/seed_<seed>.json`` atomically."""
    budget = config.budget_for(task)
    cfg = config.train_config(algo, seed, budget)
    fingerprint = {**_protocol(config, task), "algo": algo, "seed": seed, "budget": budget,
                   "train": cfg.model_dump(mode="json")}  # fmt: skip
    base = out_dir / "runs" / task.key / algo
    path = base / f"seed_{seed}.json"
    cached = _read_cached(path, fingerprint)
    if cached is not None:
        return cached
    train_dir = base / f"seed_{seed}"
    shutil.rmtree(train_dir, ignore_errors=True)  # an interrupted run restarts cleanly
    training = train_run(task, cfg, train_dir)
    start = time.time()
    runs = evaluate_learner(config, task, algo, train_dir / "checkpoint", progress)
    result = {
        "fingerprint": fingerprint,
        "training": {
            **training,
            "budget": budget,
            "iterations": cfg.iterations,
            "steps_per_iteration": steps_per_iteration(cfg),
            "checkpoint": str(train_dir / "checkpoint"),
        },
        "eval_seconds": time.time() - start,
        "runs": runs,
    }
    atomic_write_json(result, path)
    return result


def _finite(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by None (valid JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    if isinstance(obj, np.floating | np.integer):
        return _finite(obj.item())
    return obj


def task_meta(task: TaskSpec) -> dict[str, Any]:
    return {
        "id": task.id,
        "summary": task.summary,
        "phenomenon": task.phenomenon,
        "exploit": task.exploit,
        "blind": task.blind,
        "margin": task.margin,
        "budget_steps": task.budget_steps,
        "budget_unit": "user steps" if task.kind == "pettingzoo" else "env steps",
        "algorithms": task.algorithms,
        "baselines": task.baselines,
        "expected": task.expected,
    }


def run_benchmark(
    config: BenchmarkConfig, out_dir: str | Path, show_progress: bool = True
) -> dict[str, Any]:
    """Run the benchmark (module docstring) into ``out_dir``; writes ``benchmark.json``,
    ``benchmark.md``, ``benchmark.html`` and ``manifest.json`` and returns the results."""
    from recoworld.core.progress import progress_bar
    from recoworld.evaluation.benchmark_report import (
        write_html,
        write_markdown,
        write_summary_png,
    )

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tasks = [load_task(key) for key in config.tasks]
    seeds = config.training_seeds()
    plan = [(t, a, s) for t in tasks for a in config.task_algos(t) for s in seeds]
    for task in tasks:  # fail on an algorithm a task cannot train ...
        check_task_algos(task, config.task_algos(task))
    for task, algo, seed in plan:  # ... or a bad `train` section, before any run
        config.train_config(algo, seed, config.budget_for(task))
    results: dict[str, Any] = {"tasks": {}}
    with progress_bar(show_progress) as progress:
        overall = progress.add_task("benchmark", total=len(tasks) + len(plan))
        refs = {}
        for task in tasks:
            progress.update(overall, description=f"{task.key}: references")
            refs[task.key] = evaluate_references(config, task, out, progress)
            progress.advance(overall)
        learners: dict[str, dict[str, dict[int, Any]]] = {t.key: {} for t in tasks}
        training: dict[str, dict[str, dict[int, Any]]] = {t.key: {} for t in tasks}
        for task, algo, seed in plan:
            progress.update(overall, description=f"{task.key}: {algo} seed {seed}")
            run = run_learner(config, task, algo, seed, out, progress)
            learners[task.key].setdefault(algo, {})[seed] = run["runs"]
            training[task.key].setdefault(algo, {})[seed] = run["training"]
            progress.advance(overall)
    for task in tasks:
        agg = aggregate_task(task, refs[task.key], learners[task.key])
        for algo, by_seed in training[task.key].items():
            agg["policies"][algo]["training"] = {str(s): v for s, v in by_seed.items()}
        results["tasks"][task.key] = {
            "task": task_meta(task),
            "protocol": {**_protocol(config, task), "budget": config.budget_for(task),
                         "training_seeds": seeds, "algorithms": config.task_algos(task)},
            **agg,
        }  # fmt: skip
    results = _finite(
        {
            "title": "RecoWorld task-suite benchmark"
            + (" (quick profile)" if config.quick else ""),
            "created": time.strftime("%Y-%m-%d %H:%M:%S"),
            "git": git_state(),
            "config": config.model_dump(mode="json"),
            "metrics": list(BENCH_METRICS),
            **results,
        }
    )
    atomic_write_json(results, out / "benchmark.json")
    write_markdown(results, out / "benchmark.md")
    write_html(results, out / "benchmark.html")
    write_summary_png(results, out / "benchmark.png")
    protocols = {key: task["protocol"] for key, task in results["tasks"].items()}
    write_manifest(out, config.model_dump(mode="json"), None, training_seeds=seeds,
                   protocol=protocols)  # fmt: skip
    return results


# ---------------------------------------------------------------------- phenomenon checks
def run_checks(
    tasks: list[str] | None,
    out_dir: str | Path | None = None,
    seeds: list[int] | None = None,
    episodes: int | None = None,
    users: int | None = None,
    show_progress: bool = True,
    write_reference: bool = False,
) -> dict[str, dict[str, Any]]:
    """``check_phenomenon`` of each task (default: every task, the population included);
    with ``out_dir``, writes ``check.json``, ``check.md`` and ``manifest.json``. With
    ``write_reference`` (only on the task's own protocol: no ``seeds``/``episodes``/``users``
    override), each task file's ``reference:`` section is rewritten from its check
    (``recoworld.tasks.spec.write_reference``; the ``task:`` and ``world:`` sections are
    kept byte for byte)."""
    from recoworld.core.progress import progress_bar
    from recoworld.evaluation.benchmark_report import check_markdown

    if write_reference and (seeds is not None or episodes is not None or users is not None):
        raise ConfigError(
            "--write-reference records a check on the task's own protocol",
            hint="drop --seeds, --episodes and --users (the reference anchors normalized "
            "scores, so it must use the task's evaluation seeds, lives and users)",
        )
    specs = [resolve_task(t) for t in (tasks or list(task_files()))]
    out: dict[str, dict[str, Any]] = {}
    with progress_bar(show_progress) as progress:
        for task in specs:
            out[task.key] = check_phenomenon(task, seeds, episodes, users, progress)
    if write_reference:
        from recoworld.tasks.check import reference_scores
        from recoworld.tasks.spec import write_reference as write_task_reference

        commit = git_state().get("commit") or ""
        for task in specs:
            write_task_reference(task, reference_scores(out[task.key], commit))
    out = _finite(out)
    if out_dir is not None:
        from recoworld.core.atomic import atomic_write_text

        path = Path(out_dir)
        atomic_write_json(out, path / "check.json")
        atomic_write_text(check_markdown(out), path / "check.md")
        write_manifest(path, {"tasks": list(out), "seeds": seeds, "episodes": episodes,
                              "users": users}, None, write_reference=write_reference)  # fmt: skip
    return out

"""Evaluating policies on a task with common random numbers, the phenomenon check, and
normalized scores.

``evaluate_on_task`` runs each policy once per evaluation seed of the task (the same seed
gives every policy the same users and candidate stream until their slates differ) and keeps
one summary per seed. ``check_phenomenon`` runs the four reference policies — random,
popular, the blind oracle and the exploiting oracle — and declares the task valid when the
lower end of the paired 95% bootstrap CI of (exploit - blind) mean return, pooled over the
seeds' user lives paired by episode id, exceeds ``margin`` x (exploit - random).
``normalized_score`` maps a raw value to 0 = random, 100 = the exploiting oracle.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recoworld.core.stats import bootstrap_ci, paired_bootstrap_ci
from recoworld.policies.base import Recommender
from recoworld.policies.rollout import PolicyFactory, SimulateConfig, run_policy
from recoworld.tasks.oracles import make_oracle
from recoworld.tasks.spec import ReferenceScores, TaskSpec

METRICS = (
    "mean_return", "return_rate", "session_depth", "click_rate", "follows_per_1k_steps",
    "gifts_per_1k_steps",
)  # fmt: skip
"""The metrics every task reports (``recoworld.policies.rollout.summarize`` names)."""
REFERENCES = ("random", "popular", "blind", "exploit")
Policy = str | Recommender | PolicyFactory


def reference_policy(task: TaskSpec, name: str) -> Policy:
    """``exploit`` / ``blind``: the task's oracles; anything else: a baseline's name."""
    if name not in ("exploit", "blind"):
        return name
    coupled = 0
    if task.kind == "pettingzoo":
        from recoworld.tasks.population import coupled_slots, population_config

        coupled = coupled_slots(population_config(task))
    return make_oracle(task.exploit if name == "exploit" else task.blind, name, coupled)


def evaluate_on_task(
    task: TaskSpec,
    policies: dict[str, Policy],
    seeds: list[int] | None = None,
    episodes: int | None = None,
    users: int | None = None,
    progress: Any = None,
) -> dict[str, list[dict[str, Any]]]:
    """policy name -> one ``summarize`` dict per seed (the task's evaluation seeds unless
    given), every policy on the same seeds. A population task runs all its users together
    (``recoworld.tasks.population``; ``users`` overrides its size, ``episodes`` is unused)."""
    world = task.world_config()
    seeds = list(task.check_seeds if seeds is None else seeds)
    sim = SimulateConfig(
        policies=["random"], users=users or task.eval_users,
        episodes=episodes or task.eval_episodes, log=False,
    )  # fmt: skip
    bar = None
    if progress is not None:
        bar = progress.add_task(f"{task.key}: evaluate", total=len(policies) * len(seeds))
    out: dict[str, list[dict[str, Any]]] = {}
    for name, policy in policies.items():
        out[name] = []
        for seed in seeds:
            if task.kind == "pettingzoo":
                from recoworld.tasks.population import run_population_policy

                out[name].append(run_population_policy(task, policy, seed, users))
            else:
                run = sim.model_copy(update={"seed": seed})
                out[name].append(run_policy(world, policy, run, None))
            if bar is not None:
                progress.advance(bar)
    return out


def seed_means(runs: list[dict[str, Any]], metric: str) -> np.ndarray:
    """[n_seeds] the metric of each seed's run."""
    return np.array([run[metric] for run in runs], dtype=np.float64)


def paired_returns(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> dict[str, float]:
    """Mean of (a - b) episode return over the user lives of every seed, paired by episode
    id, with its 95% bootstrap CI."""
    if len(a) != len(b):
        raise ValueError("paired_returns: the two policies ran on different seed lists")
    x = np.concatenate([run["episode_returns"] for run in a])
    y = np.concatenate([run["episode_returns"] for run in b])
    return paired_bootstrap_ci(x, y)


def normalized_score(value: float, random: float, exploit: float) -> float:
    """100 x (value - random) / (exploit - random): 0 = random, 100 = the exploiting
    oracle (NaN when the two anchors coincide)."""
    span = exploit - random
    return float("nan") if abs(span) < 1e-12 else 100.0 * (value - random) / span


def summarize_runs(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """metric -> policy -> {mean, lo, hi} over seeds (CI: bootstrap over user lives for
    the return, over seeds for the other metrics)."""
    out: dict[str, dict[str, Any]] = {}
    for metric in METRICS:
        out[metric] = {}
        for name, per_seed in runs.items():
            if metric == "mean_return":
                lives = np.concatenate([run["episode_returns"] for run in per_seed])
                out[metric][name] = bootstrap_ci(lives)
            else:
                values = seed_means(per_seed, metric)
                ci = bootstrap_ci(values) if len(values) > 1 else None
                out[metric][name] = ci or {"mean": float(values.mean()), "lo": float("nan"),
                                           "hi": float("nan"), "n": 1}  # fmt: skip
    return out


def normalized_table(
    stats: dict[str, dict[str, Any]], random: str = "random", exploit: str = "exploit"
) -> dict[str, dict[str, float]]:
    """metric -> policy -> normalized score of the policy's mean."""
    return {
        metric: {
            name: normalized_score(v["mean"], row[random]["mean"], row[exploit]["mean"])
            for name, v in row.items()
        }
        for metric, row in stats.items()
    }


def reference_scores(check: dict[str, Any], commit: str = "") -> ReferenceScores:
    """The reference section of a task file from a ``check_phenomenon`` result."""
    return ReferenceScores(
        metrics={
            m: {p: round(v["mean"], 4) for p, v in row.items()}
            for m, row in check["metrics"].items()
        },
        difference={k: round(check["difference"][k], 4) for k in ("mean", "lo", "hi")},
        required=round(check["required"], 4), valid=check["valid"], seeds=check["seeds"],
        episodes=check["episodes"], users=check["users"], commit=commit,
    )  # fmt: skip


def check_phenomenon(
    task: TaskSpec,
    seeds: list[int] | None = None,
    episodes: int | None = None,
    users: int | None = None,
    progress: Any = None,
) -> dict[str, Any]:
    """Run the task's reference policies and test its phenomenon (module docstring)."""
    policies = {name: reference_policy(task, name) for name in REFERENCES}
    runs = evaluate_on_task(task, policies, seeds, episodes, users, progress)
    stats = summarize_runs(runs)
    diff = paired_returns(runs["exploit"], runs["blind"])
    ret = stats["mean_return"]
    required = task.margin * (ret["exploit"]["mean"] - ret["random"]["mean"])
    return {
        "task": task.key,
        "exploit": task.exploit,
        "blind": task.blind,
        "seeds": list(task.check_seeds if seeds is None else seeds),
        "episodes": episodes or task.eval_episodes,
        "users": users or task.eval_users,
        "metrics": stats,
        "normalized": normalized_table(stats),
        "difference": diff,
        "margin": task.margin,
        "required": required,
        "valid": bool(diff["lo"] > required),
        "per_seed": {name: [run["mean_return"] for run in per] for name, per in runs.items()},
    }

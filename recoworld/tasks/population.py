"""The population task's runner: a policy serving every user of a coupled ``Population``
(the batched core of the PettingZoo env) for the task's horizon, summarised per user life
like the single-user tasks (``recoworld.policies.rollout.summarize``), and ``parallel_env``,
the task as a PettingZoo ``ParallelEnv``.

The task has no arrivals: its ``n_users`` users start together, each in its own slot, and a
slot holds one user for the whole run, so with one seed every policy meets the same users
(their lives pair up by slot: common random numbers until the policies' slates differ).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recoworld.envs.population.config import PopulationConfig
from recoworld.envs.population.population import Population, PopulationEnv
from recoworld.policies.base import OnlineRecommender, Recommender
from recoworld.policies.rollout import (
    PolicyFactory,
    add_step,
    new_totals,
    resolve_policy,
    summarize,
)
from recoworld.tasks.spec import TaskSpec, load_task


def population_config(task: TaskSpec, overrides: dict[str, Any] | None = None) -> PopulationConfig:
    """The task's ``PopulationConfig`` (top-level ``overrides`` merged in)."""
    if task.population is None:
        raise ValueError(f"{task.key} is not a population task")
    return PopulationConfig.model_validate({**task.population, **(overrides or {})})


def coupled_slots(config: PopulationConfig) -> int:
    """Candidate slots the coupling fills (the last ones): shared, followed uploads,
    trending."""
    return config.social.slots + config.publishing.follower_slots + config.trending.slots


def parallel_env(key: str = "Population-v0", **kwargs: Any) -> PopulationEnv:
    """The population task as a PettingZoo ``ParallelEnv`` (``kwargs``: ``PopulationEnv``'s
    keyword arguments and top-level config overrides)."""
    task = load_task(key)
    return PopulationEnv(population_config(task), **kwargs)


def run_population_policy(
    task: TaskSpec,
    policy: str | Recommender | PolicyFactory,
    seed: int,
    n_users: int | None = None,
) -> dict[str, Any]:
    """Run ``policy`` on every user of the task's population until every life has ended
    (or ``max_cycles``); the ``summarize`` dict of those lives (``episode_returns`` by
    slot)."""
    overrides = {"n_users": n_users, "capacity": n_users} if n_users else None
    pop = Population(population_config(task, overrides))
    try:
        rec = resolve_policy(policy, pop.world, seed)
        obs = pop.reset(seed)
        b = pop.capacity
        ret = np.zeros(b)
        length = np.zeros(b, dtype=np.int64)
        sessions = np.ones(b, dtype=np.int64)
        totals = new_totals()
        for _ in range(pop.config.max_cycles):
            live = pop.alive.copy()
            if not live.any():
                break
            slate = rec.act(obs)
            nxt, reward, terminated, truncated, info = pop.step(slate)
            if isinstance(rec, OnlineRecommender):
                rec.update(
                    obs, slate, reward, nxt, terminated | truncated, {**info, "_click": live}
                )
            obs = nxt
            add_step(totals, info, live)
            ret += np.where(live, reward, 0.0)
            length += live
            sessions = np.where(live, np.asarray(info["session"]) + 1, sessions)
        return summarize(list(ret), list(length), list(sessions), totals)
    finally:
        pop.close()

"""Running a recommender in the vector env: ``run_policy`` steps a policy until a fixed
set of user lives has ended and ``summarize`` turns them into engagement and retention
statistics. Used by ``recoworld simulate``, training evaluation curves and the evaluation
runner.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from recoworld.core.config import StrictModel
from recoworld.envs.config import WorldConfig
from recoworld.envs.observation import IDS_VIEW
from recoworld.envs.trajectory import TrajectoryLog
from recoworld.envs.vector_env import RecoWorldVectorEnv
from recoworld.envs.world import World
from recoworld.llm import LLMBackend
from recoworld.policies.base import OnlineRecommender, Recommender
from recoworld.policies.baselines import POLICIES, make_baseline

PolicyFactory = Callable[[World], Recommender]
"""Builds a policy for the world it will act in (called once per run)."""


class SimulateConfig(StrictModel):
    """What ``recoworld simulate`` runs (the ``simulate:`` section of a run YAML)."""

    policies: list[str] = Field(default_factory=lambda: ["random", "popular"], min_length=1)
    users: int = Field(64, ge=1, le=1_000_000, description="Parallel user slots.")
    episodes: int = Field(200, ge=1, description="User lives to complete per policy.")
    seed: int = Field(0, description="Seed shared by every policy (common random numbers).")
    max_steps: int = Field(1_000_000, ge=1, description="Safety cap on batched steps per policy.")
    log: bool = Field(True, description="Write the Parquet trajectory log.")

    @field_validator("policies")
    @classmethod
    def _known(cls, policies: list[str]) -> list[str]:
        unknown = [p for p in policies if p not in POLICIES]
        if unknown:
            raise ValueError(f"unknown policies {unknown}; available {list(POLICIES)}")
        return policies


def summarize(
    returns: list[float],
    lengths: list[int],
    sessions: list[int],
    totals: dict,
    episode_ids: list[int] | None = None,
    life_counts: dict[str, list[int]] | None = None,
) -> dict:
    """Per-policy summary statistics of completed episodes and all logged steps.
    ``episode_returns`` lists the lives' returns in episode-id order (with ``episode_ids``;
    else in the order given), so two policies run with the same seed pair up life by life
    (common random numbers). ``life_counts`` (name -> one count per life, e.g. the session
    ends and the returns to a next session of ``run_policy``) are listed the same way, as
    ``episode_<name>``, so ratios such as the return rate can be bootstrapped over paired
    lives."""
    steps = max(totals["steps"], 1)
    sess = np.asarray(sessions)
    order = np.argsort(episode_ids, kind="stable") if episode_ids is not None else None

    def by_id(values: list) -> list:
        return [values[i] for i in order] if order is not None else list(values)

    per_life = {f"episode_{name}": [int(v) for v in by_id(values)]
                for name, values in (life_counts or {}).items()}  # fmt: skip
    return {
        "episodes": len(returns),
        "mean_return": float(np.mean(returns)) if returns else 0.0,
        "mean_steps_per_episode": float(np.mean(lengths)) if lengths else 0.0,
        "mean_sessions_per_episode": float(sess.mean()) if len(sess) else 0.0,
        "click_rate": totals["clicks"] / steps,
        "mean_watch_per_click": totals["watch"] / max(totals["clicks"], 1),
        "likes_per_1k_steps": 1000.0 * totals["likes"] / steps,
        "follows_per_1k_steps": 1000.0 * totals["follows"] / steps,
        "gifts_per_1k_steps": 1000.0 * totals["gifts"] / steps,
        "instructions_per_1k_steps": 1000.0 * totals["instructions"] / steps,
        "return_rate": totals["returns"] / max(totals["session_ends"], 1),
        "session_depth": totals["steps"] / max(totals["session_ends"], 1),
        "survival_by_session": [float((sess > s).mean()) for s in range(int(sess.max(initial=0)))],
        "user_steps": totals["steps"],
        "episode_returns": [float(r) for r in by_id(returns)],
        **per_life,
    }


TOTALS = {
    "clicks": "click", "watch": "watch", "likes": "like", "follows": "follow", "gifts": "gift",
    "instructions": "instructed", "returns": "returned", "session_ends": "session_end",
}  # fmt: skip
"""Running totals of ``summarize`` -> the step-info key they sum."""
LIFE_COUNTS = {"session_ends": "session_end", "returned": "returned"}
"""Per-life counts ``run_policy`` reports (``episode_<name>``, beside ``episode_steps``) ->
the step-info flag they count: the session ends and the returns to a next session."""


def resolve_policy(
    policy: str | Recommender | PolicyFactory, world: World, seed: int | None
) -> Recommender:
    """The ``Recommender`` for ``world``: a baseline built by name (``make_baseline``), a
    recommender as is, or a factory called with the world (e.g. a hidden-state oracle)."""
    if isinstance(policy, str):
        return make_baseline(policy, world, seed=seed)
    if isinstance(policy, Recommender):
        return policy
    if callable(policy):
        return policy(world)
    raise TypeError(f"policy: expected a name, a Recommender or a factory, got {policy!r}")


def new_totals() -> dict[str, float]:
    """Zeroed running totals for ``add_step`` / ``summarize``."""
    return dict.fromkeys(("steps", *TOTALS), 0.0)


def add_step(totals: dict[str, float], info: dict[str, Any], live: np.ndarray) -> None:
    """Add one batched step's responses of the ``live`` rows to ``totals``."""
    totals["steps"] += int(live.sum())
    for name, key in TOTALS.items():
        totals[name] += float(np.asarray(info[key])[live].sum())


def step_policy(
    env: RecoWorldVectorEnv, rec: Recommender, obs: dict[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """One env step with ``rec``'s slate; an ``OnlineRecommender`` then gets its ``update``
    (the step's info included: per-slot clicks, instruction text)."""
    slate = rec.act(obs)
    next_obs, reward, terminated, truncated, info = env.step(slate)
    if isinstance(rec, OnlineRecommender):
        rec.update(obs, slate, reward, next_obs, terminated | truncated, info)
    return next_obs, reward, terminated, truncated, info


def run_policy(
    world_config: WorldConfig,
    policy: str | Recommender | PolicyFactory,
    sim: SimulateConfig,
    log: TrajectoryLog | None,
    progress: Any = None,
    task: Any = None,
    llm_backend: LLMBackend | None = None,
) -> dict[str, Any]:
    """Run ``policy`` until the first ``sim.episodes`` user lives (by episode id, i.e. in the
    order they started) have all ended, and summarise exactly those lives. (Summarising the
    first lives to *end* would over-represent short lives.) ``policy`` is a baseline's name
    or any ``Recommender`` (e.g. a trained RLlib module), or a factory ``world ->
    Recommender`` called with the env's world (for policies that read it, e.g. the tasks'
    hidden-state oracles)."""
    env = RecoWorldVectorEnv(
        num_envs=sim.users, config=world_config, llm_backend=llm_backend, observation=IDS_VIEW
    )
    try:
        return _run_policy(env, policy, sim, log, progress, task)
    finally:
        env.close()


def _run_policy(
    env: RecoWorldVectorEnv,
    policy: str | Recommender | PolicyFactory,
    sim: SimulateConfig,
    log: TrajectoryLog | None,
    progress: Any,
    task: Any,
) -> dict[str, Any]:
    rec = resolve_policy(policy, env.world, sim.seed)
    name = getattr(rec, "name", type(rec).__name__)
    obs, _ = env.reset(seed=sim.seed)
    b, wanted = sim.users, sim.episodes
    ep_return = np.zeros(b)
    ep_len = np.zeros(b, dtype=np.int64)
    ep_counts = np.zeros((b, len(LIFE_COUNTS)), dtype=np.int64)
    returns: list[float] = []
    lengths: list[int] = []
    sessions: list[int] = []
    episode_ids: list[int] = []
    counts: dict[str, list[int]] = {name: [] for name in ("steps", *LIFE_COUNTS)}
    totals = new_totals()
    for t in range(sim.max_steps):
        obs, reward, terminated, truncated, info = step_policy(env, rec, obs)
        # slots that stepped (not autoreset) and belong to the lives being summarised
        live = info["_click"] & (info["episode_id"] < wanted)
        if log is not None:
            log.record(t, info, reward, terminated, truncated)
        add_step(totals, info, live)
        ep_return += np.where(live, reward, 0.0)
        ep_len += live
        for j, key in enumerate(LIFE_COUNTS.values()):
            ep_counts[:, j] += np.asarray(info[key]) & live
        done = (terminated | truncated) & live
        for i in np.flatnonzero(done):
            returns.append(float(ep_return[i]))
            lengths.append(int(ep_len[i]))
            sessions.append(int(info["session"][i]) + 1)
            episode_ids.append(int(info["episode_id"][i]))
            counts["steps"].append(int(ep_len[i]))
            for j, name in enumerate(LIFE_COUNTS):
                counts[name].append(int(ep_counts[i, j]))
        ep_return[terminated | truncated] = 0.0
        ep_len[terminated | truncated] = 0
        ep_counts[terminated | truncated] = 0
        if progress is not None:
            progress.update(task, completed=len(returns))
        if len(returns) >= wanted:
            break
    else:
        raise RuntimeError(
            f"{name}: only {len(returns)} of {wanted} user lives ended within "
            f"simulate.max_steps={sim.max_steps} steps"
        )
    if isinstance(policy, str) and hasattr(rec, "close"):
        rec.close()  # e.g. an LLM re-ranker's own backend
    return summarize(returns, lengths, sessions, totals, episode_ids, counts)

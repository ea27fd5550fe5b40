"""Simulation runs: policies x one world, with logs, a summary, a plot and a manifest.

``run_simulation`` steps each policy in a ``RecoWorldVectorEnv`` of ``users`` parallel slots
until ``episodes`` user lives have ended, with the same seed for every policy (so all
policies meet the same first users and the same candidate stream until their behaviour
diverges). Per policy it writes ``trajectories_<policy>.parquet``; for the run it writes
``summary.json``, ``retention.png`` (share of users still active after each session) and
``manifest.json`` (config, seed, package versions, git commit). Every file is written
atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from recoworld.atomic import atomic_write, atomic_write_json
from recoworld.config import StrictModel, WorldConfig
from recoworld.envs.vector_env import RecoWorldVectorEnv
from recoworld.llm import LLMBackend, make_backend
from recoworld.policies.base import OnlineRecommender, Recommender
from recoworld.policies.baselines import POLICIES, make_baseline
from recoworld.reproducibility import write_manifest
from recoworld.trajectory import TrajectoryLog


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


def summarize(returns: list[float], lengths: list[int], sessions: list[int], totals: dict) -> dict:
    """Per-policy summary statistics of completed episodes and all logged steps."""
    steps = max(totals["steps"], 1)
    sess = np.asarray(sessions)
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
    }


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
    policy: str | Recommender,
    sim: SimulateConfig,
    log: TrajectoryLog | None,
    progress: Any = None,
    task: Any = None,
    llm_backend: LLMBackend | None = None,
) -> dict[str, Any]:
    """Run ``policy`` until the first ``sim.episodes`` user lives (by episode id, i.e. in the
    order they started) have all ended, and summarise exactly those lives. (Summarising the
    first lives to *end* would over-represent short lives.) ``policy`` is a baseline's name
    or any ``Recommender`` (e.g. a trained RLlib module)."""
    env = RecoWorldVectorEnv(num_envs=sim.users, config=world_config, llm_backend=llm_backend)
    try:
        return _run_policy(env, policy, sim, log, progress, task)
    finally:
        env.close()


def _run_policy(
    env: RecoWorldVectorEnv,
    policy: str | Recommender,
    sim: SimulateConfig,
    log: TrajectoryLog | None,
    progress: Any,
    task: Any,
) -> dict[str, Any]:
    rec = make_baseline(policy, env.world, seed=sim.seed) if isinstance(policy, str) else policy
    name = policy if isinstance(policy, str) else getattr(policy, "name", type(policy).__name__)
    obs, _ = env.reset(seed=sim.seed)
    b, wanted = sim.users, sim.episodes
    ep_return = np.zeros(b)
    ep_len = np.zeros(b, dtype=np.int64)
    returns: list[float] = []
    lengths: list[int] = []
    sessions: list[int] = []
    keys = ("steps", "clicks", "watch", "likes", "follows", "gifts", "instructions", "returns")
    totals = dict.fromkeys((*keys, "session_ends"), 0.0)
    for t in range(sim.max_steps):
        obs, reward, terminated, truncated, info = step_policy(env, rec, obs)
        # slots that stepped (not autoreset) and belong to the lives being summarised
        live = info["_click"] & (info["episode_id"] < wanted)
        if log is not None:
            log.record(t, info, reward, terminated, truncated)
        totals["steps"] += int(live.sum())
        totals["clicks"] += int(info["click"][live].sum())
        totals["watch"] += float(info["watch"][live].sum())
        totals["likes"] += int(info["like"][live].sum())
        totals["follows"] += int(info["follow"][live].sum())
        totals["gifts"] += int(info["gift"][live].sum())
        totals["instructions"] += int(info["instructed"][live].sum())
        totals["returns"] += int(info["returned"][live].sum())
        totals["session_ends"] += int(info["session_end"][live].sum())
        ep_return += np.where(live, reward, 0.0)
        ep_len += live
        done = (terminated | truncated) & live
        for i in np.flatnonzero(done):
            returns.append(float(ep_return[i]))
            lengths.append(int(ep_len[i]))
            sessions.append(int(info["session"][i]) + 1)
        ep_return[terminated | truncated] = 0.0
        ep_len[terminated | truncated] = 0
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
    return summarize(returns, lengths, sessions, totals)


def plot_retention(summary: dict[str, dict[str, Any]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for policy, s in summary.items():
        surv = s["survival_by_session"]
        ax.plot(range(1, len(surv) + 1), surv, marker="o", label=policy)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("session")
    ax.set_ylabel("share of users reaching it")
    ax.set_ylim(0, 1.02)
    ax.set_title("Retention by session")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return path


def write_transcript(
    world_config: WorldConfig,
    out_path: str | Path,
    users: int = 3,
    steps: int = 15,
    policy: str = "popular",
    seed: int = 0,
    llm_backend: LLMBackend | None = None,
) -> str:
    """Readable transcripts of ``users`` simulated users for ``steps`` steps (slates, what
    each user did and why, mindsets, instructions and where their sentence came from);
    written atomically to ``out_path`` and returned."""
    from recoworld.envs.recoworld_env import format_step

    cfg = world_config.model_copy(deep=True)
    cfg.episode.text_info = "all"
    env = RecoWorldVectorEnv(num_envs=users, config=cfg, llm_backend=llm_backend)
    try:
        rec = make_baseline(policy, env.world, seed=seed)
        obs, _ = env.reset(seed=seed)
        lines: dict[int, list[str]] = {b: [] for b in range(users)}
        for _ in range(steps):
            obs, reward, terminated, truncated, info = step_policy(env, rec, obs)
            for b in np.flatnonzero(info["_click"]):
                text = format_step(env.world.catalog, info, float(reward[b]), row=int(b))
                source = info.get("instruction_source")
                if source is not None and source[b]:
                    text += f"\n  (instruction sentence: {source[b]})"
                decided = info.get("decision_source")
                if decided is not None and decided[b]:
                    text += f"\n  (decided by: {decided[b]})"
                lines[int(b)].append(text)
                if terminated[b] or truncated[b]:
                    lines[int(b)].append("  == episode over ==")
    finally:
        env.close()
    doc = [f"# Transcripts: {users} users, {steps} steps, policy {policy}, "
           f"simulator {cfg.simulator}, seed {seed}\n"]  # fmt: skip
    for b, entries in lines.items():
        doc.append(f"## user slot {b}\n\n```\n" + "\n".join(entries) + "\n```\n")
    text = "\n".join(doc)
    atomic_write(Path(out_path), lambda tmp: Path(tmp).write_text(text))
    return text


def run_simulation(
    world_config: WorldConfig, sim: SimulateConfig, out_dir: str | Path, show_progress: bool = True
) -> dict[str, dict[str, Any]]:
    """Run every policy of ``sim`` in ``world_config``; write outputs under ``out_dir``."""
    from recoworld.progress import progress_bar

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_manifest(out, {"world": world_config.model_dump(mode="json"),
                         "simulate": sim.model_dump(mode="json")}, sim.seed)  # fmt: skip
    summary: dict[str, dict[str, Any]] = {}
    # one LLM backend (engine) for every policy of an LLM world
    backend = make_backend(world_config.llm) if world_config.simulator != "parametric" else None
    try:
        with progress_bar(show_progress) as progress:
            for policy in sim.policies:
                task = progress.add_task(f"{policy}: episodes", total=sim.episodes)
                log = TrajectoryLog({"policy": policy, "seed": str(sim.seed)}) if sim.log else None
                try:
                    summary[policy] = run_policy(
                        world_config, policy, sim, log, progress, task, backend
                    )
                except BaseException as err:
                    # keep what was produced: the steps logged so far (marked interrupted)
                    # and the summaries of the policies that finished
                    if log is not None and log.n_rows:
                        log.metadata["status"] = f"interrupted: {type(err).__name__}: {err}"[:500]
                        log.write(out / f"trajectories_{policy}.parquet")
                    if summary:
                        atomic_write_json(summary, out / "summary.json")
                    raise
                if log is not None and log.n_rows:
                    log.metadata["status"] = "complete"
                    log.write(out / f"trajectories_{policy}.parquet")
    finally:
        if backend is not None:
            backend.close()
    atomic_write_json(summary, out / "summary.json")
    plot_retention(summary, out / "retention.png")
    return summary

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

import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np

from recoworld.core.atomic import atomic_write, atomic_write_json
from recoworld.core.manifest import write_manifest
from recoworld.envs.config import WorldConfig
from recoworld.envs.observation import IDS_VIEW
from recoworld.envs.trajectory import TrajectoryLog
from recoworld.envs.vector_env import RecoWorldVectorEnv
from recoworld.llm import LLMBackend, make_backend
from recoworld.policies.baselines import make_baseline
from recoworld.policies.rollout import SimulateConfig, run_policy, step_policy


def plot_retention(summary: dict[str, dict[str, Any]], path: Path) -> Path | None:
    """Write the retention plot; without matplotlib (the ``report`` extra) skip it with a
    one-line note on stderr and return None (summary.json holds the same numbers)."""
    if importlib.util.find_spec("matplotlib") is None:
        print("note: retention.png skipped: matplotlib is not installed "
              "(pip install 'recoworld[report]')", file=sys.stderr)  # fmt: skip
        return None
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
    env = RecoWorldVectorEnv(
        num_envs=users, config=cfg, llm_backend=llm_backend, observation=IDS_VIEW
    )
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
    from recoworld.core.progress import progress_bar

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

"""Throughput of the world against Google RecSim and against its own slower modes, in one
run (``recoworld bench``; the scripts under ``benchmarks/`` print more detail).

Every setting is stepped by uniformly random slates of 2 from 10 candidates (RecSim's
``interest_evolution`` setting), text off, on one core; throughput is user-steps per second
of wall clock. RecSim runs in its own virtualenv (``.bench-venv/recsim`` at the repository
root, built by ``benchmarks/recsim_baseline.py`` on first use); where it is not available
only the world's own ratios are printed. Each row is compared with RecSim and with the
world's own baseline for it: the compiled batched step against the numpy reference path
(``World.set_compiled(False)``), the ``gym.make`` single env's fast path against
``World.step`` with B = 1, and B users batched against one user stepped B times.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

WORLD: dict[str, Any] = {
    "catalog": {"synthetic": {"n_items": 5000, "n_topics": 20, "n_creators": 300}},
    "candidates": {"n_candidates": 10},
    "episode": {"slate_size": 2, "text_info": "none"},
}
"""The benchmark world: synthetic catalog, M = 10 candidates, slates of k = 2, text off."""

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Row:
    """One measured setting: user-steps/s, and the label of its own baseline row."""

    setting: str
    rate: float
    baseline: str | None = None


def measure_vector(batch: int, seconds: float, compiled: bool = True, seed: int = 0) -> float:
    """User-steps/s of ``RecoWorldVectorEnv`` with ``batch`` users (autoreset included)."""
    from recoworld.envs.vector_env import RecoWorldVectorEnv

    env = RecoWorldVectorEnv(num_envs=batch, config=WORLD)
    env.world.set_compiled(compiled)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    slates = [np.argsort(rng.random((batch, 10)), axis=1)[:, :2] for _ in range(16)]
    for i in range(3):  # warm-up (and numba compilation)
        env.step(slates[i])
    steps = 0
    start = time.perf_counter()
    while True:
        env.step(slates[steps % len(slates)])
        steps += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and steps >= 3:
            break
    env.close()
    return steps * batch / elapsed


def measure_single(
    seconds: float,
    fast: bool = True,
    seed: int = 0,
    text: str = "none",
    compiled: bool | None = None,
) -> float:
    """Steps/s of one user through ``gym.make`` (its wrappers; ``reset()`` at each end), with
    ``text`` in ``info``; ``fast=False``: ``World.step`` with B = 1 (on the numpy path unless
    ``compiled``; default: the numpy path when not ``fast``)."""
    import gymnasium as gym

    cfg = {**WORLD, "episode": {**WORLD["episode"], "text_info": text}}
    env = gym.make("recoworld/RecoWorld-v0", config=cfg)
    if not fast:
        env.unwrapped._fast = None
        env.unwrapped.world.set_compiled(bool(compiled))
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    slates = [np.argsort(rng.random(10))[:2] for _ in range(256)]
    for i in range(20):  # warm-up (and numba compilation)
        _, _, term, trunc, _ = env.step(slates[i])
        if term or trunc:
            env.reset()
    steps = 0
    start = time.perf_counter()
    while True:
        for _ in range(50):
            _, _, term, trunc, _ = env.step(slates[steps % len(slates)])
            steps += 1
            if term or trunc:
                env.reset()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            break
    env.close()
    return steps / elapsed


LONG_LIVED = {
    "users": {"patience_mean": 20.0},
    "episode": {"max_session_steps": 1000, "max_sessions": 1000},
}
"""Patient users in long sessions: a population's N users all stay present while timed."""


def population_config(users: int, steps: int, long_lived: bool = True) -> Any:
    """The throughput benchmarks' population: every coupling on, no arrivals, users
    ``LONG_LIVED`` (or the world's defaults, most of whom leave within 40 steps)."""
    from recoworld.envs.population.config import PopulationConfig

    world = {
        **WORLD,
        "users": LONG_LIVED["users"] if long_lived else {},
        "episode": {**WORLD["episode"], **(LONG_LIVED["episode"] if long_lived else {})},
    }
    return PopulationConfig.model_validate(
        {
            "world": world,
            "n_users": users,
            "arrival_rate": 0.0,
            "max_cycles": max(10 * steps, 1000),
            "social": {"degree": 6, "rewire": 0.1, "share_probability": 0.25, "slots": 1},
            "trending": {"slots": 2},
            "publishing": {"reserve": 1000, "rate": 2.0, "follower_slots": 1},
        }
    )


def measure_population(
    users: int, steps: int, compiled: bool = True, pettingzoo: bool = False, seed: int = 0
) -> float:
    """User-steps/s (users alive at each step) of ``Population.step`` or, ``pettingzoo``,
    ``PopulationEnv.step`` (the action dicts are built untimed)."""
    from recoworld.envs.population.population import Population, PopulationEnv

    cfg = population_config(users, steps)
    env = PopulationEnv(cfg) if pettingzoo else None
    pop = env.population if env is not None else Population(cfg)
    pop.world.set_compiled(compiled)
    if env is not None:
        env.reset(seed=seed)
    else:
        pop.reset(seed)
    rng = np.random.default_rng(seed)
    acts = [np.argsort(rng.random((pop.capacity, 10)), axis=1)[:, :2] for _ in range(4)]
    index = {a: i for i, a in enumerate(env.possible_agents)} if env is not None else {}
    user_steps = 0
    elapsed = 0.0
    for i in range(steps + 2):  # two warm-up steps
        a = acts[i % len(acts)]
        if env is not None:
            actions = {agent: a[index[agent]] for agent in env.agents}
            n = len(actions)
            t0 = time.perf_counter()
            env.step(actions)
        else:
            n = int(pop.alive.sum())
            t0 = time.perf_counter()
            pop.step(a)
        if i >= 2:
            elapsed += time.perf_counter() - t0
            user_steps += n
    pop.close()
    return user_steps / elapsed


def recsim_module() -> ModuleType | None:
    """``benchmarks/recsim_baseline.py`` of this checkout, or None (an installed package)."""
    path = REPO_ROOT / "benchmarks" / "recsim_baseline.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("recsim_baseline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure_recsim(steps: int, build: bool) -> tuple[float | None, str]:
    """RecSim's steps/s and a note; ``build``: create its venv if missing (network), else
    use it only where it exists."""
    module = recsim_module()
    if module is None:
        return None, "RecSim baseline not available: benchmarks/recsim_baseline.py not found"
    venv = Path(module.DEFAULT_VENV)
    python = venv / "bin" / "python"
    if not build and not python.exists():
        return None, f"RecSim not measured: its venv {venv} does not exist (run without --quick)"
    try:
        if build:
            python = module.ensure_recsim_venv()
        result = module.run_recsim(python, steps=steps, seed=0)
    except (OSError, RuntimeError, SystemExit) as err:  # no network, a broken venv
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return None, f"RecSim not measured: {first}"
    return float(result["steps_per_s"]), f"RecSim {result['steps']} steps in its own venv"


def run(
    quick: bool = False, batches: tuple[int, ...] | None = None, seconds: float | None = None
) -> tuple[list[Row], float | None, str]:
    """Measure every setting; returns the rows, RecSim's steps/s (None if not measured) and
    a note on RecSim."""
    seconds = seconds if seconds is not None else (0.3 if quick else 3.0)
    batches = batches or ((256,) if quick else (4096, 16384))
    users, pop_steps = (1000, 5) if quick else (10_000, 40)
    recsim, note = measure_recsim(2000 if quick else 20_000, build=not quick)
    rows: list[Row] = []
    for b in batches:
        ref = f"vector env B = {b:,}, numpy path"
        rows.append(Row(f"vector env B = {b:,}", measure_vector(b, seconds), ref))
        rows.append(Row(ref, measure_vector(b, seconds, compiled=False)))
    rows.append(Row("vector env B = 1", measure_vector(1, seconds), "gym.make single env"))
    rows.append(Row("gym.make single env", measure_single(seconds), "gym.make, World.step B = 1"))
    rows.append(Row("gym.make, World.step B = 1", measure_single(seconds, fast=False)))
    core = f"Population.step, {users:,} users"
    rows.append(Row(core, measure_population(users, pop_steps), f"{core}, numpy path"))
    rows.append(Row(f"{core}, numpy path", measure_population(users, pop_steps, compiled=False)))
    rows.append(
        Row(f"PopulationEnv.step (PettingZoo), {users:,} agents",
            measure_population(users, pop_steps, pettingzoo=True), core)
    )  # fmt: skip
    return rows, recsim, note


def format_table(rows: list[Row], recsim: float | None) -> str:
    """One table: user-steps/s, x RecSim (where measured), x the row's own baseline."""
    rate = {r.setting: r.rate for r in rows}
    width = max(len(r.setting) for r in rows) + 2
    lines = [f"{'setting':<{width}}{'user-steps/s':>14}{'x RecSim':>10}  x own baseline"]
    if recsim is not None:
        lines.append(f"{'RecSim interest_evolution':<{width}}{recsim:>14,.0f}{1.0:>9.1f}x")
    for r in rows:
        vs = f"{r.rate / recsim:>9.1f}x" if recsim else f"{'-':>10}"
        own = f"  {r.rate / rate[r.baseline]:.2f}x {r.baseline}" if r.baseline else ""
        lines.append(f"{r.setting:<{width}}{r.rate:>14,.0f}{vs}{own}")
    return "\n".join(lines)

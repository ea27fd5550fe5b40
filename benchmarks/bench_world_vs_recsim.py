"""Throughput: RecoWorld's batched parametric world vs Google RecSim, measured in one run.

Both worlds are stepped by a uniformly random slate policy with 10 candidates and slates of
2 (RecSim's ``interest_evolution`` configuration). RecSim runs in its own virtualenv
(``.bench-venv/recsim``, created on first use: it needs the old ``gym``); RecoWorld runs
``RecoWorldVectorEnv`` at several batch sizes B (text off, so the figure is the simulator's
own cost; the text-on figure is printed too). Throughput is user-steps per second, wall
clock, including candidate generation, observation encoding and autoreset; for both
worlds the random slates are drawn before the timed loop. Both run on one core.

The single-user rows step one user the way a Gymnasium user does: ``gym.make`` (with the
wrappers it adds: ``PassiveEnvChecker``, ``OrderEnforcing``) and ``reset()`` when an episode
ends, with text off and with the default text (``text_info: all``); the same env without its
B = 1 fast path (``World.step`` with B = 1, what it ran before); and
``gymnasium.vector.SyncVectorEnv`` / ``AsyncVectorEnv`` over 8 ``gym.make`` envs (the async
one runs 8 worker processes on however many cores there are).

    python benchmarks/bench_world_vs_recsim.py [--steps-recsim 20000] [--seconds 3]
        [--batches 1 64 1024 4096 16384] [--no-single]

Targets (issue 20): RecoWorld >= 100x RecSim user-steps/s (vector env, B >= 4,096); the
single env through ``gym.make`` >= 1.5x RecSim.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import gymnasium as gym
import numpy as np
from recsim_baseline import ensure_recsim_venv, run_recsim

from recoworld import RecoWorldVectorEnv
from recoworld.evaluation import throughput

SINGLE_TARGET = 1.5
VECTOR_TARGET = 100.0  # issue 20: the vector world at B >= 4,096

WORLD = throughput.WORLD  # synthetic catalog, M = 10, k = 2, text off


def measure_ours(batch: int, seconds: float, text: str = "none", seed: int = 0) -> dict:
    cfg = {**WORLD, "episode": {**WORLD["episode"], "text_info": text}}
    env = RecoWorldVectorEnv(num_envs=batch, config=cfg)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    m, k = env.world.n_candidates, env.world.slate_size
    # Random slates are drawn before timing, as the RecSim worker does.
    slates = [np.argsort(rng.random((batch, m)), axis=1)[:, :k] for _ in range(16)]
    for i in range(3):  # warm-up (and numba compilation)
        env.step(slates[i])
    steps = user_steps = 0
    start = time.perf_counter()
    while True:
        _, _, _, _, info = env.step(slates[steps % len(slates)])
        steps += 1
        user_steps += int(info["_click"].sum())
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and steps >= 5:
            break
    return {"B": batch, "text": text, "user_steps": user_steps, "seconds": elapsed,
            "user_steps_per_s": user_steps / elapsed}  # fmt: skip


def measure_single(seconds: float, text: str = "none", fast: bool = True, seed: int = 0) -> dict:
    """One user through ``gym.make`` (its default wrappers), ``reset()`` at each episode's
    end; ``fast=False`` takes the batched world's B = 1 path instead of the fast path
    (``recoworld.evaluation.throughput.measure_single``)."""
    rate = throughput.measure_single(seconds, fast=fast, seed=seed, text=text, compiled=True)
    path = "fast path" if fast else "World.step B=1"
    return {"setting": f"gym.make single env ({path}), text={text}",
            "seconds": seconds, "user_steps_per_s": rate}  # fmt: skip


def measure_gym_vector(kind: str, seconds: float, n: int = 8, seed: int = 0) -> dict:
    """``gymnasium.vector.<kind>VectorEnv`` over ``n`` ``gym.make`` envs (autoreset)."""
    cls = gym.vector.SyncVectorEnv if kind == "Sync" else gym.vector.AsyncVectorEnv
    envs = cls([lambda: gym.make("recoworld/RecoWorld-v0", config=WORLD)] * n)
    envs.reset(seed=seed)
    rng = np.random.default_rng(seed)
    slates = [np.argsort(rng.random((n, 10)), axis=1)[:, :2] for _ in range(64)]
    for i in range(20):
        envs.step(slates[i])
    steps = 0
    start = time.perf_counter()
    while True:
        for _ in range(20):
            envs.step(slates[steps % len(slates)])
            steps += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            break
    envs.close()
    return {"setting": f"gymnasium {kind}VectorEnv x{n} (gym.make), text=none",
            "user_steps": steps * n, "seconds": elapsed,
            "user_steps_per_s": steps * n / elapsed}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps-recsim", type=int, default=20000)
    parser.add_argument("--seconds", type=float, default=3.0, help="per RecoWorld setting")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64, 1024, 4096, 16384])
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--no-single", action="store_true", help="skip the single-env rows")
    args = parser.parse_args()

    python = ensure_recsim_venv()
    recsim = run_recsim(python, steps=args.steps_recsim, seed=0)
    single = []
    if not args.no_single:
        single = [
            measure_single(args.seconds),
            measure_single(args.seconds, text="all"),
            measure_single(args.seconds, fast=False),
            measure_gym_vector("Sync", args.seconds),
            measure_gym_vector("Async", args.seconds),
        ]
    ours = [measure_ours(b, args.seconds) for b in args.batches]
    ours.append(measure_ours(max(args.batches), args.seconds, text="all"))

    base = recsim["steps_per_s"]
    print(
        "RecSim interest_evolution (random policy, 10 candidates, slate 2): "
        f"{base:,.0f} steps/s  [{recsim['steps']} steps, {recsim['episodes']} episodes]"
    )
    print(f"{'RecoWorld setting':<34}{'user-steps/s':>16}{'x RecSim':>12}")
    for r in ours:
        label = f"vector env B={r['B']}, text={r['text']}"
        print(f"{label:<34}{r['user_steps_per_s']:>16,.0f}{r['user_steps_per_s'] / base:>11.1f}x")
    for r in single:
        label = r["setting"]
        print(f"{label:<58}{r['user_steps_per_s']:>12,.0f}{r['user_steps_per_s'] / base:>9.2f}x")
    best = max(r["user_steps_per_s"] for r in ours if r["text"] == "none")
    verdict = "meets" if best / base >= VECTOR_TARGET else "MISSES"
    print(f"best ratio {best / base:.1f}x — {verdict} the >= {VECTOR_TARGET:.0f}x target")
    if single:
        ratio = single[0]["user_steps_per_s"] / base
        verdict = "meets" if ratio >= SINGLE_TARGET else "MISSES"
        print(f"gym.make single env {ratio:.2f}x — {verdict} the >= {SINGLE_TARGET}x target")
    if args.json:
        out = {"recsim": recsim, "recoworld": ours, "single": single}
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

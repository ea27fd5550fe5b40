"""Throughput: RecoWorld's batched parametric world vs Google RecSim, measured in one run.

Both worlds are stepped by a uniformly random slate policy with 10 candidates and slates of
2 (RecSim's ``interest_evolution`` configuration). RecSim runs in its own virtualenv
(``.bench-venv/recsim``, created on first use: it needs the old ``gym``); RecoWorld runs
``RecoWorldVectorEnv`` at several batch sizes B (text off, so the figure is the simulator's
own cost; the text-on figure is printed too). Throughput is user-steps per second, wall
clock, including candidate generation, observation encoding and autoreset; for both
worlds the random slates are drawn before the timed loop. Both run on one core.

    python benchmarks/bench_world_vs_recsim.py [--steps-recsim 20000] [--seconds 3]

Target: RecoWorld >= 50x RecSim user-steps/s.
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

import numpy as np
from recsim_baseline import ensure_recsim_venv, run_recsim

from recoworld import RecoWorldVectorEnv

WORLD = {
    "catalog": {"synthetic": {"n_items": 5000, "n_topics": 20, "n_creators": 300}},
    "candidates": {"n_candidates": 10},
    "episode": {"slate_size": 2, "text_info": "none"},
}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps-recsim", type=int, default=20000)
    parser.add_argument("--seconds", type=float, default=3.0, help="per RecoWorld setting")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64, 1024, 4096, 16384])
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    python = ensure_recsim_venv()
    recsim = run_recsim(python, steps=args.steps_recsim, seed=0)
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
    best = max(r["user_steps_per_s"] for r in ours if r["text"] == "none")
    verdict = "meets" if best / base >= 50 else "MISSES"
    print(f"best ratio {best / base:.1f}x — {verdict} the >= 50x target")
    if args.json:
        args.json.write_text(json.dumps({"recsim": recsim, "recoworld": ours}, indent=2))


if __name__ == "__main__":
    main()

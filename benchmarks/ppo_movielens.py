"""PPO (slate RLModule) against most-popular on the grounded MovieLens task, paired.

Owns the PPO-vs-popular measurement on ``recoworld/MovieLens-v0``: for each training seed
it trains RLlib PPO (``recoworld.rl.trainer.train`` with the default ``PPOSettings`` and
``ModelSettings``) for ``--budget`` env steps on the task's frozen world
(``load_task("MovieLens-v0")``; the budget defaults to its ``budget_steps``),
then runs the greedy policy (``algorithm_spec("ppo").from_checkpoint``) and most-popular on
the same ``--lives`` user lives (evaluation seed 1000 + training seed, 64 user slots:
common random numbers, so life i of PPO and life i of popular are the same user).

Per life it keeps the return, the steps, the session ends and the returns to a next
session, so the paired differences PPO - popular of

- mean return (per life),
- return rate (returns to a next session / session ends),
- session depth (steps / session ends)

get percentile-bootstrap 95% CIs with the paired lives of every seed pooled and resampled
jointly (a ratio is recomputed on each resample). It prints one row per seed and the pooled
table and writes everything (per-seed returns, per-life returns, CIs, wall time per
training run) as JSON, atomically.

    python benchmarks/ppo_movielens.py [--seeds 0 1 2 3 4] [--budget 200000]
        [--lives 200] [--out runs/bench/ppo_movielens.json] [--quick] [--train-json JSON]

``--quick`` is a CI smoke profile (< 60 s): one seed, a few thousand env steps, 16 lives.
Run one at a time on a small machine (Ray gets ``num_cpus`` 2, torch one thread).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

from recoworld.core.atomic import atomic_write_json
from recoworld.core.stats import paired_bootstrap_ci, resample_indices
from recoworld.envs.config import WorldConfig
from recoworld.policies.base import Recommender
from recoworld.tasks.check import evaluate_on_task
from recoworld.tasks.spec import TaskSpec, load_task

TASK = "MovieLens-v0"
EVAL_SEED_OFFSET = 1000
USERS = 64
N_BOOT = 2000


def lives(task: TaskSpec, policy: str | Recommender, n: int, seed: int) -> dict[str, Any]:
    """Run ``policy`` (greedy) on the first ``n`` lives (by episode id) of evaluation seed
    ``seed`` with ``USERS`` user slots (``recoworld.tasks.check.evaluate_on_task``, i.e.
    ``run_policy``); per life (episode-id order): return, steps, session ends and returns to
    a next session."""
    run = evaluate_on_task(task, {"policy": policy}, [seed], n, USERS)["policy"][0]
    return {"return": np.asarray(run["episode_returns"]),
            "steps": np.asarray(run["episode_steps"], dtype=np.float64),
            "session_ends": np.asarray(run["episode_session_ends"], dtype=np.float64),
            "returns": np.asarray(run["episode_returned"], dtype=np.float64)}  # fmt: skip


def metrics(life: dict[str, np.ndarray]) -> dict[str, float]:
    ends = max(float(life["session_ends"].sum()), 1.0)
    return {"mean_return": float(life["return"].mean()),
            "return_rate": float(life["returns"].sum()) / ends,
            "session_depth": float(life["steps"].sum()) / ends}  # fmt: skip


def paired_ratio_ci(
    num_a: np.ndarray, den_a: np.ndarray, num_b: np.ndarray, den_b: np.ndarray
) -> dict[str, float]:
    """sum(num_a)/sum(den_a) - sum(num_b)/sum(den_b) with a percentile bootstrap CI over
    paired lives (the same resampled lives for a and b)."""
    n = len(num_a)
    diffs = []
    for idx in resample_indices(n, N_BOOT, seed=0):
        ra = num_a[idx].sum(1) / np.maximum(den_a[idx].sum(1), 1.0)
        rb = num_b[idx].sum(1) / np.maximum(den_b[idx].sum(1), 1.0)
        diffs.append(ra - rb)
    d = np.concatenate(diffs)
    point = num_a.sum() / max(den_a.sum(), 1.0) - num_b.sum() / max(den_b.sum(), 1.0)
    lo, hi = np.quantile(d, [0.025, 0.975])
    return {"mean": float(point), "lo": float(lo), "hi": float(hi), "n": n}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merge(out[key], value) if both else value
    return out


def train_one(
    world: WorldConfig, seed: int, budget: int, quick: bool, work: Path, overrides: dict[str, Any]
) -> Any:
    """Train PPO for ``budget`` env steps (``overrides`` merged into the ``train:``
    section); the greedy recommender and the wall time."""
    from recoworld.rl.config import TrainConfig
    from recoworld.rl.registry import algorithm_spec
    from recoworld.rl.trainer import train

    batch = 512 if quick else 2048
    train_cfg: dict[str, Any] = {
        "algo": "ppo",
        "seed": seed,
        "iterations": max(1, round(budget / batch)),
        "num_envs": 16 if quick else 64,
        "eval_every": 0,
        "eval_episodes": 1,  # train() evaluates at the end; the real evaluation is below
        "checkpoint_every": 0,
    }
    if quick:
        train_cfg["ppo"] = {"train_batch_size": batch, "minibatch_size": 128, "num_epochs": 1}
        train_cfg["model"] = {"hidden": [32], "value_hidden": [32]}
    cfg = TrainConfig.model_validate(_merge(train_cfg, overrides))
    out = work / f"seed{seed}"
    start = time.perf_counter()
    train(world, cfg, out, show_progress=False)
    wall = time.perf_counter() - start
    return algorithm_spec("ppo").from_checkpoint(out / "checkpoint", "ppo"), wall


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--budget", type=int, default=None, help="Env steps (task budget_steps).")
    ap.add_argument("--lives", type=int, default=200, help="Evaluation lives per seed.")
    ap.add_argument("--out", default="runs/bench/ppo_movielens.json")
    ap.add_argument("--quick", action="store_true", help="CI smoke profile (< 60 s).")
    ap.add_argument(
        "--train-json",
        default="{}",
        help='JSON overrides of the train: section, e.g. \'{"ppo": {"lambda_": 0.95}}\'',
    )
    args = ap.parse_args(argv)
    task = load_task(TASK)
    world = task.world_config()
    budget = args.budget or task.budget_steps
    seeds, n_lives = args.seeds, args.lives
    if args.quick:
        budget, seeds, n_lives = min(budget, 1024), seeds[:1], min(n_lives, 16)
    overrides = json.loads(args.train_json)
    rows: list[dict[str, Any]] = []
    pooled: dict[str, dict[str, list[np.ndarray]]] = {"ppo": {}, "popular": {}}
    with tempfile.TemporaryDirectory(prefix="ppo_movielens_") as tmp:
        for seed in seeds:
            rec, wall = train_one(world, seed, budget, args.quick, Path(tmp), overrides)
            eval_seed = EVAL_SEED_OFFSET + seed
            ppo = lives(task, rec, n_lives, eval_seed)
            pop = lives(task, "popular", n_lives, eval_seed)
            for name, life in (("ppo", ppo), ("popular", pop)):
                for key, v in life.items():
                    pooled[name].setdefault(key, []).append(v)
            m_ppo, m_pop = metrics(ppo), metrics(pop)
            rows.append({"seed": seed, "eval_seed": eval_seed, "train_wall_s": wall,
                         "ppo": m_ppo, "popular": m_pop,
                         "diff_mean_return": paired_bootstrap_ci(ppo["return"], pop["return"]),
                         "ppo_episode_returns": ppo["return"].tolist(),
                         "popular_episode_returns": pop["return"].tolist()})  # fmt: skip
            print(
                f"seed {seed}: train {wall:6.1f} s  PPO {m_ppo['mean_return']:6.1f}  popular "
                f"{m_pop['mean_return']:6.1f}  return_rate {m_ppo['return_rate']:.3f}/"
                f"{m_pop['return_rate']:.3f}  session_depth {m_ppo['session_depth']:.2f}/"
                f"{m_pop['session_depth']:.2f}",
                flush=True,
            )
    a = {k: np.concatenate(v) for k, v in pooled["ppo"].items()}
    b = {k: np.concatenate(v) for k, v in pooled["popular"].items()}
    diff = {
        "mean_return": paired_bootstrap_ci(a["return"], b["return"], n_boot=N_BOOT),
        "return_rate": paired_ratio_ci(a["returns"], a["session_ends"],
                                       b["returns"], b["session_ends"]),
        "session_depth": paired_ratio_ci(a["steps"], a["session_ends"],
                                         b["steps"], b["session_ends"]),
    }  # fmt: skip
    result = {
        "task": "recoworld/MovieLens-v0",
        "budget_steps": budget,
        "seeds": seeds,
        "lives_per_seed": n_lives,
        "quick": args.quick,
        "train_overrides": overrides,
        "ppo": metrics(a),
        "popular": metrics(b),
        "diff_ppo_minus_popular": diff,
        "train_wall_s": [r["train_wall_s"] for r in rows],
        "per_seed": rows,
    }
    print(f"\nPPO - popular, {len(a['return'])} paired lives ({len(seeds)} seeds x {n_lives}), "
          f"budget {budget:,} env steps")  # fmt: skip
    print(f"{'metric':<14}{'PPO':>10}{'popular':>10}{'diff':>10}  95% CI")
    for key, ci in diff.items():
        print(f"{key:<14}{result['ppo'][key]:>10.3f}{result['popular'][key]:>10.3f}"
              f"{ci['mean']:>10.3f}  [{ci['lo']:.3f}, {ci['hi']:.3f}]")  # fmt: skip
    walls = result["train_wall_s"]
    print(f"train wall per run: mean {np.mean(walls):.1f} s (min {min(walls):.1f}, "
          f"max {max(walls):.1f})")  # fmt: skip
    atomic_write_json(result, Path(args.out))
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])

"""Does a Stable-Baselines3 user's PPO learn on RecoWorld? Against random, most-popular and
the project's own RLlib PPO (slate scoring module) at the same env-step budget.

Expected before the run: SB3's PPO with its defaults over the "features" observation (a
``MultiInputPolicy``: flattened Dict through an MLP, one categorical per slate slot) should
beat random; whether it closes the random -> popular gap in a small budget is the question
the issue asks. The project's slate module (one scorer shared by every candidate) was
measured to learn in these worlds before.

Per world and seed, each learner trains on ``--steps`` env steps (user-steps) from scratch:

- ``sb3_ppo``: ``stable_baselines3.PPO("MultiInputPolicy", make_vec_env(id, n_envs=8))``
  with SB3's default hyper-parameters (n_steps 2048, batch 64, 10 epochs, lr 3e-4,
  gamma 0.99, GAE 0.95, clip 0.2), deterministic actions at evaluation;
- ``sb3_slate``: the same SB3 PPO (same defaults, same envs) with RecoWorld's SB3 policy
  class, ``PPO(SlatePolicy, env)`` (``recoworld.rl.sb3``: one scorer shared by every
  candidate, Plackett-Luce slates of distinct candidates, a context critic);
- ``rllib_ppo``: ``recoworld train --algo ppo`` (the slate RLModule, Plackett-Luce slates),
  64 users per vector env, train batch 2048, the project's PPO settings.

Then every policy (and the ``random`` and ``popular`` baselines) meets the same evaluation
users (``--eval-episodes`` lives, a seed shared by all policies: common random numbers).
Reported: mean return per life with a 95% bootstrap CI over lives (all seeds pooled), the
paired difference to random and to popular (paired by life), and the share of the
random -> popular gap each learner closes (where popular beats random). Worlds:
``synthetic`` (the default RecoWorld-v0 world) and ``movielens`` (real films, users fitted to
real raters: ``experiments/configs/ppo_movielens.yaml``'s world).

    python benchmarks/sb3_learning.py [--worlds synthetic movielens] [--seeds 0 1 2]
        [--steps 50000] [--eval-episodes 200] [--json out.json] [--quick]
        [--sb3-kwargs '{"n_steps": 256, "batch_size": 256}'] [--learners sb3_ppo sb3_slate]

``--quick`` (CI): one small synthetic world, one seed, 1,024 steps per learner, 16 lives.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ENV_ID = "recoworld/RecoWorld-v0"
LEARNERS = ("sb3_ppo", "sb3_slate", "rllib_ppo")
POLICIES = ("random", "popular", *LEARNERS)


def world_config(name: str, quick: bool) -> dict[str, Any]:
    """The world's config as a plain dict (what ``gym.make(..., config=...)`` takes)."""
    from recoworld.core.config import read_yaml_mapping

    if name == "synthetic":
        world: dict[str, Any] = {}
    elif name == "movielens":
        world = dict(read_yaml_mapping(ROOT / "experiments/configs/ppo_movielens.yaml")["world"])
    else:
        raise SystemExit(f"--worlds: unknown world {name!r} (synthetic, movielens)")
    world.setdefault("episode", {})
    world["episode"] = {**world["episode"], "text_info": "none"}
    if quick:
        world["catalog"] = {"synthetic": {"n_items": 300, "n_creators": 30}}
        world["episode"].update(max_sessions=2, max_session_steps=10)
    return world


class SB3Recommender:
    """A trained SB3 model as a ``Recommender``: it reads its own observation view of the
    runner's full observation and returns its deterministic slate."""

    def __init__(self, model: Any, view: str, name: str = "sb3_ppo") -> None:
        self.model, self.view, self.name = model, view, name

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        from recoworld.envs.observation import view_observation

        obs = view_observation(observation, self.view)
        action, _ = self.model.predict(obs, deterministic=True)
        return np.asarray(action, dtype=np.int64)


def train_sb3(
    world: dict[str, Any], seed: int, steps: int, name: str = "sb3_ppo", **ppo_kwargs: Any
) -> Any:
    """SB3 PPO with ``MultiInputPolicy`` (``sb3_ppo``) or RecoWorld's ``SlatePolicy``
    (``sb3_slate``) on ``make_vec_env(id, n_envs=8)``."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    import recoworld  # noqa: F401  (registers the env id)
    from recoworld.rl.sb3 import SlatePolicy

    torch.set_num_threads(1)
    env = make_vec_env(ENV_ID, n_envs=8, seed=seed, env_kwargs={"config": world})
    policy: Any = SlatePolicy if name == "sb3_slate" else "MultiInputPolicy"
    model = PPO(policy, env, seed=seed, device="cpu", verbose=0, **ppo_kwargs)
    model.learn(total_timesteps=steps)
    env.close()
    return SB3Recommender(model, "features", name)


def train_rllib(world: dict[str, Any], seed: int, steps: int, out: Path) -> Any:
    from recoworld.envs.config import resolve_world_config
    from recoworld.rl.config import TrainConfig
    from recoworld.rl.registry import load_recommender
    from recoworld.rl.trainer import train

    batch = min(2048, steps)
    cfg = TrainConfig.model_validate(
        {
            "algo": "ppo",
            "iterations": max(1, steps // batch),
            "seed": seed,
            "num_envs": 64 if steps >= 2048 else 8,
            "eval_every": 0,
            "eval_episodes": 8,
            "eval_users": 8,
            "checkpoint_every": 0,
            "ppo": {
                "train_batch_size": batch,
                "minibatch_size": min(256, batch),
                "num_epochs": 4,
                "lr": 3e-4,
                "entropy_coeff": 0.005,
            },
        }
    )
    train(resolve_world_config(world), cfg, out, show_progress=False)
    return load_recommender(out / "checkpoint", "rllib_ppo")


def evaluate(world: dict[str, Any], policy: Any, episodes: int, seed: int) -> dict[str, Any]:
    from recoworld.envs.config import resolve_world_config
    from recoworld.policies.rollout import SimulateConfig, run_policy

    sim = SimulateConfig(users=min(64, episodes), episodes=episodes, seed=seed, log=False)
    return run_policy(resolve_world_config(world), policy, sim, None)


def paired(a: np.ndarray, b: np.ndarray) -> list[float]:
    """[mean of a - b, CI low, CI high], paired by life."""
    from recoworld.core.stats import paired_bootstrap_ci

    d = paired_bootstrap_ci(a, b)
    return [d["mean"], d["lo"], d["hi"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worlds", nargs="+", default=["synthetic", "movielens"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=50_000, help="env steps per learner")
    parser.add_argument("--eval-episodes", type=int, default=200)
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--quick", action="store_true", help="the CI profile")
    parser.add_argument(
        "--sb3-kwargs",
        default="{}",
        help="JSON of PPO keyword arguments overriding SB3's defaults, e.g. '{\"n_steps\": 256}'",
    )
    parser.add_argument("--learners", nargs="+", default=list(LEARNERS), choices=LEARNERS)
    args = parser.parse_args()
    if args.quick:
        args.worlds, args.seeds, args.steps, args.eval_episodes = ["synthetic"], [0], 1024, 16

    from recoworld.core.stats import bootstrap_ci
    from recoworld.rl.runtime import ensure_ray

    ensure_ray(2)
    results: dict[str, Any] = {"steps": args.steps, "seeds": args.seeds, "worlds": {},
                               "sb3_kwargs": json.loads(args.sb3_kwargs)}  # fmt: skip
    for wname in args.worlds:
        world = world_config(wname, args.quick)
        policies = ["random", "popular", *args.learners]
        lives: dict[str, list[float]] = {p: [] for p in policies}
        timing: dict[str, float] = dict.fromkeys(args.learners, 0.0)
        for seed in args.seeds:
            eval_seed = 10_000 + seed
            with tempfile.TemporaryDirectory() as tmp:
                trained: dict[str, Any] = {"random": "random", "popular": "popular"}
                for name in args.learners:
                    t0 = time.perf_counter()
                    if name == "rllib_ppo":
                        trained[name] = train_rllib(world, seed, args.steps, Path(tmp) / "ppo")
                    else:
                        trained[name] = train_sb3(world, seed, args.steps, name,
                                                  **json.loads(args.sb3_kwargs))  # fmt: skip
                    timing[name] += time.perf_counter() - t0
                for name in policies:
                    summary = evaluate(world, trained[name], args.eval_episodes, eval_seed)
                    lives[name] += summary["episode_returns"]
                    print(f"[{wname} seed {seed}] {name:10s} mean return "
                          f"{summary['mean_return']:8.2f}  return rate "
                          f"{summary['return_rate']:.3f}", flush=True)  # fmt: skip
        arr = {p: np.asarray(v) for p, v in lives.items()}
        rows: dict[str, Any] = {}
        gap = arr["popular"].mean() - arr["random"].mean()
        for p in policies:
            ci = bootstrap_ci(arr[p])
            row: dict[str, Any] = {"mean_return": ci["mean"], "ci": [ci["lo"], ci["hi"]]}
            if p in args.learners:
                row["minus_random"] = paired(arr[p], arr["random"])
                row["minus_popular"] = paired(arr[p], arr["popular"])
                # only meaningful where popular beats random (the MovieLens world)
                closed = (arr[p].mean() - arr["random"].mean()) / gap if gap > 0 else None
                row["gap_closed"] = None if closed is None else float(closed)
                row["train_seconds_per_seed"] = timing[p] / len(args.seeds)
            rows[p] = row
        results["worlds"][wname] = rows
        print(f"\n{wname}: {args.steps} env steps per learner, seeds {args.seeds}, "
              f"{args.eval_episodes} evaluation lives per seed")  # fmt: skip
        print(f"{'policy':10s} {'return':>8s} {'95% CI':>18s} {'- random':>26s} "
              f"{'- popular':>26s} {'gap closed':>10s}")  # fmt: skip
        for p, r in rows.items():
            ci = f"[{r['ci'][0]:.2f}, {r['ci'][1]:.2f}]"
            extra = ""
            if "minus_random" in r:
                d1, d2 = r["minus_random"], r["minus_popular"]
                extra = (
                    f" {d1[0]:+8.2f} [{d1[1]:+.2f}, {d1[2]:+.2f}]"
                    f" {d2[0]:+8.2f} [{d2[1]:+.2f}, {d2[2]:+.2f}]"
                    + (f" {r['gap_closed']:10.2f}" if r["gap_closed"] is not None else "        --")
                )
            print(f"{p:10s} {r['mean_return']:8.2f} {ci:>18s}{extra}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""Offline RL on RecoWorld: log a behaviour policy in RLlib's columnar Parquet layout, train
BC (and MARWIL) with the slate module on the log, evaluate the learned greedy policies
against the logging policy on the same evaluation users.

    python experiments/train_offline.py --out runs/offline [--config world.yaml]
        [--behaviour popular] [--epsilon 0.3] [--episodes 2000] [--users 64]
        [--algos bc marwil] [--iterations 20] [--updates 50] [--eval-episodes 500]
        [--seed 0] [--json]

Writes under --out: ``dataset/`` (``data/part-00000.parquet``, ``trajectories.parquet``,
``manifest.json``), one training directory per algorithm (``bc/``, ``marwil/``: progress,
checkpoint, eval, manifest), ``results.json`` and the run's ``manifest.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")

from recoworld.core.atomic import atomic_write_json
from recoworld.core.manifest import write_manifest
from recoworld.envs.config import resolve_world_config
from recoworld.envs.vector_env import RecoWorldVectorEnv
from recoworld.policies.baselines import make_baseline
from recoworld.rl.offline.algorithm import (
    OfflineTrainConfig,
    evaluate_recommender,
    make_behaviour,
    record_offline,
    slate_overlap,
    train_offline,
)

COLUMNS = ("mean_return", "return_rate", "session_depth", "click_rate")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/offline")
    p.add_argument("--config", help="world YAML (top level or under 'world:'); default world")
    p.add_argument("--behaviour", default="popular", help="baseline name of the logging policy")
    p.add_argument("--epsilon", type=float, default=0.3, help="share of uniformly random slates")
    p.add_argument("--episodes", type=int, default=2000, help="user lives to log")
    p.add_argument("--users", type=int, default=64, help="parallel user slots while logging")
    p.add_argument("--gamma", type=float, default=0.97)
    p.add_argument("--algos", nargs="+", default=["bc", "marwil"], choices=["bc", "marwil"])
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--updates", type=int, default=50, help="minibatch updates per iteration")
    p.add_argument("--minibatch", type=int, default=256)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--beta", type=float, default=1.0, help="MARWIL advantage temperature")
    p.add_argument("--eval-episodes", type=int, default=500)
    p.add_argument("--eval-users", type=int, default=64)
    p.add_argument("--eval-seeds", type=int, default=3, help="evaluation seeds (mean, sd)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.rllib").setLevel(logging.ERROR)
    out = Path(args.out)
    world = resolve_world_config(args.config, {"episode": {"text_info": "none"}})
    write_manifest(out, {"world": world.model_dump(mode="json"), "args": vars(args)}, args.seed)

    t0 = time.perf_counter()
    data = record_offline(world, args.behaviour, out / "dataset", episodes=args.episodes,
                          users=args.users, seed=args.seed, epsilon=args.epsilon,
                          gamma=args.gamma, trajectories=True)  # fmt: skip
    record_s = time.perf_counter() - t0
    print(f"logged {data['rows']} user-steps ({data['lives']} lives) of {data['behaviour']} "
          f"in {record_s:.1f}s: {data['bytes'] / 1e6:.1f} MB", file=sys.stderr)  # fmt: skip

    base_cfg = OfflineTrainConfig(iterations=args.iterations, updates_per_iteration=args.updates,
                                  minibatch_size=args.minibatch, lr=args.lr, beta=args.beta,
                                  seed=args.seed, eval_episodes=args.eval_episodes,
                                  eval_users=args.eval_users)  # fmt: skip
    env = RecoWorldVectorEnv(num_envs=1, config=world)
    base = make_baseline(args.behaviour, env.world, seed=args.seed)
    rows: dict[str, dict] = {}
    # the reference policies, on the same evaluation users as the learned ones
    refs = {
        f"behaviour ({data['behaviour']})": make_behaviour(
            args.behaviour, env.world, args.epsilon, seed=base_cfg.eval_seed),
        f"base ({args.behaviour})": base,
        "random": make_baseline("random", env.world, seed=base_cfg.eval_seed),
    }  # fmt: skip
    for name, rec in refs.items():
        rows[name] = evaluate(rec, world, base_cfg, args.eval_seeds)
    for algo in args.algos:
        t0 = time.perf_counter()
        cfg = base_cfg.model_copy(update={"algo": algo})
        res = train_offline(out / "dataset", cfg, out / algo, world=world)
        losses = res["losses"][-1]
        rows[algo] = {
            **evaluate(res["recommender"], world, base_cfg, args.eval_seeds),
            "final_policy_loss": losses.get("policy_loss"),
            "overlap_with_base": slate_overlap(res["recommender"], base, out / "dataset"),
            "train_s": time.perf_counter() - t0,
        }
    env.close()
    results = {"dataset": data, "record_s": record_s, "policies": rows}
    atomic_write_json(results, out / "results.json")
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    else:
        print_table(rows, args)
    return 0


def evaluate(rec, world, cfg: OfflineTrainConfig, seeds: int) -> dict:
    """``evaluate_recommender`` on ``seeds`` evaluation seeds: means, and the sd of the
    mean return across seeds."""
    cfgs = [cfg.model_copy(update={"eval_seed": cfg.eval_seed + i}) for i in range(seeds)]
    runs = [evaluate_recommender(rec, world, c) for c in cfgs]
    out = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
    out["mean_return_sd"] = (
        float(np.std([r["mean_return"] for r in runs], ddof=1)) if seeds > 1 else 0.0
    )
    return out


def print_table(rows: dict[str, dict], args: argparse.Namespace) -> None:
    head = f"{'policy':<28}{'mean_return':>18}" + "".join(f"{c:>15}" for c in COLUMNS[1:])
    head += f"{'overlap_base':>14}{'policy_loss':>13}{'train_s':>9}"
    print(
        f"evaluation: {args.eval_episodes} user lives x {args.eval_seeds} seeds (mean ± sd "
        f"across seeds), {args.eval_users} slots; the same users for every policy"
    )
    print(head)
    print("-" * len(head))
    for name, r in rows.items():
        ret = f"{r['mean_return']:.3f} ± {r['mean_return_sd']:.3f}"
        line = f"{name:<28}{ret:>18}" + "".join(f"{r[c]:>15.3f}" for c in COLUMNS[1:])
        extra = [r.get("overlap_with_base"), r.get("final_policy_loss"), r.get("train_s")]
        line += "".join(f"{x:>{w}.3f}" if x is not None else f"{'':>{w}}"
                        for x, w in zip(extra, (14, 13, 9), strict=True))  # fmt: skip
        print(line)


if __name__ == "__main__":
    raise SystemExit(main())

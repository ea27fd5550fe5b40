"""Slate Thompson sampling on the parametric world: in-slate TS vs plain TS vs greedy vs
most-popular, over several seeds (Eide et al. 2021, reproduced in RecoWorld).

For each seed, each slate-TS arm (``exploration`` = in_slate, plain, greedy) trains with
``recoworld.rl.slate_ts.algorithm`` (the world and settings of ``--config``): every iteration it
collects ``steps_per_iteration`` user-steps with its own acting rule and refits the
posterior on all data so far. Recorded per arm:

- clicks over time: clicks per user-step of the slates collected in each iteration (the
  online click rate while learning; most-popular is stepped the same way in the same world);
- slate diversity: topic intra-list diversity (mean 1 - cosine of the items' topic vectors)
  of the slates shown when evaluating, and distinct topic groups per slate while learning;
- retention: after training, the arm's acting rule (TS arms keep sampling) on fresh
  evaluation users (same evaluation seed for all arms: common random numbers): return rate
  (share of sessions after which the user came back), session depth, click rate, return;
- hit-rate@k (the paper's metric): a held-out log of a random logging policy on other
  users; for each click after step 5 of a user's life, rank every catalog item by the
  posterior mean given the user's earlier clicks (most-popular: by catalog popularity).

Means over seeds with 95% bootstrap CIs over seeds, and paired differences (seeds resampled
jointly). Writes ``results.json``, ``table.md`` and ``manifest.json`` under ``--out``.

    python experiments/slate_ts.py [--config experiments/configs/slate_ts.yaml]
        [--seeds 5] [--iterations N] [--out runs/slate_ts]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

ARMS = ("in_slate", "plain", "greedy")
POLICIES = (*ARMS, "popular")
KS = (5, 10, 20)
METRICS = ("online_clicks", "final_online_clicks", "ild", "click_rate", "return_rate",
           "session_depth", "mean_return", "hit@10", "hit@20")  # fmt: skip


class Recorder:
    """Wraps a Recommender and keeps the catalog items of the slates it chose."""

    def __init__(self, rec: Any) -> None:
        self.rec = rec
        self.name = rec.name
        self.slates: list[np.ndarray] = []

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        slate = self.rec.act(obs)
        self.slates.append(np.take_along_axis(np.asarray(obs["candidate_ids"]), slate, axis=1))
        return slate


def popular_online_curve(world: Any, cfg: Any, seed: int) -> list[float]:
    """Clicks per user-step of most-popular, in chunks of ``steps_per_iteration``."""
    from recoworld.envs.vector_env import RecoWorldVectorEnv
    from recoworld.policies.baselines import make_baseline

    env = RecoWorldVectorEnv(num_envs=cfg.num_envs, config=world)
    rec = make_baseline("popular", env.world, seed=seed)
    obs, _ = env.reset(seed=seed)
    curve, clicks, steps = [], 0.0, 0
    while len(curve) < cfg.iterations:
        obs, _, _, _, info = env.step(rec.act(obs))
        live = info["_click"]
        clicks += float(info["click"][live].sum())
        steps += int(live.sum())
        if steps >= cfg.slate_ts.steps_per_iteration:
            curve.append(clicks / steps)
            clicks, steps = 0.0, 0
    env.close()
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="experiments/configs/slate_ts.yaml")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--iterations", type=int)
    parser.add_argument("--eval-episodes", type=int, default=150)
    parser.add_argument("--out", default="runs/slate_ts")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    import torch
    from rich.console import Console
    from rich.table import Table

    from recoworld.catalog import load_catalog
    from recoworld.core.atomic import atomic_write_json, atomic_write_text
    from recoworld.core.manifest import write_manifest
    from recoworld.core.stats import bootstrap_ci, paired_bootstrap_ci
    from recoworld.envs.trajectory import TrajectoryLog
    from recoworld.envs.world import World
    from recoworld.metrics import intra_list_diversity
    from recoworld.policies.baselines import make_baseline
    from recoworld.policies.rollout import SimulateConfig, run_policy
    from recoworld.rl.config import load_train_run
    from recoworld.rl.runtime import ensure_ray
    from recoworld.rl.slate_ts.algorithm import (
        SlateTSRecommender,
        build_slate_ts_config,
        item_groups,
    )
    from recoworld.rl.slate_ts.offline import from_trajectories, log_steps, model_hits

    torch.set_num_threads(1)
    console = Console()
    overrides = {"iterations": args.iterations} if args.iterations else {}
    world, cfg = load_train_run(args.config, overrides)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run_info = {"world": world.model_dump(mode="json"), "train": cfg.model_dump(mode="json"),
                "seeds": args.seeds, "eval_episodes": args.eval_episodes}  # fmt: skip
    write_manifest(out, run_info, cfg.seed)
    catalog, _ = load_catalog(world.catalog)
    groups = item_groups(catalog, cfg.slate_ts.grouping, world)
    topics = np.asarray(catalog.topics, dtype=np.float64)
    pop_rank = np.argsort(np.argsort(-catalog.popularity, kind="stable"), kind="stable")
    ensure_ray(cfg.num_cpus)
    start = time.time()
    per_seed: dict[str, list[dict[str, Any]]] = {p: [] for p in POLICIES}

    for seed in range(args.seeds):
        eval_sim = SimulateConfig(users=cfg.eval_users, episodes=args.eval_episodes,
                                  seed=10_000 + seed, log=False)  # fmt: skip
        # held-out log (random logging policy, other users) for hit-rate@k
        log = TrajectoryLog()
        run_policy(world, "random", SimulateConfig(users=32, episodes=100, seed=20_000 + seed), log)
        held = log_steps(from_trajectories(log.to_table(), catalog, groups), history=10)
        for arm in ARMS:
            ts = cfg.slate_ts.model_copy(update={"exploration": arm})
            run_cfg = cfg.model_copy(update={"seed": seed, "slate_ts": ts})
            algo = build_slate_ts_config(world, run_cfg).build_algo()
            curve, div = [], []
            try:
                for _ in range(run_cfg.iterations):
                    r = algo.train()["slate_ts"]
                    curve.append(float(r["online_click_rate"]))
                    div.append(float(r["online_slate_diversity"]))
                module = algo.get_module()
                rec = Recorder(SlateTSRecommender(module, name=arm, mode=arm, seed=seed))
                ev = run_policy(world, rec, eval_sim, None)
                hits = model_hits(module.model, held, KS, min_step=5)
            finally:
                algo.stop()
            slates = np.concatenate(rec.slates)
            per_seed[arm].append({
                "curve": curve, "online_group_diversity": div,
                "online_clicks": float(np.mean(curve)), "final_online_clicks": curve[-1],
                "ild": float(np.nanmean(intra_list_diversity(slates, topics))),
                **{k: ev[k] for k in ("click_rate", "return_rate", "session_depth",
                                      "mean_return")},
                **{f"hit@{k}": float(v.mean()) for k, v in hits.items()},
                "held_out_clicks": len(hits[KS[0]]),
            })  # fmt: skip
            console.print(f"seed {seed} {arm:8s}: online clicks {curve[0]:.3f} -> "
                          f"{curve[-1]:.3f}, eval return rate {ev['return_rate']:.3f}, "
                          f"hit@20 {per_seed[arm][-1]['hit@20']:.3f} "
                          f"({time.time() - start:.0f}s)")  # fmt: skip
        # most-popular: same world, same evaluation users
        curve = popular_online_curve(world, run_cfg, seed)
        rec = Recorder(make_baseline("popular", World(world, n_users=1), seed=seed))
        ev = run_policy(world, rec, eval_sim, None)
        slates = np.concatenate(rec.slates)
        r_idx, items = np.nonzero(held.click)
        keep = held.step[r_idx] >= 5
        ranks = pop_rank[held.slate[r_idx[keep], items[keep]]]
        per_seed["popular"].append({
            "curve": curve, "online_clicks": float(np.mean(curve)),
            "final_online_clicks": curve[-1],
            "ild": float(np.nanmean(intra_list_diversity(slates, topics))),
            **{k: ev[k] for k in ("click_rate", "return_rate", "session_depth", "mean_return")},
            **{f"hit@{k}": float((ranks < k).mean()) for k in KS},
        })  # fmt: skip
        console.print(f"seed {seed} popular : clicks {curve[-1]:.3f}, return rate "
                      f"{ev['return_rate']:.3f} ({time.time() - start:.0f}s)")  # fmt: skip

    # ------------------------------------------------------------------ summary
    summary = {
        p: {m: bootstrap_ci(np.array([s[m] for s in per_seed[p]])) for m in METRICS}
        for p in POLICIES
    }
    curves = {p: np.array([s["curve"] for s in per_seed[p]]) for p in POLICIES}
    pairs = [("in_slate", "greedy"), ("plain", "greedy"), ("in_slate", "plain"),
             ("in_slate", "popular"), ("greedy", "popular")]  # fmt: skip
    diffs = {
        f"{a}-{b}": {m: paired_bootstrap_ci(np.array([s[m] for s in per_seed[a]]),
                                            np.array([s[m] for s in per_seed[b]]))
                     for m in METRICS}
        for a, b in pairs
    }  # fmt: skip
    # clicks vs diversity across all (seed, arm) runs of the TS arms
    xs = [s["ild"] for a in ARMS for s in per_seed[a]]
    ys = [s["online_clicks"] for a in ARMS for s in per_seed[a]]
    corr = float(np.corrcoef(xs, ys)[0, 1]) if len(xs) > 2 else float("nan")

    def fmt(ci: dict[str, float], digits: int = 3) -> str:
        return f"{ci['mean']:.{digits}f} [{ci['lo']:.{digits}f}, {ci['hi']:.{digits}f}]"

    labels = {"online_clicks": "clicks/step (learning)", "final_online_clicks":
              "clicks/step (last iter)", "ild": "slate topic ILD", "click_rate":
              "eval clicks/step", "return_rate": "return rate", "session_depth":
              "session depth", "mean_return": "mean return", "hit@10": "hit@10",
              "hit@20": "hit@20"}  # fmt: skip
    table = Table(title=f"Slate TS, {args.seeds} seeds (mean [95% CI over seeds])")
    table.add_column("metric")
    for p in POLICIES:
        table.add_column(p)
    for m in METRICS:
        table.add_row(labels[m], *(fmt(summary[p][m], 2 if m == "session_depth" else 3)
                                   for p in POLICIES))  # fmt: skip
    console.print(table)
    iters = curves["in_slate"].shape[1]
    shown_iters = sorted({0, 1, 2, iters // 2, iters - 1})
    lines = [
        f"Slate Thompson sampling, parametric world ({catalog.n_items} items, "
        f"{world.candidates.n_candidates} candidates, slate {world.episode.slate_size}), "
        f"{args.seeds} seeds, {cfg.iterations} iterations x "
        f"{cfg.slate_ts.steps_per_iteration} user-steps; mean [95% bootstrap CI over seeds].",
        "",
        "| metric | " + " | ".join(POLICIES) + " |",
        "|---|" + "---|" * len(POLICIES),
    ]
    for m in METRICS:
        cells = [fmt(summary[p][m], 2 if m == "session_depth" else 3) for p in POLICIES]
        lines.append(f"| {labels[m]} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Clicks per user-step over training iterations (mean over seeds):",
        "",
        "| iteration | " + " | ".join(POLICIES) + " |",
        "|---|" + "---|" * len(POLICIES),
    ]
    for i in shown_iters:
        lines.append(f"| {i + 1} | " + " | ".join(f"{curves[p][:, i].mean():.3f}"
                                                  for p in POLICIES) + " |")  # fmt: skip
    lines += ["", "Paired differences (seeds resampled jointly):", "",
              "| pair | clicks/step (learning) | return rate | topic ILD | hit@20 |",
              "|---|---|---|---|---|"]  # fmt: skip
    for key, d in diffs.items():
        lines.append(f"| {key} | {fmt(d['online_clicks'])} | {fmt(d['return_rate'])} | "
                     f"{fmt(d['ild'])} | {fmt(d['hit@20'])} |")  # fmt: skip
    lines += ["", f"Correlation of slate topic ILD and clicks/step over the {len(xs)} TS runs: "
              f"{corr:.2f}. Runtime {time.time() - start:.0f} s."]  # fmt: skip
    text = "\n".join(lines) + "\n"
    console.print(text)
    results = {"summary": summary, "differences": diffs, "per_seed": per_seed,
               "ild_clicks_correlation": corr, "seconds": time.time() - start,
               **run_info}  # fmt: skip
    atomic_write_text(text, out / "table.md")
    atomic_write_json(results, out / "results.json")
    console.print(f"wrote {out / 'results.json'} and {out / 'table.md'}")


if __name__ == "__main__":
    main()

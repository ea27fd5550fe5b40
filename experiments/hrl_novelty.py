"""HRL vs flat PPO on users whose session novelty propensity departs from their static one.

    python experiments/hrl_novelty.py [--config experiments/configs/hrl_novelty.yaml]
        [--seeds 5] [--iterations 20] [--eval-episodes 200] [--out runs/hrl_novelty]
        [--goal-every K] [--runs-dir DIR]

Three policies are trained with RLlib PPO on the config's parametric world (wide spread
between static and session novelty propensity), one run per training seed:

* ``hierarchical``: the two-level policy of ``recoworld.rl.hrl.algorithm`` (goal at session start,
  and every K steps with ``--goal-every K``, so that it can read in-session signals);
* ``flat``: the slate module alone, same observation (minus the goal), same extrinsic
  reward (engagement + λ_nov novelty + λ_div diversity);
* ``flat_engagement``: the same flat policy trained on the env's engagement reward only.

Each trained policy then serves evaluation users in the same world: seed s's policies (and
the most-popular and random baselines, for reference) all meet the same 200 users (common
random numbers: life j is the same user for every policy), and each seed draws different
users, so the pooled lives are distinct users. Per user life: return rate,
sessions, clicks per session, return (the env's engagement reward), personal novelty and
topic ILD of the slates (``recoworld.envs.novelty``, the evaluation metrics' functions),
popularity novelty (``metrics.novelty``, normalised), and the ground truth |session −
static| propensity of the life's first session (policy-independent). Means carry 95%
percentile-bootstrap CIs over lives pooled across seeds; differences are paired by life.
The breakdown splits lives into terciles of that departure.

Writes ``results.json``, ``table.md``, ``hrl_novelty.png`` and ``manifest.json`` under
``--out`` (atomically); trained runs are kept in ``<runs-dir>/<policy>/seed_<s>`` (default
``--out/runs``; ``hierarchical_k<K>`` with ``--goal-every K``) and reused when present
(``--retrain`` trains again), so runs differing only in K share the flat policies.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")

from recoworld import metrics as M
from recoworld.core.atomic import atomic_write, atomic_write_json, atomic_write_text
from recoworld.core.manifest import write_manifest
from recoworld.core.stats import bootstrap_ci, paired_bootstrap_ci
from recoworld.envs.config import WorldConfig
from recoworld.envs.novelty import NoveltySignals
from recoworld.envs.vector_env import RecoWorldVectorEnv
from recoworld.policies.rollout import step_policy

MODES = ("hierarchical", "flat", "flat_engagement")
METRICS = {
    "return_rate": "return rate",
    "sessions": "sessions per life",
    "clicks_per_session": "clicks per session",
    "engagement_return": "engagement return",
    "novelty": "personal novelty",
    "pop_novelty": "popularity novelty",
    "ild": "topic ILD",
}
BASELINES = ("popular", "random")
EVAL_SEED = 20_000


def evaluate_lives(
    world: WorldConfig, policy: Any, episodes: int, users: int, seed: int = EVAL_SEED
) -> dict:
    """Per-life statistics of ``policy`` (a Recommender or a baseline's name) on the first
    ``episodes`` lives of evaluation seed ``seed``."""
    from recoworld.policies.baselines import make_baseline

    cfg = world.model_copy(deep=True)
    cfg.episode.ground_truth_info = True
    cfg.episode.text_info = "none"
    env = RecoWorldVectorEnv(num_envs=users, config=cfg)
    if isinstance(policy, str):
        policy = make_baseline(policy, env.world, seed=seed)
    meas = NoveltySignals(env.world.catalog, users)
    info_bits = M.self_information(env.world.catalog.popularity)
    keys = ("reward", "steps", "clicks", "returns", "ends", "nov", "ild", "pop", "sessions")
    acc = {k: np.zeros(episodes) for k in keys}
    first_dep = np.full(episodes, np.nan)
    static = np.full(episodes, np.nan)
    done_lives = np.zeros(episodes, bool)
    obs, _ = env.reset(seed=seed)
    for _ in range(1_000_000):
        prev = obs
        obs, reward, term, trunc, info = step_policy(env, policy, obs)
        ep = np.asarray(info["episode_id"])
        live = np.asarray(info["_click"]) & (ep < episodes)
        if live.any():
            e = ep[live]
            items, shown = info["item_index"][live], np.asarray(info["shown"])[live]
            nov = meas.slate_novelty(items, prev["history"][live], shown)
            ild = meas.slate_diversity(items, shown)
            pop = np.nan_to_num(M.novelty(items, info_bits, shown)) / info_bits.max()
            first = np.isnan(first_dep[e])
            dep = np.abs(info["user_session_novelty"][live] - info["user_novelty"][live])
            first_dep[e[first]] = dep[first]
            static[e[first]] = info["user_novelty"][live][first]
            for k, v in (("reward", reward[live]), ("steps", 1.0),
                         ("clicks", info["click"][live].sum(1)),
                         ("returns", info["returned"][live]), ("ends", info["session_end"][live]),
                         ("nov", nov), ("ild", ild), ("pop", pop)):  # fmt: skip
                np.add.at(acc[k], e, v)
            ended = (term | trunc)[live]
            acc["sessions"][e[ended]] = info["session"][live][ended] + 1
            done_lives[e[ended]] = True
        if done_lives.all():
            break
    env.close()
    steps = np.maximum(acc["steps"], 1)
    return {
        "return_rate": acc["returns"] / np.maximum(acc["ends"], 1),
        "sessions": acc["sessions"],
        "clicks_per_session": acc["clicks"] / np.maximum(acc["sessions"], 1),
        "engagement_return": acc["reward"],
        "novelty": acc["nov"] / steps,
        "pop_novelty": acc["pop"] / steps,
        "ild": acc["ild"] / steps,
        "departure": first_dep,
        "static": static,
    }


def _train_all(args: argparse.Namespace, world: WorldConfig, base: Any, out: Path) -> dict:
    from recoworld.rl.registry import load_recommender
    from recoworld.rl.trainer import train

    lives: dict[str, list[dict]] = {m: [] for m in (*MODES, *BASELINES)}
    from rich.progress import Progress

    with Progress() as progress:
        task = progress.add_task("train + evaluate", total=len(lives) * args.seeds)
        for seed in range(args.seeds):
            for name in BASELINES:
                lives[name].append(
                    evaluate_lives(world, name, args.eval_episodes, 64, EVAL_SEED + seed)
                )
                progress.update(task, advance=1, description=f"{name} seed {seed}")
            for mode in MODES:
                cfg = base.model_copy(deep=True)
                cfg.seed, cfg.iterations = seed, args.iterations
                cfg.hrl.mode = mode
                cfg.eval_every, cfg.eval_episodes, cfg.eval_users = 0, 16, 16
                cfg.hrl.goal_every = args.goal_every
                name = (
                    f"{mode}_k{args.goal_every}" if mode == MODES[0] and args.goal_every else mode
                )
                run = Path(args.runs_dir or out / "runs") / name / f"seed_{seed}"
                if args.retrain or not (run / "checkpoint").is_dir():
                    train(world, cfg, run, show_progress=False)
                policy = load_recommender(run / "checkpoint", mode)
                lives[mode].append(
                    evaluate_lives(world, policy, args.eval_episodes, 64, EVAL_SEED + seed)
                )
                progress.update(task, advance=1, description=f"{mode} seed {seed}")
    return {
        m: {k: np.concatenate([r[k] for r in runs]) for k in runs[0]} for m, runs in lives.items()
    }


def summarize(lives: dict[str, dict[str, np.ndarray]], n_boot: int = 2000) -> dict:
    dep = lives["flat"]["departure"]  # the same users (and first sessions) under every policy
    cuts = np.quantile(dep, [1 / 3, 2 / 3])
    groups = {"all": np.ones_like(dep, bool), "low departure": dep <= cuts[0],
              "mid departure": (dep > cuts[0]) & (dep <= cuts[1]),
              "high departure": dep > cuts[1]}  # fmt: skip
    out: dict[str, Any] = {"groups": {}, "departure_cuts": cuts.tolist()}
    for gname, mask in groups.items():
        g: dict[str, Any] = {"n_lives": int(mask.sum()), "means": {}, "diffs": {}}
        for mode in (*MODES, *BASELINES):
            g["means"][mode] = {m: bootstrap_ci(lives[mode][m][mask], n_boot) for m in METRICS}
        for other in ("flat", "flat_engagement"):
            g["diffs"][f"hierarchical - {other}"] = {
                m: paired_bootstrap_ci(
                    lives["hierarchical"][m][mask], lives[other][m][mask], n_boot
                )
                for m in METRICS
            }
        out["groups"][gname] = g
    return out


def _fmt(ci: dict[str, float]) -> str:
    return f"{ci['mean']:.3f} [{ci['lo']:.3f}, {ci['hi']:.3f}]"


def table(summary: dict) -> str:
    lines = []
    for gname, g in summary["groups"].items():
        cols = (*MODES, *BASELINES)
        lines += [f"**{gname}** ({g['n_lives']} lives)", "",
                  "| metric | " + " | ".join(cols) + " | HRL − flat | HRL − flat (engagement) |",
                  "|---" * (len(cols) + 3) + "|"]  # fmt: skip
        for m, label in METRICS.items():
            cells = [_fmt(g["means"][mode][m]) for mode in cols]
            for key in ("hierarchical - flat", "hierarchical - flat_engagement"):
                d = g["diffs"][key][m]
                sig = " ▲" if d["lo"] > 0 else " ▼" if d["hi"] < 0 else ""
                cells.append(f"{d['mean']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]{sig}")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [g for g in summary["groups"] if g != "all"]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for ax, metric in zip(axes, ("return_rate", "clicks_per_session", "novelty"), strict=True):
        for j, other in enumerate(("flat", "flat_engagement")):
            d = [summary["groups"][g]["diffs"][f"hierarchical - {other}"][metric] for g in names]
            x = np.arange(len(names)) + (j - 0.5) * 0.35
            mean = np.array([v["mean"] for v in d])
            err = np.array([[v["mean"] - v["lo"] for v in d], [v["hi"] - v["mean"] for v in d]])
            ax.bar(x, mean, 0.35, yerr=err, capsize=3, label=f"HRL − {other}")
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(np.arange(len(names)), names, fontsize=8)
        ax.set_title(METRICS[metric])
    axes[0].legend(fontsize=8)
    fig.suptitle("HRL minus flat PPO by |session − static| novelty propensity (95% CI)")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)


def main() -> None:
    import torch

    from recoworld.rl.config import load_train_run

    torch.set_num_threads(1)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="experiments/configs/hrl_novelty.yaml")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--eval-episodes", type=int, default=200)
    ap.add_argument("--out", default="runs/hrl_novelty")
    ap.add_argument("--retrain", action="store_true")
    ap.add_argument("--goal-every", type=int, default=0, help="re-pick the goal every K steps")
    ap.add_argument("--runs-dir", default=None, help="where trained runs live (reused)")
    args = ap.parse_args()
    if args.seeds < 1 or args.iterations < 1 or args.eval_episodes < 3:
        raise SystemExit("--seeds and --iterations must be >= 1, --eval-episodes >= 3")
    world, base = load_train_run(args.config)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = {"world": world.model_dump(mode="json"), "train": base.model_dump(mode="json")}
    write_manifest(out, {**config, "args": vars(args)}, None)
    lives = _train_all(args, world, base, out)
    summary = summarize(lives)
    summary["args"] = vars(args)
    atomic_write_json(summary, out / "results.json")
    text = table(summary)
    atomic_write_text(text, out / "table.md")
    plot(summary, out / "hrl_novelty.png")
    print(text)
    print(f"written: {out}/results.json, table.md, hrl_novelty.png")


if __name__ == "__main__":
    main()

"""RLIV-UA vs PPO with the slate module on the same world, with ablations, over seeds.

For each seed: train PPO (``--algo ppo``) and RLIV-UA (``recoworld.rl.rliv_ua.algorithm``) with the
same world, PPO settings, seed and iterations, and three RLIV-UA ablations — without ASA
(true next co-occurrence only), without progressive conditioning, without the auxiliary
task — then evaluate every final greedy policy (and most-popular as a reference) on the same
evaluation users (evaluation seed 10000 + seed: common random numbers) with
``rliv_ua.evaluate_user_author``: follows and gifts per user life and per creator, the share
of creators with a follower, user retention (return rate, sessions per life), engagement
(click rate, session depth, mean return) and the creator exposure Gini, plus the SCRI
sample density of the logs. Reported: mean over seeds with a 95 % bootstrap CI over seeds,
and paired differences variant - PPO (seeds resampled jointly).

    python experiments/rliv_ua.py [--config experiments/configs/rliv_ua.yaml] [--seeds 5]
        [--iterations N] [--lives 200] [--out runs/rliv_ua]

Outputs under ``--out``: ``results.json`` (every number), ``table.md``, ``manifest.json``
and one training run directory per (variant, seed).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

VARIANTS: dict[str, dict] = {
    "ppo": {"algo": "ppo"},
    "rliv_ua": {"algo": "rliv_ua"},
    "no_asa": {"algo": "rliv_ua", "rliv_ua": {"asa": False}},
    "no_conditioning": {"algo": "rliv_ua", "rliv_ua": {"conditioning": False}},
    "no_aux": {"algo": "rliv_ua", "rliv_ua": {"aux_weight": 0.0}},
}
SHOWN = (
    "follows_per_user", "gifts_per_user", "follows_per_creator", "gifts_per_creator",
    "creators_followed_share", "return_rate", "sessions_per_user", "click_rate",
    "session_depth", "mean_return", "exposure_gini",
)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="experiments/configs/rliv_ua.yaml")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--iterations", type=int)
    parser.add_argument("--lives", type=int, default=200, help="user lives per evaluation")
    parser.add_argument("--out", default="runs/rliv_ua")
    args = parser.parse_args()

    import torch
    from rich.console import Console
    from rich.table import Table

    from recoworld.core.atomic import atomic_write_json, atomic_write_text
    from recoworld.core.manifest import write_manifest
    from recoworld.core.stats import bootstrap_ci, paired_bootstrap_ci
    from recoworld.rl.config import TrainConfig, load_train_run
    from recoworld.rl.registry import load_recommender
    from recoworld.rl.rliv_ua.algorithm import USER_AUTHOR_METRICS, evaluate_user_author
    from recoworld.rl.trainer import train

    torch.set_num_threads(1)
    console = Console(width=240)
    overrides = {"iterations": args.iterations} if args.iterations else {}
    world, cfg = load_train_run(args.config, overrides)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_manifest(out, {"world": world.model_dump(mode="json"),
                         "train": cfg.model_dump(mode="json"), "seeds": args.seeds,
                         "variants": VARIANTS, "lives": args.lives}, None)  # fmt: skip
    start = time.perf_counter()
    names = [*VARIANTS, "popular"]
    per_seed = {v: {m: [] for m in USER_AUTHOR_METRICS} for v in names}
    base = cfg.model_dump()
    for seed in range(args.seeds):
        eval_seed = 10_000 + seed
        for name, change in VARIANTS.items():
            data = {**base, "seed": seed, "eval_seed": eval_seed, "algo": change["algo"]}
            data["rliv_ua"] = {**base["rliv_ua"], **change.get("rliv_ua", {})}
            run_cfg = TrainConfig.model_validate(data)
            console.print(f"[bold]seed {seed}[/] {name}: {run_cfg.iterations} iterations")
            run_dir = out / f"{name}_seed{seed}"
            train(world, run_cfg, run_dir, show_progress=False)
            rec = load_recommender(run_dir / "checkpoint", name)
            m = evaluate_user_author(world, rec, cfg.eval_users, args.lives, eval_seed)
            for key in USER_AUTHOR_METRICS:
                per_seed[name][key].append(m[key])
        m = evaluate_user_author(world, "popular", cfg.eval_users, args.lives, eval_seed)
        for key in USER_AUTHOR_METRICS:
            per_seed["popular"][key].append(m[key])
        atomic_write_json({"per_seed": per_seed, "seeds_done": seed + 1}, out / "partial.json")
    wall = time.perf_counter() - start

    summary = {v: {m: bootstrap_ci(np.array(x), n_boot=10_000) for m, x in vals.items()}
               for v, vals in per_seed.items()}  # fmt: skip
    paired = {
        f"{v} - ppo": {
            m: paired_bootstrap_ci(
                np.array(per_seed[v][m]), np.array(per_seed["ppo"][m]), n_boot=10_000
            )
            for m in USER_AUTHOR_METRICS
        }
        for v in names
        if v != "ppo"
    }
    ablation = {
        f"rliv_ua - {v}": {
            m: paired_bootstrap_ci(
                np.array(per_seed["rliv_ua"][m]), np.array(per_seed[v][m]), n_boot=10_000
            )
            for m in USER_AUTHOR_METRICS
        }
        for v in ("no_asa", "no_conditioning", "no_aux")
    }
    title = (f"RLIV-UA vs PPO, {args.seeds} seeds x {cfg.iterations} iterations, "
             f"{args.lives} evaluation lives (mean [95% CI over seeds])")  # fmt: skip
    table = Table(title=title)
    table.add_column("policy")
    for m in SHOWN:
        table.add_column(m, justify="right")
    lines = [f"{title}\n", "| policy | " + " | ".join(SHOWN) + " |", "|---|" + "---:|" * len(SHOWN)]
    rows = [(v, summary[v], "{:.3f} [{:.3f}, {:.3f}]") for v in names]
    rows += [(k, d, "{:+.3f} [{:+.3f}, {:+.3f}]") for k, d in {**paired, **ablation}.items()]
    for label, stats, fmt in rows:
        cells = [fmt.format(stats[m]["mean"], stats[m]["lo"], stats[m]["hi"]) for m in SHOWN]
        table.add_row(label, *cells)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    density = {v: summary[v]["scri_pair_transitions_per_user"]["mean"] for v in names}
    true_share = {v: summary[v]["scri_true_next_share"]["mean"] for v in names}
    note = (
        "SCRI samples per user life (ASA: one per shown author per request): "
        + ", ".join(f"{v} {density[v]:.1f}" for v in names)
        + "; share of them with a true next co-occurrence: "
        + ", ".join(f"{v} {true_share[v]:.2f}" for v in names)
        + f". Wall time {wall / 60:.1f} min."
    )
    lines += ["", note]
    console.print(table)
    console.print(note)
    atomic_write_json({"seeds": args.seeds, "iterations": cfg.iterations, "lives": args.lives,
                       "wall_seconds": wall, "per_seed": per_seed, "summary": summary,
                       "paired_vs_ppo": paired, "ablations": ablation},
                      out / "results.json")  # fmt: skip
    atomic_write_text("\n".join(lines) + "\n", out / "table.md")
    (out / "partial.json").unlink(missing_ok=True)


if __name__ == "__main__":
    main()

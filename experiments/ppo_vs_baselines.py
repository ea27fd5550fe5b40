"""PPO with the slate RLModule vs most-popular and random, over several seeds.

For each seed: train PPO (``recoworld.rl.trainer``, the world and settings of ``--config``),
then evaluate the final greedy policy, most-popular and random on the same evaluation users
(one evaluation seed per training seed, shared by the three policies: common random
numbers). Reported per policy: return rate (share of sessions after which the user comes
back), session depth (steps per session), mean return and click rate, as means over seeds
with 95 % bootstrap CIs over seeds, and the paired differences PPO - baseline with their
bootstrap CIs (seeds resampled jointly). With ``--hybrid``, the seed-0 policy is also
evaluated in the hybrid world (parametric decisions, instructions worded by the embedded
LLM) next to the same baselines.

    python experiments/ppo_vs_baselines.py [--config experiments/configs/ppo.yaml]
        [--seeds 5] [--iterations N] [--out runs/ppo_vs_baselines] [--hybrid]

Outputs under ``--out``: ``results.json`` (every number, config, manifest), ``table.md``
(the README table) and one training run directory per seed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

METRICS = ("return_rate", "session_depth", "mean_return", "click_rate")
BASELINES = ("popular", "random")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="experiments/configs/ppo.yaml")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--iterations", type=int)
    parser.add_argument("--out", default="runs/ppo_vs_baselines")
    parser.add_argument("--hybrid", action="store_true", help="also evaluate in the hybrid world")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    from recoworld.core.atomic import atomic_write_json, atomic_write_text
    from recoworld.core.manifest import write_manifest
    from recoworld.core.stats import bootstrap_ci, paired_bootstrap_ci
    from recoworld.policies.rollout import SimulateConfig, run_policy
    from recoworld.rl.common.recommender import ModuleRecommender
    from recoworld.rl.config import load_train_run
    from recoworld.rl.trainer import train

    console = Console()
    overrides = {"iterations": args.iterations} if args.iterations else {}
    world, cfg = load_train_run(args.config, overrides)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_manifest(
        out,
        {
            "world": world.model_dump(mode="json"),
            "train": cfg.model_dump(mode="json"),
            "seeds": args.seeds,
        },
        None,
    )
    start = time.perf_counter()
    per_seed: dict[str, dict[str, list[float]]] = {
        p: {m: [] for m in METRICS} for p in ("ppo", *BASELINES)
    }
    for seed in range(args.seeds):
        run_cfg = cfg.model_copy(update={"seed": seed, "eval_seed": 10_000 + seed})
        console.print(f"[bold]seed {seed}[/]: training PPO ({run_cfg.iterations} iterations)")
        train(world, run_cfg, out / f"seed_{seed}", show_progress=True)
        sim = SimulateConfig(
            users=cfg.eval_users, episodes=cfg.eval_episodes, seed=10_000 + seed, log=False
        )
        policy = ModuleRecommender.from_checkpoint(out / f"seed_{seed}" / "checkpoint")
        for name, pol in (("ppo", policy), *((b, b) for b in BASELINES)):
            summary = run_policy(world, pol, sim, None)
            for m in METRICS:
                per_seed[name][m].append(float(summary[m]))
    wall = time.perf_counter() - start

    results: dict = {
        "seeds": args.seeds,
        "wall_seconds": wall,
        "per_seed": per_seed,
        "summary": {},
        "paired": {},
    }
    table = Table(title=f"PPO vs baselines, {args.seeds} seeds (mean [95% CI over seeds])")
    table.add_column("policy")
    for m in METRICS:
        table.add_column(m, justify="right")
    lines = ["| policy | " + " | ".join(METRICS) + " |", "|---|" + "---:|" * len(METRICS)]
    for name, vals in per_seed.items():
        cis = {m: bootstrap_ci(np.array(v), n_boot=10_000) for m, v in vals.items()}
        results["summary"][name] = cis
        cells = [f"{c['mean']:.3f} [{c['lo']:.3f}, {c['hi']:.3f}]" for c in cis.values()]
        table.add_row(name, *cells)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for base in BASELINES:
        diffs = {
            m: paired_bootstrap_ci(
                np.array(per_seed["ppo"][m]), np.array(per_seed[base][m]), n_boot=10_000
            )
            for m in METRICS
        }
        results["paired"][f"ppo - {base}"] = diffs
        cells = [f"{d['mean']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]" for d in diffs.values()]
        table.add_row(f"ppo - {base}", *cells)
        lines.append(f"| ppo - {base} | " + " | ".join(cells) + " |")
    console.print(table)
    beats = all(
        results["paired"][f"ppo - {b}"][m]["lo"] > 0
        for b in BASELINES
        for m in ("return_rate", "session_depth")
    )
    verdict = (
        f"target (PPO beats popular and random on return rate and session depth, "
        f"CI excluding 0): {'PASS' if beats else 'FAIL'}; wall time {wall / 60:.1f} min"
    )
    console.print(verdict)
    results["target_pass"] = beats

    if args.hybrid:
        hybrid = world.model_copy(update={"simulator": "hybrid"}, deep=True)
        hybrid.episode.text_info = "instructions"
        from recoworld.llm import make_backend

        backend = make_backend(hybrid.llm)
        sim = SimulateConfig(
            users=cfg.eval_users, episodes=cfg.eval_episodes, seed=10_000, log=False
        )
        policy = ModuleRecommender.from_checkpoint(out / "seed_0" / "checkpoint")
        results["hybrid"] = {}
        lines += [
            "",
            "Hybrid world (seed-0 policy, embedded LLM):",
            "",
            "| policy | " + " | ".join(METRICS) + " |",
            "|---|" + "---:|" * len(METRICS),
        ]
        try:
            for name, pol in (("ppo", policy), *((b, b) for b in BASELINES)):
                s = run_policy(hybrid, pol, sim, None, llm_backend=backend)
                results["hybrid"][name] = {m: s[m] for m in METRICS}
                lines.append(f"| {name} | " + " | ".join(f"{s[m]:.3f}" for m in METRICS) + " |")
                console.print(
                    f"hybrid world, {name}: " + ", ".join(f"{m} {s[m]:.3f}" for m in METRICS)
                )
        finally:
            backend.close()
    lines += ["", verdict]
    atomic_write_text("\n".join(lines) + "\n", out / "table.md")
    atomic_write_json(results, out / "results.json")
    console.print(f"wrote {out / 'results.json'} and {out / 'table.md'}")


if __name__ == "__main__":
    main()

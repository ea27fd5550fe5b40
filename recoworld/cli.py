"""The ``recoworld`` command line.

    recoworld simulate --config experiments/configs/demo.yaml --out runs/demo
    recoworld train --algo ppo --config experiments/configs/ppo.yaml --out runs/ppo
    recoworld train --algo hrl --config experiments/configs/hrl_novelty.yaml --out runs/hrl
    recoworld record --policy popular --epsilon 0.3 --episodes 2000 --out runs/logged
    recoworld train --algo bc --data runs/logged --out runs/bc    # offline, from the log
    recoworld catalog --source movielens [--save catalog.parquet]
    recoworld config [--config FILE]          # print the full, validated world config
    recoworld models prepare                  # convert the embedded LLM for vLLM (once)
    recoworld transcript --simulator hybrid   # a few users' sessions, readable
    recoworld transcript --simulator llm --mode score   # LLM-driven users (RecoWorld loop)
    recoworld evaluate --config experiments/configs/eval.yaml --out report/
    recoworld population test-item --item item.yaml --segment students --users 100

A run YAML has a ``world:`` section (a ``WorldConfig``) and a ``simulate:`` section (a
``SimulateConfig``); command-line flags override the file.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from recoworld.catalog import MissingDataPackageError, load_catalog
from recoworld.catalog.config import CatalogConfig
from recoworld.core.config import read_yaml_mapping
from recoworld.envs.config import resolve_world_config

console = Console() if sys.stdout.isatty() else Console(width=160)


def _read_run_file(path: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    if path is None:
        return {}, {}
    data = read_yaml_mapping(path)
    unknown = set(data) - {"world", "simulate", "train"}
    if unknown:
        raise ValueError(f"{path}: unknown top-level sections {sorted(unknown)}")
    return data.get("world") or {}, data.get("simulate") or {}


def cmd_simulate(args: argparse.Namespace) -> int:
    from recoworld.evaluation.simulate import run_simulation
    from recoworld.policies.rollout import SimulateConfig

    world_raw, sim_raw = _read_run_file(args.config)
    overrides: dict[str, Any] = {}
    if args.catalog:
        overrides["catalog"] = {"source": args.catalog}
    world = resolve_world_config(world_raw, overrides)
    for flag in ("users", "episodes", "seed"):
        if getattr(args, flag) is not None:
            sim_raw[flag] = getattr(args, flag)
    if args.policy:
        sim_raw["policies"] = args.policy
    sim = SimulateConfig.model_validate(sim_raw)
    console.print(
        f"[bold]RecoWorld simulate[/]: catalog={world.catalog.source} users={world.users.source}"
        f" policies={sim.policies} episodes={sim.episodes} slots={sim.users} seed={sim.seed}"
    )
    summary = run_simulation(world, sim, args.out, show_progress=not args.quiet)
    table = Table(title=f"Summary ({sim.episodes} user lives per policy)")
    cols = [
        ("mean_return", "return"),
        ("mean_steps_per_episode", "steps/life"),
        ("mean_sessions_per_episode", "sessions/life"),
        ("return_rate", "return rate"),
        ("click_rate", "CTR"),
        ("mean_watch_per_click", "watch/click"),
        ("follows_per_1k_steps", "follows/1k"),
        ("gifts_per_1k_steps", "gifts/1k"),
        ("instructions_per_1k_steps", "instr./1k"),
    ]
    table.add_column("policy")
    for _, label in cols:
        table.add_column(label, justify="right")
    for policy, s in summary.items():
        table.add_row(policy, *(f"{s[key]:.3f}" for key, _ in cols))
    console.print(table)
    console.print(f"outputs in [bold]{args.out}[/]: summary.json, retention.png, manifest.json"
                  + (", trajectories_<policy>.parquet" if sim.log else ""))  # fmt: skip
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from recoworld.evaluation.report import print_leaderboard
    from recoworld.evaluation.runner import load_eval_config, run_evaluation

    cfg = load_eval_config(args.config)
    updates: dict[str, Any] = {}
    if args.seeds:
        updates["seeds"] = args.seeds
    for flag in ("users", "episodes"):
        if getattr(args, flag) is not None:
            updates[flag] = getattr(args, flag)
    if args.policy:
        updates["policies"] = [p for p in cfg.policies if p.name in args.policy]
        missing = set(args.policy) - {p.name for p in cfg.policies}
        if missing:
            raise ValueError(f"--policy: not in {args.config}: {sorted(missing)}")
    if updates:
        cfg = type(cfg).model_validate({**cfg.model_dump(), **updates})
    names = [p.name for p in cfg.policies]
    console.print(
        f"[bold]RecoWorld evaluate[/]: policies={names} worlds={[w.name for w in cfg.worlds]} "
        f"seeds={cfg.seeds} lives/run={cfg.episodes} baseline={cfg.baseline}"
    )
    results = run_evaluation(
        cfg, args.out, show_progress=not args.quiet, base_dir=Path(args.config).parent
    )
    print_leaderboard(results, console)
    console.print(f"outputs in [bold]{args.out}[/]: report.html, results.json, episodes.parquet, "
                  "trajectories/, manifest.json")  # fmt: skip
    return 0


def cmd_population_test_item(args: argparse.Namespace) -> int:
    from recoworld.evaluation.creator_studio import format_report, run_studio

    options = {k: getattr(args, k) for k in ("comparables", "position", "policy", "seed")}
    console.print(
        f"[bold]RecoWorld creator studio[/]: {args.item} -> segment {args.segment!r}, "
        f"{args.users} users" + (f", simulator {args.simulator}" if args.simulator else "")
    )
    report = run_studio(
        args.item, args.segment, args.users, out_dir=args.out, world=args.config,
        simulator=args.simulator, **options,
    )  # fmt: skip
    console.print(format_report(report), markup=False, highlight=False)
    if args.out:
        console.print(f"written to [bold]{args.out}[/]: studio.md, studio.json, manifest.json")
    return 0


def cmd_transcript(args: argparse.Namespace) -> int:
    from recoworld.evaluation.simulate import write_transcript

    world_raw, _ = _read_run_file(args.config)
    overrides: dict[str, Any] = {}
    if args.simulator:
        overrides["simulator"] = args.simulator
    if args.mode:
        overrides["llm_user"] = {"mode": args.mode}
    if args.catalog:
        overrides["catalog"] = {"source": args.catalog}
    world = resolve_world_config(world_raw, overrides)
    if world.simulator != "parametric":
        console.print(f"starting the LLM backend ({world.llm.backend}: {world.llm.model}) ...")
    text = write_transcript(world, args.out, args.users, args.steps, args.policy, args.seed)
    console.print(text, markup=False, highlight=False)
    console.print(f"written to [bold]{args.out}[/]")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {"algo": args.algo}
    for flag in ("iterations", "seed"):
        if getattr(args, flag) is not None:
            overrides[flag] = getattr(args, flag)
    if args.algo in ("bc", "marwil"):
        return _train_offline(args, overrides)
    if args.data:
        raise ValueError("--data is for the offline algorithms (bc, marwil)")
    from recoworld.rl.config import load_train_run
    from recoworld.rl.trainer import train

    world, cfg = load_train_run(args.config, overrides)
    console.print(
        f"[bold]RecoWorld train[/]: algo={cfg.algo} simulator={world.simulator} "
        f"catalog={world.catalog.source} iterations={cfg.iterations} seed={cfg.seed} "
        f"users/runner={cfg.num_envs}" + (f" resume={args.resume}" if args.resume else "")
    )
    last = train(world, cfg, args.out, resume=args.resume, show_progress=not args.quiet)
    console.print(
        f"final evaluation ({cfg.eval_episodes} user lives): return {last['mean_return']:.3f}, "
        f"return rate {last['return_rate']:.3f}, session depth {last['session_depth']:.2f}, "
        f"CTR {last['click_rate']:.3f}"
    )
    console.print(f"outputs in [bold]{args.out}[/]: checkpoint/, checkpoints/, eval_curve.csv, "
                  "progress.csv, result.json, tb/, manifest.json")  # fmt: skip
    return 0


def _train_offline(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    from recoworld.rl.offline.algorithm import OfflineTrainConfig, train_offline

    if not args.data:
        raise ValueError(f"--algo {args.algo} trains from logged data: pass --data DIR "
                         "(written by `recoworld record`)")  # fmt: skip
    raw = read_yaml_mapping(args.config).get("train") or {} if args.config else {}
    cfg = OfflineTrainConfig.model_validate({**raw, **overrides})
    console.print(f"[bold]RecoWorld train[/]: algo={cfg.algo} data={args.data} "
                  f"iterations={cfg.iterations} seed={cfg.seed}")  # fmt: skip
    result = train_offline(args.data, cfg, args.out, show_progress=not args.quiet)
    ev = result["eval"]
    console.print(
        f"evaluation ({cfg.eval_episodes} user lives): return {ev['mean_return']:.3f}, "
        f"return rate {ev['return_rate']:.3f}, session depth {ev['session_depth']:.2f}; "
        f"checkpoint {result['checkpoint']}"
    )
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    from recoworld.rl.offline.algorithm import record_offline

    world_raw, _ = _read_run_file(args.config)
    world = resolve_world_config(world_raw)
    stats = record_offline(world, args.policy, args.out, episodes=args.episodes,
                           users=args.users, seed=args.seed, epsilon=args.epsilon,
                           trajectories=args.trajectories)  # fmt: skip
    scalars = {k: v for k, v in stats.items() if not isinstance(v, (dict, list))}
    console.print(f"recorded {args.policy} (epsilon {args.epsilon}) in [bold]{args.out}[/]: "
                  f"{scalars}")  # fmt: skip
    return 0


def cmd_catalog(args: argparse.Namespace) -> int:
    catalog, data = load_catalog(CatalogConfig(source=args.source))
    info = catalog.describe()
    if data is not None:
        info.update(ratings=data.n_ratings, users=data.n_users)
    for key, value in info.items():
        console.print(f"{key:>22}: {value}")
    for i in range(min(args.show, catalog.n_items)):
        console.print(f"  [{i}] {catalog.titles[i]} — {catalog.descriptions[i]}")
    if args.save:
        console.print(f"saved to {catalog.save(args.save)}")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    world_raw, _ = _read_run_file(args.config)
    sys.stdout.write(resolve_world_config(world_raw).to_yaml())
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from recoworld.core.paths import cache_dir
    from recoworld.llm.models import EMBEDDED_NAME, embedded_gguf, prepare_embedded_model

    if args.action == "prepare":
        console.print(f"converting {embedded_gguf()} (once) ...")
        path = prepare_embedded_model(force=args.force)
        console.print(f"{EMBEDDED_NAME}: [bold]{path}[/]")
    else:
        target = cache_dir() / "models" / EMBEDDED_NAME
        state = "prepared" if (target / ".recoworld-complete").exists() else "not prepared"
        console.print(f"{EMBEDDED_NAME}: {target} ({state}); source {embedded_gguf()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recoworld", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulate", help="run policies in a world; write logs and a summary")
    sim.add_argument("--config", help="run YAML with world: and simulate: sections")
    sim.add_argument("--out", default="runs/simulate", help="output directory")
    sim.add_argument(
        "--policy",
        action="append",
        help="policy (repeatable): random, popular, oracle (reads hidden state)",
    )
    sim.add_argument("--catalog", help="catalog source: synthetic, movielens or a path")
    sim.add_argument("--users", type=int, help="parallel user slots")
    sim.add_argument("--episodes", type=int, help="user lives per policy")
    sim.add_argument("--seed", type=int, help="seed shared by all policies")
    sim.add_argument("--quiet", action="store_true", help="no progress bar")
    sim.set_defaults(func=cmd_simulate)

    trn = sub.add_parser("train", help="train a recommender policy with RLlib")
    trn.add_argument("--algo", default="ppo",
                     choices=["ppo", "hrl", "slate_ts", "rliv_ua", "bc", "marwil"])  # fmt: skip
    trn.add_argument("--data", help="bc/marwil: logged data directory (`recoworld record`)")
    trn.add_argument("--config", help="run YAML (world: and train: sections)")
    trn.add_argument("--out", default="runs/train")
    trn.add_argument("--resume", help="continue from this checkpoint directory")
    trn.add_argument("--iterations", type=int, help="training iterations (this run)")
    trn.add_argument("--seed", type=int)
    trn.add_argument("--quiet", action="store_true", help="no progress bar")
    trn.set_defaults(func=cmd_train)

    rec = sub.add_parser("record", help="log a policy's experience for offline RL (RLlib layout)")
    rec.add_argument("--config", help="run YAML (its world: section)")
    rec.add_argument("--policy", default="popular", help="baseline name (random, popular, ...)")
    rec.add_argument("--epsilon", type=float, default=0.0, help="share of random slates")
    rec.add_argument("--episodes", type=int, default=1000, help="user lives to log")
    rec.add_argument("--users", type=int, default=64)
    rec.add_argument("--seed", type=int, default=0)
    rec.add_argument("--trajectories", action="store_true", help="also the trajectory log")
    rec.add_argument("--out", default="runs/offline_data")
    rec.set_defaults(func=cmd_record)

    ev = sub.add_parser("evaluate", help="compare policies across worlds and seeds; HTML report")
    ev.add_argument("--config", required=True, help="eval YAML (an evaluate: section)")
    ev.add_argument("--out", default="runs/report", help="output directory")
    ev.add_argument("--policy", action="append", help="only these policies of the config")
    ev.add_argument("--seeds", type=int, nargs="+", help="seeds (override the config)")
    ev.add_argument("--users", type=int, help="parallel user slots per run")
    ev.add_argument("--episodes", type=int, help="user lives per (world, seed, policy)")
    ev.add_argument("--quiet", action="store_true", help="no progress bars")
    ev.set_defaults(func=cmd_evaluate)

    pop = sub.add_parser("population", help="population tools (creator studio)")
    pop_sub = pop.add_subparsers(dest="population_command", required=True)
    ti = pop_sub.add_parser(
        "test-item", help="how would a segment respond to a new item? (creator studio)"
    )
    ti.add_argument("--item", required=True, help="item YAML: title, description, topics, ...")
    ti.add_argument("--segment", required=True, help="segment name (the world's segments)")
    ti.add_argument("--users", type=int, default=100, help="simulated users of the segment")
    ti.add_argument("--config", help="world YAML (default: MovieLens, fitted users, LLM users)")
    ti.add_argument("--simulator", choices=["llm", "hybrid", "parametric"])
    ti.add_argument("--comparables", type=int, default=3, help="existing items to compare with")
    ti.add_argument("--position", type=int, default=0, help="slate slot of the item (0 = top)")
    ti.add_argument("--policy", default="popular", help="fills the other slots")
    ti.add_argument("--seed", type=int, default=0)
    ti.add_argument("--out", help="directory for studio.md, studio.json, manifest.json")
    ti.set_defaults(func=cmd_population_test_item)

    tr = sub.add_parser("transcript", help="print and save a few users' sessions, as text")
    tr.add_argument("--config", help="run YAML (its world: section)")
    tr.add_argument("--simulator", choices=["parametric", "hybrid", "llm"])
    tr.add_argument("--mode", choices=["score", "generate"], help="llm simulator: decision mode")
    tr.add_argument("--catalog", help="catalog source: synthetic, movielens or a path")
    tr.add_argument("--users", type=int, default=3)
    tr.add_argument("--steps", type=int, default=15)
    tr.add_argument("--policy", default="popular", choices=["random", "popular", "oracle"])
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--out", default="runs/transcript.md")
    tr.set_defaults(func=cmd_transcript)

    cat = sub.add_parser("catalog", help="load a catalog and describe it")
    cat.add_argument("--source", default="synthetic")
    cat.add_argument("--show", type=int, default=3, help="items to print")
    cat.add_argument("--save", help="write the catalog to this .parquet file")
    cat.set_defaults(func=cmd_catalog)

    models = sub.add_parser("models", help="the embedded LLM (SmolLM2-135M-Instruct)")
    models.add_argument("action", choices=["prepare", "info"])
    models.add_argument("--force", action="store_true", help="convert again")
    models.set_defaults(func=cmd_models)

    conf = sub.add_parser("config", help="print the full validated world config as YAML")
    conf.add_argument("--config", help="run YAML (its world: section)")
    conf.set_defaults(func=cmd_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ValidationError as err:
        console.print(f"[bold red]invalid configuration[/]\n{err}")
        return 2
    except (MissingDataPackageError, FileNotFoundError, ValueError) as err:
        console.print(f"[bold red]error:[/] {err}")
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

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
    recoworld tasks                           # the task suite: ids, phenomena, oracles, budgets
    recoworld tasks check --out runs/check    # each task's phenomenon check (its two oracles)
    recoworld benchmark --quick --out runs/bench   # train + evaluate the task suite (CI profile)
    recoworld fidelity card --out runs/fidelity_card   # the fidelity report card (--quick: CI)
    recoworld bench [--quick]                 # throughput vs RecSim and the world's own modes

A run YAML has a ``world:`` section (a ``WorldConfig``) and a ``simulate:`` section (a
``SimulateConfig``); command-line flags override the file.

Errors print as ``error: what failed, where`` and ``hint: what to do`` on stderr (plus
``partial outputs kept in DIR`` when the failed run wrote some), with exit code 2 when the
command cannot run as given (flags, config, missing files, checkpoints, data packages or
extras), 1 when the run failed (LLM backend, I/O, a bug) and 130 when interrupted.
``--debug`` (before or after the command) shows the full traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from recoworld.catalog import MissingDataPackageError, load_catalog
from recoworld.catalog.config import CatalogConfig
from recoworld.core.config import read_yaml_mapping
from recoworld.core.errors import CheckpointError, ConfigError, RecoWorldError, require
from recoworld.envs.config import resolve_world_config

if TYPE_CHECKING:
    from recoworld.envs.config import WorldConfig

console = Console() if sys.stdout.isatty() else Console(width=160)

EXIT_RUNTIME = 1  # the run started and failed (LLM backend, I/O, an unexpected error)
EXIT_USAGE = 2  # the command cannot run as given (flags, config, missing files or packages)
EXIT_INTERRUPTED = 130


@dataclass
class RunContext:
    """What the error boundary of ``main`` knows about the command being run: its output
    path (to name partial outputs), the files it reads (to name the file of a config error)
    and the worlds it resolved (to name the LLM server of a backend error)."""

    out: str | None = None
    config: str | None = None  # the command's --config
    # model title -> (the file it is read from, its dotted path in that file; None: the
    # model's usual section when the file has it, e.g. `world:` for a WorldConfig)
    sources: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    worlds: list[WorldConfig] = field(default_factory=list)
    started: float = field(default_factory=time.time)


def _context(args: argparse.Namespace) -> RunContext:
    ctx = getattr(args, "context", None)
    if ctx is None:  # a handler called without main(): keep what it notes anyway
        ctx = args.context = RunContext()
    return ctx


def _world(
    args: argparse.Namespace, config: Any, overrides: dict[str, Any] | None = None
) -> WorldConfig:
    """``resolve_world_config`` whose world the error boundary knows about."""
    world = resolve_world_config(config, overrides)
    _context(args).worlds.append(world)
    return world


def _read_run_file(path: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    if path is None:
        return {}, {}
    data = read_yaml_mapping(path)
    unknown = set(data) - {"world", "simulate", "train"}
    if unknown:
        raise ConfigError(
            f"{path}: unknown top-level sections {sorted(unknown)}",
            hint="a run YAML has `world:`, `simulate:` and `train:` sections",
        )
    return data.get("world") or {}, data.get("simulate") or {}


def cmd_simulate(args: argparse.Namespace) -> int:
    from recoworld.evaluation.simulate import run_simulation
    from recoworld.policies.rollout import SimulateConfig

    world_raw, sim_raw = _read_run_file(args.config)
    overrides: dict[str, Any] = {}
    if args.catalog:
        overrides["catalog"] = {"source": args.catalog}
    world = _world(args, world_raw, overrides)
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
            raise ConfigError(
                f"--policy: not in {args.config}: {sorted(missing)}",
                hint=f"the policies of {args.config}: {[p.name for p in cfg.policies]}",
            )
    if updates:
        cfg = type(cfg).model_validate({**cfg.model_dump(), **updates})
    # fail before any run: the worlds' configs and the checkpoints (not after an hour of runs)
    base = Path(args.config).parent
    ctx = _context(args)
    evaluate = "evaluate." if "evaluate" in read_yaml_mapping(args.config) else ""
    for i, ew in enumerate(cfg.worlds):
        overrides = (args.config, f"{evaluate}worlds[{i}].overrides")
        if ew.config is None:
            ctx.sources["WorldConfig"] = overrides
        else:
            path = Path(ew.config)
            if not path.is_absolute() and not path.exists() and (base / path).exists():
                path = base / path
            ctx.sources["WorldConfig"] = (str(path), None)
        ctx.worlds.append(ew.world_config(base))
    ctx.sources.pop("WorldConfig", None)
    for spec in cfg.policies:
        if spec.checkpoint is not None and not Path(spec.checkpoint).exists():
            raise CheckpointError(
                f"{args.config}: policy {spec.name!r}: checkpoint {spec.checkpoint} not found "
                f"(looked in {Path(spec.checkpoint).resolve()})"
            )
    names = [p.name for p in cfg.policies]
    console.print(
        f"[bold]RecoWorld evaluate[/]: policies={names} worlds={[w.name for w in cfg.worlds]} "
        f"seeds={cfg.seeds} lives/run={cfg.episodes} baseline={cfg.baseline}"
    )
    results = run_evaluation(cfg, args.out, show_progress=not args.quiet, base_dir=base)
    print_leaderboard(results, console)
    console.print(f"outputs in [bold]{args.out}[/]: report.html, results.json, episodes.parquet, "
                  "trajectories/, manifest.json")  # fmt: skip
    return 0


def _names(flag: str, value: str | None) -> list[str] | None:
    """A comma-separated list flag (None when not given; an empty item is an error)."""
    if value is None:
        return None
    names = [v.strip() for v in value.split(",")]
    if not all(names):
        raise ConfigError(f"{flag}: empty name in {value!r}", hint=f"pass {flag} A,B,...")
    return names


def _flag_error(flag: str, err: ConfigError) -> ConfigError:
    return ConfigError(f"{flag}: {err}", hint=getattr(err, "hint", ""))


def _task_keys(value: str | None) -> list[str] | None:
    from recoworld.evaluation.benchmark import resolve_task

    names = _names("--tasks", value)
    try:
        return None if names is None else [resolve_task(n).key for n in names]
    except ConfigError as err:
        raise _flag_error("--tasks", err) from None


def cmd_bench(args: argparse.Namespace) -> int:
    from recoworld.evaluation.throughput import format_table, run

    console.print(
        f"[bold]RecoWorld bench[/]{' (quick profile)' if args.quick else ''}: random slates "
        "of 2 from 10 candidates, text off, user-steps/s on one core"
    )
    batches = tuple(args.batches) if args.batches else None
    rows, recsim, note = run(args.quick, batches, args.seconds)
    print(note)
    print(format_table(rows, recsim))
    if args.json:
        out = {"recsim_steps_per_s": recsim, "note": note,
               "rows": [vars(r) for r in rows]}  # fmt: skip
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


def cmd_benchmark(args: argparse.Namespace) -> int:
    from recoworld.evaluation.benchmark import BenchmarkConfig, check_algos, run_benchmark
    from recoworld.evaluation.benchmark_report import policy_rows

    raw: dict[str, Any] = {"quick": args.quick}
    tasks = _task_keys(args.tasks)
    if tasks is not None:
        raw["tasks"] = tasks
    algos = _names("--algos", args.algos)
    if algos is not None:
        try:
            raw["algos"] = check_algos(algos)
        except ConfigError as err:
            raise _flag_error("--algos", err) from None
    if args.seeds is not None:
        raw["seeds"] = list(range(args.seeds))
    for flag in ("budget", "episodes", "users", "eval_seeds"):
        if getattr(args, flag) is not None:
            raw[flag] = getattr(args, flag)
    if args.train is not None:
        try:
            raw["train"] = json.loads(args.train)
        except json.JSONDecodeError as err:
            raise ConfigError(
                f"--train: not JSON ({err.msg} at character {err.pos}): {args.train!r}",
                hint='e.g. --train \'{"ppo": {"lr": 0.0005}}\'',
            ) from None
    cfg = BenchmarkConfig.model_validate(raw)
    own = "each task's"
    console.print(
        f"[bold]RecoWorld benchmark[/]{' (quick profile)' if cfg.quick else ''}: "
        f"tasks={cfg.tasks} algos={own if cfg.algos is None else cfg.algos} "
        f"training seeds={cfg.training_seeds()} budget={cfg.budget or own}"
    )
    results = run_benchmark(cfg, args.out, show_progress=not args.quiet)
    cols = ("policy", "kind", "return", "return rate", "session depth", "CTR", "norm. return")
    for key, task in results["tasks"].items():
        table = Table(title=f"{key} (normalized: 0 = random, 100 = exploiting oracle)")
        for c in cols:
            table.add_column(c, justify="left" if c in ("policy", "kind") else "right")
        for row in policy_rows(task):
            table.add_row(*(row[c] for c in cols))
        console.print(table)
    console.print(f"outputs in [bold]{args.out}[/]: benchmark.md, benchmark.html, "
                  "benchmark.json, manifest.json, references/, runs/")  # fmt: skip
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    from recoworld.tasks import all_tasks

    table = Table(title="RecoWorld tasks", show_lines=True)
    for c in ("id", "summary", "phenomenon", "oracles (exploit / blind)", "budget", "algorithms"):
        table.add_column(c, overflow="fold")
    for t in all_tasks():
        table.add_row(t.id + ("" if t.kind == "gym" else f" ({t.kind})"), t.summary,
                      t.phenomenon, f"{t.exploit} / {t.blind}", f"{t.budget_steps:,} steps",
                      ", ".join(t.algorithms))  # fmt: skip
    console.print(table)
    return 0


def cmd_tasks_check(args: argparse.Namespace) -> int:
    from recoworld.evaluation.benchmark import run_checks
    from recoworld.evaluation.benchmark_report import check_rows

    tasks = _task_keys(args.tasks)
    own = "each task's"
    console.print(f"[bold]RecoWorld tasks check[/]: tasks={tasks or 'all'} "
                  f"seeds={args.seeds or own}")  # fmt: skip
    checks = run_checks(tasks, args.out, args.seeds, args.episodes, args.users,
                        show_progress=not args.quiet,
                        write_reference=args.write_reference)  # fmt: skip
    rows = check_rows(checks)
    table = Table(title="Phenomenon checks (mean return)")
    for c in rows[0]:
        table.add_column(c, justify="left" if c == "task" else "right")
    for row in rows:
        table.add_row(*row.values())
    console.print(table)
    console.print(f"outputs in [bold]{args.out}[/]: check.json, check.md, manifest.json"
                  + (" (and each task file's reference: section)" if args.write_reference
                     else ""))  # fmt: skip
    return 0 if all(c["valid"] for c in checks.values()) else EXIT_RUNTIME


def cmd_population_test_item(args: argparse.Namespace) -> int:
    from recoworld.evaluation.creator_studio import StudioConfig, format_report, run_studio

    options = {k: getattr(args, k) for k in ("comparables", "position", "policy", "seed")}
    # the world's LLM settings, for the error boundary (run_studio resolves it again)
    if args.config is not None:
        _world(args, args.config, {"simulator": args.simulator} if args.simulator else None)
    else:  # the studio's default world (only to name its LLM in errors: never fails here)
        default_world = StudioConfig.model_fields["world"].default_factory
        with contextlib.suppress(Exception):
            _context(args).worlds.append(default_world())  # type: ignore[misc,call-arg]
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
    world = _world(args, world_raw, overrides)
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
        raise ConfigError(
            "--data is for the offline algorithms (bc, marwil)",
            hint="pass --algo bc or --algo marwil to train from logged data",
        )
    if args.resume is not None:  # before importing Ray and building anything
        resume = Path(args.resume)
        if not resume.exists():
            raise CheckpointError(f"--resume: checkpoint {args.resume} not found")
        if not resume.is_dir():
            raise CheckpointError(f"--resume: {args.resume} is a file, not a checkpoint directory")
    from recoworld.rl.config import load_train_run
    from recoworld.rl.trainer import train

    world, cfg = load_train_run(args.config, overrides)
    _context(args).worlds.append(world)
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
    require("torch", "rllib", "offline RL training")

    from recoworld.rl.offline.algorithm import OfflineTrainConfig, train_offline

    if not args.data:
        raise ConfigError(f"--algo {args.algo} trains from logged data: pass --data DIR",
                          hint="`recoworld record --out DIR` writes such a directory")  # fmt: skip
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
    require("torch", "rllib", "recording offline RL data")

    from recoworld.rl.offline.algorithm import record_offline

    world_raw, _ = _read_run_file(args.config)
    world = _world(args, world_raw)
    stats = record_offline(world, args.policy, args.out, episodes=args.episodes,
                           users=args.users, seed=args.seed, epsilon=args.epsilon,
                           trajectories=args.trajectories)  # fmt: skip
    scalars = {k: v for k, v in stats.items() if not isinstance(v, (dict, list))}
    console.print(f"recorded {args.policy} (epsilon {args.epsilon}) in [bold]{args.out}[/]: "
                  f"{scalars}")  # fmt: skip
    return 0


def _card_llm_config(args: argparse.Namespace) -> Any:
    """The card's LLM rows from --llm-config (a YAML CardLLMConfig) and/or --llm names;
    --llm-users, --llm-calibration-users and --llm-ratios override; None without either."""
    from recoworld.evaluation.fidelity_llm import CardLLMConfig

    if not args.llm and not args.llm_config:
        for flag in ("llm_users", "llm_calibration_users", "llm_ratios", "llm_score_scales"):
            if getattr(args, flag) is not None:
                raise ConfigError(f"--{flag.replace('_', '-')} needs --llm or --llm-config")
        return None
    raw: dict[str, Any] = {}
    if args.llm_config:
        if not Path(args.llm_config).exists():
            raise ConfigError(f"--llm-config: {args.llm_config} not found")
        raw = read_yaml_mapping(args.llm_config)
    if args.llm:
        rows = CardLLMConfig.for_models(args.llm, args.llm_score_scales).model_dump()["rows"]
        raw["rows"] = list(raw.get("rows", [])) + rows
    if args.llm_users is not None:
        raw["users"] = args.llm_users
    if args.llm_calibration_users is not None:
        raw["calibration_users"] = args.llm_calibration_users
    if args.llm_ratios is not None:
        raw["ratios"] = args.llm_ratios
    return CardLLMConfig.model_validate(raw).model_dump()


def _number_list(text: str, cast: type, lowest: float, what: str, example: str) -> list[Any]:
    """A comma-separated list of numbers, each >= ``lowest`` (an argparse type)."""
    try:
        out = [cast(x) for x in text.split(",") if x.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected {what} like {example}: {text!r}") from err
    if not out or min(out) < lowest:
        raise argparse.ArgumentTypeError(f"expected {what} >= {lowest:g} like {example}: {text!r}")
    return out


def _scales(text: str) -> list[float]:
    return _number_list(text, float, 0.0, "scales", "1,2,4,8")


def _ratios(text: str) -> list[int]:
    return _number_list(text, int, 1, "ratios", "1,3")


def cmd_fidelity_card(args: argparse.Namespace) -> int:
    from recoworld.core.manifest import write_manifest
    from recoworld.evaluation.fidelity_card import (
        FidelityCardConfig,
        headline_rows,
        run_card,
        write_card,
    )

    cfg = FidelityCardConfig.quick_profile() if args.quick else FidelityCardConfig()
    updates: dict[str, Any] = {"seed": args.seed}
    if args.users is not None:
        updates["max_users"] = args.users
    if args.boot is not None:
        updates["n_boot"] = args.boot
    if args.ppo is not None:
        if not Path(args.ppo).exists():
            raise CheckpointError(f"--ppo: checkpoint {args.ppo} not found")
        updates["ppo_checkpoint"] = str(args.ppo)
    if args.no_ranking:
        updates["ranking"] = False
    if args.task is not None:
        updates["task"] = args.task
    llm = _card_llm_config(args)
    if llm is not None:
        updates["llm"] = llm
    cfg = FidelityCardConfig.model_validate(cfg.model_dump() | updates)
    console.print(f"[bold]Fidelity report card[/]{' (quick profile)' if cfg.quick else ''}: "
                  f"MovieLens-100k, the user of {cfg.task}, seed {cfg.seed}, "
                  f"ratios {cfg.ratios}, negatives {cfg.negatives}")  # fmt: skip
    results = run_card(cfg)
    paths = write_card(results, args.out)
    write_manifest(args.out, cfg.model_dump(mode="json"), cfg.seed)
    rows = headline_rows(results)
    table = Table(title="1:1, uniform negatives (ours: ML-100k; published: ML-1M)")
    for c in rows[0]:
        table.add_column(c, justify="left" if c in ("decider", "source") else "right")
    for row in rows:
        table.add_row(*row.values())
    console.print(table)
    ranking = results.get("ranking")
    if ranking:
        a = ranking["agreement"][ranking["primary"]]
        console.print(f"policy ranking, {ranking['primary']}: Spearman "
                      f"{a['spearman']['mean']:+.2f} [{a['spearman']['lo']:+.2f}, "
                      f"{a['spearman']['hi']:+.2f}], Kendall {a['kendall']['mean']:+.2f} "
                      "(SimUSER, on online A/B tests: 0.72)")  # fmt: skip
    llm = results.get("llm")
    for kind, per in (llm or {}).get("results", {}).items():
        for ratio, entry in per.items():
            for name in llm["llm_rows"]:  # type: ignore[index]
                s, g = entry["scorers"][name], entry["gains"][name]
                d, best = g["minus_best"]["accuracy"], g["best_nonllm"]["accuracy"]
                console.print(f"{name}, {kind} {ratio} ({llm['users']} users): accuracy "  # type: ignore[index]
                              f"{s['accuracy']['mean']:.3f}, F1 {s['f1']['mean']:.3f}; vs "
                              f"best non-LLM ({best}) {d['mean']:+.3f} [{d['lo']:+.3f}, "
                              f"{d['hi']:+.3f}]")  # fmt: skip
    console.print(f"outputs in [bold]{args.out}[/]: "
                  + ", ".join(p.name for p in paths.values()) + ", manifest.json")  # fmt: skip
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


DEBUG_HELP = "on errors, show the full traceback instead of a one-line message"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recoworld", description=__doc__.split("\n")[0])
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    # `--debug` after the subcommand too; SUPPRESS keeps a top-level --debug from being reset
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser(
        "simulate", parents=[common], help="run policies in a world; write logs and a summary"
    )
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

    trn = sub.add_parser("train", parents=[common], help="train a recommender policy with RLlib")
    trn.add_argument(
        "--algo",
        default="ppo",
        help="a registered algorithm (recoworld.rl.registry: ppo, hrl, slate_ts, rliv_ua, and any "
        "added with register_algorithm) or an offline one (bc, marwil); an unknown name is "
        "reported with the registered ones",
    )
    trn.add_argument("--data", help="bc/marwil: logged data directory (`recoworld record`)")
    trn.add_argument("--config", help="run YAML (world: and train: sections)")
    trn.add_argument("--out", default="runs/train")
    trn.add_argument("--resume", help="continue from this checkpoint directory")
    trn.add_argument("--iterations", type=int, help="training iterations (this run)")
    trn.add_argument("--seed", type=int)
    trn.add_argument("--quiet", action="store_true", help="no progress bar")
    trn.set_defaults(func=cmd_train)

    rec = sub.add_parser(
        "record", parents=[common], help="log a policy's experience for offline RL (RLlib layout)"
    )
    rec.add_argument("--config", help="run YAML (its world: section)")
    rec.add_argument("--policy", default="popular", help="baseline name (random, popular, ...)")
    rec.add_argument("--epsilon", type=float, default=0.0, help="share of random slates")
    rec.add_argument("--episodes", type=int, default=1000, help="user lives to log")
    rec.add_argument("--users", type=int, default=64)
    rec.add_argument("--seed", type=int, default=0)
    rec.add_argument("--trajectories", action="store_true", help="also the trajectory log")
    rec.add_argument("--out", default="runs/offline_data")
    rec.set_defaults(func=cmd_record)

    ev = sub.add_parser(
        "evaluate", parents=[common], help="compare policies across worlds and seeds; HTML report"
    )
    ev.add_argument("--config", required=True, help="eval YAML (an evaluate: section)")
    ev.add_argument("--out", default="runs/report", help="output directory")
    ev.add_argument("--policy", action="append", help="only these policies of the config")
    ev.add_argument("--seeds", type=int, nargs="+", help="seeds (override the config)")
    ev.add_argument("--users", type=int, help="parallel user slots per run")
    ev.add_argument("--episodes", type=int, help="user lives per (world, seed, policy)")
    ev.add_argument("--quiet", action="store_true", help="no progress bars")
    ev.set_defaults(func=cmd_evaluate)

    pop = sub.add_parser("population", parents=[common], help="population tools (creator studio)")
    pop_sub = pop.add_subparsers(dest="population_command", required=True)
    ti = pop_sub.add_parser(
        "test-item",
        help="how would a segment respond to a new item? (creator studio)",
        parents=[common],
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

    tr = sub.add_parser(
        "transcript", parents=[common], help="print and save a few users' sessions, as text"
    )
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

    bench = sub.add_parser(
        "benchmark",
        parents=[common],
        help="train the task suite's algorithms and score them against the oracles",
    )
    bench.add_argument("--tasks", help="comma-separated tasks (default: every task)")
    bench.add_argument("--algos", help="comma-separated algorithms (default: each task's)")
    bench.add_argument("--seeds", type=_positive, help="training seeds 0..N-1 (default 5)")
    bench.add_argument("--budget", type=_positive, help="env steps per run (default: the task's)")
    bench.add_argument("--episodes", type=_positive, help="user lives per evaluation seed")
    bench.add_argument("--users", type=_positive, help="parallel users of an evaluation")
    bench.add_argument("--eval-seeds", type=int, nargs="+", help="evaluation seeds")
    bench.add_argument(
        "--train",
        help='JSON of TrainConfig fields for every run, e.g. \'{"rliv_ua": {"critic_scale": '
        "0.2}}' (part of each run's fingerprint)",
    )
    bench.add_argument("--out", default="runs/benchmark", help="output directory (resumable)")
    bench.add_argument("--quick", action="store_true", help="the CI profile (seconds per task)")
    bench.add_argument("--quiet", action="store_true", help="no progress bars")
    bench.set_defaults(func=cmd_benchmark)

    thr = sub.add_parser(
        "bench",
        parents=[common],
        help="throughput: user-steps/s vs RecSim and vs the world's own slower modes",
    )
    thr.add_argument(
        "--quick", action="store_true", help="seconds in all; RecSim only if its venv exists"
    )
    thr.add_argument("--batches", type=_positive, nargs="+", help="vector env batch sizes")
    thr.add_argument("--seconds", type=float, help="seconds per setting (default 3, quick 0.3)")
    thr.add_argument("--json", help="also write the figures to this file")
    thr.set_defaults(func=cmd_bench)

    tasks = sub.add_parser(
        "tasks", parents=[common], help="list the task suite (`tasks check`: test phenomena)"
    )
    tasks.set_defaults(func=cmd_tasks)
    tasks_sub = tasks.add_subparsers(dest="tasks_command")
    check = tasks_sub.add_parser(
        "check", parents=[common], help="run each task's oracles; is its phenomenon there?"
    )
    check.add_argument("--tasks", help="comma-separated tasks (default: every task)")
    check.add_argument(
        "--seeds", type=int, nargs="+", help="evaluation seeds (default: the task's)"
    )
    check.add_argument("--episodes", type=_positive, help="user lives per seed")
    check.add_argument("--users", type=_positive, help="parallel users")
    check.add_argument("--out", default="runs/tasks_check", help="output directory")
    check.add_argument(
        "--write-reference",
        action="store_true",
        help="rewrite each task file's reference: section from its check (task's protocol only)",
    )
    check.add_argument("--quiet", action="store_true", help="no progress bars")
    check.set_defaults(func=cmd_tasks_check)

    fid = sub.add_parser(
        "fidelity", parents=[common], help="fidelity of the simulated users (`fidelity card`)"
    )
    fid_sub = fid.add_subparsers(dest="fidelity_command", required=True)
    card = fid_sub.add_parser(
        "card",
        parents=[common],
        help="the fidelity report card: Agent4Rec's taste discrimination, rating "
        "prediction, policy-ranking agreement and behaviour statistics on MovieLens-100k, "
        "fitted user vs baselines vs published simulators",
    )
    card.add_argument("--out", default="runs/fidelity_card", help="output directory")
    card.add_argument("--quick", action="store_true", help="the CI profile (160 users, seconds)")
    card.add_argument("--seed", type=int, default=0, help="seed of split, users and lists")
    card.add_argument("--users", type=_positive, help="a seeded subset of the eligible users")
    card.add_argument("--boot", type=_positive, help="bootstrap resamples (default 2000)")
    card.add_argument(
        "--task", help="the MovieLens task whose user is scored: MovieLens-v1 (the default; "
        "latent taste from who watches what) or MovieLens-v0 (from star ratings)",
    )  # fmt: skip
    card.add_argument(
        "--ppo", help="a trained PPO checkpoint to rank beside the baselines (optional)"
    )
    card.add_argument(
        "--no-ranking", action="store_true",
        help="skip the policy-ranking agreement and behaviour statistics (world rollouts)",
    )  # fmt: skip
    card.add_argument(
        "--llm", action="append", metavar="MODEL",
        help="add an LLM row: the LLM user (score mode) on this model via the in-process "
        "vLLM engine: 'embedded' (= smollm2, SmolLM2-135M-Instruct), 'gemma3-270m', an HF "
        "directory or a hub name; repeatable. Off by default (and in --quick)",
    )  # fmt: skip
    card.add_argument(
        "--llm-config", metavar="YAML",
        help="the LLM rows as a YAML CardLLMConfig (rows: [{label, llm: LLMConfig, llm_user: "
        "LLMUserConfig}], users, calibration_users, ratios, negatives, hybrid): any backend, "
        "e.g. an OpenAI-compatible server",
    )  # fmt: skip
    card.add_argument("--llm-users", type=_positive, help="scored users of the LLM rows (48)")
    card.add_argument(
        "--llm-calibration-users", type=_positive, help="calibration users of the LLM rows (24)"
    )
    card.add_argument("--llm-ratios", type=_ratios, help="ratios of the LLM rows, e.g. 1,3 (1)")
    card.add_argument(
        "--llm-score-scales", type=_scales, metavar="S1,S2,...",
        help="score_scale values to try per --llm model, the best chosen on the calibration "
        "users only (default: the LLM user's own, 4)",
    )  # fmt: skip
    card.set_defaults(func=cmd_fidelity_card)

    cat = sub.add_parser("catalog", parents=[common], help="load a catalog and describe it")
    cat.add_argument("--source", default="synthetic")
    cat.add_argument("--show", type=int, default=3, help="items to print")
    cat.add_argument("--save", help="write the catalog to this .parquet file")
    cat.set_defaults(func=cmd_catalog)

    models = sub.add_parser(
        "models", parents=[common], help="the embedded LLM (SmolLM2-135M-Instruct)"
    )
    models.add_argument("action", choices=["prepare", "info"])
    models.add_argument("--force", action="store_true", help="convert again")
    models.set_defaults(func=cmd_models)

    conf = sub.add_parser(
        "config", parents=[common], help="print the full validated world config as YAML"
    )
    conf.add_argument("--config", help="run YAML (its world: section)")
    conf.set_defaults(func=cmd_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. Errors become one or two lines on stderr (what failed and where,
    then ``hint:`` what to do) and exit code 2 (the command cannot run as given) or 1 (the
    run failed); ``--debug`` lets the exception through with its traceback."""
    args = build_parser().parse_args(argv)
    args.context = ctx = RunContext(out=getattr(args, "out", None),
                                    config=getattr(args, "config", None))  # fmt: skip
    if getattr(args, "item", None):
        ctx.sources["NewItem"] = (args.item, "")
    if args.debug:
        return int(args.func(args))
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        lines, code = ["interrupted"], EXIT_INTERRUPTED
    except Exception as err:
        lines, code = describe_error(err, ctx)
    partial = _partial_outputs(ctx)
    if partial:
        lines.append(f"partial outputs kept in {partial}")
    sys.stdout.flush()
    for line in lines:
        print(line, file=sys.stderr)
    sys.stderr.flush()
    return code


def describe_error(err: BaseException, ctx: RunContext | None = None) -> tuple[list[str], int]:
    """The lines (``error: ...`` and maybe ``hint: ...``) and exit code for ``err``."""
    from recoworld.llm.types import BackendError

    ctx = ctx or RunContext()
    hint = getattr(err, "hint", "") or ""
    if isinstance(err, ValidationError):  # before ValueError: it is one
        message, hint = _validation_message(err, ctx)
    elif isinstance(err, yaml.YAMLError):
        message = _yaml_message(err, ctx)
        hint = "fix the YAML syntax (indentation, `key: value` pairs, quotes)"
    elif isinstance(err, BackendError):
        message, hint = _backend_message(err, ctx)
    elif isinstance(err, RecoWorldError | ValueError | OSError):
        message = _one_line(err)
        if isinstance(err, FileNotFoundError) and not hint and "checkpoint" in message:
            hint = CheckpointError.hint
    elif isinstance(err, ModuleNotFoundError):
        message = f"the Python package {err.name!r} is not installed ({err})"
        hint = "install the project's dependencies (`make install`); --debug shows where"
    else:
        message = f"unexpected {type(err).__name__}: {_one_line(err)}"
        hint = "this looks like a bug: rerun with --debug for the traceback and report it"
    lines = [f"error: {message}"] + ([f"hint: {hint}"] if hint else [])
    usage = (ValueError, FileNotFoundError, ImportError, MissingDataPackageError, yaml.YAMLError)
    return lines, EXIT_USAGE if isinstance(err, usage) else EXIT_RUNTIME


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 600 else text[:597] + "..."


_SECTIONS = {  # model title -> its section in a run or eval YAML (the --config file)
    "WorldConfig": "world",
    "SimulateConfig": "simulate",
    "TrainConfig": "train",
    "OfflineTrainConfig": "train",
    "EvalConfig": "evaluate",
}


def _validation_message(err: ValidationError, ctx: RunContext) -> tuple[str, str]:
    """``FILE: section.field.path: message (got VALUE)`` for the first error, and how many
    more there are; the hint says which fields are valid when a field is unknown."""
    file, section = ctx.sources.get(err.title) or (
        ctx.config if err.title in _SECTIONS else None,
        None,
    )
    if section is None and file is not None:
        section = _SECTIONS.get(err.title)
        try:
            data = yaml.safe_load(Path(file).read_text())
        except (OSError, yaml.YAMLError):
            data = None
        if not (isinstance(data, dict) and section in data):
            section = None  # the file holds the model at its top level
    elif file is None:
        section = None
    sections = section.split(".") if section else []

    def path(e: Any) -> str:
        parts = list(sections)
        for p in e["loc"]:
            if isinstance(p, int) and parts:
                parts[-1] += f"[{p}]"
            else:
                parts.append(str(p))
        return ".".join(parts) or "(top level)"

    errors = err.errors(include_url=False)
    first = errors[0]
    msg = first["msg"].removeprefix("Value error, ")
    value = first.get("input")
    if first["type"] not in ("extra_forbidden", "missing") and isinstance(
        value, str | int | float | bool
    ):
        shown = repr(value)
        if len(shown) <= 60:
            msg += f" (got {shown})"
    where = f"{file}: " if file else f"invalid {err.title}: "
    message = f"{where}{path(first)}: {msg}"
    if len(errors) > 1:
        others = ", ".join(path(e) for e in errors[1:4])
        message += f" (and {len(errors) - 1} more: {others}{', ...' if len(errors) > 4 else ''})"
    if first["type"] == "extra_forbidden":
        hint = f"{first['loc'][-1]!r} is not a field of {err.title} (a typo?)"
        if err.title == "WorldConfig":
            hint += "; `recoworld config` prints every world field with its default"
    else:
        hint = f"fix the value in {file}" if file else "fix the value"
        hint += " or the command-line flag that sets it"
    return " ".join(message.split()), hint


def _yaml_message(err: yaml.YAMLError, ctx: RunContext) -> str:
    """Which file failed to parse (the error itself only says '<unicode string>') and where."""
    files = (ctx.config, *(f for f, _ in ctx.sources.values()))
    file = next((f for f in files if f and _bad_yaml(f)), None)
    problem = getattr(err, "problem", None) or _one_line(err)
    mark = getattr(err, "problem_mark", None)
    at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{file or 'a YAML file'}: invalid YAML: {problem}{at}"


def _bad_yaml(path: str) -> bool:
    try:
        yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError:
        return True
    except OSError:
        return False
    return False


def _backend_message(err: Exception, ctx: RunContext) -> tuple[str, str]:
    """The backend error, naming the server (URL and model) from the world's config."""
    message = _one_line(err)
    llm = next((w.llm for w in ctx.worlds if w.simulator != "parametric"), None)
    if llm is None and ctx.worlds:
        llm = ctx.worlds[0].llm
    if llm is None:
        return message, getattr(err, "hint", "")
    if llm.backend == "openai":
        from recoworld.llm.models import EMBEDDED, EMBEDDED_NAME

        served = EMBEDDED_NAME if llm.model == EMBEDDED else llm.model
        if llm.base_url not in message:
            message += f" (openai backend at {llm.base_url}, model {served!r})"
        hint = (
            f"check that the server at {llm.base_url} is running and serves {served!r} "
            "(e.g. `vllm serve MODEL --port PORT`), or set `llm.backend: vllm` for the "
            "in-process engine"
        )
    elif llm.backend == "vllm":
        message += f" (in-process vLLM engine, model {llm.model!r})"
        hint = (
            "check the model (`llm.model`; `recoworld models prepare` converts the embedded "
            "one) and the memory it may take (`llm.vllm.gpu_memory_utilization`)"
        )
    else:
        where = llm.ray.address or "the local Ray instance"
        message += f" (ray_vllm pool on {where}, model {llm.model!r})"
        hint = "check the Ray cluster (`llm.ray.address`) and that the engine actors started"
    return message, hint


def _partial_outputs(ctx: RunContext) -> str | None:
    """The command's output path when the failed run wrote files there (kept for
    inspection), else None."""
    if not ctx.out:
        return None
    out = Path(ctx.out)
    try:
        if out.is_file():
            return str(out) if out.stat().st_mtime >= ctx.started - 0.05 else None
        if not out.is_dir():
            return None
        for i, path in enumerate(out.rglob("*")):
            if i > 10_000:
                break
            if path.is_file() and path.stat().st_mtime >= ctx.started - 0.05:
                return str(out)
    except OSError:
        return None
    return None


if __name__ == "__main__":
    raise SystemExit(main())

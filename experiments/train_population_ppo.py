"""Multi-agent PPO on the population env: one shared slate policy for every user.

python experiments/train_population_ppo.py [--users 32] [--capacity 48] [--arrival-rate 0.5]
    [--max-cycles 200] [--iterations 20] [--out runs/population_ppo] [--seed 0]
    [--config population.yaml]

``--config``: a YAML mapping of a ``PopulationConfig`` (``world:`` a mapping or a world YAML
path, ``social:``, ...);
the flags override its top-level fields. Writes ``manifest.json``, ``result.json`` (one
RLlib result per line) and ``checkpoint/`` (the shared module alone:
``checkpoint/learner_group/learner/rl_module/shared``) under ``--out``; prints the mean
return of a user's life per iteration.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from recoworld.core.config import read_yaml_mapping
from recoworld.core.manifest import write_manifest
from recoworld.envs.config import resolve_world_config
from recoworld.envs.population.config import PopulationConfig
from recoworld.rl.common.config import ModelSettings
from recoworld.rl.population.algorithm import train_population
from recoworld.rl.ppo.config import PPOSettings

DEFAULTS = {"n_users": 32, "arrival_rate": 0.5, "max_cycles": 200}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="PopulationConfig YAML")
    parser.add_argument("--users", type=int, help="users at the start (default 32)")
    parser.add_argument("--capacity", type=int, help="most users ever (default 1.5 x users)")
    parser.add_argument("--arrival-rate", type=float, help="new users per step (default 0.5)")
    parser.add_argument("--max-cycles", type=int, help="steps per RLlib episode (default 200)")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument(
        "--train-batch-size", type=int, default=2048, help="user (agent) steps per iteration"
    )
    parser.add_argument("--out", type=Path, default=Path("runs/population_ppo"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    flags = {"n_users": args.users, "capacity": args.capacity,
             "arrival_rate": args.arrival_rate, "max_cycles": args.max_cycles}  # fmt: skip
    raw = {**DEFAULTS, **(read_yaml_mapping(args.config) if args.config else {}),
           **{k: v for k, v in flags.items() if v is not None}}  # fmt: skip
    if isinstance(raw.get("world"), str):  # a world YAML path
        raw["world"] = resolve_world_config(raw["world"]).model_dump(mode="json")
    if not raw.get("capacity"):
        raw["capacity"] = raw["n_users"] + raw["n_users"] // 2
    pop = PopulationConfig.model_validate(raw)
    ppo = PPOSettings(train_batch_size=args.train_batch_size,
                      minibatch_size=min(256, args.train_batch_size))  # fmt: skip
    model = ModelSettings()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    write_manifest(out, {"population": pop.model_dump(mode="json"),
                         "ppo": ppo.model_dump(mode="json"),
                         "model": model.model_dump(mode="json"),
                         "iterations": args.iterations}, args.seed)  # fmt: skip

    def report(s: dict) -> None:
        ret = s["user_return_mean"]
        total = s["episode_return_mean"]
        print(f"iter {s['iteration']:3d}  user return "
              f"{'n/a' if ret is None else f'{ret:8.3f}'}  population return "
              f"{'n/a' if total is None else f'{total:9.2f}'}  env steps "
              f"{int(s['num_env_steps_sampled_lifetime'] or 0)}", flush=True)  # fmt: skip

    last = train_population(pop, args.iterations, out, seed=args.seed, ppo=ppo, model=model,
                            show_progress=not args.quiet, on_iteration=report)  # fmt: skip
    print(f"checkpoint: {last['checkpoint']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""RLlib sampling throughput on RecoWorld's vector env, against stepping the env directly.

For each number of parallel users (``num_envs``), in one process and one run:

- ``direct``: ``RecoWorldVectorEnv.step`` with uniformly random distinct slates drawn before
  the timed loop (no RLlib, no policy): the simulator's own ceiling;
- ``direct+module``: the same env stepped by the slate RLModule's exploration slates
  (``ModuleRecommender(explore=True)``: one batched torch forward + Gumbel-top-k per step),
  no RLlib: what the policy itself costs;
- ``rllib``: RLlib's ``SingleAgentEnvRunner`` sampling with the slate module on the same
  env, built from ``build_algorithm_config(world, TrainConfig(num_envs=n))``
  (``gym_env_vectorize_mode="vector_entry_point"``: one ``RecoWorldVectorEnv`` of n users),
  ``runner.sample(num_timesteps=...)`` as PPO's training loop calls it.

Throughput is env-steps/s (user-steps: autoreset steps, where RLlib starts a new episode
and no user acts, are not counted, in any mode), wall clock, one torch thread. For the
RLlib runner the time per vector step is split by wrapping, on the runner instance, the
env's ``step`` (RecoWorld's own step vs the ``DictInfoToList`` wrapper RLlib adds), the
module's ``forward_exploration`` and the env-to-module / module-to-env connector
pipelines; the remainder is the runner's per-env Python loop (``add_env_step`` into one
``SingleAgentEpisode`` per user, unbatching the observation dict, callbacks, episode cuts).
Each connector piece is timed too (``connector_pieces_ms_per_vector_step`` in ``--json``).

    python benchmarks/rllib_sampling.py [--num-envs 1 16 64 256] [--seconds 3] [--repeats 2]
        [--json] [--config world.yaml]

Each measurement is repeated (interleaved) and the fastest run kept: on a shared 2-core
machine a run is slowed by whatever else is running, never sped up.

``--ppo-iteration`` times whole PPO iterations instead (issue 20: "a PPO iteration of
2,048 steps on the vector env: its time and the share spent in the env"): PPO built as
``recoworld train`` builds it (``build_algorithm_config(world, TrainConfig(...))``, the
default slate module, ``num_env_runners=0``: sampling in the driver, one local learner),
``train_batch_size`` env steps per iteration (2,048 by default) from ``--num-envs`` users
(64 by default, ``TrainConfig``'s), one untimed warm-up ``algo.train()`` then
``--iterations`` timed ones. Each iteration's wall time is split, by wrapping the instances'
methods, into: the env (RecoWorld's vector ``step``), the module's exploration forward, the
rest of sampling (``EnvRunner.sample`` and ``get_metrics`` minus those two: connectors, the
runner's per-user episode bookkeeping, ``DictInfoToList``), the learner connector (GAE:
the value forward over the batch), the rest of the learner update (``num_epochs`` x
minibatches of forward, loss, backward and step), and the remainder of ``algo.train()``
(weight sync, metrics, results):

    python benchmarks/rllib_sampling.py --ppo-iteration [--iterations 3] [--num-envs 64]
        [--train-batch 2048] [--text-info all|instructions|none] [--json] [--config world.yaml]

The world is the default one (or ``--config``) as ``recoworld train`` gets it: text in
``info`` on (``text_info: all``) unless ``--text-info`` says otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

from recoworld import RecoWorldVectorEnv
from recoworld.envs.config import resolve_world_config
from recoworld.rl.common.recommender import ModuleRecommender
from recoworld.rl.common.slate_module import SlateScoringModule
from recoworld.rl.config import TrainConfig
from recoworld.rl.ppo.algorithm import build_algorithm_config

PARTS = ("world_step", "info_to_list", "module", "env_to_module", "module_to_env", "runner_loop")


def measure_direct(world: Any, n: int, seconds: float, policy: str, seed: int = 0) -> dict:
    env = RecoWorldVectorEnv(num_envs=n, config=world)
    obs, _ = env.reset(seed=seed)
    m, k = env.world.n_candidates, env.world.slate_size
    rng = np.random.default_rng(seed)
    slates = [np.argsort(rng.random((n, m)), axis=1)[:, :k] for _ in range(16)]
    rec = None
    if policy == "module":
        spaces = {"observation_space": env.single_observation_space,
                  "action_space": env.single_action_space}  # fmt: skip
        module = SlateScoringModule(**spaces, model_config={})
        rec = ModuleRecommender(module, explore=True, seed=seed)
    steps = user_steps = 0
    for i in range(3):  # warm-up
        obs, *_ = env.step(slates[i] if rec is None else rec.act(obs))
    start = time.perf_counter()
    while True:
        action = slates[steps % len(slates)] if rec is None else rec.act(obs)
        obs, _, _, _, info = env.step(action)
        steps += 1
        user_steps += int(info["_click"].sum())
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and steps >= 5:
            break
    env.close()
    return {"mode": f"direct+{policy}" if rec else "direct", "num_envs": n,
            "env_steps": user_steps, "vector_steps": steps, "seconds": elapsed,
            "env_steps_per_s": user_steps / elapsed}  # fmt: skip


class _Timed:
    """Wraps a callable (a connector pipeline, a bound method) and sums its wall time."""

    def __init__(self, fn: Any, key: str, acc: dict[str, float]) -> None:
        self._fn, self._key, self._acc = fn, key, acc

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return self._fn(*args, **kwargs)
        finally:
            self._acc[self._key] += time.perf_counter() - t

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fn, name)


def measure_rllib(world: Any, n: int, seconds: float) -> dict:
    from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

    cfg = build_algorithm_config(world, TrainConfig(num_envs=n))
    runner = SingleAgentEnvRunner(config=cfg)
    chunk = max(256, 8 * n)
    runner.sample(num_timesteps=chunk)  # warm-up (first reset, lazy inits)
    acc: dict[str, float] = defaultdict(float)
    calls = defaultdict(int)
    outer, inner = runner.env, runner.env.env  # DictInfoToList(RecoWorldVectorEnv)

    def counted(fn: Any, key: str) -> Any:
        timed = _Timed(fn, key, acc)

        def call(*a: Any, **kw: Any) -> Any:
            calls[key] += 1
            return timed(*a, **kw)

        return call

    outer.step = counted(outer.step, "env_total")
    inner.step = counted(inner.step, "world_step")
    runner.module.forward_exploration = counted(runner.module.forward_exploration, "module")
    piece_acc: dict[str, float] = defaultdict(float)
    for side, pipeline in (("env_to_module", runner._env_to_module),
                           ("module_to_env", runner._module_to_env)):  # fmt: skip
        pipeline.connectors = [_Timed(c, f"{side}/{type(c).__name__}", piece_acc)
                               for c in pipeline.connectors]  # fmt: skip
    runner._env_to_module = _Timed(runner._env_to_module, "env_to_module", acc)
    runner._module_to_env = _Timed(runner._module_to_env, "module_to_env", acc)
    env_steps = 0
    start = time.perf_counter()
    while True:
        episodes = runner.sample(num_timesteps=chunk)
        env_steps += sum(len(e) for e in episodes)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            break
    runner.stop()
    vsteps = calls["env_total"]
    parts = {
        "world_step": acc["world_step"],
        "info_to_list": acc["env_total"] - acc["world_step"],
        "module": acc["module"],
        "env_to_module": acc["env_to_module"],
        "module_to_env": acc["module_to_env"],
    }
    parts["runner_loop"] = elapsed - sum(parts.values())
    return {"mode": "rllib", "num_envs": n, "env_steps": env_steps, "vector_steps": vsteps,
            "seconds": elapsed, "env_steps_per_s": env_steps / elapsed,
            "ms_per_vector_step": {k: 1e3 * v / max(vsteps, 1) for k, v in parts.items()},
            "share": {k: v / elapsed for k, v in parts.items()},
            "connector_pieces_ms_per_vector_step":
                {k: 1e3 * v / max(vsteps, 1) for k, v in piece_acc.items()}}  # fmt: skip


PPO_PARTS = ("env_step", "module", "sampling_rest", "learner_connector", "learner_rest",
             "other")  # fmt: skip


def measure_ppo_iteration(
    world: Any, num_envs: int, train_batch: int, iterations: int, seed: int = 0
) -> dict:
    """Seconds per PPO iteration (``algo.train()``) and their split (see module docstring):
    one untimed warm-up iteration, then ``iterations`` timed ones."""
    from recoworld.rl.ppo.config import PPOSettings
    from recoworld.rl.runtime import ensure_ray

    cfg = TrainConfig(num_envs=num_envs, num_env_runners=0, seed=seed,
                      ppo=PPOSettings(train_batch_size=train_batch))  # fmt: skip
    ensure_ray(cfg.num_cpus)
    algo = build_algorithm_config(world, cfg).build_algo()
    acc: dict[str, float] = defaultdict(float)
    runner = algo.env_runner_group.local_env_runner
    learner = algo.learner_group._learner  # num_learners=0: the local learner
    runner.env.env.step = _Timed(runner.env.env.step, "env_step", acc)
    runner.module.forward_exploration = _Timed(runner.module.forward_exploration, "module", acc)
    runner.sample = _Timed(runner.sample, "sampling", acc)
    runner.get_metrics = _Timed(runner.get_metrics, "sampling", acc)
    algo.learner_group.update = _Timed(algo.learner_group.update, "learner", acc)
    learner._learner_connector = _Timed(learner._learner_connector, "learner_connector", acc)
    rows = []
    lifetime = 0
    for i in range(iterations + 1):  # the first is the warm-up
        acc.clear()
        start = time.perf_counter()
        result = algo.train()
        wall = time.perf_counter() - start
        total = int(result["env_runners"]["num_env_steps_sampled_lifetime"])
        steps, lifetime = total - lifetime, total
        if i == 0:
            continue
        parts = {
            "env_step": acc["env_step"],
            "module": acc["module"],
            "sampling_rest": acc["sampling"] - acc["env_step"] - acc["module"],
            "learner_connector": acc["learner_connector"],
            "learner_rest": acc["learner"] - acc["learner_connector"],
        }
        parts["other"] = wall - sum(parts.values())
        rows.append({"iteration": i, "seconds": wall, "env_steps": steps, "parts_s": parts})
    algo.stop()
    mean = {p: float(np.mean([r["parts_s"][p] for r in rows])) for p in PPO_PARTS}
    wall = float(np.mean([r["seconds"] for r in rows]))
    return {"num_envs": num_envs, "train_batch_size": train_batch, "iterations": rows,
            "mean_seconds": wall, "mean_parts_s": mean,
            "share": {p: v / wall for p, v in mean.items()},
            "env_steps_per_s": float(np.mean([r["env_steps"] / r["seconds"]
                                              for r in rows]))}  # fmt: skip


def print_ppo_table(r: dict) -> None:
    print(f"PPO iteration: {r['train_batch_size']:,} env steps from {r['num_envs']} users, "
          f"num_env_runners=0, one local learner, one torch thread")  # fmt: skip
    head = f"{'iteration':>9} {'seconds':>8} {'env steps':>9} " + " ".join(
        f"{p:>17}" for p in PPO_PARTS
    )
    print(head)
    print("-" * len(head))
    for row in r["iterations"]:
        cells = " ".join(f"{row['parts_s'][p]:>17.3f}" for p in PPO_PARTS)
        print(f"{row['iteration']:>9} {row['seconds']:>8.3f} {row['env_steps']:>9} {cells}")
    cells = " ".join(f"{r['mean_parts_s'][p]:>17.3f}" for p in PPO_PARTS)
    print(f"{'mean':>9} {r['mean_seconds']:>8.3f} {'':>9} {cells}")
    cells = " ".join(f"{100 * r['share'][p]:>16.1f}%" for p in PPO_PARTS)
    print(f"{'share':>9} {'':>8} {'':>9} {cells}")
    print(f"env steps/s over whole iterations: {r['env_steps_per_s']:,.0f}; the env's share: "
          f"{100 * r['share']['env_step']:.1f}%")  # fmt: skip


def run(num_envs: list[int], seconds: float, config: str | None, repeats: int = 1) -> list[dict]:
    torch.set_num_threads(1)
    world = resolve_world_config(config, {"episode": {"text_info": "none"}})
    rows = []
    for n in num_envs:
        best: dict[str, dict] = {}
        for _ in range(repeats):  # interleaved; keep the least disturbed (fastest) run
            for r in (measure_direct(world, n, seconds, "random"),
                      measure_direct(world, n, seconds, "module"),
                      measure_rllib(world, n, seconds)):  # fmt: skip
                if (
                    r["mode"] not in best
                    or r["env_steps_per_s"] > best[r["mode"]]["env_steps_per_s"]
                ):
                    best[r["mode"]] = r
        direct, with_module, rllib = best["direct"], best["direct+module"], best["rllib"]
        rllib["ratio_to_direct"] = rllib["env_steps_per_s"] / direct["env_steps_per_s"]
        rllib["ratio_to_direct_module"] = rllib["env_steps_per_s"] / with_module["env_steps_per_s"]
        rows += [direct, with_module, rllib]
    return rows


def print_table(rows: list[dict]) -> None:
    by_n: dict[int, dict[str, dict]] = defaultdict(dict)
    for r in rows:
        by_n[r["num_envs"]][r["mode"]] = r
    head = (f"{'num_envs':>8} {'direct':>10} {'direct+module':>14} {'rllib':>9} "
            f"{'rllib/direct':>13} {'rllib/direct+module':>20}")  # fmt: skip
    print("env-steps/s (user-steps; one torch thread)")
    print(head)
    print("-" * len(head))
    for n, r in by_n.items():
        d, dm, rl = r["direct"], r["direct+module"], r["rllib"]
        print(f"{n:>8} {d['env_steps_per_s']:>10.0f} {dm['env_steps_per_s']:>14.0f} "
              f"{rl['env_steps_per_s']:>9.0f} {rl['ratio_to_direct']:>13.3f} "
              f"{rl['ratio_to_direct_module']:>20.3f}")  # fmt: skip
    print("\nRLlib: ms per vector step (share of wall time)")
    head = f"{'num_envs':>8} " + " ".join(f"{p:>19}" for p in PARTS)
    print(head)
    print("-" * len(head))
    for n, r in by_n.items():
        rl = r["rllib"]
        cells = [
            f"{rl['ms_per_vector_step'][p]:8.2f} ({100 * rl['share'][p]:4.1f}%)" for p in PARTS
        ]
        print(f"{n:>8} " + " ".join(f"{c:>19}" for c in cells))
    n, r = max(by_n.items())
    pieces = r["rllib"]["connector_pieces_ms_per_vector_step"]
    top = sorted(pieces.items(), key=lambda kv: -kv[1])[:5]
    print(f"\nslowest connector pieces at num_envs={n} (ms per vector step): "
          + ", ".join(f"{k} {v:.2f}" for k, v in top))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--num-envs", type=int, nargs="+", default=[1, 16, 64, 256])
    p.add_argument("--seconds", type=float, default=3.0, help="timed seconds per measurement")
    p.add_argument("--repeats", type=int, default=2, help="runs per measurement; the fastest")
    p.add_argument("--config", help="world YAML (default world, text off)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--ppo-iteration", action="store_true",
                   help="time PPO iterations instead (module docstring)")  # fmt: skip
    p.add_argument("--iterations", type=int, default=3, help="--ppo-iteration: timed ones")
    p.add_argument("--train-batch", type=int, default=2048, help="--ppo-iteration: env steps")
    p.add_argument("--text-info", choices=("all", "instructions", "none"),
                   help="--ppo-iteration: the world's text_info (default: the world's own, "
                   "'all' in the default world; the sampling rows always use 'none')")  # fmt: skip
    args = p.parse_args(argv)
    if args.ppo_iteration:
        torch.set_num_threads(1)
        text = {"episode": {"text_info": args.text_info}} if args.text_info else None
        world = resolve_world_config(args.config, text)  # as `recoworld train` gets it
        default = TrainConfig.model_fields["num_envs"].default  # recoworld train's users
        n = args.num_envs[0] if args.num_envs != p.get_default("num_envs") else default
        result = measure_ppo_iteration(world, n, args.train_batch, args.iterations)
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            print_ppo_table(result)
        return 0
    rows = run(args.num_envs, args.seconds, args.config, args.repeats)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

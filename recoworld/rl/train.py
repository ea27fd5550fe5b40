"""Training recommender policies with RLlib (new API stack): configs, the loop, outputs.

``train(world, config, out_dir)`` builds an RLlib ``PPOConfig`` for the slate RLModule
(``slate_module.SlateScoringModule`` with its Plackett-Luce distribution) on RecoWorld's
vector env — ``gym.make_vec("recoworld/RecoWorld-v0", vectorization_mode=
"vector_entry_point")``, so an env runner steps ``num_envs`` users in one batched call —
and runs ``iterations`` training iterations with a rich progress bar. Under ``out_dir``:

- ``result.json``: one RLlib result dict per line (what ``Algorithm.train`` returns; the
  layout Ray Tune writes), and ``progress.csv`` with the main scalars per iteration;
- ``tb/``: TensorBoard event files (every numeric entry of the result dicts);
- ``eval_curve.csv``: every ``eval_every`` iterations the greedy policy is evaluated as a
  ``Recommender`` on fixed evaluation seeds (``recoworld.simulate.run_policy``: mean
  return, return rate, session depth, click rate, ...);
- ``checkpoints/iter_NNNN`` (``Algorithm.save_to_path``, written to a temporary directory
  and renamed, so a crash never leaves half a checkpoint) and ``checkpoint`` (the last);
  ``train(..., resume=path)`` continues from one;
- ``manifest.json``: world + training config, seed, package versions, git commit.

Ray is started once per process with ``num_cpus`` CPUs (``ray.init``; reused when already
running). ``num_env_runners=0`` samples in the driver process, the right choice on small
machines; raise it on a cluster. Torch uses ``torch_threads`` threads (1 by default:
PLATFORM.md measured tiny ops 400-800x slower with 2 threads on 2 cores).
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from recoworld.atomic import atomic_write_text
from recoworld.config import StrictModel, WorldConfig, read_yaml_mapping, resolve_world_config
from recoworld.reproducibility import write_manifest
from recoworld.rl.algorithms import ALGORITHMS, AlgorithmSpec, algorithm_spec
from recoworld.rl.settings import (
    HRLSettings,
    ModelSettings,
    PPOSettings,
    RLIVUASettings,
    SlateTSSettings,
)
from recoworld.simulate import SimulateConfig, run_policy

ENV_ID = "recoworld/RecoWorld-v0"


class TrainConfig(StrictModel):
    """What ``recoworld train`` runs (the ``train:`` section of a run YAML)."""

    algo: Literal["ppo", "hrl", "slate_ts", "rliv_ua"] = Field(
        "ppo", description=f"The algorithm (``recoworld.rl.algorithms``: {sorted(ALGORITHMS)})."
    )
    iterations: int = Field(30, ge=1)
    seed: int = 0
    num_envs: int = Field(64, ge=1, description="Users stepped together per env runner.")
    vectorize: Literal["vector_entry_point", "sync"] = Field(
        "vector_entry_point",
        description="'vector_entry_point': RecoWorld's batched vector env (B users in one "
        "call); 'sync': gymnasium's SyncVectorEnv over single RecoWorld-v0 envs (slower; "
        "the generic path any Gymnasium env takes).",
    )
    num_env_runners: int = Field(0, ge=0, description="0 = sample in the driver process.")
    num_cpus: int = Field(2, ge=1, description="CPUs given to ray.init (when it starts Ray).")
    torch_threads: int = Field(1, ge=1)
    ppo: PPOSettings = Field(default_factory=PPOSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    hrl: HRLSettings = Field(default_factory=HRLSettings)
    slate_ts: SlateTSSettings = Field(default_factory=SlateTSSettings)
    rliv_ua: RLIVUASettings = Field(default_factory=RLIVUASettings)
    eval_every: int = Field(5, ge=0, description="Evaluate every N iterations (0: at the end).")
    eval_episodes: int = Field(200, ge=1, description="User lives per evaluation.")
    eval_users: int = Field(64, ge=1)
    eval_seed: int = Field(10_000, description="Evaluation seed (same users every time).")
    checkpoint_every: int = Field(10, ge=0, description="0: only the final checkpoint.")


def load_train_run(
    path: str | Path | None, overrides: dict[str, Any] | None = None
) -> tuple[WorldConfig, TrainConfig]:
    """(world, train) configs from a run YAML with ``world:`` and ``train:`` sections."""
    raw = read_yaml_mapping(path) if path else {}
    unknown = set(raw) - {"world", "train"}
    if unknown:
        raise ValueError(f"{path}: unknown top-level sections {sorted(unknown)}")
    train = dict(raw.get("train") or {})
    train.update(overrides or {})
    return resolve_world_config(raw.get("world") or {}), TrainConfig.model_validate(train)


def on_recoworld_env(config: Any, world: WorldConfig, cfg: TrainConfig) -> Any:
    """``config`` (any RLlib ``AlgorithmConfig``) set to RecoWorld's vector env with
    ``cfg``'s env runners, a local learner and ``cfg.seed``."""
    import recoworld  # noqa: F401  (registers the gymnasium env in this process)

    return (
        config.environment(ENV_ID, env_config={"config": world.model_dump(mode="json")})
        .env_runners(
            num_env_runners=cfg.num_env_runners,
            num_envs_per_env_runner=cfg.num_envs,
            gym_env_vectorize_mode=cfg.vectorize,
            rollout_fragment_length="auto",
        )
        .learners(num_learners=0)
        .debugging(seed=cfg.seed)
    )


def build_algorithm_config(world: WorldConfig, cfg: TrainConfig) -> Any:
    """The RLlib ``PPOConfig`` for the slate module on RecoWorld's vector env."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from recoworld.rl.slate_module import SlateScoringModule

    p = cfg.ppo
    return (
        on_recoworld_env(PPOConfig(), world, cfg)
        .training(
            lr=p.lr,
            gamma=p.gamma,
            lambda_=p.lambda_,
            clip_param=p.clip_param,
            entropy_coeff=p.entropy_coeff,
            vf_loss_coeff=p.vf_loss_coeff,
            vf_clip_param=p.vf_clip_param,
            num_epochs=p.num_epochs,
            minibatch_size=p.minibatch_size,
            train_batch_size_per_learner=p.train_batch_size,
            grad_clip=p.grad_clip,
            use_kl_loss=False,
        )
        .rl_module(
            rl_module_spec=RLModuleSpec(
                module_class=SlateScoringModule,
                model_config={"hidden": cfg.model.hidden, "value_hidden": cfg.model.value_hidden},
            )
        )
    )


def ensure_ray(num_cpus: int) -> None:
    """Start Ray in this process with ``num_cpus`` CPUs, or join the cluster named by
    ``RAY_ADDRESS`` (``ray start --head`` / ``ray start --address``; a cluster's CPUs are
    its own, so ``num_cpus`` is not passed); nothing when Ray is already initialised."""
    import os

    import ray

    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init(address=os.environ["RAY_ADDRESS"], include_dashboard=False,
                 log_to_driver=False, configure_logging=False)  # fmt: skip
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)  # fmt: skip


SCALARS = {
    "episode_return_mean": ("env_runners", "episode_return_mean"),
    "episode_len_mean": ("env_runners", "episode_len_mean"),
    "num_env_steps_sampled_lifetime": ("env_runners", "num_env_steps_sampled_lifetime"),
    "policy_loss": ("learners", "default_policy", "policy_loss"),
    "vf_loss": ("learners", "default_policy", "vf_loss"),
    "entropy": ("learners", "default_policy", "entropy"),
}


def progress_row(iteration: int, result: dict[str, Any]) -> dict[str, Any]:
    """The ``progress.csv`` row of one iteration: ``SCALARS``, and for multi-module
    algorithms (e.g. ``hrl``: ``high`` and ``low``) each module's losses as
    ``<loss>/<module>``."""
    row = {"iteration": iteration, **{k: _get(result, p) for k, p in SCALARS.items()}}
    learners = result.get("learners") or {}
    for module, stats in learners.items():
        if module in ("default_policy", "__all_modules__") or not isinstance(stats, dict):
            continue
        for key in ("policy_loss", "vf_loss", "entropy"):
            row[f"{key}/{module}"] = stats.get(key)
    return row


def _get(d: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in d.items():
        name = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(_flatten(value, name))
        elif isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
            if np.isfinite(value):  # RLlib reports NaN before the first episode ends
                out[name] = float(value)
    return out


def _write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    buf = io.StringIO()
    fields = list(dict.fromkeys(k for row in rows for k in row))
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(buf.getvalue(), path)


def save_checkpoint(algo: Any, path: Path) -> Path:
    """``algo.save_to_path`` into a temporary sibling, then rename into place (RLlib needs
    an absolute path: a relative one is read as a URI without a scheme)."""
    path = path.resolve()
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    algo.save_to_path(str(tmp))
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)
    return path


def evaluate_recommender(policy: Any, world: WorldConfig, cfg: TrainConfig) -> dict[str, Any]:
    """Run ``policy`` (a greedy ``Recommender``) on the evaluation users (fixed seed)."""
    sim = SimulateConfig(users=cfg.eval_users, episodes=cfg.eval_episodes, seed=cfg.eval_seed,
                         log=False)  # fmt: skip
    return run_policy(world, policy, sim, None)


def module_recommender(algo: Any, name: str) -> Any:
    """The slate module of a running algorithm as a greedy ``ModuleRecommender``."""
    from recoworld.rl.recommender import ModuleRecommender

    return ModuleRecommender(algo.get_module(), name=name)  # no dropout/batch-norm: mode-free


def module_from_checkpoint(path: Path, name: str) -> Any:
    """A slate module (or a subclass) from a checkpoint as a ``ModuleRecommender``."""
    from recoworld.rl.recommender import ModuleRecommender

    return ModuleRecommender.from_checkpoint(path, name=name)


PPO_SPEC = AlgorithmSpec(
    build_config=lambda world, cfg: build_algorithm_config(world, cfg),
    recommender=module_recommender,
    from_checkpoint=module_from_checkpoint,
)


def train(
    world: WorldConfig,
    cfg: TrainConfig,
    out_dir: str | Path,
    resume: str | Path | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Train (see module docstring); returns the last evaluation summary."""
    import torch
    from tensorboardX import SummaryWriter

    from recoworld.progress import progress_bar

    torch.set_num_threads(cfg.torch_threads)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_manifest(out, {"world": world.model_dump(mode="json"),
                         "train": cfg.model_dump(mode="json")}, cfg.seed,
                   resumed_from=str(resume) if resume else None)  # fmt: skip
    ensure_ray(cfg.num_cpus)
    spec: AlgorithmSpec = algorithm_spec(cfg.algo)
    algo = spec.build_config(world, cfg).build_algo()
    if resume is not None:
        algo.restore_from_path(str(Path(resume).resolve()))
    progress_rows: list[dict[str, Any]] = []
    eval_rows: list[dict[str, Any]] = []
    curve = out / "eval_curve.csv"
    if resume is not None and curve.exists():  # keep the curve of the run we continue
        with curve.open() as f:
            eval_rows = list(csv.DictReader(f))
    writer = SummaryWriter(str(out / "tb"))
    last_eval: dict[str, Any] = {}
    start_iter = int(algo.iteration)
    try:
        with (
            progress_bar(show_progress) as progress,
            (out / "result.json").open("a") as results,
        ):
            label = cfg.algo.upper()
            task = progress.add_task(f"{label} iterations", total=cfg.iterations)
            for i in range(start_iter + 1, start_iter + cfg.iterations + 1):
                result = algo.train()
                results.write(json.dumps(result, default=str) + "\n")
                results.flush()
                for name, value in _flatten(result).items():
                    writer.add_scalar(name, value, i)
                row = progress_row(i, result)
                progress_rows.append(row)
                _write_csv(progress_rows, out / "progress.csv")
                ret = row["episode_return_mean"]
                progress.update(task, advance=1, description=f"{label} iter {i}: return "
                                f"{ret if ret is None else round(float(ret), 2)}")  # fmt: skip
                final = i == start_iter + cfg.iterations
                if (cfg.eval_every and i % cfg.eval_every == 0) or final:
                    last_eval = evaluate_recommender(spec.recommender(algo, cfg.algo), world, cfg)
                    scalars = {k: v for k, v in last_eval.items() if not isinstance(v, list)}
                    steps = row["num_env_steps_sampled_lifetime"]
                    eval_rows.append({"iteration": i, "env_steps": steps, **scalars})
                    _write_csv(eval_rows, curve)
                    for key in ("mean_return", "return_rate", "session_depth", "click_rate"):
                        writer.add_scalar(f"eval/{key}", last_eval[key], i)
                if cfg.checkpoint_every and i % cfg.checkpoint_every == 0:
                    save_checkpoint(algo, out / "checkpoints" / f"iter_{i:04d}")
            save_checkpoint(algo, out / "checkpoint")
    finally:
        writer.close()
        algo.stop()
    return last_eval

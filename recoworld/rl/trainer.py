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
  ``Recommender`` on fixed evaluation seeds (``recoworld.policies.rollout.run_policy``: mean
  return, return rate, session depth, click rate, ...);
- ``checkpoints/iter_NNNN`` (``Algorithm.save_to_path``, written to a temporary directory
  and renamed, so a crash never leaves half a checkpoint) and ``checkpoint`` (the last);
  ``train(..., resume=path)`` continues from one;
- ``manifest.json``: world + training config, seed, package versions, git commit.

Ray is started once per process with ``num_cpus`` CPUs (``ray.init``; reused when already
running). ``num_env_runners=0`` samples in the driver process, the right choice on small
machines; raise it on a cluster. Torch uses ``torch_threads`` threads (1 by default:
docs/platform.md#threads-and-torch measured tiny ops 400-800x slower with 2 threads on 2 cores).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from recoworld.core.atomic import atomic_write_text
from recoworld.core.errors import require
from recoworld.core.manifest import write_manifest
from recoworld.envs.config import WorldConfig
from recoworld.policies.rollout import SimulateConfig, run_policy
from recoworld.rl.config import TrainConfig
from recoworld.rl.registry import AlgorithmSpec, algorithm_spec
from recoworld.rl.runtime import ensure_ray, save_checkpoint

for _module in ("ray", "torch", "tensorboardX"):  # before the config names an algorithm module
    require(_module, "rllib", "RL training (recoworld train)")

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


def evaluate_recommender(policy: Any, world: WorldConfig, cfg: TrainConfig) -> dict[str, Any]:
    """Run ``policy`` (a greedy ``Recommender``) on the evaluation users (fixed seed)."""
    sim = SimulateConfig(users=cfg.eval_users, episodes=cfg.eval_episodes, seed=cfg.eval_seed,
                         log=False)  # fmt: skip
    return run_policy(world, policy, sim, None)


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

    from recoworld.core.progress import progress_bar

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

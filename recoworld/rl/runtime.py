"""The Ray and RLlib runtime shared by every algorithm: starting or joining Ray, pointing an
RLlib ``AlgorithmConfig`` at RecoWorld's vector env, and atomic checkpoints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from recoworld.rl.config import TrainConfig

import shutil
from pathlib import Path
from typing import Any

from recoworld.core.errors import require
from recoworld.envs import ENV_ID
from recoworld.envs.config import WorldConfig


def on_recoworld_env(config: Any, world: WorldConfig, cfg: TrainConfig) -> Any:
    """``config`` (any RLlib ``AlgorithmConfig``) set to RecoWorld's vector env with
    ``cfg``'s env runners, a local learner and ``cfg.seed``."""
    from recoworld.envs import register

    register()  # the gymnasium id, in this process (env runners import it themselves)

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


def ensure_ray(num_cpus: int) -> None:
    """Start Ray in this process with ``num_cpus`` CPUs, or join the cluster named by
    ``RAY_ADDRESS`` (``ray start --head`` / ``ray start --address``; a cluster's CPUs are
    its own, so ``num_cpus`` is not passed); nothing when Ray is already initialised."""
    import os

    require("ray", "rllib", "Ray")
    import ray

    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init(address=os.environ["RAY_ADDRESS"], include_dashboard=False,
                 log_to_driver=False, configure_logging=False)  # fmt: skip
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)  # fmt: skip


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

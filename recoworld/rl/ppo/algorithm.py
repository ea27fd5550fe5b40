"""PPO on the slate scoring module (``recoworld train --algo ppo``): the RLlib ``PPOConfig``
and the registry spec. The other PPO-based algorithms start from ``build_algorithm_config``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from recoworld.rl.config import TrainConfig

from typing import Any

from recoworld.envs.config import WorldConfig
from recoworld.rl.common.recommender import module_from_checkpoint, module_recommender
from recoworld.rl.registry import AlgorithmSpec
from recoworld.rl.runtime import on_recoworld_env


def build_algorithm_config(world: WorldConfig, cfg: TrainConfig) -> Any:
    """The RLlib ``PPOConfig`` for the slate module on RecoWorld's vector env."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from recoworld.rl.common.slate_module import SlateScoringModule

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
            grad_clip_by=p.grad_clip_by,
            use_kl_loss=False,
        )
        .rl_module(
            rl_module_spec=RLModuleSpec(
                module_class=SlateScoringModule,
                model_config=cfg.model.module_config(p.gamma),
            )
        )
    )


PPO_SPEC = AlgorithmSpec(
    build_config=lambda world, cfg: build_algorithm_config(world, cfg),
    recommender=module_recommender,
    from_checkpoint=module_from_checkpoint,
)

"""PPO hyper-parameters (``recoworld train --algo ppo``; also the base of the other
PPO-based algorithms).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from recoworld.core.config import StrictModel


class PPOSettings(StrictModel):
    """PPO hyper-parameters (RLlib names).

    The defaults were tuned on ``recoworld/MovieLens-v0`` (``benchmarks/ppo_movielens.py``),
    where lives last up to 150 steps and discounted returns reach tens: ``vf_clip_param``
    clips the value loss (a squared error), so RLlib's usual 10-50 zeroed the value
    gradient of most samples and the critic never fitted (explained variance ~0); it is now
    effectively off. ``lambda_`` 0.8 (was 0.95) trades a little bias for much less variance
    in the advantages, ``lr`` 1e-3 (was 3e-4) and per-tensor gradient clipping
    (``grad_clip_by="norm"``, was the global norm, which the value head's gradients
    dominated) let the policy move within a 200k-step budget.
    """

    lr: float = Field(1e-3, gt=0)
    gamma: float = Field(0.97, gt=0, le=1)
    lambda_: float = Field(0.8, ge=0, le=1)
    clip_param: float = Field(0.2, gt=0)
    entropy_coeff: float = Field(0.005, ge=0)
    vf_loss_coeff: float = Field(0.5, ge=0)
    vf_clip_param: float = Field(
        1e6, gt=0, description="Clip of the value loss (squared error, in return units^2)."
    )
    num_epochs: int = Field(4, ge=1)
    minibatch_size: int = Field(256, ge=1)
    train_batch_size: int = Field(2048, ge=1, description="Env steps per iteration.")
    grad_clip: float = Field(0.5, gt=0)
    grad_clip_by: Literal["global_norm", "norm", "value"] = Field(
        "norm",
        description="RLlib's grad_clip_by: 'norm' clips each parameter tensor on its own, so "
        "the value head's large gradients do not shrink the policy's.",
    )

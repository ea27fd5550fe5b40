"""PPO hyper-parameters (``recoworld train --algo ppo``; also the base of the other
PPO-based algorithms).
"""

from __future__ import annotations

from pydantic import Field

from recoworld.core.config import StrictModel


class PPOSettings(StrictModel):
    """PPO hyper-parameters (RLlib names)."""

    lr: float = Field(3e-4, gt=0)
    gamma: float = Field(0.97, gt=0, le=1)
    lambda_: float = Field(0.95, ge=0, le=1)
    clip_param: float = Field(0.2, gt=0)
    entropy_coeff: float = Field(0.005, ge=0)
    vf_loss_coeff: float = Field(0.5, ge=0)
    vf_clip_param: float = Field(50.0, gt=0)
    num_epochs: int = Field(4, ge=1)
    minibatch_size: int = Field(256, ge=1)
    train_batch_size: int = Field(2048, ge=1, description="Env steps per iteration.")
    grad_clip: float = Field(0.5, gt=0)

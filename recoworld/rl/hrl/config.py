"""Settings of hierarchical novelty-seeking RL (``recoworld train --algo hrl``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from recoworld.core.config import StrictModel


class HRLSettings(StrictModel):
    """Hierarchical novelty-seeking RL (``recoworld.rl.hrl.algorithm``): a high-level agent picks a
    novelty goal at session start (and every ``goal_every`` steps), a low-level agent picks
    slates conditioned on it."""

    mode: Literal["hierarchical", "flat", "flat_engagement"] = Field(
        "hierarchical",
        description="'hierarchical': high + low level; 'flat': the slate module alone with the "
        "same extrinsic reward; 'flat_engagement': the slate module with the env reward only.",
    )
    goal_levels: int = Field(3, ge=2, description="Discrete novelty goals.")
    goal_min: float = Field(0.4, ge=0.0, le=1.0, description="Lowest novelty goal.")
    goal_max: float = Field(0.9, ge=0.0, le=1.0, description="Highest novelty goal.")
    goal_every: int = Field(0, ge=0, description="Re-pick the goal every K steps (0: per session).")
    novelty_weight: float = Field(1.0, ge=0.0, description="lambda_nov of the low-level reward.")
    diversity_weight: float = Field(0.5, ge=0.0, description="lambda_div of the low-level reward.")
    goal_weight: float = Field(
        1.0, ge=0.0, description="Low-level bonus for slate novelty close to the goal."
    )
    high_reward: str = Field(
        "session", pattern="^(session|return)$",
        description="'session': the session's summed low-level reward; 'return': plus the "
        "return signal (1 when the user comes back)."
    )  # fmt: skip
    high_hidden: list[int] = Field(
        default_factory=lambda: [64, 64], min_length=1, description="High-level MLP widths."
    )

    @model_validator(mode="after")
    def _goal_range(self) -> HRLSettings:
        if self.goal_min >= self.goal_max:
            raise ValueError(
                f"hrl: goal_min ({self.goal_min}) must be < goal_max ({self.goal_max})"
            )
        return self

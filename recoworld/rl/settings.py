"""Training settings of every RLlib algorithm here (pydantic; no torch or Ray imports).

``TrainConfig`` (``recoworld.rl.train``) holds one section per algorithm — ``ppo``,
``model``, ``hrl``, ``slate_ts``, ``rliv_ua`` — and ``algo`` picks which one runs. The
algorithm modules read their own section; keeping the models here lets a config be
validated (and ``recoworld config`` print it) without importing torch or Ray.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from recoworld.config import StrictModel


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


class ModelSettings(StrictModel):
    """The slate RLModule's network sizes."""

    hidden: list[int] = Field(default_factory=lambda: [128, 128], min_length=1)
    value_hidden: list[int] = Field(default_factory=lambda: [128, 128], min_length=1)


class HRLSettings(StrictModel):
    """Hierarchical novelty-seeking RL (``recoworld.rl.hrl``): a high-level agent picks a
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


class SlateTSSettings(StrictModel):
    """Slate Thompson sampling (``recoworld.rl.slate_ts``): a variational Bayesian GRU
    slate model (``recoworld.rl.slate_ts_model``) whose posterior is refitted on every
    slate collected so far, acting by Thompson sampling."""

    item_dim: int = Field(16, ge=1, description="Item vector size (the paper: 25).")
    hidden: int = Field(16, ge=1, description="GRU state size (the paper: 25).")
    lr: float = Field(0.01, gt=0, description="Adam learning rate of the variational params.")
    exploration: str = Field(
        "in_slate", pattern="^(in_slate|plain|greedy)$",
        description="'in_slate': one posterior draw per slot (interleaved rankings); "
        "'plain': one draw per slate; 'greedy': the posterior mean.",
    )  # fmt: skip
    samples: int = Field(
        0, ge=0, description="Posterior draws per slate for in_slate (0: the slate size)."
    )
    score: str = Field("distance", pattern="^(distance|dot)$")
    likelihood: str = Field(
        "slate", pattern="^(slate|all_items)$",
        description="'slate': categorical over no-click + the items shown; 'all_items': "
        "over no-click + the whole catalog.",
    )  # fmt: skip
    grouping: str = Field(
        "topic", pattern="^(topic|semantic_id|none)$",
        description="Item groups of the hierarchical prior: the item's first topic, its "
        "semantic-ID prefix (first code), or one group.",
    )  # fmt: skip
    steps_per_iteration: int = Field(512, ge=1, description="Env steps collected per iteration.")
    updates_per_iteration: int = Field(50, ge=1, description="Gradient steps per iteration.")
    minibatch_size: int = Field(256, ge=1)
    buffer_size: int = Field(
        200_000, ge=1, description="Most recent rows kept to fit the posterior on."
    )
    prior_item_scale: float = Field(0.2, gt=0, description="Prior within-group item spread.")
    prior_group_mean_scale: float = Field(0.5, gt=0)
    prior_weight_scale: float = Field(1.0, gt=0, description="Prior scale of GRU weights.")
    prior_bias_scale: float = Field(2.0, gt=0, description="Prior scale of no-click biases.")


class RLIVUASettings(StrictModel):
    """RLIV-UA multi-task critics (``recoworld.rl.rliv_ua``): a shared encoder over [user;
    author; pair history; item] with one critic head per signal (click -> follow -> gift),
    TD-trained on user-author (SCRI) transitions; the slate is scored by the PPO actor plus
    ``critic_scale`` x the weighted sum of the heads."""

    head_weights: dict[Literal["click", "follow", "gift"], float] = Field(
        default_factory=lambda: {"click": 1.0, "follow": 3.0, "gift": 3.0},
        description="Weight of each critic head in the candidate score (missing heads: 0).",
    )
    gammas: dict[Literal["click", "follow", "gift"], float] = Field(
        default_factory=lambda: {"click": 0.8, "follow": 0.9, "gift": 0.9},
        description="Discount of each head's TD target (per pair transition).",
    )
    critic_scale: float = Field(
        1.0, ge=0.0, description="beta: logits = actor + beta * sum_h w_h Q_h (0: plain PPO)."
    )
    asa: bool = Field(
        True,
        description="Adjacent State Approximation: next pair state from the user's next "
        "request (False: the pair's true next co-occurrence only).",
    )
    conditioning: bool = Field(
        True,
        description="Progressive conditioning: the follow head reads Q_click, the gift "
        "head reads Q_follow (False: independent heads on the shared encoder).",
    )
    aux_weight: float = Field(
        0.5, ge=0.0, description="Weight of the auxiliary BCE (click/follow/gift) on the encoder."
    )
    td_weight: float = Field(1.0, ge=0.0, description="Weight of the summed per-head TD losses.")
    critic_hidden: list[int] = Field(default_factory=lambda: [64, 64], min_length=1)
    author_dim: int = Field(8, ge=1, description="Width of the learned author embedding.")

"""Settings of RLIV-UA multi-task user-author critics (``recoworld train --algo rliv_ua``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from recoworld.core.config import StrictModel


class RLIVUASettings(StrictModel):
    """RLIV-UA multi-task critics (``recoworld.rl.rliv_ua.algorithm``): a shared encoder over [user;
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
    critic_norm: Literal["slate", "none"] = Field(
        "slate",
        description="'slate': sum_h w_h Q_h is standardised over each request's candidates "
        "(zero mean, unit spread) before beta multiplies it, so beta is in logits per "
        "standard deviation of the critics' ranking and the critics tilt the actor's slate "
        "rather than replace it; 'none': the raw weighted Q (several logits once the "
        "critics have learned; the default before 2026-12-06).",
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

"""Config models of the parametric users: ``ParametricUserConfig`` (the user model's
parameters) and ``SegmentSpec`` (one segment of a population, ``segments.py``).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, field_validator

from recoworld.core.config import StrictModel


class ParametricUserConfig(StrictModel):
    """The vectorized parametric user model. Utilities are in logit units."""

    source: Literal["sampled", "movielens"] = Field(
        "sampled",
        description="'sampled': users drawn from the distributions below; 'movielens': users "
        "fitted to real MovieLens users (requires the movielens catalog).",
    )
    # preferences
    interest_concentration: float = Field(
        0.4, gt=0.0, description="Dirichlet concentration of topic interests (low = focused)."
    )
    interest_scale: float = Field(4.0, ge=0.0, description="Weight of topic interest in utility.")
    latent_weight: float = Field(1.0, ge=0.0, description="Weight of latent-vector match.")
    quality_weight: float = Field(1.5, ge=0.0, description="Weight of item quality (centred).")
    creator_weight: float = Field(1.0, ge=0.0, description="Weight of creator affinity.")
    popularity_weight: float = Field(
        0.0,
        ge=0.0,
        description="Weight of item popularity (log count, z-scored over the catalog): the "
        "pull of what everyone watches. 0 for sampled users (synthetic popularity already "
        "follows quality); MovieLens-fitted users get a fitted weight (fitted_weights).",
    )
    era_weight: float = Field(
        1.0,
        ge=0.0,
        description="Weight of release-era match: exp(-|release percentile - the user's "
        "preferred era| / era_scale), centred on its mean over the catalog.",
    )
    era_scale: float = Field(
        0.5, gt=0.0, description="e-fold distance of era match, in release-time percentile."
    )
    era_a: float = Field(
        2.0, gt=0.0, description="Beta(a, b) of sampled users' preferred era (1 = newest)."
    )
    era_b: float = Field(
        1.5, gt=0.0, description="Beta(a, b) of sampled users' preferred era (1 = newest)."
    )
    fitted_weights: bool = Field(
        True,
        description="source='movielens': use the preference weights (interest_scale, "
        "latent_weight, quality_weight, popularity_weight, era_weight) fitted by conditional "
        "logit on a validation split of the real ratings (FittedPopulation.weights) instead "
        "of the values given here.",
    )
    # hierarchical novelty-seeking intent
    novelty_static_a: float = Field(2.0, gt=0.0, description="Beta(a, b) of static propensity.")
    novelty_static_b: float = Field(3.0, gt=0.0, description="Beta(a, b) of static propensity.")
    novelty_session_spread: float = Field(
        0.15, ge=0.0, le=1.0, description="Std of the session propensity around the static one."
    )
    novelty_weight: float = Field(
        3.0, ge=0.0, description="Utility of a fully novel item per unit of (propensity - pivot)."
    )
    novelty_pivot: float = Field(
        0.35, ge=0.0, le=1.0, description="Propensity at which novelty is neither liked nor not."
    )
    novelty_exposure_scale: float = Field(
        3.0, gt=0.0, description="Topic clicks after which a topic stops feeling new (e-fold)."
    )
    # fatigue
    fatigue_click_rate: float = Field(0.35, ge=0.0, description="Fatigue added per clicked topic.")
    fatigue_show_rate: float = Field(
        0.1, ge=0.0, description="Fatigue added per shown topic (repetition in slates)."
    )
    fatigue_decay: float = Field(0.8, ge=0.0, le=1.0, description="Per-step fatigue retention.")
    fatigue_weight: float = Field(1.0, ge=0.0, description="Utility lost per unit fatigue.")
    fatigue_session_carry: float = Field(
        0.2, ge=0.0, le=1.0, description="Share of fatigue carried into the next session."
    )
    # choice and response
    choice_temperature: float = Field(1.0, gt=0.0, description="Logit temperature of the MNL.")
    no_click_utility: float = Field(1.5, description="Utility of the no-click option.")
    position_bias: float = Field(
        0.3, ge=0.0, description="Logit penalty per slate position (attention decay)."
    )
    watch_slope: float = Field(1.0, gt=0.0, description="Watch fraction = sigmoid(slope*u + ...).")
    watch_offset: float = Field(-1.0, description="Watch fraction bias (logit).")
    watch_noise: float = Field(0.5, ge=0.0, description="Std of watch logit noise.")
    like_bias: float = Field(-2.0, description="Like logit bias (given a click).")
    like_watch_weight: float = Field(3.0, ge=0.0, description="Like logit per watch fraction.")
    follow_bias: float = Field(-3.5, description="Follow logit bias (given a like).")
    follow_affinity_weight: float = Field(2.0, ge=0.0, description="Follow logit per affinity.")
    gift_bias: float = Field(-5.0, description="Gift logit bias (given click + following).")
    gift_affinity_weight: float = Field(1.0, ge=0.0, description="Gift logit per affinity.")
    affinity_lr: float = Field(
        0.3, ge=0.0, description="Creator affinity gain per satisfying click (watch - 0.4)."
    )
    affinity_session_decay: float = Field(
        0.9, ge=0.0, le=1.0, description="Creator affinity retained across a session gap."
    )
    # satisfaction, leaving, instructions
    satisfaction_init: float = Field(0.6, ge=0.0, le=1.0, description="Satisfaction at start.")
    satisfaction_rate: float = Field(
        0.3, ge=0.0, le=1.0, description="EMA rate of satisfaction towards each step's experience."
    )
    patience_mean: float = Field(
        1.0, ge=0.0, description="Mean patience (Gamma, shape 4); lowers the leave logit."
    )
    leave_bias: float = Field(-3.5, description="Leave logit at full satisfaction.")
    leave_boredom_weight: float = Field(4.0, ge=0.0, description="Leave logit per (1 - sat).")
    leave_novelty_weight: float = Field(
        2.0, ge=0.0, description="Leave logit per unit of unmet novelty (propensity - slate nov.)."
    )
    leave_depth_weight: float = Field(
        0.05, ge=0.0, description="Leave logit per step already spent in the session."
    )
    instruction_prob: float = Field(
        0.6, ge=0.0, le=1.0, description="P(write an instruction instead of leaving)."
    )
    max_instructions_per_session: int = Field(1, ge=0, description="Instruction budget/session.")
    instruction_memory: int = Field(
        5, ge=1, description="Steps during which a given instruction shapes the user's taste."
    )
    instruction_weight: float = Field(
        1.0, ge=0.0, description="Utility bonus for items honouring the active instruction."
    )
    # retention between sessions
    return_bias: float = Field(0.5, description="Return logit at satisfaction 0.5.")
    return_satisfaction_weight: float = Field(5.0, ge=0.0, description="Return logit per sat.")
    return_gap_mean_hours: float = Field(
        24.0, gt=0.0, description="Mean hours between sessions (scaled by 1.5 - sat)."
    )
    interest_drift: float = Field(
        0.05, ge=0.0, description="Std of interest drift per session (relative)."
    )
    interest_consumption_lr: float = Field(
        0.02, ge=0.0, description="Interest pull towards clicked topics per watched click."
    )


SAMPLED_FIELDS = (
    "interest_concentration", "novelty_static_a", "novelty_static_b", "patience_mean", "era_a",
    "era_b",
)  # fmt: skip


FILTER_FIELDS = ("age", "gender", "occupations", "favourite_genres")


class SegmentSpec(StrictModel):
    """One segment of the user population (see the module docstring). Sampled-user fields
    left at None fall back to the model's ``ParametricUserConfig``; filter fields left at
    None do not filter."""

    name: str = Field(min_length=1, description="Segment name (unique within a list).")
    weight: float = Field(gt=0.0, description="Relative share of new users in this segment.")
    persona: str | None = Field(
        None, description="One-sentence description of the segment for LLM prompts/reports."
    )
    # sampled users: overrides of the ParametricUserConfig fields of the same names
    interest_concentration: float | None = Field(
        None, gt=0.0, description="Dirichlet concentration of topic interests (low = focused)."
    )
    novelty_static_a: float | None = Field(None, gt=0.0, description="Beta(a, b) of novelty.")
    novelty_static_b: float | None = Field(None, gt=0.0, description="Beta(a, b) of novelty.")
    patience_mean: float | None = Field(None, ge=0.0, description="Mean patience (Gamma, k=4).")
    era_a: float | None = Field(None, gt=0.0, description="Beta(a, b) of the preferred era.")
    era_b: float | None = Field(None, gt=0.0, description="Beta(a, b) of the preferred era.")
    topic_boost: dict[str, float] = Field(
        default_factory=dict,
        description="Topic name -> factor >= 0 multiplying that topic's gamma draw before the "
        "max-normalisation of interests (> 1: more of the segment likes the topic).",
    )
    # MovieLens-fitted users: a filter on the real raters
    age: tuple[int, int] | None = Field(None, description="Inclusive age range (lo, hi).")
    gender: Literal["M", "F"] | None = Field(None, description="Gender of the rater.")
    occupations: list[str] | None = Field(None, description="ML-100k occupation names.")
    favourite_genres: list[str] | None = Field(
        None, description="The rater's favourite genre (``favourite_genre``) is among these."
    )

    @field_validator("topic_boost")
    @classmethod
    def _check_boost(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in value.items() if not (v >= 0.0 and math.isfinite(v))}
        if bad:
            raise ValueError(f"topic_boost factors must be finite and >= 0, got {bad}")
        return value

    @field_validator("age")
    @classmethod
    def _check_age(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and not 0 <= value[0] <= value[1]:
            raise ValueError(f"age must be an inclusive range (lo, hi), 0 <= lo <= hi: {value}")
        return value

    @field_validator("occupations", "favourite_genres")
    @classmethod
    def _check_nonempty(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("must list at least one name (or be left out)")
        return value

    @property
    def has_filter(self) -> bool:
        """True when the segment filters MovieLens raters."""
        return any(getattr(self, f) is not None for f in FILTER_FIELDS)

    @property
    def sampled_overrides(self) -> dict[str, Any]:
        """The sampled-user fields the segment sets (topic_boost included when non-empty)."""
        out: dict[str, Any] = {
            f: getattr(self, f) for f in SAMPLED_FIELDS if getattr(self, f) is not None
        }
        if self.topic_boost:
            out["topic_boost"] = self.topic_boost
        return out

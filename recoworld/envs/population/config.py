"""Config models of a population on one platform: size and arrivals, the friendship graph
and sharing, trending, and creators publishing held-back items.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from recoworld.core.config import StrictModel
from recoworld.envs.config import WorldConfig


class SocialConfig(StrictModel):
    """The friendship graph and sharing of a population."""

    degree: int = Field(
        6, ge=0, le=200, description="Friends per user (Watts-Strogatz ring lattice: even)."
    )
    rewire: float = Field(0.1, ge=0.0, le=1.0, description="Share of edges rewired at random.")
    share_probability: float = Field(
        0.25, ge=0.0, le=1.0, description="Chance that a liked item is shared with each friend."
    )
    inbox_size: int = Field(4, ge=1, le=64, description="Shared items a user holds, newest kept.")
    slots: int = Field(
        1, ge=0, description="Candidate slots per step from the inbox ('shared by a friend')."
    )

    @model_validator(mode="after")
    def _even(self) -> SocialConfig:
        if self.degree % 2:
            raise ValueError(f"social.degree must be even (a ring lattice), got {self.degree}")
        return self


class TrendingConfig(StrictModel):
    """Trending popularity: the population's recent clicks feed candidate generation."""

    slots: int = Field(2, ge=0, description="Candidate slots per step drawn from trending items.")
    decay: float = Field(
        0.95, ge=0.0, lt=1.0, description="Per-step decay of the population's click counts."
    )


class PublishingConfig(StrictModel):
    """Creators publishing new items over time: the newest ``reserve`` items of the catalog
    are held back at the start and released in release-time order."""

    reserve: int = Field(0, ge=0, description="Newest items held back at the start.")
    rate: float = Field(0.5, ge=0.0, description="Expected items published per step (Poisson).")
    every: int = Field(
        10,
        ge=1,
        description="Release in batches every this many steps (each release rebuilds the "
        "candidate tables, O(items)).",
    )
    follower_slots: int = Field(
        1, ge=0, description="Candidate slots for a followed creator's recent upload."
    )
    recent_steps: int = Field(20, ge=1, description="How long an upload counts as recent.")


class PopulationConfig(StrictModel):
    """A population on one platform (``recoworld.envs.population.population``)."""

    world: WorldConfig = Field(default_factory=WorldConfig)
    n_users: int = Field(64, ge=1, le=10_000_000, description="Users at the start.")
    capacity: int | None = Field(
        None, ge=1, description="Most users ever (arrivals fill it); default n_users."
    )
    arrival_rate: float = Field(0.0, ge=0.0, description="Expected new users per step (Poisson).")
    max_cycles: int = Field(500, ge=1, description="Steps after which every agent is truncated.")
    social: SocialConfig = Field(default_factory=SocialConfig)
    trending: TrendingConfig = Field(default_factory=TrendingConfig)
    publishing: PublishingConfig = Field(default_factory=PublishingConfig)

    @property
    def max_users(self) -> int:
        return self.capacity or self.n_users

    @model_validator(mode="after")
    def _consistent(self) -> PopulationConfig:
        if self.capacity is not None and self.capacity < self.n_users:
            raise ValueError(f"capacity={self.capacity} is below n_users={self.n_users}")
        slots = self.social.slots + self.trending.slots + self.publishing.follower_slots
        m, k = self.world.candidates.n_candidates, self.world.episode.slate_size
        if slots > m - k:
            raise ValueError(
                f"social.slots + trending.slots + publishing.follower_slots = {slots} leaves "
                f"fewer than slate_size={k} of the n_candidates={m} slots to the platform"
            )
        return self

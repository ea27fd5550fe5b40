"""What the collaborative-filtering recommenders (item-kNN, matrix factorisation) share.

Both are fitted once on logged ``Interactions`` and then, at act time, score each
candidate (``observation["candidate_ids"]``) from the user's recent clicks
(``observation["recent_ids"]``) — no per-user training at act time, so they serve users
they never saw (every simulated user is new to them).

Scores are combined the same way for both::

    score = cf_score + popularity_weight * prior - clicked_penalty * [clicked before]

``prior`` is log1p(fit-log count) scaled to [0, 1]: it breaks ties and is the whole score
for a user with no clicks yet (cold start: the fit log's most-popular order). The
clicked-before flag is the user's own log (candidate feature ``clicked_before`` when its
column is given, else membership in ``recent_ids``); the simulated users rarely rewatch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
from pydantic import Field

from recoworld.core.config import StrictModel
from recoworld.policies.base import batched, require, top_k, unbatch
from recoworld.policies.interactions import Interactions, popularity_prior


class CollaborativeConfig(StrictModel):
    """Scoring settings shared by item-kNN and matrix factorisation."""

    popularity_weight: float = Field(
        1e-3,
        ge=0.0,
        description="Weight of the fit log's popularity prior (tie-break, cold start).",
    )
    clicked_penalty: float = Field(
        1.0, ge=0.0, description="Subtracted from candidates the user has already clicked."
    )


class CollaborativeRecommender(ABC):
    """Base: ``fit(interactions)`` then ``act`` = top-k of ``scores`` (see module doc)."""

    name = "collaborative"
    config: CollaborativeConfig

    def __init__(self, slate_size: int, clicked_index: int | None = None) -> None:
        if slate_size < 1:
            raise ValueError(f"slate_size must be >= 1, got {slate_size}")
        self.slate_size = slate_size
        self.clicked_index = clicked_index
        self.prior: np.ndarray | None = None
        self.n_items = 0

    # -- subclasses implement
    @abstractmethod
    def _fit(self, interactions: Interactions) -> None:
        """Learn from logged interactions."""

    @abstractmethod
    def _cf_scores(self, items: np.ndarray, recent: np.ndarray) -> np.ndarray:
        """[B, M] collaborative scores of candidate items [B, M] given recent [B, H]
        (-1 padded, at least one valid entry per row is not guaranteed)."""

    # -- shared
    def fit(self, interactions: Interactions) -> CollaborativeRecommender:
        """Fit on logged positives; returns self."""
        if not isinstance(interactions, Interactions):
            raise TypeError(f"fit: expected Interactions, got {type(interactions).__name__}")
        self.n_items = interactions.n_items
        self.prior = popularity_prior(interactions.item_counts())
        self._fit(interactions)
        return self

    @property
    def fitted(self) -> bool:
        return self.prior is not None

    def scores(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        """[B, M] (or [M]) candidate scores for a (batched) observation."""
        if self.prior is None:
            raise RuntimeError(f"{type(self).__name__}: call fit(interactions) before act")
        obs, single = batched(observation)
        require(obs, ("candidate_ids", "recent_ids"), type(self).__name__)
        items = np.asarray(obs["candidate_ids"], dtype=np.int64)
        recent = np.asarray(obs["recent_ids"], dtype=np.int64)
        if items.size and (items.min() < 0 or items.max() >= self.n_items):
            raise ValueError(
                f"{type(self).__name__}: candidate items outside the fitted catalog of "
                f"{self.n_items} items (fitted on another catalog?)"
            )
        if recent.size and recent.max() >= self.n_items:
            raise ValueError(f"{type(self).__name__}: recent_items outside the fitted catalog")
        score = self._cf_scores(items, recent).astype(np.float64)
        score += self.config.popularity_weight * self.prior[items]
        if self.config.clicked_penalty:
            if self.clicked_index is not None:
                clicked = np.asarray(obs["candidates"])[..., self.clicked_index] > 0.5
            else:
                clicked = (items[:, :, None] == recent[:, None, :]).any(axis=2)
            score -= self.config.clicked_penalty * clicked
        return unbatch(score, single)

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        obs, single = batched(observation)
        return unbatch(top_k(np.atleast_2d(self.scores(obs)), self.slate_size), single)

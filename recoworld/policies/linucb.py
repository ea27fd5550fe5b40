"""LinUCB with one shared linear model over (user context, candidate) features.

Why shared, not disjoint: disjoint LinUCB keeps one model per arm. Here an arm would be a
catalog item (candidates are redrawn every step, so a candidate slot is not an arm), and
most of the catalog is shown to a given user at most a few times in its life; per-user
models are no better, since every user life is short and new. One shared model (the
"hybrid" LinUCB of Li et al. 2010 without its per-arm part) learns across users and items
from every shown slot, and generalises to items and users it has not seen.

Features of candidate m for user b (``SlotFeatures``; p = d + 2T + 6):

=====================================  =============================================
block                                  why
=====================================  =============================================
candidate features (d)                 item topics, popularity, freshness, shown /
                                       clicked before, creator follow, source
topics(m) * click-topic history (T)    per-topic affinity of this user
topics(m) * instruction deltas (T)     following the latest instruction, per topic
sum of each of the two blocks (2)      the same, pooled over topics (learns faster)
novelty flag * (not shown before,      the "something new" wish
1 - popularity, freshness) (3)
bias (1)
=====================================  =============================================

(topics normalised to sum 1.) User-only features (session counters, click rates) would add
the same amount to every candidate and cannot change a ranking, so they enter only through
these interactions.

Model: ridge regression of the slot's reward (click, or watch fraction) on x:
A = ridge I + sum x x^T, b = sum r x, theta = A^-1 b. Act: the slate is the top k of
``x . theta + alpha sqrt(x^T A^-1 x)`` over the M candidates, for all B users at once.
Update (``update(..., info)``): every slot that was shown (``info["shown"]``) in a row that
really stepped (``info["_click"]``) is one observation with reward ``info["click"]`` (or
``info["watch"]``); A and b get all of a step's rows in one matrix product, and A^-1 is
recomputed once per step. Deterministic (no sampling; exact ties go to the lower index).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import Field

from recoworld.core.config import StrictModel
from recoworld.policies.base import (
    batched,
    batched_info,
    info_array,
    require,
    step_mask,
    top_k,
    unbatch,
)


class LinUCBConfig(StrictModel):
    """LinUCB settings."""

    alpha: float = Field(0.5, ge=0.0, description="Width of the confidence bonus.")
    ridge: float = Field(1.0, gt=0.0, description="Prior precision (A starts at ridge * I).")
    reward: Literal["click", "watch"] = Field(
        "click", description="Per-slot reward: the click (0/1) or the watch fraction."
    )


class SlotFeatures:
    """x(b, m) for every candidate of a batched observation (see the module docstring)."""

    def __init__(self, candidate_feature_names: Sequence[str]) -> None:
        names = list(candidate_feature_names)
        self.topics = [i for i, n in enumerate(names) if n.startswith("topic:")]
        if not self.topics:
            raise ValueError("SlotFeatures: candidate features have no 'topic:*' columns")
        missing = [n for n in ("popularity", "freshness", "shown_before") if n not in names]
        if missing:
            raise ValueError(f"SlotFeatures: candidate features lack {missing}")
        self.popularity = names.index("popularity")
        self.freshness = names.index("freshness")
        self.shown = names.index("shown_before")
        self.n_topics = len(self.topics)
        self.candidate_dim = len(names)
        self.dim = self.candidate_dim + 2 * self.n_topics + 6

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """[B, M, p] float64 features of a batched observation."""
        cand = np.asarray(obs["candidates"], dtype=np.float64)
        if cand.shape[-1] != self.candidate_dim:
            raise ValueError(
                f"SlotFeatures: expected {self.candidate_dim} candidate features, got "
                f"{cand.shape[-1]} (another world's observation?)"
            )
        t = self.n_topics
        topics = cand[..., self.topics]
        topics = topics / np.maximum(topics.sum(-1, keepdims=True), 1e-12)
        history = np.asarray(obs["history"], dtype=np.float64)[:, None, :t]
        instruction = np.asarray(obs["instruction"], dtype=np.float64)
        deltas, novelty = instruction[:, None, :t], instruction[:, None, t : t + 1]
        affinity = topics * history
        follow = topics * deltas
        fresh = np.stack(
            [1.0 - cand[..., self.shown], 1.0 - cand[..., self.popularity],
             cand[..., self.freshness]],
            axis=-1,
        )  # fmt: skip
        return np.concatenate(
            [
                cand,
                affinity,
                follow,
                affinity.sum(-1, keepdims=True),
                follow.sum(-1, keepdims=True),
                novelty * fresh,
                np.ones((*cand.shape[:2], 1)),
            ],
            axis=-1,
        )


class LinUCBRecommender:
    """Shared-parameter LinUCB over slot features; an ``OnlineRecommender``."""

    name = "linucb"

    def __init__(
        self,
        slate_size: int,
        candidate_feature_names: Sequence[str],
        config: LinUCBConfig | None = None,
    ) -> None:
        if slate_size < 1:
            raise ValueError(f"slate_size must be >= 1, got {slate_size}")
        self.slate_size = slate_size
        self.config = config or LinUCBConfig()
        self.features = SlotFeatures(candidate_feature_names)
        p = self.features.dim
        self.a = self.config.ridge * np.eye(p)
        self.b = np.zeros(p)
        self.a_inv = np.eye(p) / self.config.ridge
        self.theta = np.zeros(p)
        self.n_updates = 0  # slot observations learned from

    def scores(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        """[B, M] (or [M]) upper confidence bounds."""
        obs, single = batched(observation)
        require(obs, ("candidates", "history", "instruction"), "LinUCBRecommender")
        x = self.features(obs)
        mean = x @ self.theta
        width = np.sqrt(np.maximum(np.einsum("bmp,pq,bmq->bm", x, self.a_inv, x), 0.0))
        return unbatch(mean + self.config.alpha * width, single)

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        obs, single = batched(observation)
        return unbatch(top_k(self.scores(obs), self.slate_size), single)

    def update(
        self,
        observation: dict[str, np.ndarray],
        slate: np.ndarray,
        reward: np.ndarray,
        next_observation: dict[str, np.ndarray],
        done: np.ndarray,
        info: dict[str, Any],
    ) -> None:
        """Learn from the per-slot responses of one step (see the module docstring)."""
        obs, single = batched(observation)
        info = batched_info(info, single)
        slate = np.asarray(slate, dtype=np.int64).reshape(len(obs["candidates"]), -1)
        b, k = slate.shape
        target = info_array(info, self.config.reward).reshape(b, k).astype(np.float64)
        shown = np.asarray(info.get("shown", np.ones((b, k), bool)), dtype=bool).reshape(b, k)
        rows = step_mask(info, b)
        use = shown & rows[:, None]
        if not use.any():
            return
        x = np.take_along_axis(self.features(obs), slate[:, :, None], axis=1)  # [B, k, p]
        xs, rs = x[use], target[use]
        self.a += xs.T @ xs
        self.b += xs.T @ rs
        self.a_inv = np.linalg.inv(self.a)
        self.theta = self.a_inv @ self.b
        self.n_updates += int(use.sum())

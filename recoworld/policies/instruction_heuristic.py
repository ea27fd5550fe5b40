"""Instruction-aware heuristic: re-rank the candidates by the user's latest instruction.

Reads only the observation: the parsed instruction vector (T topic deltas, +1 more / -1
less, and a "something new" flag) and the candidate features. With an active instruction
(any non-zero entry), candidate m scores

    topic_weight * topics(m) . deltas                        + for wanted, - for unwanted
  + novelty_weight * flag * ((1 - shown_before) + (1 - popularity)) / 2
  + popularity_weight * popularity
  - clicked_penalty * clicked_before

(topics normalised to sum 1, so a film half in a wanted genre gets half the boost; all
features in [0, 1]). Without an instruction the slate is the most popular candidates — the
``popular`` baseline — so any difference between the two policies is what following
instructions is worth.

An instruction stays in the observation until the session ends, but a request is about
what comes next: by default it is followed for ``follow_steps`` = 5 steps after it was
written (read from the user feature ``instruction_recency``), then popularity takes over.
In the MovieLens demo world this matters: the fitted users weigh popularity heavily, and
following an instruction for the rest of the session with a weak popularity term
(``follow_steps=None, popularity_weight=0.1``) cut the return rate from 0.82 (popular) to
0.69.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import Field

from recoworld.core.config import StrictModel
from recoworld.envs.observation import RECENCY_STEPS, USER_FEATURES
from recoworld.policies.base import batched, require, top_k, unbatch


class InstructionHeuristicConfig(StrictModel):
    """Weights of the instruction-aware heuristic."""

    topic_weight: float = Field(1.0, ge=0.0, description="Weight of topics . instruction deltas.")
    novelty_weight: float = Field(
        0.5, ge=0.0, description="Boost of unseen / less popular items when novelty is asked."
    )
    popularity_weight: float = Field(
        1.0, ge=0.0, description="Popularity's weight while an instruction is active."
    )
    clicked_penalty: float = Field(
        0.0, ge=0.0, description="Subtracted from candidates the user already clicked."
    )
    follow_steps: int | None = Field(
        5,
        ge=0,
        description="Follow an instruction for this many steps after it was written (read "
        "from the user feature instruction_recency); None: until the session ends.",
    )


class InstructionHeuristicRecommender:
    """Follows the parsed instruction; most-popular without one (see module docstring)."""

    name = "instruction"

    def __init__(
        self,
        slate_size: int,
        candidate_feature_names: Sequence[str],
        config: InstructionHeuristicConfig | None = None,
    ) -> None:
        if slate_size < 1:
            raise ValueError(f"slate_size must be >= 1, got {slate_size}")
        names = list(candidate_feature_names)
        self.topics = [i for i, n in enumerate(names) if n.startswith("topic:")]
        missing = [n for n in ("popularity", "shown_before", "clicked_before") if n not in names]
        if missing or not self.topics:
            lacking = missing or ["topic:*"]
            raise ValueError(f"InstructionHeuristicRecommender: candidate features lack {lacking}")
        self.slate_size = slate_size
        self.config = config or InstructionHeuristicConfig()
        self.n_candidate_features = len(names)
        self.popularity = names.index("popularity")
        self.shown = names.index("shown_before")
        self.clicked = names.index("clicked_before")

    def scores(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        """[B, M] (or [M]) heuristic scores."""
        obs, single = batched(observation)
        require(obs, ("candidates", "instruction"), "InstructionHeuristicRecommender")
        cand = np.asarray(obs["candidates"], dtype=np.float64)
        instruction = np.asarray(obs["instruction"], dtype=np.float64)
        t = len(self.topics)
        if cand.shape[-1] != self.n_candidate_features or instruction.shape[-1] != t + 1:
            raise ValueError(
                "InstructionHeuristicRecommender: observation shapes do not match the "
                f"{t} topics / {self.n_candidate_features} candidate features it was built for"
            )
        cfg = self.config
        topics = cand[..., self.topics]
        topics /= np.maximum(topics.sum(-1, keepdims=True), 1e-12)
        pop = cand[..., self.popularity]
        deltas, novelty = instruction[:, :t], instruction[:, t]
        unseen = 1.0 - cand[..., self.shown]
        guided = (
            cfg.topic_weight * np.einsum("bmt,bt->bm", topics, deltas)
            + cfg.novelty_weight * novelty[:, None] * (unseen + 1.0 - pop) / 2.0
            + cfg.popularity_weight * pop
            - cfg.clicked_penalty * cand[..., self.clicked]
        )
        active = (instruction != 0).any(axis=1)
        if cfg.follow_steps is not None:
            require(obs, ("user",), "InstructionHeuristicRecommender (follow_steps)")
            recency = np.asarray(obs["user"])[:, USER_FEATURES.index("instruction_recency")]
            active &= recency >= np.exp(-(cfg.follow_steps + 0.5) / RECENCY_STEPS)
        return unbatch(np.where(active[:, None], guided, pop), single)

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        obs, single = batched(observation)
        return unbatch(top_k(self.scores(obs), self.slate_size), single)

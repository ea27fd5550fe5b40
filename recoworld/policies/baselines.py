"""Baseline recommenders that need no training: random, most-popular, and the oracle.

Random and most-popular read only the observation (most-popular uses the ``popularity``
candidate feature), so they run against any RecoWorld env, single or batched. The oracle
reads hidden ground truth and exists as an upper reference in reports.
"""

from __future__ import annotations

import numpy as np

from recoworld.envs.world import World
from recoworld.policies.base import batched, top_k, unbatch


class RandomRecommender:
    """k distinct candidates uniformly at random."""

    name = "random"

    def __init__(self, slate_size: int, seed: int | None = None) -> None:
        self.slate_size = slate_size
        self.rng = np.random.default_rng(seed)

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        obs, single = batched(observation)
        b, m = obs["candidates"].shape[:2]
        return unbatch(top_k(self.rng.random((b, m)), self.slate_size), single)


class MostPopularRecommender:
    """The k most popular candidates (ties broken by candidate order)."""

    name = "popular"

    def __init__(self, slate_size: int, popularity_index: int) -> None:
        self.slate_size = slate_size
        self.popularity_index = popularity_index

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        obs, single = batched(observation)
        scores = obs["candidates"][..., self.popularity_index]
        return unbatch(top_k(scores, self.slate_size), single)


class OracleRecommender:
    """Reference upper bound, not a deployable policy: ranks the current candidates by the
    simulator's ground-truth utility, read from the world's hidden state. Only meaningful
    in-process, for the batched observations of ``world`` itself."""

    name = "oracle"

    def __init__(self, world: World) -> None:
        self.world = world

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        obs, single = batched(observation)
        w = self.world
        if w.state is None or w.cands is None or len(w.cands) != len(obs["candidates"]):
            raise ValueError("OracleRecommender: observation does not come from its world")
        utility = w.simulator.utility(w.state, w.cands)
        return unbatch(top_k(utility, w.slate_size), single)


BASELINES = ("random", "popular", "oracle")


def make_baseline(
    name: str, world: World, seed: int | None = None
) -> RandomRecommender | MostPopularRecommender | OracleRecommender:
    """A baseline by name for the observations of ``world``."""
    if name == "random":
        return RandomRecommender(world.slate_size, seed)
    if name == "popular":
        return MostPopularRecommender(world.slate_size, world.encoder.feature_index("popularity"))
    if name == "oracle":
        return OracleRecommender(world)
    raise ValueError(f"unknown policy {name!r}; available: {', '.join(BASELINES)}")

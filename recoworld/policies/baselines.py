"""Baseline recommenders: random, most-popular, the oracle, and ``make_baseline`` — the one
factory for every baseline by name.

Random and most-popular read only the observation (most-popular uses the ``popularity``
candidate feature), so they run against any RecoWorld env, single or batched. The oracle
reads hidden ground truth and exists as an upper reference in reports. The other baselines
live in their own modules: ``item_knn`` and ``matrix_factorization`` (fitted on logged
interactions), ``linucb`` (online contextual bandit), ``instruction_heuristic`` and
``llm_reranker``.
"""

from __future__ import annotations

import numpy as np

from recoworld.envs.world import World
from recoworld.llm import LLMBackend, make_backend
from recoworld.policies.base import Recommender, batched, top_k, unbatch
from recoworld.policies.instruction_heuristic import InstructionHeuristicRecommender
from recoworld.policies.interactions import Interactions
from recoworld.policies.item_knn import ItemKNNRecommender
from recoworld.policies.linucb import LinUCBRecommender
from recoworld.policies.llm_reranker import LLMRerankerRecommender
from recoworld.policies.matrix_factorization import ALSConfig, ALSRecommender


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


BASELINES = ("random", "popular", "oracle", "linucb", "instruction", "llm_rerank")
"""Baselines that need no external fit data (``llm_rerank`` needs an LLM backend: the
world's, or one started from ``world.config.llm``)."""
FITTED_BASELINES = ("knn", "mf")
"""Baselines fitted on logged interactions: the world's MovieLens ratings by default."""
POLICIES = (*BASELINES, *FITTED_BASELINES)
"""Every name ``make_baseline`` knows."""


def make_baseline(
    name: str,
    world: World,
    seed: int | None = None,
    *,
    interactions: Interactions | None = None,
    llm_backend: LLMBackend | None = None,
) -> Recommender:
    """A baseline by name for the observations of ``world``.

    ``knn`` / ``mf`` are fitted on ``interactions`` (e.g.
    ``Interactions.from_trajectories(path, world.catalog)``), by default on the liked
    ratings of the world's MovieLens data; ``mf`` draws its initial factors from ``seed``.
    ``llm_rerank`` uses ``llm_backend``, else the world simulator's backend, else starts one
    from ``world.config.llm`` (closed by the re-ranker's ``close()``)."""
    enc = world.encoder
    if name == "random":
        return RandomRecommender(world.slate_size, seed)
    if name == "popular":
        return MostPopularRecommender(world.slate_size, enc.feature_index("popularity"))
    if name == "oracle":
        return OracleRecommender(world)
    if name == "linucb":
        return LinUCBRecommender(world.slate_size, enc.candidate_feature_names)
    if name == "instruction":
        return InstructionHeuristicRecommender(world.slate_size, enc.candidate_feature_names)
    if name in FITTED_BASELINES:
        if interactions is None:
            if world.movielens is None:
                raise ValueError(
                    f"policy {name!r} needs logged interactions to fit on: use a MovieLens "
                    "world (catalog.source=movielens) or pass interactions= (e.g. "
                    "Interactions.from_trajectories(log, world.catalog))"
                )
            interactions = Interactions.from_movielens(world.movielens)
        if interactions.n_items != world.catalog.n_items:
            raise ValueError(
                f"policy {name!r}: interactions cover {interactions.n_items} items but the "
                f"world's catalog has {world.catalog.n_items}"
            )
        clicked = enc.feature_index("clicked_before")
        if name == "knn":
            return ItemKNNRecommender(world.slate_size, clicked_index=clicked).fit(interactions)
        config = ALSConfig(seed=0 if seed is None else seed)
        return ALSRecommender(world.slate_size, config, clicked_index=clicked).fit(interactions)
    if name == "llm_rerank":
        owns = False
        if llm_backend is None:
            llm_backend = getattr(world.simulator, "backend", None)
        if llm_backend is None:
            llm_backend, owns = make_backend(world.config.llm), True
        return LLMRerankerRecommender(
            world.catalog, llm_backend, world.slate_size, enc.feature_index("popularity"),
            owns_backend=owns,
        )  # fmt: skip
    raise ValueError(f"unknown policy {name!r}; available: {', '.join(POLICIES)}")

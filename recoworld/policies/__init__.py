"""Recommenders: the ``Recommender`` protocol every policy meets, and baselines."""

from recoworld.policies.base import OnlineRecommender, Recommender
from recoworld.policies.baselines import (
    BASELINES,
    FITTED_BASELINES,
    POLICIES,
    MostPopularRecommender,
    OracleRecommender,
    RandomRecommender,
    make_baseline,
)
from recoworld.policies.instruction_heuristic import (
    InstructionHeuristicConfig,
    InstructionHeuristicRecommender,
)
from recoworld.policies.interactions import Interactions
from recoworld.policies.item_knn import ItemKNNConfig, ItemKNNRecommender
from recoworld.policies.linucb import LinUCBConfig, LinUCBRecommender
from recoworld.policies.llm_reranker import LLMRerankerRecommender, RerankerConfig
from recoworld.policies.matrix_factorization import ALSConfig, ALSRecommender

__all__ = [
    "BASELINES",
    "FITTED_BASELINES",
    "POLICIES",
    "ALSConfig",
    "ALSRecommender",
    "InstructionHeuristicConfig",
    "InstructionHeuristicRecommender",
    "Interactions",
    "ItemKNNConfig",
    "ItemKNNRecommender",
    "LLMRerankerRecommender",
    "LinUCBConfig",
    "LinUCBRecommender",
    "MostPopularRecommender",
    "OnlineRecommender",
    "OracleRecommender",
    "RandomRecommender",
    "Recommender",
    "RerankerConfig",
    "make_baseline",
]

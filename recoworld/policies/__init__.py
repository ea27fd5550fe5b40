"""Recommenders: the ``Recommender`` protocol every policy meets, and baselines."""

from recoworld.policies.base import Recommender
from recoworld.policies.baselines import (
    BASELINES,
    MostPopularRecommender,
    OracleRecommender,
    RandomRecommender,
    make_baseline,
)

__all__ = [
    "BASELINES",
    "MostPopularRecommender",
    "OracleRecommender",
    "RandomRecommender",
    "Recommender",
    "make_baseline",
]

"""Simulated users fitted to real MovieLens 100k users.

Each of the 943 real users becomes one row of a ``FittedPopulation``; simulated users are
drawn from these rows, so the parametric world is grounded in real preferences:

- interests: per genre, the user's liked-rating mass (ratings >= like_threshold, each film's
  weight split over its genres) plus 0.1 smoothing, divided by the user's maximum (1 =
  favourite genre);
- latent taste: the user's factor from the same rank-D SVD that gives the films' latent
  vectors, so latent match ≈ the SVD's predicted (centred) rating;
- static novelty propensity: the mean of two within-population percentiles — how far the
  user's rated films sit from the popular head (1 - mean popularity percentile) and the
  entropy of the user's genre mix — mapped to [0.05, 0.95];
- patience: ``patience_mean`` x (0.5 + percentile of the user's rating count).
"""

from __future__ import annotations

import numpy as np

from recoworld.catalog.movielens import MovieLensData
from recoworld.config import ParametricUserConfig
from recoworld.simulators.parametric import FittedPopulation


def _percentile(x: np.ndarray) -> np.ndarray:
    ranks = np.argsort(np.argsort(x, kind="stable"), kind="stable")
    return ranks / max(len(x) - 1, 1)


def fit_movielens_population(
    data: MovieLensData, config: ParametricUserConfig | None = None
) -> FittedPopulation:
    cfg = config or ParametricUserConfig()
    cat = data.catalog
    n_users, n_topics = data.n_users, cat.n_topics
    tn = cat.topics_normalized[data.item_index]  # [R, T]
    liked = (data.rating >= data.like_threshold).astype(np.float32)
    mass = np.zeros((n_users, n_topics), dtype=np.float64)
    np.add.at(mass, data.user_index, tn * liked[:, None])
    interest = mass + 0.1
    interest /= interest.max(axis=1, keepdims=True)

    counts = np.bincount(data.user_index, minlength=n_users).astype(np.float64)
    pop = cat.popularity_percentile[data.item_index]
    mean_pop = np.bincount(data.user_index, weights=pop, minlength=n_users) / counts
    rated = np.zeros((n_users, n_topics), dtype=np.float64)
    np.add.at(rated, data.user_index, tn)
    share = rated / rated.sum(axis=1, keepdims=True)
    entropy = -(share * np.log(np.where(share > 0, share, 1.0))).sum(axis=1)
    novelty = 0.5 * (_percentile(1.0 - mean_pop) + _percentile(entropy))
    novelty = 0.05 + 0.9 * novelty
    patience = cfg.patience_mean * (0.5 + _percentile(counts))
    return FittedPopulation(
        interest=interest.astype(np.float32),
        latent=data.user_latent.astype(np.float32),
        novelty_static=novelty.astype(np.float32),
        patience=patience.astype(np.float32),
        name="movielens-100k",
    )

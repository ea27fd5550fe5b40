"""Simulated users fitted to real MovieLens 100k users.

Each of the 943 real users becomes one row of a ``FittedPopulation``; simulated users are
drawn from these rows, so the parametric world is grounded in real preferences:

- interests: per genre, the user's liked-rating mass (ratings >= like_threshold, each film's
  weight split over its genres) plus 0.1 smoothing, divided by the user's maximum (1 =
  favourite genre); the population mean per genre is the interest base the utility measures
  against (``FittedPopulation.interest_base``);
- latent taste: the user's factor from the same rank-D SVD that gives the films' latent
  vectors, so latent match ≈ the SVD's predicted (centred) rating;
- preferred era: the mean release-time percentile of the user's liked films (all rated films
  when none is liked);
- static novelty propensity: the mean of two within-population percentiles — how far the
  user's rated films sit from the popular head (1 - mean popularity percentile) and the
  entropy of the user's genre mix — mapped to [0.05, 0.95];
- patience: ``patience_mean`` x (0.5 + percentile of the user's rating count);
- preference weights (``fit_preference_weights``): the weights of the interest, latent,
  quality, popularity and era terms, fitted by conditional logit on a validation split of
  the ratings given — each eligible user's last ``n_holdout`` liked films (by time) held out
  against never-rated films (uniform and popularity-matched, 1:4), with the users re-fitted
  on the ratings before them — and stored in ``FittedPopulation.weights``. Everything is
  fitted from ``data`` only: handed a training split, nothing beyond it is seen.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from typing import Any

import numpy as np

from recoworld.catalog.movielens import MovieLensData
from recoworld.simulators.parametric.config import ParametricUserConfig
from recoworld.simulators.parametric.model import (
    COMPONENTS,
    ParametricUserModel,
    release_percentile,
)
from recoworld.simulators.parametric.state import FittedPopulation, UserState

# utility component -> the ParametricUserConfig field weighting it (the fitted weights)
WEIGHT_FIELDS = {
    "interest": "interest_scale",
    "latent": "latent_weight",
    "quality": "quality_weight",
    "popularity": "popularity_weight",
    "era": "era_weight",
}


def _percentile(x: np.ndarray) -> np.ndarray:
    ranks = np.argsort(np.argsort(x, kind="stable"), kind="stable")
    return ranks / max(len(x) - 1, 1)


def fit_users(data: MovieLensData, config: ParametricUserConfig | None = None) -> FittedPopulation:
    """Per-user traits of every user of ``data`` (no preference weights)."""
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
    mean_pop = np.bincount(data.user_index, weights=pop, minlength=n_users) / np.maximum(counts, 1)
    rated = np.zeros((n_users, n_topics), dtype=np.float64)
    np.add.at(rated, data.user_index, tn)
    share = rated / np.maximum(rated.sum(axis=1, keepdims=True), 1e-12)
    entropy = -(share * np.log(np.where(share > 0, share, 1.0))).sum(axis=1)
    novelty = 0.5 * (_percentile(1.0 - mean_pop) + _percentile(entropy))
    novelty = 0.05 + 0.9 * novelty
    patience = cfg.patience_mean * (0.5 + _percentile(counts))

    era_item = release_percentile(cat.release_time)[data.item_index].astype(np.float64)
    n_liked = np.bincount(data.user_index, weights=liked, minlength=n_users)
    era_liked = np.bincount(data.user_index, weights=era_item * liked, minlength=n_users)
    era_all = np.bincount(data.user_index, weights=era_item, minlength=n_users)
    era = np.where(
        n_liked > 0,
        era_liked / np.maximum(n_liked, 1),
        np.where(counts > 0, era_all / np.maximum(counts, 1), 0.5),
    )
    return FittedPopulation(
        interest=interest.astype(np.float32),
        latent=data.user_latent.astype(np.float32),
        novelty_static=novelty.astype(np.float32),
        patience=patience.astype(np.float32),
        name="movielens-100k",
        era=era.astype(np.float32),
        interest_base=interest.mean(axis=0).astype(np.float32),
    )


def conditional_logit(
    x: np.ndarray, offset: np.ndarray | None = None, l2: float = 1e-3, max_iter: int = 100
) -> tuple[np.ndarray, float]:
    """Weights w maximising sum_rows log softmax(x @ w + offset)[0] - l2 * n * |w|^2 / 2
    (the chosen alternative in column 0 of x [n, m, k]), by Newton's method. Returns (w,
    mean log-likelihood per row)."""
    x = np.asarray(x, dtype=np.float64)
    n, _, k = x.shape
    off = np.zeros(x.shape[:2]) if offset is None else np.asarray(offset, dtype=np.float64)
    w = np.zeros(k)
    for _ in range(max_iter):
        s = x @ w + off
        s -= s.max(axis=1, keepdims=True)
        p = np.exp(s)
        p /= p.sum(axis=1, keepdims=True)
        mean = (p[:, :, None] * x).sum(axis=1)
        grad = (x[:, 0] - mean).sum(axis=0) - l2 * n * w
        dev = x - mean[:, None, :]
        hess = np.einsum("nm,nmk,nml->kl", p, dev, dev) + l2 * n * np.eye(k)
        step = np.linalg.solve(hess, grad)
        w += step
        if np.abs(step).max() < 1e-9:
            break
    s = x @ w + off
    s -= s.max(axis=1, keepdims=True)
    loglik = float((s[:, 0] - np.log(np.exp(s).sum(axis=1))).mean())
    return w, loglik


def fit_preference_weights(
    data: MovieLensData,
    config: ParametricUserConfig | None = None,
    n_holdout: int = 5,
    n_neg: int = 4,
    pop_bins: int = 10,
    l2: float = 1e-3,
    seed: int = 0,
) -> tuple[dict[str, float], dict[str, Any]]:
    """Preference weights of the utility fitted on a validation split of ``data`` (see the
    module docstring): per eligible user, the last ``n_holdout`` liked films are held out,
    users, popularity, quality and latent vectors are re-fitted on the ratings before them,
    each held-out film meets ``n_neg`` never-rated films (one uniform and one popularity-
    matched set), and the weights of ``WEIGHT_FIELDS`` maximise the conditional-logit
    likelihood of the held-out film's choice under the utility of a fresh simulated user
    (the other terms — novelty — enter at their configured weight). Returns (config field
    -> weight, details of the fit)."""
    from recoworld.catalog.splits import (
        holdout_split,
        popularity_bins,
        sample_negatives,
        training_view,
    )
    from recoworld.metrics import top1_auc

    cfg = config or ParametricUserConfig()
    split = holdout_split(
        data.user_index, data.item_index, data.rating, data.timestamp, data.like_threshold,
        n_holdout,
    )  # fmt: skip
    if not split.users:
        raise ValueError("fit_preference_weights: no user has enough liked ratings")
    view = training_view(data, split.train)
    unit = cfg.model_copy(
        update={"source": "movielens", "fitted_weights": False}
        | {f: 1.0 for f in WEIGHT_FIELDS.values()}
    )
    model = ParametricUserModel(view.catalog, unit, fit_users(view, unit))
    state = fresh_state(model, np.array([u.row for u in split.users]), seed)
    cols = [COMPONENTS.index(c) for c in WEIGHT_FIELDS]
    xs, offs, sets = [], [], []
    for name, bins in (
        ("uniform", None),
        ("popularity-matched", popularity_bins(view.catalog.popularity, pop_bins)),
    ):
        items, row_user = sample_negatives(split.users, view.catalog.n_items, n_neg, bins, seed)
        comps, _, util = model.utility_components(state.take(row_user), items)
        x = comps[..., cols].astype(np.float64)
        xs.append(x)
        offs.append(util - x.sum(-1))
        sets.append(name)
    w, loglik = conditional_logit(np.concatenate(xs), np.concatenate(offs), l2)
    w = np.maximum(w, 0.0)  # the config fields are non-negative
    weights = {WEIGHT_FIELDS[c]: float(v) for c, v in zip(WEIGHT_FIELDS, w, strict=True)}
    fit: dict[str, Any] = {}
    for name, x, off in zip(sets, xs, offs, strict=True):
        top1, auc = top1_auc(x @ w + off)
        fit[name] = {"top1_rows": float(top1.mean()), "auc_rows": float(auc.mean())}
    info = {
        "method": f"conditional logit (Newton, L2 {l2:g} per row) of each held-out liked "
        "film against its never-rated negatives, utility of a fresh fitted user, weights of "
        f"{', '.join(WEIGHT_FIELDS)}; novelty at its configured weight as offset",
        "validation_split": f"last {n_holdout} liked films by time of each eligible user of "
        "the ratings given (users/items re-fitted on the ratings before them)",
        "users": len(split.users),
        "rows": int(sum(len(x) for x in xs)),
        "negatives": f"1:{n_neg}, uniform and popularity-matched ({pop_bins} bins) pooled",
        "mean_loglik_per_row": loglik,
        "weights": weights,
        "in_sample": fit,
    }
    return weights, info


def fit_movielens_population(
    data: MovieLensData, config: ParametricUserConfig | None = None
) -> FittedPopulation:
    """Users fitted to ``data`` and, with ``config.fitted_weights``, the preference weights
    fitted on a validation split of ``data`` (cached per data object and configuration)."""
    cfg = config or ParametricUserConfig()
    return _fit_cached(data, cfg.model_dump_json())


@lru_cache(maxsize=8)
def _fit_cached(data: MovieLensData, config_json: str) -> FittedPopulation:
    cfg = ParametricUserConfig.model_validate_json(config_json)
    population = fit_users(data, cfg)
    if not cfg.fitted_weights:
        return population
    weights, info = fit_preference_weights(data, cfg)
    return dataclasses.replace(population, weights=weights, fit_info=info)


def fresh_state(model: ParametricUserModel, rows: np.ndarray, seed: int = 0) -> UserState:
    """Fresh users for population rows ``rows`` of ``model.population`` (nothing seen,
    no fatigue, session novelty = static propensity)."""
    pop = model.population
    if pop is None:
        raise ValueError("fresh_state needs a model with a fitted population")
    rows = np.asarray(rows, dtype=np.int64)
    state = model.sample_users(len(rows), np.random.default_rng(seed))
    state.interest[:] = pop.interest[rows]
    state.latent[:] = pop.latent[rows]
    state.novelty_static[:] = pop.novelty_static[rows]
    state.novelty_session[:] = pop.novelty_static[rows]
    state.patience[:] = pop.patience[rows]
    state.era[:] = 0.5 if pop.era is None else pop.era[rows]
    state.population_row[:] = rows
    return state

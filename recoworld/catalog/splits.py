"""Hold-out splits and negative sampling on real interaction data, shared by fitting the
MovieLens users (``recoworld.simulators.parametric.movielens_fit``) and the fidelity
evaluation (``recoworld.evaluation.fidelity``): per-user hold-outs by time, a training view
of the data without them, uniform and popularity-matched negatives.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recoworld.catalog.movielens import MovieLensData


@dataclass(frozen=True, eq=False)
class HeldOutUser:
    """One evaluation user: its training history (oldest first) and held-out likes."""

    row: int  # user row in the rating log
    train_items: np.ndarray
    train_ratings: np.ndarray
    train_times: np.ndarray
    positives: np.ndarray  # [n_holdout] held-out liked items, oldest first
    rated: np.ndarray  # every item the user ever rated (sorted): never a negative
    cutoff: int  # timestamp of the first held-out rating (training is strictly before)


@dataclass(frozen=True, eq=False)
class HeldOutSplit:
    users: list[HeldOutUser]
    train: np.ndarray  # [R] bool: the rating is in the training split
    n_holdout: int
    like_threshold: float
    n_eligible: int  # users meeting the criteria (before any --users subsampling)


def holdout_split(
    user_index: np.ndarray,
    item_index: np.ndarray,
    rating: np.ndarray,
    timestamp: np.ndarray,
    like_threshold: float = 4.0,
    n_holdout: int = 5,
    min_train_liked: int = 5,
    max_users: int | None = None,
    seed: int = 0,
) -> HeldOutSplit:
    """Hold out each user's last ``n_holdout`` liked ratings (rating >= ``like_threshold``,
    ordered by timestamp, ties by log order). Training = the user's ratings with a timestamp
    strictly before the first held-out one (same-second ratings are dropped, not leaked).
    Users need ``min_train_liked`` liked training ratings. ``max_users`` keeps a seeded random
    subset of the eligible users; ratings of users not evaluated all stay in training."""
    user_index = np.asarray(user_index, dtype=np.int64)
    item_index = np.asarray(item_index, dtype=np.int64)
    rating = np.asarray(rating)
    timestamp = np.asarray(timestamp, dtype=np.int64)
    order = np.lexsort((np.arange(len(user_index)), timestamp, user_index))
    bounds = np.flatnonzero(np.diff(user_index[order])) + 1
    groups = np.split(order, bounds) if len(order) else []
    candidates: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
    for rows in groups:
        liked = rows[rating[rows] >= like_threshold]
        if len(liked) < n_holdout + min_train_liked:
            continue
        held = liked[len(liked) - n_holdout :]
        cutoff = timestamp[held[0]]
        train_rows = rows[timestamp[rows] < cutoff]
        if (rating[train_rows] >= like_threshold).sum() < min_train_liked:
            continue
        candidates.append((int(user_index[rows[0]]), rows, held, train_rows))
    n_eligible = len(candidates)
    if max_users is not None and max_users < n_eligible:
        keep = np.sort(np.random.default_rng(seed).choice(n_eligible, max_users, replace=False))
        candidates = [candidates[i] for i in keep]
    train = np.ones(len(user_index), dtype=bool)
    users = []
    for u, all_rows, held, train_rows in candidates:
        train[all_rows] = False
        train[train_rows] = True
        users.append(
            HeldOutUser(
                row=u,
                train_items=item_index[train_rows],
                train_ratings=np.asarray(rating[train_rows], dtype=np.float32),
                train_times=timestamp[train_rows],
                positives=item_index[held],
                rated=np.unique(item_index[all_rows]),
                cutoff=int(timestamp[held[0]]),
            )
        )
    return HeldOutSplit(users, train, n_holdout, float(like_threshold), n_eligible)


def holdout_split_movielens(
    data: MovieLensData,
    n_holdout: int = 5,
    min_train_liked: int = 5,
    max_users: int | None = None,
    seed: int = 0,
) -> HeldOutSplit:
    return holdout_split(
        data.user_index, data.item_index, data.rating, data.timestamp, data.like_threshold,
        n_holdout, min_train_liked, max_users, seed,
    )  # fmt: skip


def popularity_bins(popularity: np.ndarray, n_bins: int = 10) -> np.ndarray:
    """[N] bin of each item's popularity percentile (0 = least popular; ties share a bin)."""
    pct = midrank_percentile(popularity)
    return np.minimum((pct * n_bins).astype(np.int64), n_bins - 1)


def sample_negatives(
    users: Sequence[HeldOutUser],
    n_items: int,
    n_neg: int = 4,
    bins: np.ndarray | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Candidates [n_rows, 1 + n_neg] (held-out positive in column 0, then ``n_neg``
    distinct items the user never rated) and the user position of each row. ``bins`` None:
    negatives uniform over unrated items; else from the positive's bin, widened to the
    nearest bins only when the bin has fewer than ``n_neg`` unrated items. Each user draws
    from its own stream (seed, user row, kind), so a user's negatives do not depend on
    which other users are evaluated."""
    rows_items, row_user = [], []
    kind = 0 if bins is None else 1
    for pos_u, user in enumerate(users):
        rng = np.random.default_rng([seed, user.row, kind])
        allowed = np.ones(n_items, dtype=bool)
        allowed[user.rated] = False
        pool_all = np.flatnonzero(allowed)
        for p in user.positives:
            if bins is None:
                pool = pool_all
            else:
                width = 0
                while True:
                    near = np.abs(bins[pool_all] - bins[p]) <= width
                    pool = pool_all[near]
                    if len(pool) >= n_neg or near.all():
                        break
                    width += 1
            if len(pool) < n_neg:
                raise ValueError(f"user row {user.row}: fewer than {n_neg} unrated items")
            neg = rng.choice(pool, size=n_neg, replace=False)
            rows_items.append(np.concatenate([[p], neg]))
            row_user.append(pos_u)
    return np.asarray(rows_items, dtype=np.int64), np.asarray(row_user, dtype=np.int64)


def training_view(data: MovieLensData, train: np.ndarray) -> MovieLensData:
    """``data`` restricted to the ratings in ``train``: the rating log, and everything
    ``load_movielens`` derives from ratings — popularity (counts), quality (the same
    Bayesian-shrunk mean rating) and the item/user latent factors (by ``data``'s
    ``latent_method``) — recomputed from the training ratings only. Titles, genres, years
    and creators are unchanged."""
    from recoworld.catalog.factorization import latent_factors

    train = np.asarray(train, dtype=bool)
    cat = data.catalog
    ui, ii, r = data.user_index[train], data.item_index[train], data.rating[train]
    counts = np.bincount(ii, minlength=cat.n_items).astype(np.float32)
    sums = np.bincount(ii, weights=r, minlength=cat.n_items)
    prior_mean, prior_n = float(r.mean()), 10.0  # as in load_movielens
    quality = (((sums + prior_mean * prior_n) / (counts + prior_n) - 1.0) / 4.0).clip(0.0, 1.0)
    user_latent, item_latent = latent_factors(
        data.latent_method, ui, ii, r, data.n_users, cat.n_items, cat.latent_dim
    )
    catalog = dataclasses.replace(
        cat,
        popularity=counts,
        quality=quality.astype(np.float32),
        latent=item_latent,
        meta={**cat.meta, "ratings": "training split only"},
    )
    return dataclasses.replace(
        data,
        catalog=catalog,
        user_index=ui,
        item_index=ii,
        rating=r,
        timestamp=data.timestamp[train],
        user_latent=user_latent,
    )


def midrank_percentile(x: np.ndarray) -> np.ndarray:
    """[N] percentile rank in [0, 1]; ties share their mean rank."""
    x = np.asarray(x, dtype=np.float64)
    s = np.sort(x)
    lo = np.searchsorted(s, x, side="left")
    hi = np.searchsorted(s, x, side="right") - 1
    return (lo + hi) / 2.0 / max(len(x) - 1, 1)

"""Beyond accuracy: intra-list diversity, novelty (self-information of popularity; distance
from what one user consumed), serendipity and catalog coverage.
"""

from __future__ import annotations

import math

import numpy as np

from recoworld.metrics.checks import (
    check_bool,
    check_counts,
    check_float,
    check_ints,
    check_items,
    ratio,
    same_rows,
    shown_mask,
)


def intra_list_diversity(
    slate_items: np.ndarray, item_features: np.ndarray, shown: np.ndarray | None = None
) -> np.ndarray:
    """Intra-list diversity per row: the mean over distinct pairs i < j of shown slots of
    ``1 - cos(f_i, f_j)`` with f = ``item_features`` [n_items, F] of the slot's item. A zero-norm
    feature vector has cosine 0 with everything (distance 1). Rows with fewer than 2 shown items
    give NaN. Returns float64 [N]."""
    si = check_ints("slate_items", slate_items, 2)
    feats = check_float("item_features", item_features, 2)
    mask = shown_mask(shown, si.shape)
    si = check_items("slate_items", si, mask, feats.shape[0])
    norms = np.linalg.norm(feats, axis=1, keepdims=True)
    unit = np.divide(feats, norms, out=np.zeros_like(feats), where=norms > 0)
    total = np.zeros(si.shape[0])
    n_pairs = np.zeros(si.shape[0])
    for i in range(si.shape[1]):  # pairs of slate positions: memory O(N F), not O(N k F)
        fi = unit[si[:, i]]
        for j in range(i + 1, si.shape[1]):
            both = mask[:, i] & mask[:, j]
            sim = np.einsum("nf,nf->n", fi, unit[si[:, j]])
            total += np.where(both, np.clip(1.0 - sim, 0.0, 2.0), 0.0)  # clip rounding error
            n_pairs += both
    return ratio(total, n_pairs, np.nan)


def self_information(popularity: np.ndarray) -> np.ndarray:
    """Self-information of each item: ``-log2(p_i)`` with ``p_i = (pop_i + 1) / sum(pop + 1)``
    (add-one smoothing, so items never seen stay finite). ``popularity`` [n_items] must be
    non-negative. Returns float64 [n_items]."""
    pop = check_counts("popularity", popularity)
    p = (pop + 1.0) / (pop + 1.0).sum()
    return -np.log2(p)


def novelty(
    slate_items: np.ndarray, self_information: np.ndarray, shown: np.ndarray | None = None
) -> np.ndarray:
    """Novelty per row: the mean ``self_information`` [n_items] of the shown slate items (see
    :func:`self_information`); NaN if nothing is shown. Returns float64 [N]."""
    si = check_ints("slate_items", slate_items, 2)
    info = check_float("self_information", self_information, 1)
    mask = shown_mask(shown, si.shape)
    si = check_items("slate_items", si, mask, info.shape[0])
    total = np.where(mask, info[si], 0.0).sum(axis=1)
    return ratio(total, mask.sum(axis=1), np.nan)


def profile_distance(
    slate_items: np.ndarray, item_features: np.ndarray, profile: np.ndarray
) -> np.ndarray:
    """Per slot, ``1 - cos(f_i, profile_row)``: how far item i (features ``item_features``
    [n_items, F], e.g. topics) lies from the row's consumption profile ``profile`` [N, F]
    (e.g. the user's decayed click-topic distribution). A zero profile (nothing consumed
    yet) or zero feature vector gives distance 1. Slot ids outside [0, n_items) (padding)
    give NaN. Returns float64 [N, k]."""
    si = check_ints("slate_items", slate_items, 2)
    feats = check_float("item_features", item_features, 2)
    prof = check_float("profile", profile, 2)
    same_rows(si.shape[0], profile=prof)
    if prof.shape[1] != feats.shape[1]:
        raise ValueError(
            f"profile: expected {feats.shape[1]} columns (item_features), got {prof.shape[1]}"
        )
    valid = (si >= 0) & (si < feats.shape[0])
    f = feats[np.where(valid, si, 0)]  # [N, k, F]
    fn = np.linalg.norm(f, axis=-1)
    pn = np.linalg.norm(prof, axis=-1)[:, None]
    dot = np.einsum("nkf,nf->nk", f, prof)
    cos = np.divide(dot, fn * pn, out=np.zeros_like(dot), where=(fn * pn) > 0)
    return np.where(valid, np.clip(1.0 - cos, 0.0, 2.0), np.nan)


def unfamiliarity(
    slate_items: np.ndarray,
    item_features: np.ndarray,
    profile: np.ndarray,
    shown: np.ndarray | None = None,
) -> np.ndarray:
    """Novelty for the user: the mean :func:`profile_distance` of the shown slate items
    from the row's ``profile``; NaN if nothing is shown. Returns float64 [N]."""
    si = check_ints("slate_items", slate_items, 2)
    mask = shown_mask(shown, si.shape)
    dist = profile_distance(np.where(mask, si, 0), item_features, profile)
    check_items("slate_items", si, mask, np.asarray(item_features).shape[0])
    return ratio(np.where(mask, dist, 0.0).sum(axis=1), mask.sum(axis=1), np.nan)


def most_popular_items(popularity: np.ndarray, share: float = 0.1) -> np.ndarray:
    """Ids of the ``ceil(share * n_items)`` most popular items, most popular first (stable sort:
    ties go to the lower index). ``share`` in [0, 1]; the product is rounded to 9 decimals before
    the ceiling so that e.g. 0.1 * 30 gives 3 items, not 4. Returns int64 ids."""
    pop = check_float("popularity", popularity, 1)
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share: must lie in [0, 1], got {share}")
    n = math.ceil(round(share * pop.shape[0], 9))
    return np.argsort(-pop, kind="stable")[:n].astype(np.int64)


def serendipity(
    slate_items: np.ndarray,
    click: np.ndarray,
    popular_items: np.ndarray,
    shown: np.ndarray | None = None,
) -> np.ndarray:
    """Serendipity per row (Ge et al. 2010, primitive recommender = most popular): the share of
    the shown slate items that are both useful (``click`` [N, k] true) and unexpected (not in
    ``popular_items``, e.g. :func:`most_popular_items`); NaN if nothing is shown. Returns float64
    [N]."""
    si = check_ints("slate_items", slate_items, 2)
    cl = check_bool("click", click, si.shape)
    pop = check_ints("popular_items", popular_items, 1)
    mask = shown_mask(shown, si.shape)
    good = cl & mask & ~np.isin(si, pop)
    return ratio(good.sum(axis=1).astype(np.float64), mask.sum(axis=1), np.nan)


def catalog_coverage(
    slate_items: np.ndarray, n_items: int, shown: np.ndarray | None = None
) -> float:
    """Catalog coverage: the number of distinct shown items divided by ``n_items`` (>= 1)."""
    if n_items < 1:
        raise ValueError(f"n_items: must be >= 1, got {n_items}")
    si = check_ints("slate_items", slate_items, 2)
    mask = shown_mask(shown, si.shape)
    check_items("slate_items", si, mask, n_items)
    return float(np.unique(si[mask]).size / n_items)

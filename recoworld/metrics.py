"""Evaluation metrics over logged steps: pure numpy functions, no simulator state.

This module owns the metric definitions the evaluation runner reports. One row of the inputs is
one logged user-step (N rows, time ordered within an episode); a slate has k slots, a request M
candidates; items are integer catalog indices in ``[0, n_items)``. It covers

* ranking quality against ground-truth relevance: ``dcg``, ``ndcg_at_k``, ``reciprocal_rank``,
  ``hit_at_k``, ``reward_weighted_ndcg``;
* beyond accuracy: ``intra_list_diversity``, ``self_information``/``novelty``,
  ``profile_distance``/``unfamiliarity`` (novelty for one user: distance from what it
  consumed), ``most_popular_items``/``serendipity``, ``catalog_coverage``;
* exposure fairness: ``exposure_counts``, ``gini``, ``exposure_entropy``, ``lorenz_curve``;
* joint fairness/relevance (DPFR, Rampisela et al., WWW 2025): ``pareto_front``,
  ``frontier_reference_point``, ``dpfr``, ``estimate_frontier``;
* engagement, retention and instruction following per episode: ``per_episode``,
  ``engagement_per_session``, ``retention``, ``survival_by_session``,
  ``instruction_following``.

``shown`` (optional, [N, k] bool) marks the slots that actually showed an item (a duplicate slot
shows nothing). Item ids of slots that are not shown are ignored, so they may hold padding such
as -1. Everything is vectorised; invalid input raises ``ValueError`` naming the argument.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

__all__ = [
    "catalog_coverage",
    "dcg",
    "dpfr",
    "engagement_per_session",
    "estimate_frontier",
    "exposure_counts",
    "exposure_entropy",
    "frontier_reference_point",
    "gini",
    "hit_at_k",
    "instruction_following",
    "intra_list_diversity",
    "lorenz_curve",
    "most_popular_items",
    "ndcg_at_k",
    "novelty",
    "pareto_front",
    "per_episode",
    "profile_distance",
    "reciprocal_rank",
    "retention",
    "reward_weighted_ndcg",
    "self_information",
    "serendipity",
    "survival_by_session",
    "unfamiliarity",
]

Grouped = tuple[np.ndarray, np.ndarray]


# --------------------------------------------------------------------------- validation helpers


def _array(name: str, a: object, ndim: int) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-d array, got shape {arr.shape}")
    return arr


def _float(name: str, a: object, ndim: int) -> np.ndarray:
    arr = _array(name, a, ndim)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ValueError(f"{name}: expected numeric values, got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


def _ints(name: str, a: object, ndim: int) -> np.ndarray:
    """Integer ids; a float array is accepted when every value is a whole number."""
    arr = _array(name, a, ndim)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        whole = np.issubdtype(arr.dtype, np.floating) and bool(
            (np.isfinite(arr) & (arr == np.round(arr))).all()
        )
        if not whole:
            raise ValueError(f"{name}: expected integer ids, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _bool(name: str, a: object, shape: tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(a)
    if arr.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {arr.shape}")
    return arr.astype(bool, copy=False)


def _shown(shown: object | None, shape: tuple[int, ...]) -> np.ndarray:
    if shown is None:
        return np.ones(shape, dtype=bool)
    return _bool("shown", shown, shape)


def _same_rows(n: int, **arrays: np.ndarray) -> None:
    for name, arr in arrays.items():
        if arr.shape[0] != n:
            raise ValueError(f"{name}: expected {n} rows, got {arr.shape[0]}")


def _items(name: str, items: np.ndarray, mask: np.ndarray, n_items: int) -> np.ndarray:
    """Checks the ids of the masked slots lie in [0, n_items); unmasked slots become 0."""
    live = items[mask]
    if live.size and (live.min() < 0 or live.max() >= n_items):
        raise ValueError(
            f"{name}: item ids must lie in [0, {n_items}), got {live.min()}..{live.max()}"
        )
    return np.where(mask, items, 0)


def _relevance(name: str, a: object) -> np.ndarray:
    rel = _float(name, a, 2)
    if np.isnan(rel).any() or (rel < 0).any():
        raise ValueError(f"{name}: relevances must be non-negative and not NaN")
    return rel


def _slate_k(k: int | None, width: int, m: int | None = None) -> int:
    k = width if k is None else int(k)
    if k < 1 or k > width:
        raise ValueError(f"k: must satisfy 1 <= k <= slate width {width}, got {k}")
    if m is not None and k > m:
        raise ValueError(f"k: must be <= the number of candidates {m}, got {k}")
    return k


def _counts(name: str, a: object) -> np.ndarray:
    c = _float(name, a, 1)
    if c.size == 0:
        raise ValueError(f"{name}: expected a non-empty array")
    if np.isnan(c).any() or (c < 0).any():
        raise ValueError(f"{name}: counts must be non-negative and not NaN")
    return c


def _ratio(num: np.ndarray, den: np.ndarray, empty: float) -> np.ndarray:
    """num / den elementwise, ``empty`` where den == 0."""
    out = np.full(np.shape(num), empty, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


# --------------------------------------------------------------------------- ranking


def dcg(gains: np.ndarray) -> np.ndarray:
    """Discounted cumulative gain per row: ``sum_i gains[:, i] / log2(i + 2)`` (i = 0..k-1).

    ``gains`` is [N, k]; returns float64 [N] (an empty slate, k = 0, gives 0)."""
    g = _float("gains", gains, 2)
    return g @ (1.0 / np.log2(np.arange(g.shape[1]) + 2.0))


def ndcg_at_k(
    slate_relevance: np.ndarray,
    candidate_relevance: np.ndarray,
    k: int | None = None,
    shown: np.ndarray | None = None,
) -> np.ndarray:
    """NDCG@k per row: ``DCG(g[:, :k]) / IDCG`` with ``g[:, i] = slate_relevance[:, i]`` (0 where
    ``shown`` is False) and IDCG the DCG of the k largest ``candidate_relevance`` of the row,
    sorted descending. Rows with IDCG == 0 score 0 (as scikit-learn's ``ndcg_score``).

    ``slate_relevance`` [N, w], ``candidate_relevance`` [N, M], both non-negative; ``k``
    defaults to w and must satisfy 1 <= k <= min(w, M). If the slate's relevances are not those
    of distinct candidates (a repeated slot left marked as shown) the value can exceed 1.
    Returns float64 [N]."""
    sr = _relevance("slate_relevance", slate_relevance)
    cr = _relevance("candidate_relevance", candidate_relevance)
    _same_rows(sr.shape[0], candidate_relevance=cr)
    k = _slate_k(k, sr.shape[1], cr.shape[1])
    mask = _shown(shown, sr.shape)
    gains = np.where(mask, sr, 0.0)[:, :k]
    ideal = -np.sort(-cr, axis=1)[:, :k]
    return _ratio(dcg(gains), dcg(ideal), 0.0)


def _best_match(
    slate_items: np.ndarray,
    candidate_items: np.ndarray,
    candidate_relevance: np.ndarray,
    shown: np.ndarray | None,
) -> np.ndarray:
    """[N, w] bool: shown slots holding the row's best candidate (argmax, first on ties)."""
    si = _ints("slate_items", slate_items, 2)
    ci = _ints("candidate_items", candidate_items, 2)
    cr = _relevance("candidate_relevance", candidate_relevance)
    _same_rows(si.shape[0], candidate_items=ci, candidate_relevance=cr)
    if ci.shape != cr.shape:
        raise ValueError(
            f"candidate_relevance: expected the shape of candidate_items {ci.shape}, got {cr.shape}"
        )
    if ci.shape[1] == 0:
        raise ValueError("candidate_items: expected at least one candidate per row")
    mask = _shown(shown, si.shape)
    best = ci[np.arange(ci.shape[0]), np.argmax(cr, axis=1)]
    return (si == best[:, None]) & mask


def reciprocal_rank(
    slate_items: np.ndarray,
    candidate_items: np.ndarray,
    candidate_relevance: np.ndarray,
    shown: np.ndarray | None = None,
) -> np.ndarray:
    """Reciprocal rank of the best candidate per row: ``1 / (p + 1)`` with p the first shown slate
    position holding ``candidate_items[argmax(candidate_relevance)]`` (first candidate on ties,
    also when all relevances are 0); 0 if that item is not shown. Returns float64 [N]."""
    match = _best_match(slate_items, candidate_items, candidate_relevance, shown)
    first = np.argmax(match, axis=1)
    return np.where(match.any(axis=1), 1.0 / (first + 1.0), 0.0)


def hit_at_k(
    slate_items: np.ndarray,
    candidate_items: np.ndarray,
    candidate_relevance: np.ndarray,
    k: int | None = None,
    shown: np.ndarray | None = None,
) -> np.ndarray:
    """Hit@k per row: 1.0 if the best candidate (argmax of ``candidate_relevance``, first on
    ties) is shown in the first k slate positions, else 0.0. k defaults to the slate width
    (1 <= k <= width). Returns float64 [N]."""
    match = _best_match(slate_items, candidate_items, candidate_relevance, shown)
    k = _slate_k(k, match.shape[1])
    return match[:, :k].any(axis=1).astype(np.float64)


def reward_weighted_ndcg(
    ndcg: np.ndarray, reward: np.ndarray, groups: np.ndarray | None = None
) -> float | np.ndarray:
    """Ranking quality weighted by the value each request produced:
    ``sum_t max(r_t, 0) * ndcg_t / sum_t max(r_t, 0)``, 0 when the denominator is 0.

    With ``groups`` (int ids [N], e.g. episode ids) returns float64 [G], one value per unique
    group in sorted group order (``np.unique(groups)``); otherwise a float."""
    nd = _float("ndcg", ndcg, 1)
    r = _float("reward", reward, 1)
    _same_rows(nd.shape[0], reward=r)
    w = np.maximum(r, 0.0)
    if groups is None:
        den = float(w.sum())
        return float((w * nd).sum() / den) if den > 0 else 0.0
    g = _ints("groups", groups, 1)
    _same_rows(nd.shape[0], groups=g)
    _, inv = np.unique(g, return_inverse=True)
    num = np.bincount(inv, weights=w * nd)
    den = np.bincount(inv, weights=w)
    return _ratio(num, den, 0.0)


# --------------------------------------------------------------------------- beyond accuracy


def intra_list_diversity(
    slate_items: np.ndarray, item_features: np.ndarray, shown: np.ndarray | None = None
) -> np.ndarray:
    """Intra-list diversity per row: the mean over distinct pairs i < j of shown slots of
    ``1 - cos(f_i, f_j)`` with f = ``item_features`` [n_items, F] of the slot's item. A zero-norm
    feature vector has cosine 0 with everything (distance 1). Rows with fewer than 2 shown items
    give NaN. Returns float64 [N]."""
    si = _ints("slate_items", slate_items, 2)
    feats = _float("item_features", item_features, 2)
    mask = _shown(shown, si.shape)
    si = _items("slate_items", si, mask, feats.shape[0])
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
    return _ratio(total, n_pairs, np.nan)


def self_information(popularity: np.ndarray) -> np.ndarray:
    """Self-information of each item: ``-log2(p_i)`` with ``p_i = (pop_i + 1) / sum(pop + 1)``
    (add-one smoothing, so items never seen stay finite). ``popularity`` [n_items] must be
    non-negative. Returns float64 [n_items]."""
    pop = _counts("popularity", popularity)
    p = (pop + 1.0) / (pop + 1.0).sum()
    return -np.log2(p)


def novelty(
    slate_items: np.ndarray, self_information: np.ndarray, shown: np.ndarray | None = None
) -> np.ndarray:
    """Novelty per row: the mean ``self_information`` [n_items] of the shown slate items (see
    :func:`self_information`); NaN if nothing is shown. Returns float64 [N]."""
    si = _ints("slate_items", slate_items, 2)
    info = _float("self_information", self_information, 1)
    mask = _shown(shown, si.shape)
    si = _items("slate_items", si, mask, info.shape[0])
    total = np.where(mask, info[si], 0.0).sum(axis=1)
    return _ratio(total, mask.sum(axis=1), np.nan)


def profile_distance(
    slate_items: np.ndarray, item_features: np.ndarray, profile: np.ndarray
) -> np.ndarray:
    """Per slot, ``1 - cos(f_i, profile_row)``: how far item i (features ``item_features``
    [n_items, F], e.g. topics) lies from the row's consumption profile ``profile`` [N, F]
    (e.g. the user's decayed click-topic distribution). A zero profile (nothing consumed
    yet) or zero feature vector gives distance 1. Slot ids outside [0, n_items) (padding)
    give NaN. Returns float64 [N, k]."""
    si = _ints("slate_items", slate_items, 2)
    feats = _float("item_features", item_features, 2)
    prof = _float("profile", profile, 2)
    _same_rows(si.shape[0], profile=prof)
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
    si = _ints("slate_items", slate_items, 2)
    mask = _shown(shown, si.shape)
    dist = profile_distance(np.where(mask, si, 0), item_features, profile)
    _items("slate_items", si, mask, np.asarray(item_features).shape[0])
    return _ratio(np.where(mask, dist, 0.0).sum(axis=1), mask.sum(axis=1), np.nan)


def most_popular_items(popularity: np.ndarray, share: float = 0.1) -> np.ndarray:
    """Ids of the ``ceil(share * n_items)`` most popular items, most popular first (stable sort:
    ties go to the lower index). ``share`` in [0, 1]; the product is rounded to 9 decimals before
    the ceiling so that e.g. 0.1 * 30 gives 3 items, not 4. Returns int64 ids."""
    pop = _float("popularity", popularity, 1)
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
    si = _ints("slate_items", slate_items, 2)
    cl = _bool("click", click, si.shape)
    pop = _ints("popular_items", popular_items, 1)
    mask = _shown(shown, si.shape)
    good = cl & mask & ~np.isin(si, pop)
    return _ratio(good.sum(axis=1).astype(np.float64), mask.sum(axis=1), np.nan)


def catalog_coverage(
    slate_items: np.ndarray, n_items: int, shown: np.ndarray | None = None
) -> float:
    """Catalog coverage: the number of distinct shown items divided by ``n_items`` (>= 1)."""
    if n_items < 1:
        raise ValueError(f"n_items: must be >= 1, got {n_items}")
    si = _ints("slate_items", slate_items, 2)
    mask = _shown(shown, si.shape)
    _items("slate_items", si, mask, n_items)
    return float(np.unique(si[mask]).size / n_items)


# --------------------------------------------------------------------------- exposure fairness


def exposure_counts(
    slate_items: np.ndarray,
    n_items: int,
    shown: np.ndarray | None = None,
    group_of_item: np.ndarray | None = None,
    n_groups: int | None = None,
) -> np.ndarray:
    """How many times each item was shown (float64 [n_items]). With ``group_of_item``
    ([n_items] int, e.g. the creator of each item) the counts are summed per group into
    float64 [n_groups]; ``n_groups`` defaults to ``max(group_of_item) + 1``."""
    if n_items < 1:
        raise ValueError(f"n_items: must be >= 1, got {n_items}")
    si = _ints("slate_items", slate_items, 2)
    mask = _shown(shown, si.shape)
    _items("slate_items", si, mask, n_items)
    counts = np.bincount(si[mask], minlength=n_items).astype(np.float64)
    if group_of_item is None:
        if n_groups is not None:
            raise ValueError("n_groups: given without group_of_item")
        return counts
    grp = _ints("group_of_item", group_of_item, 1)
    if grp.shape[0] != n_items:
        raise ValueError(f"group_of_item: expected {n_items} entries, got {grp.shape[0]}")
    if grp.size and grp.min() < 0:
        raise ValueError("group_of_item: group ids must be non-negative")
    g = int(grp.max()) + 1 if n_groups is None else int(n_groups)
    if grp.size and grp.max() >= g:
        raise ValueError(f"n_groups: {g} is too small for group id {grp.max()}")
    return np.bincount(grp, weights=counts, minlength=g).astype(np.float64)


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of non-negative ``counts`` [n] over all entries, zeros included: with x
    sorted ascending, ``G = sum_i (2i - n - 1) x_i / (n * sum x)`` for i = 1..n, which equals
    ``sum_ij |x_i - x_j| / (2 n sum x)``. 0 if the sum is 0; equal counts give 0, one non-zero
    entry gives (n - 1) / n."""
    x = np.sort(_counts("counts", counts))
    n = x.shape[0]
    total = x.sum()
    if total == 0:
        return 0.0
    i = np.arange(1, n + 1)
    return float(((2 * i - n - 1) * x).sum() / (n * total))


def exposure_entropy(counts: np.ndarray, normalized: bool = True) -> float:
    """Shannon entropy (natural log) of the exposure distribution ``p = counts / sum(counts)``,
    ``H = -sum_i p_i log p_i`` with 0 log 0 = 0. When ``normalized`` it is divided by log(n),
    n = len(counts), giving a value in [0, 1] (1 = uniform exposure). Edge cases: a zero sum
    gives 0.0; a single entry with a positive count gives 1.0 when normalized (one item is
    trivially exposed evenly) and 0.0 otherwise."""
    c = _counts("counts", counts)
    total = c.sum()
    if total == 0:
        return 0.0
    p = c[c > 0] / total
    h = float(-(p * np.log(p)).sum())
    if not normalized:
        return h
    n = c.shape[0]
    return 1.0 if n == 1 else h / math.log(n)


def lorenz_curve(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lorenz curve of ``counts`` [n]: ``x = arange(n + 1) / n`` (share of entries) and
    ``y = [0, cumsum(sorted ascending counts)] / sum`` (cumulative share of exposure), so
    ``y[0] = 0`` and ``y[-1] = 1``. A zero sum gives the equality line y = x. Returns two float64
    arrays of n + 1 points."""
    c = np.sort(_counts("counts", counts))
    n = c.shape[0]
    x = np.arange(n + 1, dtype=np.float64) / n
    total = c.sum()
    if total == 0:
        return x, x.copy()
    y = np.concatenate([[0.0], np.cumsum(c) / total])
    y[-1] = 1.0  # exact despite rounding
    return x, y


# --------------------------------------------------------------------------- DPFR


def _points(name: str, a: object) -> np.ndarray:
    p = _float(name, a, 2)
    if p.shape[1] != 2:
        raise ValueError(f"{name}: expected shape [P, 2], got {p.shape}")
    if np.isnan(p).any():
        raise ValueError(f"{name}: NaN coordinates")
    return p


def pareto_front(points: np.ndarray) -> np.ndarray:
    """Non-dominated points of ``points`` [P, 2] (both coordinates higher is better): q dominates
    p when q >= p in both coordinates and q > p in one. Duplicates are removed; the result [Q, 2]
    is sorted by the first coordinate descending (the relevance-optimal end first, so the second
    coordinate ascends). An empty input gives an empty [0, 2] array."""
    p = np.unique(_points("points", points), axis=0)
    if p.shape[0] == 0:
        return p.reshape(0, 2)
    p = p[np.lexsort((-p[:, 1], -p[:, 0]))]  # first coordinate desc, then second desc
    best_before = np.concatenate([[-np.inf], np.maximum.accumulate(p[:, 1])[:-1]])
    return p[p[:, 1] > best_before]


def frontier_reference_point(front: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """DPFR reference point on a frontier [Q, 2] (ordered by the first coordinate descending, as
    :func:`pareto_front` returns it; re-sorted so): walking the polyline from the
    relevance-optimal end with cumulative Euclidean arc length ``L_j`` at vertex j, it is the
    vertex whose ``L_j`` is nearest to ``alpha * L_total`` (first on ties). alpha = 0 gives the
    relevance-optimal end, alpha = 1 the fairness-optimal end; a single point is returned as is.
    Returns float64 [2]."""
    f = _points("front", front)
    if f.shape[0] == 0:
        raise ValueError("front: expected at least one point")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha: must lie in [0, 1], got {alpha}")
    f = f[np.argsort(-f[:, 0], kind="stable")]
    cum = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(f, axis=0), axis=1))])
    return f[int(np.argmin(np.abs(cum - alpha * cum[-1])))].copy()


def dpfr(points: np.ndarray, front: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Distance to Pareto Frontier: the Euclidean distance of each (relevance, fairness) point
    [P, 2] to :func:`frontier_reference_point` of ``front`` with ``alpha``. Lower is better.
    Returns float64 [P]."""
    p = _points("points", points)
    ref = frontier_reference_point(front, alpha)
    return np.linalg.norm(p - ref, axis=1)


def _top_k(score: np.ndarray, k: int) -> np.ndarray:
    """[N, k] column indices of the k highest scores per row, highest first."""
    if k < score.shape[1]:
        part = np.argpartition(-score, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(score.shape[1]), score.shape).copy()
    order = np.argsort(-np.take_along_axis(score, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def estimate_frontier(
    candidate_items: np.ndarray,
    candidate_relevance: np.ndarray,
    n_items: int,
    k: int,
    n_points: int = 21,
    iterations: int = 3,
) -> np.ndarray:
    """An *estimate* of the achievable (mean NDCG@k, normalised item-exposure entropy) Pareto
    frontier over the same requests, in the spirit of the paper's Oracle2Fair; both coordinates
    lie in [0, 1].

    For each lambda on a grid (0, then ``n_points - 1`` values geometric from 1e-2 to 1e3, where
    the penalty dominates and exposure is as even as this re-ranking makes it) every request's
    candidates are re-ranked by ``rel_norm - lambda * z`` with ``rel_norm = relevance / row max``
    (0 if the max is 0) and ``z = log1p(c_item) / log1p(max c)``; the slate is the top k. The
    counts c start as the exposure counts of the oracle lists and are then, ``iterations`` times,
    the running mean of the exposure counts of all lists produced so far for this lambda (oracle
    included), so that the penalty reflects the lists it produces. Using only the previous
    iteration's lists instead oscillates with period 2 at large lambda (the penalised items and
    their replacements swap every iteration); the running mean damps that and more
    ``iterations`` tighten the estimate. NDCG@k uses ``candidate_relevance`` and fairness is
    :func:`exposure_entropy` of :func:`exposure_counts` over ``n_items``. Every evaluated set of
    lists (lambda = 0 is the oracle, maximal relevance; intermediate iterations included, each
    one is achievable) is a candidate point and their :func:`pareto_front` is returned, [Q, 2],
    the relevance-optimal end first. Repeated candidate items in a row count as distinct. Being
    an inner estimate, a policy can land beyond it (DPFR still measures its distance)."""
    ci = _ints("candidate_items", candidate_items, 2)
    cr = _relevance("candidate_relevance", candidate_relevance)
    if ci.shape != cr.shape:
        raise ValueError(
            f"candidate_relevance: expected the shape of candidate_items {ci.shape}, got {cr.shape}"
        )
    if ci.shape[0] == 0:
        raise ValueError("candidate_items: expected at least one request")
    if n_items < 1:
        raise ValueError(f"n_items: must be >= 1, got {n_items}")
    k = _slate_k(k, ci.shape[1])
    if n_points < 1:
        raise ValueError(f"n_points: must be >= 1, got {n_points}")
    if iterations < 1:
        raise ValueError(f"iterations: must be >= 1, got {iterations}")
    _items("candidate_items", ci, np.ones(ci.shape, dtype=bool), n_items)

    rmax = cr.max(axis=1, keepdims=True)
    rel_norm = np.divide(cr, rmax, out=np.zeros_like(cr), where=rmax > 0)
    ideal = dcg(-np.sort(-cr, axis=1)[:, :k])
    disc = 1.0 / np.log2(np.arange(k) + 2.0)

    def evaluate(cols: np.ndarray) -> tuple[float, float, np.ndarray]:
        items = np.take_along_axis(ci, cols, axis=1)
        gains = np.take_along_axis(cr, cols, axis=1)
        nd = _ratio(gains @ disc, ideal, 0.0).mean()
        counts = np.bincount(items.ravel(), minlength=n_items).astype(np.float64)
        return float(nd), exposure_entropy(counts), counts

    oracle = _top_k(rel_norm, k)
    nd0, ent0, counts0 = evaluate(oracle)
    pts = [(nd0, ent0)]
    lambdas = np.geomspace(1e-2, 1e3, n_points - 1) if n_points > 1 else np.empty(0)
    for lam in lambdas:
        total = counts0.copy()
        for it in range(1, iterations + 1):
            mean = total / it
            z = np.log1p(mean) / np.log1p(mean.max())
            nd, ent, counts = evaluate(_top_k(rel_norm - lam * z[ci], k))
            pts.append((nd, ent))
            total += counts
    return pareto_front(np.asarray(pts, dtype=np.float64))


# --------------------------------------------------------------------------- per-episode


def per_episode(
    values: np.ndarray,
    episode_id: np.ndarray,
    how: Literal["sum", "mean", "max", "last"] = "sum",
) -> Grouped:
    """Aggregates ``values`` [N] per episode: returns ``(ids, agg)`` with ids the sorted unique
    ``episode_id`` and agg float64 the per-episode sum, mean, max, or last value (rows are in
    time order, so "last" is the value of the episode's last row). Empty input gives empty
    arrays."""
    v = _float("values", values, 1)
    ep = _ints("episode_id", episode_id, 1)
    _same_rows(ep.shape[0], values=v)
    if how not in ("sum", "mean", "max", "last"):
        raise ValueError(f"how: expected 'sum', 'mean', 'max' or 'last', got {how!r}")
    ids, inv, n = np.unique(ep, return_inverse=True, return_counts=True)
    if how in ("sum", "mean"):
        s = np.bincount(inv, weights=v, minlength=ids.shape[0])
        return ids, (s / n if how == "mean" else s)
    ends = np.cumsum(n) - 1
    if how == "max":
        order = np.lexsort((v, inv))  # NaN sorts last, so a NaN max propagates like np.max
    else:
        order = np.argsort(inv, kind="stable")  # time order kept within an episode
    return ids, v[order[ends]]


def _row_total(name: str, a: object, mask: np.ndarray) -> np.ndarray:
    """Per-row total of a per-slot [N, k] signal over shown slots, or a per-step [N] signal."""
    if np.ndim(a) not in (1, 2):
        raise ValueError(f"{name}: expected [N, k] or [N], got shape {np.shape(a)}")
    arr = _float(name, a, np.ndim(a))
    if arr.ndim == 1:
        _same_rows(mask.shape[0], **{name: arr})
        return arr
    if arr.shape != mask.shape:
        raise ValueError(
            f"{name}: expected shape {mask.shape} or ({mask.shape[0]},), got {arr.shape}"
        )
    return np.where(mask, arr, 0.0).sum(axis=1)


def engagement_per_session(
    episode_id: np.ndarray,
    session: np.ndarray,
    click: np.ndarray,
    watch: np.ndarray,
    like: np.ndarray,
    follow: np.ndarray,
    gift: np.ndarray,
    shown: np.ndarray | None = None,
) -> dict[str, Grouped]:
    """Engagement per session of each episode: the episode's total of each signal (over shown
    slots) divided by its number of sessions, ``max(session) + 1`` (``session`` is the 0-based
    session index within the episode). Each signal is [N, k] per slot (``click`` sets the slate
    width) or [N] per step. Returns ``{"clicks", "watch", "likes", "follows", "gifts"}`` ->
    ``(ids, values)`` with ids the sorted unique episode ids."""
    ep = _ints("episode_id", episode_id, 1)
    ses = _ints("session", session, 1)
    _same_rows(ep.shape[0], session=ses)
    cl = _array("click", click, 2)
    _same_rows(ep.shape[0], click=cl)
    mask = _shown(shown, cl.shape)
    ids, n_sessions = per_episode(ses, ep, "max")
    n_sessions = n_sessions + 1.0
    out: dict[str, Grouped] = {}
    for key, name, arr in (
        ("clicks", "click", click),
        ("watch", "watch", watch),
        ("likes", "like", like),
        ("follows", "follow", follow),
        ("gifts", "gift", gift),
    ):
        _, total = per_episode(_row_total(name, arr, mask), ep, "sum")
        out[key] = (ids, total / n_sessions)
    return out


def retention(
    episode_id: np.ndarray,
    session: np.ndarray,
    session_end: np.ndarray,
    returned: np.ndarray,
    gap_hours: np.ndarray,
    terminated: np.ndarray,
) -> dict[str, Grouped]:
    """Retention per episode, each as ``(ids, values)`` with ids the sorted unique episode ids:

    * ``session_depth``: steps / max(#session_end rows, 1);
    * ``return_rate``: #returned rows / #session_end rows, NaN if no session ended;
    * ``return_time_hours``: mean ``gap_hours`` over returned rows, NaN if none (gap_hours on
      other rows is ignored, it may be NaN);
    * ``churn``: 1.0 if any row is ``terminated`` (the user left for good), else 0.0;
    * ``sessions``: max(session) + 1."""
    ep = _ints("episode_id", episode_id, 1)
    n = ep.shape[0]
    ses = _ints("session", session, 1)
    end = _bool("session_end", session_end, (n,))
    ret = _bool("returned", returned, (n,))
    gap = _float("gap_hours", gap_hours, 1)
    term = _bool("terminated", terminated, (n,))
    _same_rows(n, session=ses, gap_hours=gap)
    ids, inv, steps = np.unique(ep, return_inverse=True, return_counts=True)
    g = ids.shape[0]
    n_end = np.bincount(inv, weights=end, minlength=g)
    n_ret = np.bincount(inv, weights=ret, minlength=g)
    gap_sum = np.bincount(inv, weights=np.where(ret, gap, 0.0), minlength=g)
    n_term = np.bincount(inv, weights=term, minlength=g)
    _, sessions = per_episode(ses, ep, "max")
    return {
        "session_depth": (ids, steps / np.maximum(n_end, 1.0)),
        "return_rate": (ids, _ratio(n_ret, n_end, np.nan)),
        "return_time_hours": (ids, _ratio(gap_sum, n_ret, np.nan)),
        "churn": (ids, (n_term > 0).astype(np.float64)),
        "sessions": (ids, sessions + 1.0),
    }


def survival_by_session(
    sessions_per_episode: np.ndarray, max_sessions: int | None = None
) -> np.ndarray:
    """Session survival curve: for s = 1..max_sessions the share of episodes with at least s
    sessions, ``mean(sessions >= s)``. ``max_sessions`` defaults to the largest count (an
    empty curve if that is 0). Returns float64 [max_sessions]."""
    s = _float("sessions_per_episode", sessions_per_episode, 1)
    if s.size == 0:
        raise ValueError("sessions_per_episode: expected at least one episode")
    if np.isnan(s).any() or (s < 0).any() or (s != np.round(s)).any():
        raise ValueError("sessions_per_episode: expected non-negative whole numbers")
    m = int(s.max()) if max_sessions is None else int(max_sessions)
    if m < 0:
        raise ValueError(f"max_sessions: must be >= 0, got {m}")
    hist = np.bincount(np.minimum(s.astype(np.int64), m), minlength=m + 1)
    at_least = np.cumsum(hist[::-1])[::-1]  # at_least[j] = #episodes with >= j sessions
    return at_least[1:] / s.shape[0]


def instruction_following(
    episode_id: np.ndarray,
    step: np.ndarray,
    instructed: np.ndarray,
    instruction_vector: np.ndarray,
    slate_items: np.ndarray,
    item_topics: np.ndarray,
    satisfaction: np.ndarray,
    window: int = 3,
    shown: np.ndarray | None = None,
) -> dict[str, np.ndarray | Grouped]:
    """How slates follow the user's instructions. Rows are sorted by (episode_id, step) first.
    For each instructed row p, the following rows are the next ``window`` rows of the same
    episode (fewer at the episode's end; later instructions do not cut the window). An item
    honours the instruction if ``item_topics[item] @ instruction_vector[p] > 0`` (vector: +1 more
    of a topic, -1 less, 0 none). Returns

    * ``"honour_rate"``: ``(rows, rate)``, the share of shown items of the following slates that
      honour the instruction, NaN if there are no following rows (or none shows an item);
    * ``"satisfaction_change"``: ``(rows, delta)``, ``satisfaction`` at the last following row
      minus that at the instructed row, NaN if there are no following rows;
    * ``"episode_id"``: the episode of each instructed row;

    where ``rows`` are the original indices of the instructed rows in (episode_id, step) order.
    A repeated (episode_id, step) pair raises ValueError."""
    ep = _ints("episode_id", episode_id, 1)
    n = ep.shape[0]
    st = _ints("step", step, 1)
    ins = _bool("instructed", instructed, (n,))
    vec = _float("instruction_vector", instruction_vector, 2)
    si = _ints("slate_items", slate_items, 2)
    topics = _float("item_topics", item_topics, 2)
    sat = _float("satisfaction", satisfaction, 1)
    _same_rows(n, step=st, instruction_vector=vec, slate_items=si, satisfaction=sat)
    if vec.shape[1] != topics.shape[1]:
        raise ValueError(
            f"instruction_vector: expected {topics.shape[1]} topics (item_topics), got "
            f"{vec.shape[1]}"
        )
    if window < 1:
        raise ValueError(f"window: must be >= 1, got {window}")
    mask = _shown(shown, si.shape)
    si = _items("slate_items", si, mask, topics.shape[0])

    order = np.lexsort((st, ep))
    ep_s, st_s = ep[order], st[order]
    if n > 1 and ((ep_s[1:] == ep_s[:-1]) & (st_s[1:] == st_s[:-1])).any():
        raise ValueError("step: repeated (episode_id, step) pair")
    p = np.flatnonzero(ins[order])  # sorted positions of the instructed rows
    v = vec[order[p]]  # [I, T]
    honoured = np.zeros(p.shape[0])
    n_shown = np.zeros(p.shape[0])
    n_follow = np.zeros(p.shape[0], dtype=np.int64)
    alive = np.ones(p.shape[0], dtype=bool)  # the offset is still inside the episode
    for o in range(1, window + 1):
        q = p + o
        alive &= q < n
        alive[alive] &= ep_s[q[alive]] == ep_s[p[alive]]
        if not alive.any():
            break
        rows = order[q[alive]]  # original indices of the following rows
        score = np.einsum("nkt,nt->nk", topics[si[rows]], v[alive])
        m = mask[rows]
        honoured[alive] += ((score > 0) & m).sum(axis=1)
        n_shown[alive] += m.sum(axis=1)
        n_follow[alive] += 1
    last = order[np.minimum(p + n_follow, n - 1)]
    change = np.where(n_follow > 0, sat[last] - sat[order[p]], np.nan)
    rows = order[p]
    return {
        "honour_rate": (rows, _ratio(honoured, n_shown, np.nan)),
        "satisfaction_change": (rows, change),
        "episode_id": ep[rows],
    }


def top1_auc(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``scores`` [n, 1 + n_neg] (positive in column 0): top-1 accuracy (1/number
    of items tied at the top when the positive is one of them: expected accuracy under random
    tie-breaking) and AUC (share of negatives scored below the positive, ties count 1/2)."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] < 2:
        raise ValueError(f"top1_auc: expected [n, 1 + n_neg] scores, got {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError("top1_auc: scores must be finite")
    top = s.max(axis=1)
    n_top = (s == top[:, None]).sum(axis=1)
    top1 = np.where(s[:, 0] == top, 1.0 / n_top, 0.0)
    pos, neg = s[:, :1], s[:, 1:]
    auc = ((pos > neg) + 0.5 * (pos == neg)).mean(axis=1)
    return top1, auc

"""Item-exposure fairness (exposure counts, Gini, entropy, Lorenz curve) and joint
fairness/relevance by distance to the Pareto frontier (DPFR, Rampisela et al., WWW 2025).
"""

from __future__ import annotations

import math

import numpy as np

from recoworld.metrics.checks import (
    check_counts,
    check_float,
    check_ints,
    check_items,
    check_relevance,
    ratio,
    shown_mask,
    slate_k,
)
from recoworld.metrics.ranking import dcg


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
    si = check_ints("slate_items", slate_items, 2)
    mask = shown_mask(shown, si.shape)
    check_items("slate_items", si, mask, n_items)
    counts = np.bincount(si[mask], minlength=n_items).astype(np.float64)
    if group_of_item is None:
        if n_groups is not None:
            raise ValueError("n_groups: given without group_of_item")
        return counts
    grp = check_ints("group_of_item", group_of_item, 1)
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
    x = np.sort(check_counts("counts", counts))
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
    c = check_counts("counts", counts)
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
    c = np.sort(check_counts("counts", counts))
    n = c.shape[0]
    x = np.arange(n + 1, dtype=np.float64) / n
    total = c.sum()
    if total == 0:
        return x, x.copy()
    y = np.concatenate([[0.0], np.cumsum(c) / total])
    y[-1] = 1.0  # exact despite rounding
    return x, y


def _points(name: str, a: object) -> np.ndarray:
    p = check_float(name, a, 2)
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
    ci = check_ints("candidate_items", candidate_items, 2)
    cr = check_relevance("candidate_relevance", candidate_relevance)
    if ci.shape != cr.shape:
        raise ValueError(
            f"candidate_relevance: expected the shape of candidate_items {ci.shape}, got {cr.shape}"
        )
    if ci.shape[0] == 0:
        raise ValueError("candidate_items: expected at least one request")
    if n_items < 1:
        raise ValueError(f"n_items: must be >= 1, got {n_items}")
    k = slate_k(k, ci.shape[1])
    if n_points < 1:
        raise ValueError(f"n_points: must be >= 1, got {n_points}")
    if iterations < 1:
        raise ValueError(f"iterations: must be >= 1, got {iterations}")
    check_items("candidate_items", ci, np.ones(ci.shape, dtype=bool), n_items)

    rmax = cr.max(axis=1, keepdims=True)
    rel_norm = np.divide(cr, rmax, out=np.zeros_like(cr), where=rmax > 0)
    ideal = dcg(-np.sort(-cr, axis=1)[:, :k])
    disc = 1.0 / np.log2(np.arange(k) + 2.0)

    def evaluate(cols: np.ndarray) -> tuple[float, float, np.ndarray]:
        items = np.take_along_axis(ci, cols, axis=1)
        gains = np.take_along_axis(cr, cols, axis=1)
        nd = ratio(gains @ disc, ideal, 0.0).mean()
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

"""Ranking quality against ground-truth relevance: ``dcg``, ``ndcg_at_k``,
``reciprocal_rank``, ``hit_at_k``, ``reward_weighted_ndcg``, and ``top1_auc`` for held-out
choices among negatives.
"""

from __future__ import annotations

import numpy as np

from recoworld.metrics.checks import (
    check_float,
    check_ints,
    check_relevance,
    ratio,
    same_rows,
    shown_mask,
    slate_k,
)


def dcg(gains: np.ndarray) -> np.ndarray:
    """Discounted cumulative gain per row: ``sum_i gains[:, i] / log2(i + 2)`` (i = 0..k-1).

    ``gains`` is [N, k]; returns float64 [N] (an empty slate, k = 0, gives 0)."""
    g = check_float("gains", gains, 2)
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
    sr = check_relevance("slate_relevance", slate_relevance)
    cr = check_relevance("candidate_relevance", candidate_relevance)
    same_rows(sr.shape[0], candidate_relevance=cr)
    k = slate_k(k, sr.shape[1], cr.shape[1])
    mask = shown_mask(shown, sr.shape)
    gains = np.where(mask, sr, 0.0)[:, :k]
    ideal = -np.sort(-cr, axis=1)[:, :k]
    return ratio(dcg(gains), dcg(ideal), 0.0)


def _best_match(
    slate_items: np.ndarray,
    candidate_items: np.ndarray,
    candidate_relevance: np.ndarray,
    shown: np.ndarray | None,
) -> np.ndarray:
    """[N, w] bool: shown slots holding the row's best candidate (argmax, first on ties)."""
    si = check_ints("slate_items", slate_items, 2)
    ci = check_ints("candidate_items", candidate_items, 2)
    cr = check_relevance("candidate_relevance", candidate_relevance)
    same_rows(si.shape[0], candidate_items=ci, candidate_relevance=cr)
    if ci.shape != cr.shape:
        raise ValueError(
            f"candidate_relevance: expected the shape of candidate_items {ci.shape}, got {cr.shape}"
        )
    if ci.shape[1] == 0:
        raise ValueError("candidate_items: expected at least one candidate per row")
    mask = shown_mask(shown, si.shape)
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
    k = slate_k(k, match.shape[1])
    return match[:, :k].any(axis=1).astype(np.float64)


def reward_weighted_ndcg(
    ndcg: np.ndarray, reward: np.ndarray, groups: np.ndarray | None = None
) -> float | np.ndarray:
    """Ranking quality weighted by the value each request produced:
    ``sum_t max(r_t, 0) * ndcg_t / sum_t max(r_t, 0)``, 0 when the denominator is 0.

    With ``groups`` (int ids [N], e.g. episode ids) returns float64 [G], one value per unique
    group in sorted group order (``np.unique(groups)``); otherwise a float."""
    nd = check_float("ndcg", ndcg, 1)
    r = check_float("reward", reward, 1)
    same_rows(nd.shape[0], reward=r)
    w = np.maximum(r, 0.0)
    if groups is None:
        den = float(w.sum())
        return float((w * nd).sum() / den) if den > 0 else 0.0
    g = check_ints("groups", groups, 1)
    same_rows(nd.shape[0], groups=g)
    _, inv = np.unique(g, return_inverse=True)
    num = np.bincount(inv, weights=w * nd)
    den = np.bincount(inv, weights=w)
    return ratio(num, den, 0.0)


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

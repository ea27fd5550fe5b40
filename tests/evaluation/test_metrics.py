"""Tests of recoworld.metrics: hand-computed cases, scikit-learn's NDCG as a
reference, identities (Gini vs mean absolute difference, Lorenz area) and error messages."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import ndcg_score

from recoworld import metrics as m

L3 = math.log2(3)  # discount of slate position 1 (0-based)


# --------------------------------------------------------------------------- ranking


def test_dcg_hand() -> None:
    # 3/log2(2) + 2/log2(3) + 1/log2(4)
    out = m.dcg(np.array([[3.0, 2.0, 1.0], [0.0, 0.0, 1.0]]))
    np.testing.assert_allclose(out, [3 + 2 / L3 + 0.5, 0.5])
    assert out.dtype == np.float64


def test_ndcg_hand() -> None:
    slate = np.array([[1.0, 3.0, 0.0], [1.0, 1.0, 1.0]])
    cands = np.array([[3.0, 1.0, 0.0, 2.0], [0.0, 0.0, 0.0, 0.0]])
    # row 0: DCG = 1 + 3/log2(3) + 0; IDCG = 3 + 2/log2(3) + 1/2; row 1: IDCG = 0 -> 0
    out = m.ndcg_at_k(slate, cands)
    np.testing.assert_allclose(out, [(1 + 3 / L3) / (3 + 2 / L3 + 0.5), 0.0])
    # k = 2: DCG = 1 + 3/log2(3); IDCG = 3 + 2/log2(3)
    np.testing.assert_allclose(m.ndcg_at_k(slate, cands, k=2)[0], (1 + 3 / L3) / (3 + 2 / L3))
    # the duplicate slot 1 shows nothing: DCG = 1
    shown = np.array([[True, False, True], [True, True, True]])
    np.testing.assert_allclose(
        m.ndcg_at_k(slate, cands, shown=shown), [1 / (3 + 2 / L3 + 0.5), 0.0]
    )


@pytest.mark.parametrize("k", [1, 3, 5])
def test_ndcg_matches_sklearn(k: int) -> None:
    rng = np.random.default_rng(7)
    n, n_cand = 40, 8
    rel = rng.random((n, n_cand))
    rel[::5] = rng.integers(0, 3, size=(8, n_cand))  # integer grades with ties
    rel[3] = 0.0  # an all-irrelevant row
    cols = np.argsort(rng.random((n, n_cand)), axis=1)[:, :k]  # slate = k distinct candidates
    ours = m.ndcg_at_k(np.take_along_axis(rel, cols, axis=1), rel, k=k)
    score = np.zeros((n, n_cand))
    np.put_along_axis(score, cols, np.arange(k, 0, -1, dtype=np.float64)[None, :], axis=1)
    ref = [ndcg_score(rel[i : i + 1], score[i : i + 1], k=k) for i in range(n)]
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)


def _best_case() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    slate = np.array([[7, 9, 5], [1, 2, 3], [4, 4, 6]])
    cand = np.array([[7, 5, 9, 11], [3, 2, 1, 8], [6, 4, 0, 2]])
    rel = np.array([[0.1, 0.9, 0.2, 0.5], [0.0, 0.0, 0.2, 1.0], [2.0, 2.0, 1.0, 0.0]])
    shown = np.array([[True, True, True], [True, True, True], [True, False, True]])
    # best: row 0 item 5 (slot 2); row 1 item 8 (absent); row 2 tie -> first, item 6 (slot 2)
    return slate, cand, rel, shown


def test_reciprocal_rank_and_hit_hand() -> None:
    slate, cand, rel, shown = _best_case()
    np.testing.assert_allclose(m.reciprocal_rank(slate, cand, rel, shown), [1 / 3, 0.0, 1 / 3])
    np.testing.assert_array_equal(m.hit_at_k(slate, cand, rel, k=2, shown=shown), [0, 0, 0])
    np.testing.assert_array_equal(m.hit_at_k(slate, cand, rel, shown=shown), [1, 0, 1])
    hidden = shown.copy()
    hidden[0, 2] = False  # the best item of row 0 is not shown
    np.testing.assert_allclose(m.reciprocal_rank(slate, cand, rel, hidden), [0.0, 0.0, 1 / 3])


def test_reward_weighted_ndcg_hand() -> None:
    nd = np.array([0.5, 1.0, 0.2, 0.8])
    reward = np.array([2.0, -1.0, 0.0, 1.0])
    # weights max(r, 0) = [2, 0, 0, 1]: (2 * 0.5 + 1 * 0.8) / 3 = 0.6
    out = m.reward_weighted_ndcg(nd, reward)
    assert isinstance(out, float)
    assert out == pytest.approx(0.6)
    # groups 3: row 1 (weight 0) -> 0; 7: rows 0, 2 -> 0.5; 9: row 3 -> 0.8
    per = m.reward_weighted_ndcg(nd, reward, groups=np.array([7, 3, 7, 9]))
    np.testing.assert_allclose(per, [0.0, 0.5, 0.8])
    assert m.reward_weighted_ndcg(nd, -np.ones(4)) == 0.0


# --------------------------------------------------------------------------- beyond accuracy


def test_intra_list_diversity_hand() -> None:
    feats = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    slate = np.array([[0, 1, 2], [0, 3, 0], [0, 0, 2], [2, 2, 1]])
    shown = np.array(
        [[True, True, True], [True, True, False], [True, False, False], [True, True, False]]
    )
    out = m.intra_list_diversity(slate, feats, shown)
    # row 0: pairs (0,1) -> 1, (0,2) and (1,2) -> 1 - 1/sqrt(2): mean (3 - sqrt(2)) / 3
    # row 1: item 3 has a zero vector -> cosine 0 -> 1; row 2: one item -> NaN
    # row 3: the same item twice -> 0
    np.testing.assert_allclose(out[[0, 1, 3]], [(3 - math.sqrt(2)) / 3, 1.0, 0.0], atol=1e-12)
    assert np.isnan(out[2])


def test_self_information_and_novelty_hand() -> None:
    info = m.self_information(np.array([3, 1, 0]))
    # p = [4, 2, 1] / 7
    np.testing.assert_allclose(info, [math.log2(7 / 4), math.log2(7 / 2), math.log2(7)])
    slate = np.array([[0, 2], [1, 1]])
    shown = np.array([[True, True], [False, False]])
    out = m.novelty(slate, info, shown)
    assert out[0] == pytest.approx((math.log2(7 / 4) + math.log2(7)) / 2)
    assert np.isnan(out[1])


def test_most_popular_items() -> None:
    pop = np.array([5, 1, 5, 0, 3])
    np.testing.assert_array_equal(m.most_popular_items(pop, 0.4), [0, 2])  # tie: lower id first
    np.testing.assert_array_equal(m.most_popular_items(pop, 0.5), [0, 2, 4])  # ceil(2.5)
    assert m.most_popular_items(pop, 0.0).size == 0
    assert m.most_popular_items(np.arange(30), 0.1).size == 3  # 0.1 * 30 is not 4 items


def test_serendipity_hand() -> None:
    slate = np.array([[0, 1, 2], [3, 4, 0], [1, 2, 3]])
    click = np.array([[True, True, False], [False, True, True], [True, True, True]])
    shown = np.array([[True, True, True], [True, True, True], [False, False, False]])
    out = m.serendipity(slate, click, np.array([0, 4]), shown)
    # row 0: item 1 clicked and not popular -> 1/3; row 1: the clicked items are popular -> 0
    np.testing.assert_allclose(out[:2], [1 / 3, 0.0])
    assert np.isnan(out[2])


def test_catalog_coverage_hand() -> None:
    slate = np.array([[0, 1], [1, 2]])
    assert m.catalog_coverage(slate, 5) == pytest.approx(3 / 5)
    assert m.catalog_coverage(slate, 5, np.array([[True, False], [True, False]])) == 0.4


# --------------------------------------------------------------------------- exposure fairness


def test_exposure_counts_hand() -> None:
    slate = np.array([[0, 1, 1], [2, 1, -1]])  # -1: padding in a slot that is not shown
    shown = np.array([[True, True, False], [True, True, False]])
    np.testing.assert_array_equal(m.exposure_counts(slate, 4, shown), [1, 2, 1, 0])
    creators = np.array([0, 0, 1, 1])
    np.testing.assert_array_equal(m.exposure_counts(slate, 4, shown, creators), [3, 1])
    np.testing.assert_array_equal(m.exposure_counts(slate, 4, shown, creators, 3), [3, 1, 0])
    with pytest.raises(ValueError, match=r"^n_groups:"):
        m.exposure_counts(slate, 4, shown, creators, 1)


def test_gini_hand_and_identities() -> None:
    # sorted [1, 2, 3]: (-2 * 1 + 0 * 2 + 2 * 3) / (3 * 6) = 4 / 18
    assert m.gini(np.array([3, 1, 2])) == pytest.approx(4 / 18)
    assert m.gini(np.full(7, 4.0)) == pytest.approx(0.0)
    assert m.gini(np.array([0, 0, 0, 4])) == pytest.approx(3 / 4)  # (n - 1) / n
    assert m.gini(np.zeros(5)) == 0.0
    rng = np.random.default_rng(1)
    for n in (2, 5, 50):
        x = rng.integers(0, 20, size=n).astype(float)
        mad = np.abs(x[:, None] - x[None, :]).sum() / (2 * n * x.sum())
        assert m.gini(x) == pytest.approx(mad)


def test_exposure_entropy_hand() -> None:
    assert m.exposure_entropy(np.full(6, 3.0)) == pytest.approx(1.0)
    assert m.exposure_entropy(np.array([1, 1, 0, 0])) == pytest.approx(0.5)  # log 2 / log 4
    assert m.exposure_entropy(np.array([1, 1, 0, 0]), normalized=False) == pytest.approx(
        math.log(2)
    )
    assert m.exposure_entropy(np.array([0, 5, 0])) == 0.0
    assert m.exposure_entropy(np.array([2.0])) == 1.0
    assert m.exposure_entropy(np.zeros(3)) == 0.0


def test_lorenz_curve() -> None:
    x, y = m.lorenz_curve(np.array([0, 4, 0, 0]))
    np.testing.assert_allclose(x, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(y, [0, 0, 0, 0, 1])
    x, y = m.lorenz_curve(np.array([3, 1]))
    np.testing.assert_allclose(y, [0, 0.25, 1])
    rng = np.random.default_rng(2)
    c = rng.integers(0, 10, size=30)
    x, y = m.lorenz_curve(c)
    assert x.shape == y.shape == (31,)
    assert y[0] == 0.0 and y[-1] == 1.0 and x[0] == 0.0 and x[-1] == 1.0
    assert (np.diff(x) > 0).all() and (np.diff(y) >= 0).all()
    assert (y <= x + 1e-12).all()  # ascending order: below the equality line
    # Gini = 1 - 2 * (area under the Lorenz curve), trapezoids
    area = (np.diff(x) * (y[1:] + y[:-1]) / 2).sum()
    assert m.gini(c) == pytest.approx(1 - 2 * area)
    x, y = m.lorenz_curve(np.zeros(4))
    np.testing.assert_allclose(y, x)


# --------------------------------------------------------------------------- DPFR


def test_pareto_front_hand() -> None:
    pts = np.array(
        [
            [0.9, 0.1],
            [0.8, 0.3],
            [0.7, 0.2],  # dominated by (0.8, 0.3)
            [0.5, 0.5],
            [0.5, 0.4],  # dominated by (0.5, 0.5) (equal first coordinate)
            [0.9, 0.1],  # duplicate
            [0.2, 0.5],  # dominated by (0.5, 0.5) (equal second coordinate)
            [0.1, 0.9],
        ]
    )
    expected = [[0.9, 0.1], [0.8, 0.3], [0.5, 0.5], [0.1, 0.9]]
    np.testing.assert_array_equal(m.pareto_front(pts), expected)
    np.testing.assert_array_equal(m.pareto_front(pts[::-1]), expected)
    assert m.pareto_front(np.empty((0, 2))).shape == (0, 2)


def test_frontier_reference_point_and_dpfr_hand() -> None:
    front = np.array([[1.0, 0.0], [0.7, 0.4], [0.0, 0.4]])
    # segment lengths 0.5 and 0.7: cumulative [0, 0.5, 1.2]
    ref = m.frontier_reference_point
    np.testing.assert_array_equal(ref(front, 0.0), [1.0, 0.0])
    np.testing.assert_array_equal(ref(front, 0.5), [0.7, 0.4])  # target 0.6 -> 0.5
    np.testing.assert_array_equal(ref(front, 1.0), [0.0, 0.4])
    np.testing.assert_array_equal(ref(front, 0.2), [1.0, 0.0])  # target 0.24 -> 0
    np.testing.assert_array_equal(ref(front, 0.25), [0.7, 0.4])  # target 0.3 -> 0.5
    np.testing.assert_array_equal(ref(front[::-1], 0.0), [1.0, 0.0])  # order restored
    np.testing.assert_array_equal(ref(front[:1], 0.7), [1.0, 0.0])
    pts = np.array([[0.7, 0.4], [0.4, 0.0], [1.0, 1.0]])
    # to (0.7, 0.4): 0; sqrt(0.3^2 + 0.4^2) = 0.5; sqrt(0.3^2 + 0.6^2) = sqrt(0.45)
    np.testing.assert_allclose(m.dpfr(pts, front), [0.0, 0.5, math.sqrt(0.45)])
    np.testing.assert_allclose(m.dpfr(pts, front, alpha=0.0)[0], 0.5)


def test_estimate_frontier() -> None:
    rng = np.random.default_rng(4)
    n, n_cand, n_items, k = 60, 12, 40, 4
    pop = rng.zipf(1.6, n_items).astype(float)
    cand = np.stack(
        [rng.choice(n_items, n_cand, replace=False, p=pop / pop.sum()) for _ in range(n)]
    )
    rel = rng.random((n, n_cand)) + 0.01
    front = m.estimate_frontier(cand, rel, n_items, k)
    assert front.ndim == 2 and front.shape[1] == 2 and len(front) >= 2
    assert front[0, 0] == pytest.approx(1.0)  # the oracle
    oracle = np.take_along_axis(cand, np.argsort(-rel, axis=1)[:, :k], axis=1)
    oracle_fair = m.exposure_entropy(m.exposure_counts(oracle, n_items))
    assert front[-1, 1] >= oracle_fair
    assert front[-1, 1] > oracle_fair + 0.05  # re-ranking actually spreads exposure
    np.testing.assert_array_equal(m.pareto_front(front), front)  # non-dominated, sorted
    assert (np.diff(front[:, 0]) < 0).all() and (np.diff(front[:, 1]) > 0).all()
    assert ((front >= 0) & (front <= 1)).all()
    np.testing.assert_array_equal(m.estimate_frontier(cand, rel, n_items, k), front)  # determinism
    single = m.estimate_frontier(cand, rel, n_items, k, n_points=1)
    np.testing.assert_allclose(single, [[1.0, oracle_fair]])


# --------------------------------------------------------------------------- per episode


def test_per_episode_hand() -> None:
    values = np.array([1.0, 5.0, 3.0, 4.0, 2.0])
    ep = np.array([2, 1, 2, 1, 2])
    # episode 1: rows 1, 3 -> [5, 4]; episode 2: rows 0, 2, 4 -> [1, 3, 2]
    for how, expected in (("sum", [9, 6]), ("mean", [4.5, 2]), ("max", [5, 3]), ("last", [4, 2])):
        ids, out = m.per_episode(values, ep, how)
        np.testing.assert_array_equal(ids, [1, 2])
        np.testing.assert_allclose(out, expected)


def test_engagement_per_session_hand() -> None:
    ep = np.array([0, 0, 0, 1, 1])
    session = np.array([0, 0, 1, 0, 0])  # episode 0: 2 sessions, episode 1: 1
    shown = np.array([[True, True], [True, False], [True, True], [True, True], [True, True]])
    click = np.array([[1, 0], [1, 1], [0, 1], [1, 0], [0, 0]], dtype=bool)
    watch = np.array([[10.0, 0.0], [5.0, 7.0], [0.0, 3.0], [2.0, 0.0], [0.0, 0.0]])
    like = np.array([1, 0, 0, 0, 1])  # per step
    follow = np.zeros((5, 2))
    gift = np.array([[0, 0], [0, 2], [1, 0], [0, 0], [0, 3]])
    out = m.engagement_per_session(ep, session, click, watch, like, follow, gift, shown)
    assert set(out) == {"clicks", "watch", "likes", "follows", "gifts"}
    ids, clicks = out["clicks"]
    np.testing.assert_array_equal(ids, [0, 1])
    np.testing.assert_allclose(clicks, [3 / 2, 1.0])  # row 1 slot 1 is not shown
    np.testing.assert_allclose(out["watch"][1], [(10 + 5 + 3) / 2, 2.0])
    np.testing.assert_allclose(out["likes"][1], [1 / 2, 1.0])
    np.testing.assert_allclose(out["follows"][1], [0.0, 0.0])
    np.testing.assert_allclose(out["gifts"][1], [1 / 2, 3.0])  # the 2 is not shown


def test_retention_hand() -> None:
    ep = np.array([0, 0, 0, 0, 1, 1])
    session = np.array([0, 0, 1, 1, 0, 0])
    session_end = np.array([False, True, False, True, False, False])
    returned = np.array([False, True, False, False, False, False])
    gap = np.array([np.nan, 5.0, np.nan, np.nan, np.nan, np.nan])
    terminated = np.array([False, False, False, True, False, False])
    out = m.retention(ep, session, session_end, returned, gap, terminated)
    for key, _ in out.values():
        np.testing.assert_array_equal(key, [0, 1])
    np.testing.assert_allclose(out["session_depth"][1], [4 / 2, 2 / 1])
    np.testing.assert_allclose(out["return_rate"][1], [0.5, np.nan])
    np.testing.assert_allclose(out["return_time_hours"][1], [5.0, np.nan])
    np.testing.assert_array_equal(out["churn"][1], [1.0, 0.0])
    np.testing.assert_array_equal(out["sessions"][1], [2.0, 1.0])


def test_survival_by_session_hand() -> None:
    s = np.array([1, 3, 2, 3])
    np.testing.assert_allclose(m.survival_by_session(s), [1.0, 0.75, 0.5])
    np.testing.assert_allclose(m.survival_by_session(s, 4), [1.0, 0.75, 0.5, 0.0])
    np.testing.assert_allclose(m.survival_by_session(s, 2), [1.0, 0.75])


def _instruction_case() -> dict[str, np.ndarray]:
    # two episodes interleaved in time: episode 10 at t = 0, 2, 4 and episode 20 at t = 1, 3, 5
    return {
        "episode_id": np.array([10, 20, 10, 20, 10, 20]),
        "step": np.array([0, 1, 2, 3, 4, 5]),
        "instructed": np.array([True, True, False, False, False, True]),
        "instruction_vector": np.array(
            [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [1.0, 0.0]]
        ),
        "slate_items": np.array([[1, 1], [0, 0], [0, 2], [1, 0], [1, 2], [0, 0]]),
        "item_topics": np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]),
        "satisfaction": np.array([0.1, 0.5, 0.3, 0.2, 0.6, 0.9]),
        "shown": np.array([[True] * 2] * 4 + [[True, False], [True, True]]),
    }


def test_instruction_following_hand() -> None:
    case = _instruction_case()
    out = m.instruction_following(**case, window=2)
    rows, rate = out["honour_rate"]
    np.testing.assert_array_equal(rows, [0, 1, 5])
    np.testing.assert_array_equal(out["episode_id"], [10, 20, 20])
    # row 0 (more of topic 0), following rows 2 [0, 2] and 4 [1, (2 not shown)]: items 0 and 2
    # honour it, item 1 does not -> 2 / 3. Row 1 (more of topic 1), rows 3 [1, 0] and 5 [0, 0]:
    # 1 / 4. Row 5 is the last row of episode 20 -> NaN.
    np.testing.assert_allclose(rate, [2 / 3, 1 / 4, np.nan])
    delta_rows, delta = out["satisfaction_change"]
    np.testing.assert_array_equal(delta_rows, rows)
    np.testing.assert_allclose(delta, [0.6 - 0.1, 0.9 - 0.5, np.nan])
    # window 1: only row 2 follows row 0 (2 / 2 honour); only row 3 follows row 1
    one = m.instruction_following(**case, window=1)
    np.testing.assert_allclose(one["honour_rate"][1], [1.0, 0.5, np.nan])
    np.testing.assert_allclose(one["satisfaction_change"][1], [0.2, 0.2 - 0.5, np.nan])


def test_instruction_following_is_order_free() -> None:
    case = _instruction_case()
    perm = np.array([4, 1, 5, 0, 3, 2])
    shuffled = {key: (v if key == "item_topics" else v[perm]) for key, v in case.items()}
    out = m.instruction_following(**shuffled, window=2)
    rows, rate = out["honour_rate"]
    np.testing.assert_array_equal(perm[rows], [0, 1, 5])  # the same instructed rows
    np.testing.assert_allclose(rate, [2 / 3, 1 / 4, np.nan])


# --------------------------------------------------------------------------- errors


def test_errors_name_the_argument() -> None:
    rel2, rel3 = np.ones((2, 3)), np.ones((3, 4))
    with pytest.raises(ValueError, match=r"^candidate_relevance:"):
        m.ndcg_at_k(rel2, rel3)
    with pytest.raises(ValueError, match=r"^k:"):
        m.ndcg_at_k(rel2, np.ones((2, 4)), k=0)
    with pytest.raises(ValueError, match=r"^k:"):
        m.ndcg_at_k(np.ones((2, 3)), np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"^slate_relevance:"):
        m.ndcg_at_k(-rel2, np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"^shown:"):
        m.ndcg_at_k(rel2, np.ones((2, 4)), shown=np.ones((2, 2), dtype=bool))
    with pytest.raises(ValueError, match=r"^gains:"):
        m.dcg(np.ones(3))
    with pytest.raises(ValueError, match=r"^values:"):
        m.per_episode(np.ones(3), np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match=r"^how:"):
        m.per_episode(np.ones(3), np.zeros(3, dtype=int), "median")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^points:"):
        m.pareto_front(np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"^alpha:"):
        m.frontier_reference_point(np.ones((1, 2)), alpha=2.0)
    with pytest.raises(ValueError, match=r"^counts:"):
        m.gini(np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match=r"^slate_items:"):
        m.exposure_counts(np.array([[0, 5]]), 4)
    with pytest.raises(ValueError, match=r"^reward:"):
        m.reward_weighted_ndcg(np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match=r"^click:"):
        m.serendipity(np.zeros((2, 3), dtype=int), np.ones((2, 2), dtype=bool), np.array([0]))
    with pytest.raises(ValueError, match=r"^watch:"):
        z = np.zeros((2, 2))
        m.engagement_per_session(np.zeros(2, int), np.zeros(2, int), z, np.zeros((2, 3)), z, z, z)
    with pytest.raises(ValueError, match=r"^k:"):
        m.estimate_frontier(np.zeros((2, 3), dtype=int), np.ones((2, 3)), 4, k=4)
    with pytest.raises(ValueError, match=r"^candidate_relevance:"):
        m.reciprocal_rank(np.zeros((2, 3), int), np.zeros((2, 4), int), np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"^share:"):
        m.most_popular_items(np.ones(3), 1.5)
    case = _instruction_case()
    case["step"] = np.array([0, 1, 0, 3, 4, 5])  # episode 10 repeats step 0
    with pytest.raises(ValueError, match=r"^step:"):
        m.instruction_following(**case)
    case = _instruction_case()
    case["satisfaction"] = np.ones(5)
    with pytest.raises(ValueError, match=r"^satisfaction:"):
        m.instruction_following(**case)


def test_profile_distance_and_unfamiliarity_hand_computed():
    feats = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    profile = np.array([[1.0, 0.0], [0.0, 0.0]])  # row 1: nothing consumed yet
    items = np.array([[0, 1, 2], [0, 2, -1]])
    dist = m.profile_distance(items, feats, profile)
    assert dist[0] == pytest.approx([0.0, 1.0, 1.0 - 1.0 / np.sqrt(2.0)])
    assert dist[1, :2] == pytest.approx([1.0, 1.0]) and np.isnan(dist[1, 2])  # padding
    shown = np.array([[True, True, False], [True, False, False]])
    unf = m.unfamiliarity(items, feats, profile, shown)
    assert unf == pytest.approx([0.5, 1.0])
    with pytest.raises(ValueError, match="profile: expected 2 columns"):
        m.profile_distance(items, feats, np.ones((2, 3)))
    with pytest.raises(ValueError, match="slate_items: item ids"):
        m.unfamiliarity(np.array([[5, 0]]), feats, profile[:1])

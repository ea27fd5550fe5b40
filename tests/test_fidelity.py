"""recoworld.evaluation.fidelity: held-out split, negatives, metrics, bootstrap, scorers,
persona and instruction checks (synthetic data), plus one real MovieLens run of (b) on 50 users."""

from __future__ import annotations

import numpy as np
import pytest

from recoworld.catalog import splits as S
from recoworld.envs.config import WorldConfig
from recoworld.evaluation import fidelity as F
from recoworld.metrics import top1_auc
from recoworld.simulators.parametric.config import ParametricUserConfig
from recoworld.simulators.parametric.model import ParametricUserModel


def _log():
    """Two users; user 0 likes items 0..7 at times 1..8 (plus a dislike at time 3 and a
    same-second rating at the cutoff), user 1 has only 3 likes."""
    rows = [(0, i, 5.0, i + 1) for i in range(8)]
    rows += [(0, 20, 1.0, 3), (0, 21, 2.0, 6), (0, 22, 3.0, 9)]
    rows += [(1, 10 + i, 4.0, i) for i in range(3)]
    u, i, r, t = (np.array(c) for c in zip(*rows, strict=True))
    return u, i, r.astype(np.float32), t


def test_holdout_split_by_time_and_training_strictly_before():
    u, i, r, t = _log()
    order = np.random.default_rng(0).permutation(len(u))  # log order must not matter
    split = S.holdout_split(u[order], i[order], r[order], t[order], 4.0, n_holdout=3,
                            min_train_liked=2)  # fmt: skip
    assert split.n_eligible == 1 and len(split.users) == 1
    user = split.users[0]
    assert user.row == 0
    assert user.positives.tolist() == [5, 6, 7]  # the last three likes by time
    assert user.cutoff == 6
    # training: everything strictly before t=6 (item 21, rated at t=6, is dropped)
    assert sorted(user.train_items.tolist()) == [0, 1, 2, 3, 4, 20]
    assert (user.train_times < user.cutoff).all()
    assert np.all(np.diff(user.train_times) >= 0)
    assert set(user.rated.tolist()) == {*range(8), 20, 21, 22}
    train = split.train
    kept = {(int(a), int(b)) for a, b in zip(u[order][train], i[order][train], strict=True)}
    assert (0, 5) not in kept and (0, 21) not in kept and (0, 22) not in kept
    assert {(1, 10), (1, 11), (1, 12)} <= kept  # non-evaluated users stay in training


def test_holdout_split_user_subset_is_seeded():
    rng = np.random.default_rng(1)
    n_users, per_user = 30, 20
    u = np.repeat(np.arange(n_users), per_user)
    i = np.concatenate([rng.choice(100, per_user, replace=False) for _ in range(n_users)])
    r = np.full(len(u), 5.0, np.float32)
    t = rng.integers(0, 10**6, len(u))
    a = S.holdout_split(u, i, r, t, max_users=10, seed=3)
    b = S.holdout_split(u, i, r, t, max_users=10, seed=3)
    assert a.n_eligible == 30 and len(a.users) == 10
    assert [x.row for x in a.users] == [x.row for x in b.users]
    assert (~a.train).sum() == 10 * 5  # exactly the evaluated users' held-out ratings


def _users(n_items=200, n_users=12, seed=0):
    rng = np.random.default_rng(seed)
    users = []
    for k in range(n_users):
        rated = np.sort(rng.choice(n_items, 60, replace=False))
        users.append(S.HeldOutUser(row=k, train_items=rated[:55],
                                   train_ratings=np.full(55, 5.0, np.float32),
                                   train_times=np.arange(55), positives=rated[55:],
                                   rated=rated, cutoff=55))  # fmt: skip
    return users


def test_negatives_never_rated_distinct_and_popularity_matched():
    n_items = 200
    users = _users(n_items)
    popularity = np.random.default_rng(5).pareto(1.0, n_items)
    bins = S.popularity_bins(popularity, 10)
    assert bins.min() == 0 and bins.max() == 9
    for b in (None, bins):
        items, row_user = S.sample_negatives(users, n_items, 4, b, seed=7)
        assert items.shape == (12 * 5, 5)
        for row, j in zip(items, row_user, strict=True):
            assert row[0] in users[j].positives
            assert len(set(row.tolist())) == 5
            assert not np.isin(row[1:], users[j].rated).any()
            if b is not None:
                assert (b[row[1:]] == b[row[0]]).all()
        again, _ = S.sample_negatives(users, n_items, 4, b, seed=7)
        assert np.array_equal(items, again)
        # a user's draws do not depend on the other users evaluated
        alone, _ = S.sample_negatives(users[3:4], n_items, 4, b, seed=7)
        assert np.array_equal(alone, items[row_user == 3])


def test_popularity_bins_widen_when_a_bin_is_exhausted():
    user = S.HeldOutUser(row=0, train_items=np.array([1]), train_ratings=np.array([5.0]),
                         train_times=np.array([0]), positives=np.array([0]),
                         rated=np.array([0, 1]), cutoff=1)  # fmt: skip
    bins = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])  # bin 0 has one unrated item (2)
    items, _ = S.sample_negatives([user], 10, 4, bins, seed=0)
    assert set(items[0, 1:].tolist()) == {2, 3, 4, 5}  # widened to bins 0-1 only


def test_midrank_percentile_ties():
    pct = S.midrank_percentile(np.array([5.0, 1.0, 5.0, 3.0]))
    assert pct.tolist() == pytest.approx([5 / 6, 0.0, 5 / 6, 1 / 3])


def test_top1_auc_known_scores():
    scores = np.array(
        [
            [5.0, 1.0, 2.0, 3.0, 4.0],  # positive best: top-1 1, AUC 1
            [0.0, 1.0, 2.0, 3.0, 4.0],  # positive worst: 0, 0
            [3.0, 1.0, 3.0, 5.0, 0.0],  # beaten once, tied once: 0, (2 + 0.5) / 4
            [2.0, 2.0, 1.0, 1.0, 1.0],  # tied at the top with one: 1/2, (3 + 0.5) / 4
        ]
    )
    top1, auc = top1_auc(scores)
    assert top1.tolist() == [1.0, 0.0, 0.0, 0.5]
    assert auc.tolist() == [1.0, 0.0, 0.625, 0.875]
    with pytest.raises(ValueError):
        top1_auc(np.array([[np.nan, 1.0]]))


def test_bootstrap_ci_contains_truth_and_paired_sign():
    rng = np.random.default_rng(0)
    covered = 0
    for k in range(40):
        x = rng.normal(0.3, 1.0, 200)
        c = F.bootstrap_ci(x, n_boot=500, seed=k)
        assert c["lo"] < c["mean"] < c["hi"]
        covered += c["lo"] <= 0.3 <= c["hi"]
    assert covered >= 34  # nominal 95%: 38 of 40 expected
    base = rng.normal(0.0, 1.0, 300)
    better = base + 0.2 + rng.normal(0.0, 0.1, 300)  # paired: noise cancels
    d = F.paired_bootstrap_ci(better, base, n_boot=500)
    assert d["lo"] > 0 and d["mean"] == pytest.approx(0.2, abs=0.03)
    d = F.paired_bootstrap_ci(base, better, n_boot=500)
    assert d["hi"] < 0


def test_compare_pass_and_per_user_mean():
    assert F.per_user_mean(np.array([1.0, 0.0, 1.0]), np.array([0, 0, 1]), 2).tolist() == [
        0.5, 1.0,
    ]  # fmt: skip
    rng = np.random.default_rng(0)
    base = {"top1": rng.random(100), "auc": rng.random(100)}
    good = {k: v + 0.3 for k, v in base.items()}
    res = F.compare({"good": good, "base": base}, "good", ["base"], n_boot=300)
    assert res["pass"] and res["paired"]["base"]["top1"]["lo"] > 0
    res = F.compare({"good": base, "base": good}, "good", ["base"], n_boot=300)
    assert not res["pass"]


def test_baseline_scorers_and_zscore_sum():
    topics = np.eye(3)[[0, 0, 1, 2, 1]]
    years = np.array([1990.0, 1995.0, 1960.0, 1991.0, 1994.0])
    user = S.HeldOutUser(row=0, train_items=np.array([0, 1, 2]),
                         train_ratings=np.array([5.0, 4.0, 1.0]), train_times=np.arange(3),
                         positives=np.array([3]), rated=np.arange(4), cutoff=3)  # fmt: skip
    items = np.array([[1, 2, 3, 4]])
    g = F.genre_cosine_scorer(topics, 4.0)(user, items)
    assert g[0].tolist() == pytest.approx([1.0, 0.0, 0.0, 0.0])
    y = F.year_proximity_scorer(years, 4.0)(user, items)  # liked years: mean 1992.5
    # liked years 1990 and 1995 (mean 1992.5); items: 1995, 1960, 1991, 1994
    assert y[0, 2] == pytest.approx(y[0, 3]) and y[0, 3] > y[0, 0] > y[0, 1]
    pop = F.popularity_scorer(np.array([5.0, 4.0, 3.0, 2.0, 1.0]))(user, items)
    assert pop.tolist() == [[4.0, 3.0, 2.0, 1.0]]
    z = F.zscore_sum(np.array([[1.0, 2.0, 3.0]]), np.array([[30.0, 20.0, 10.0]]))
    assert z == pytest.approx(np.zeros((1, 3)))


class _FakeContrast:
    """score = +1 for items whose index is in the likes' ids, -1 in the dislikes'."""

    def score(self, likes, dislikes, items):
        out = np.zeros(items.shape)
        for r, (lk, dk) in enumerate(zip(likes, dislikes, strict=True)):
            for j, it in enumerate(items[r]):
                out[r, j] = (f"t{it}" in lk) - (f"t{it}" in dk)
        return out


def test_llm_persona_scorer_rows_and_modes():
    titles = [f"t{k}" for k in range(10)]
    user = S.HeldOutUser(row=0, train_items=np.array([1, 2, 3]),
                         train_ratings=np.array([5.0, 1.0, 4.0]), train_times=np.arange(3),
                         positives=np.array([4]), rated=np.arange(5), cutoff=3)  # fmt: skip
    assert F.movielens_persona(user, titles) == (["t3", "t1"], ["t2"])
    items = np.array([[3, 2, 5], [1, 2, 6]])
    c = F.LLMPersonaScorer(_FakeContrast(), titles, "contrast", 4.0)
    p = F.LLMPersonaScorer(_FakeContrast(), titles, "pmi", 4.0)
    assert c(user, items).tolist() == [[1, -1, 0], [1, -1, 0]]
    assert p(user, items).tolist() == [[1, 0, 0], [1, 0, 0]]


def test_persona_consistency_liked_clicked_more(small_catalog):
    model = ParametricUserModel(small_catalog)
    state = model.sample_users(200, np.random.default_rng(0))
    res = F.persona_consistency(model, state, n_rounds=5, seed=0, n_boot=300)
    assert res["users"] > 100
    assert res["click_rate_liked"]["mean"] > res["click_rate_disliked"]["mean"]
    assert res["difference"]["lo"] > 0
    # the real respond ran on copies: the original state is untouched
    assert not state.seen.any() and not state.fatigue.any()
    idx = {t: k for k, t in enumerate(small_catalog.topic_names)}

    def oracle(likes, dislikes, items):  # counts liked topics: liked items always win
        return np.stack([small_catalog.topics[items[r]][:, [idx[t] for t in lk]].sum(1)
                         for r, lk in enumerate(likes)])  # fmt: skip

    picks = F.persona_score_consistency(oracle, small_catalog, state, n_rounds=2, n_boot=100)
    assert picks["top_pick_liked"]["mean"] == 1.0
    assert picks["pairwise_liked_over_disliked"]["mean"] == 1.0
    flat = F.persona_score_consistency(
        lambda likes, dislikes, items: np.zeros(items.shape), small_catalog, state, n_boot=100
    )
    assert flat["pairwise_liked_over_disliked"]["mean"] == 0.5


def test_instruction_consistency_parametric_world(small_config):
    from recoworld.envs.world import World

    cfg = small_config.model_copy(deep=True)
    cfg.episode.text_info = "instructions"
    world = World(cfg, 64)
    res = F.instruction_consistency(world, min_instructions=30, seed=1, n_boot=200)
    assert res["instructions"] >= 30
    assert res["match"]["all_fields"]["mean"] == 1.0  # templates parse back exactly
    assert "paraphrase" not in res
    assert "respond" not in vars(world.simulator)  # the capture hook is removed
    rt = F.template_roundtrip(world.catalog.topic_names)
    assert rt["match"] == 1.0 and rt["sentences"] > 100
    with pytest.raises(ValueError):
        cfg2 = WorldConfig.model_validate({**cfg.model_dump(), "episode": {"text_info": "none"}})
        F.instruction_consistency(World(cfg2, 4), 1)


def test_instruction_fields_match():
    truth = np.array([[1.0, -1.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0]])
    parsed = np.array([[1.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 1.0]])
    m = F.instruction_fields_match(parsed, truth)
    assert m["all_fields"].tolist() == [False, False]
    assert m["craving"].tolist() == [True, True]
    assert m["tired_of"].tolist() == [False, True]
    assert m["something_new"].tolist() == [True, False]


def test_movielens_preferences_50_users(movielens):
    split = S.holdout_split_movielens(movielens, max_users=50, seed=0)
    assert len(split.users) == 50 and split.n_eligible > 800
    view = S.training_view(movielens, split.train)
    held = ~split.train
    # nothing held out reaches the scorers: counts and the rating log are training-only
    assert view.n_ratings == int(split.train.sum())
    full_counts = np.bincount(movielens.item_index, minlength=movielens.catalog.n_items)
    held_counts = np.bincount(movielens.item_index[held], minlength=movielens.catalog.n_items)
    assert np.array_equal(view.catalog.popularity, full_counts - held_counts)
    assert not np.array_equal(view.catalog.latent, movielens.catalog.latent)
    cat = view.catalog
    years = F.release_years(cat)
    assert years.min() >= 1920 and years.max() <= 1998
    scorers = {
        "popularity": F.popularity_scorer(cat.popularity),
        "genre+year": F.genre_year_scorer(cat.topics, years, 4.0),
        "fitted": F.ParametricScorer(view, ParametricUserConfig()),
    }
    results = {}
    for name, bins in (("uniform", None), ("matched", S.popularity_bins(cat.popularity))):
        items, row_user = S.sample_negatives(split.users, cat.n_items, 4, bins, seed=0)
        assert items.shape == (250, 5)
        raw, metrics = F.evaluate_scorers(scorers, split.users, items, row_user)
        results[name] = F.compare(metrics, "fitted", ["popularity", "genre+year"], n_boot=300)
    s = results["uniform"]["scorers"]
    # uniform negatives are easy for popularity (docs/platform.md: ~60% top-1), matched are not
    assert s["popularity"]["top1"]["mean"] > 0.45
    assert results["matched"]["scorers"]["popularity"]["top1"]["mean"] < 0.4
    # the fitted user (era, popularity, fitted weights) is ahead of both on both sets
    for res in results.values():
        fitted = res["scorers"]["fitted"]["top1"]["mean"]
        assert fitted > res["scorers"]["popularity"]["top1"]["mean"]
        assert fitted > res["scorers"]["genre+year"]["top1"]["mean"]
    # the weights were fitted on a validation split of the training view: every validation
    # positive is a training rating before the evaluated user's held-out films
    pop = scorers["fitted"].model.population
    assert pop.fit_info["users"] <= split.n_eligible
    vsplit = S.holdout_split(view.user_index, view.item_index, view.rating, view.timestamp)
    cutoff = {u.row: u.cutoff for u in split.users}
    for u in vsplit.users:
        if u.row in cutoff:
            assert u.cutoff < cutoff[u.row]
    for res in results.values():
        for m in res["scorers"].values():
            assert 0.0 <= m["top1"]["lo"] <= m["top1"]["mean"] <= m["top1"]["hi"] <= 1.0

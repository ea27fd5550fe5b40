"""The fidelity report card: the protocol's arithmetic on hand-built data, the no-leak
guarantee on MovieLens-100k, and the quick CLI run."""

from __future__ import annotations

import dataclasses
import importlib.util
import json

import numpy as np
import pytest

from recoworld.catalog.splits import training_view
from recoworld.evaluation.fidelity_card import (
    SIMULATOR,
    collaborative_scores,
    jsonable,
    no_leak_check,
    simulated_users,
)
from recoworld.evaluation.fidelity_protocol import (
    DROPPED,
    EXCLUDED,
    TEST,
    TRAIN,
    VALID,
    agent4rec_split,
    calibrate_threshold,
    discrimination_lists,
    error_sums,
    isotonic_fit,
    isotonic_predict,
    list_sizes,
    popularity_bin_of,
    rating_errors,
    summarize,
    user_metrics,
)


def _log(n_users: int = 40, n_items: int = 120, per_user: int = 30, seed: int = 0):
    """A hand-built rating log: user 0 never rates above 3 (not eligible)."""
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), per_user)
    items = np.concatenate([rng.choice(n_items, per_user, replace=False) for _ in range(n_users)])
    ratings = rng.integers(1, 6, size=len(users)).astype(np.float32)
    ratings[users == 0] = np.minimum(ratings[users == 0], 3)
    return users, items, ratings, n_items


def _split(seed: int = 0, **kw):
    u, i, r, n = _log()
    return u, i, r, n, agent4rec_split(u, i, r, n, min_liked=3, min_heldout=10, seed=seed, **kw)


def test_list_sizes_per_ratio():
    assert {m: list_sizes(m) for m in (1, 2, 3, 9)} == {
        1: (10, 10),
        2: (6, 12),
        3: (5, 15),
        9: (2, 18),
    }
    with pytest.raises(ValueError):
        list_sizes(0)


def test_split_is_40_30_30_random_seeded_and_filtered():
    u, i, r, n, s = _split()
    assert 0 not in s.users and (s.part[u == 0] == EXCLUDED).all()
    assert len(s.users) == 39 - s.n_short and s.n_short <= 2
    for user in s.users:
        part = s.part[u == user]
        assert (part == TRAIN).sum() == int(0.4 * 30)
        assert np.isin(part, [TRAIN, VALID, TEST, DROPPED]).all()
    # valid and test keep only items of some train split; every train item is known
    held = np.isin(s.part, [VALID, TEST])
    assert s.known_items[i[held]].all()
    assert set(np.flatnonzero(s.known_items)) == set(i[s.part == TRAIN])
    assert not s.known_items[i[s.part == DROPPED]].any()
    # calibration and evaluation users partition the eligible users
    assert not set(s.calibration) & set(s.evaluation)
    assert set(s.calibration) | set(s.evaluation) == set(s.users)
    # seeded: same seed, same split; another seed, another one
    assert np.array_equal(s.part, _split(0)[4].part)
    assert not np.array_equal(s.part, _split(1)[4].part)


@pytest.mark.parametrize("ratio", [1, 2, 3, 9])
def test_lists_sizes_positives_and_negatives(ratio):
    u, i, r, n, s = _split()
    lists = discrimination_lists(u, i, s, ratio, "uniform", seed=0)
    n_pos, n_neg = list_sizes(ratio)
    assert lists.items.shape == (len(s.users), n_pos + n_neg)
    assert (lists.label.sum(1) == n_pos).all()
    for row, user in enumerate(lists.users):
        rated = set(i[u == user])
        held = set(i[(u == user) & np.isin(s.part, [VALID, TEST])])
        its, lab = lists.items[row], lists.label[row]
        assert len(set(its)) == len(its)
        assert set(its[lab]) <= held
        assert not set(its[~lab]) & rated
        assert s.known_items[its[~lab]].all()
    # shuffled: positives are not all in front
    assert not lists.label[:, :n_pos].all()
    # a user's list does not depend on which other users are in the run
    fewer = dataclasses.replace(s, users=s.users[3:])
    other = discrimination_lists(u, i, fewer, ratio, "uniform", seed=0)
    assert np.array_equal(other.items, lists.items[3:])


def test_popularity_matched_negatives_share_the_positives_bins():
    u, i, r, n = _log(n_users=200, n_items=600)
    s = agent4rec_split(u, i, r, n, min_liked=3, min_heldout=10, seed=0)
    counts = np.bincount(i[s.part == TRAIN], minlength=n)
    bins = popularity_bin_of(counts, s.known_items, 10)
    for m in (1, 3, 9):
        lists = discrimination_lists(u, i, s, m, "popularity", bins=bins, seed=0)
        for its, lab in zip(lists.items, lists.label, strict=True):
            assert sorted(bins[its[~lab]]) == sorted(np.repeat(bins[its[lab]], m))
    with pytest.raises(ValueError):
        discrimination_lists(u, i, s, 1, "popularity", seed=0)


def test_user_metrics_average_over_users_and_the_no_yes_user():
    label = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=bool)
    yes = np.array([[1, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]], dtype=bool)
    m = user_metrics(yes, label)
    assert np.allclose(m["accuracy"], [0.75, 0.5, 0.25])
    assert np.allclose(m["precision"], [1.0, 0.0, 0.25])  # no "yes": 0
    assert np.isnan(m["precision_defined"][1])  # no "yes": undefined
    assert np.allclose(m["recall"], [0.5, 0.0, 1.0])
    assert np.allclose(m["f1"], [2 / 3, 0.0, 0.4])
    assert np.array_equal(m["no_yes"], [0.0, 1.0, 0.0])
    s = summarize(m, n_boot=200)
    # per-user means, not pooled counts (pooled precision would be 2/5)
    assert s["precision"]["mean"] == pytest.approx((1.0 + 0.0 + 0.25) / 3)
    assert s["precision_defined"]["mean"] == pytest.approx((1.0 + 0.25) / 2)
    assert s["precision_defined"]["n"] == 2
    assert s["f1"]["mean"] == pytest.approx((2 / 3 + 0.4) / 3)
    assert s["no_yes_users"]["mean"] == 1
    assert s["accuracy"]["lo"] <= s["accuracy"]["mean"] <= s["accuracy"]["hi"]


def test_calibrate_threshold():
    label = np.zeros((50, 20), dtype=bool)
    label[:, :10] = True
    scores = np.where(label, 1.0, 0.0) + np.linspace(0, 0.5, 20)[None] * 0.1
    t = calibrate_threshold(scores, label, "accuracy")
    assert np.array_equal(scores >= t, label)
    # uninformative scores at 1:9: accuracy says all-no, F1 says all-yes
    label9 = np.zeros((50, 20), dtype=bool)
    label9[:, :2] = True
    flat = np.ones((50, 20))
    assert calibrate_threshold(flat, label9, "accuracy") == np.inf
    assert calibrate_threshold(flat, label9, "f1") == 1.0


def test_isotonic_and_rating_errors():
    knots = isotonic_fit(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 3.0, 2.0, 4.0]))
    assert np.allclose(isotonic_predict(knots, [1.0, 2.0, 3.0, 4.0]), [1.0, 2.5, 2.5, 4.0])
    rng = np.random.default_rng(0)
    x = rng.normal(size=500)
    fit = isotonic_predict(isotonic_fit(x, x + rng.normal(size=500)), np.sort(x))
    assert (np.diff(fit) >= -1e-12).all()
    sklearn = pytest.importorskip("sklearn.isotonic")
    y = x + rng.normal(size=500)
    ref = sklearn.IsotonicRegression(out_of_bounds="clip").fit(x, y)
    grid = np.linspace(-4, 4, 101)
    assert np.allclose(isotonic_predict(isotonic_fit(x, y), grid), ref.predict(grid))
    pred, truth = rng.uniform(1, 5, 300), rng.integers(1, 6, 300).astype(float)
    row_user = rng.integers(0, 30, 300)
    e = rating_errors(error_sums(pred, truth, row_user, 30), n_boot=200)
    assert e["rmse"]["mean"] == pytest.approx(np.sqrt(((pred - truth) ** 2).mean()))
    assert e["mae"]["mean"] == pytest.approx(np.abs(pred - truth).mean())
    assert e["rmse"]["lo"] <= e["rmse"]["mean"] <= e["rmse"]["hi"]


def test_jsonable_is_strict():
    out = json.dumps(jsonable({"a": float("nan"), "b": [np.float32(1.5), np.inf], "c": None}))
    assert json.loads(out) == {"a": None, "b": [1.5, None], "c": None}


@pytest.mark.parametrize("latent", ["rating_svd", "implicit_als"])
def test_no_leak_heldout_ratings_never_enter_fitting(movielens, latent):
    """For both ways of fitting latent taste (MovieLens-v0's and MovieLens-v1's)."""
    from recoworld.catalog import load_movielens
    from recoworld.catalog.config import MovieLensCatalogConfig

    data = (
        movielens
        if latent == "rating_svd"
        else load_movielens(MovieLensCatalogConfig(latent=latent))
    )
    assert data.latent_method == latent
    n = data.catalog.n_items
    s = agent4rec_split(data.user_index, data.item_index, data.rating, n, max_users=80, seed=0)
    view = training_view(data, s.train)
    assert no_leak_check(data, s, view)["ok"]
    # the test positives of the scored users are absent from what the fits read
    fit_pairs = view.user_index * n + view.item_index
    for m in (1, 9):
        lists = discrimination_lists(data.user_index, data.item_index, s, m, seed=0)
        ev = lists.take(s.evaluation)
        pos = (ev.users[:, None] * n + ev.items)[ev.label]
        assert len(pos) and not np.isin(pos, fit_pairs).any()
    # change every held-out rating (its star and its film): the fitted users, their fitted
    # utility weights and the collaborative baselines do not move
    held = np.isin(s.part, [VALID, TEST, DROPPED])
    rating, item = data.rating.copy(), data.item_index.copy()
    rating[held] = 6.0 - rating[held]
    item[held] = (item[held] + 7) % n
    other = dataclasses.replace(data, rating=rating, item_index=item)
    view2 = training_view(other, s.train)
    assert view.latent_method == view2.latent_method == latent
    a, b = simulated_users(view), simulated_users(view2)
    assert a.config.source == "movielens" and a.population is not None
    assert b.population is not None and a.population.weights == b.population.weights
    for f in ("interest", "latent", "novelty_static", "patience", "era"):
        assert np.array_equal(getattr(a.population, f), getattr(b.population, f)), f
    ca, cb = collaborative_scores(view), collaborative_scores(view2)
    for k in ca:
        assert np.allclose(ca[k], cb[k]), k


def test_quick_cli_run(tmp_path):
    from recoworld.cli import main

    out = tmp_path / "card"
    assert main(["fidelity", "card", "--quick", "--seed", "0", "--out", str(out)]) == 0
    for name in ("fidelity_card.json", "fidelity_card.md", "fidelity_card.html", "manifest.json"):
        assert (out / name).is_file(), name
    results = json.loads(
        (out / "fidelity_card.json").read_text(),
        parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"),
    )
    assert results["config"]["quick"] and results["no_leak"]["ok"]
    assert results["simulator"]["task"] == results["ranking"]["task"] == "MovieLens-v1"
    assert results["simulator"]["latent"] == "implicit_als"
    one = results["discrimination"]["uniform"]["1:1"]
    assert (one["positives"], one["negatives"]) == (10, 10)
    assert set(results["discrimination"]) == {"uniform", "popularity"}
    assert set(results["discrimination"]["popularity"]) == {"1:1", "1:2", "1:3", "1:9"}
    assert one["scorers"]["all-yes"]["accuracy"]["mean"] == pytest.approx(0.5)
    assert (
        one["scorers"]["all-no"]["no_yes_users"]["mean"] == results["dataset"]["evaluation_users"]
    )
    assert 0.0 <= one["scorers"][SIMULATOR]["f1"]["mean"] <= 1.0
    md = (out / "fidelity_card.md").read_text()
    assert "MovieLens-100k" in md and "Quick profile" in md and "AlignUSER+" in md
    if importlib.util.find_spec("matplotlib") is not None:
        assert "<img" in (out / "fidelity_card.html").read_text()
    # the policy-ranking section: six policies on both sides, correlations with CIs
    ranking = results["ranking"]
    policies = ["random", "popular", "knn", "mf", "linucb", "genre-match"]
    assert ranking["policies"] == policies and "ppo" not in ranking["per_policy"]
    assert ranking["lives"]["total"] == 64 and ranking["offline_users"] == 120
    primary = ranking["agreement"][ranking["primary"]]
    for m in ("spearman", "kendall"):
        assert -1.0 <= primary[m]["lo"] <= primary[m]["mean"] <= primary[m]["hi"] <= 1.0
    assert sorted(primary["sim_rank"]) == sorted(primary["offline_rank"]) == [1, 2, 3, 4, 5, 6]
    assert ranking["simuser"]["spearman"] == 0.72 and ranking["linucb_warm_start"]["slots"] > 0
    per = ranking["per_policy"]
    # the offline replay: random picks 3 of 20 with 5 held out: precision about 0.25
    assert abs(per["random"]["precision@3 uniform"]["mean"] - 0.25) < 0.1
    assert (
        per["popular"]["precision@3 uniform"]["mean"] > per["random"]["precision@3 uniform"]["mean"]
    )
    assert per["popular"]["mean_return"]["mean"] > per["random"]["mean_return"]["mean"]
    # behaviour statistics: every policy and every baseline has a distance
    beh = results["behaviour"]
    for what in ("activity", "genre", "gaps"):
        assert set(beh[what]["distance"]) == set(policies), what
        assert all(v >= 0 for v in beh[what]["baselines"].values()), what
    assert "1 h" in beh["gaps"]["rule"]
    for heading in ("## Policy-ranking agreement", "## Behaviour statistics", "### Genre mix",
                    "SimUSER", "shuffled users"):  # fmt: skip
        assert heading in md, heading
    page = (out / "fidelity_card.html").read_text()
    assert "Policy-ranking agreement" in page and "Return gaps" in page


def test_card_scores_the_named_movielens_task_and_refuses_others(tmp_path, capsys):
    from recoworld.cli import main

    out = tmp_path / "v0"
    args = ["fidelity", "card", "--quick", "--no-ranking", "--task", "MovieLens-v0"]
    assert main([*args, "--out", str(out)]) == 0
    results = json.loads((out / "fidelity_card.json").read_text())
    assert results["simulator"]["task"] == "MovieLens-v0" and results["ranking"] is None
    assert results["simulator"]["latent"] == "rating_svd"
    capsys.readouterr()
    assert main(["fidelity", "card", "--quick", "--task", "Creators-v0", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Creators-v0" in err and "MovieLens world" in err and "Traceback" not in err


def test_cli_missing_ppo_checkpoint_is_a_usage_error(tmp_path, capsys):
    from recoworld.cli import main

    code = main(["fidelity", "card", "--quick", "--ppo", str(tmp_path / "nope"),
                 "--out", str(tmp_path / "card")])  # fmt: skip
    assert code == 2 and "nope" in capsys.readouterr().err
    assert not (tmp_path / "card" / "fidelity_card.json").exists()

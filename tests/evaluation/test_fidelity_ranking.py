"""The fidelity card's policy-ranking agreement and behaviour statistics: rank correlation
and bootstrap arithmetic, slate metrics, the real-user observation, the life logger against
the task runner, and the behaviour statistics on hand-built data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import kendalltau, spearmanr

from recoworld.evaluation.fidelity_behaviour import (
    activity_stats,
    gap_stats,
    genre_shares,
    genre_stats,
    mean_normalised,
    mean_wasserstein,
    per_user_counts,
    session_gaps,
    shares_of,
    shuffled_users,
)
from recoworld.evaluation.fidelity_card import FidelityCardConfig
from recoworld.evaluation.fidelity_ranking import (
    agreement,
    kendall,
    resampled_means,
    slate_metrics,
    spearman,
    spearman_null_p,
)

# --------------------------------------------------------------------------- ranking


def test_spearman_and_kendall_on_hand_built_rankings():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert spearman(x, x) == pytest.approx(1.0)
    assert spearman(x, -x) == pytest.approx(-1.0)
    # one adjacent swap of four: rho = 1 - 6 * 2 / (4 * 15) = 0.8, tau = (5 - 1) / 6
    y = np.array([1.0, 3.0, 2.0, 4.0])
    assert spearman(x, y) == pytest.approx(0.8)
    assert kendall(x, y) == pytest.approx(4 / 6)
    # ties: as scipy (mid-ranks, tau-b)
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 4, 9).astype(float), rng.normal(size=9)
    assert spearman(a, b) == pytest.approx(spearmanr(a, b).statistic)
    assert kendall(a, b) == pytest.approx(kendalltau(a, b).statistic)
    assert np.isnan(spearman(np.ones(4), x)) and np.isnan(kendall(np.ones(4), x))


def test_spearman_null_p_is_exact():
    assert spearman_null_p(1.0, 3) == pytest.approx(1 / 6)
    assert spearman_null_p(1.0, 6) == pytest.approx(1 / 720)
    assert spearman_null_p(-1.0, 5) == pytest.approx(1.0)
    # rho >= 0.8 with n = 4: the identity and the three adjacent swaps
    assert spearman_null_p(0.8, 4) == pytest.approx(4 / 24)
    assert spearman_null_p(0.5, 9) is None


def test_resampled_means_ratio_of_sums_and_joint_resamples():
    num = np.array([[1.0, 2.0], [3.0, 0.0], [0.0, 4.0]])
    den = np.array([[1.0, 2.0], [1.0, 2.0], [2.0, 2.0]])
    point, boot = resampled_means(num, den, n_boot=300, seed=0)
    assert np.allclose(point, [4 / 4, 6 / 6])
    assert boot.shape == (300, 2)
    point_mean, boot_mean = resampled_means(num, None, n_boot=300, seed=0)
    assert np.allclose(point_mean, num.mean(0))
    # the same units are drawn for every column: column 0 = column 1 gives equal resamples
    same = np.stack([num[:, 0], num[:, 0]], 1)
    _, b2 = resampled_means(same, None, n_boot=50, seed=3)
    assert np.array_equal(b2[:, 0], b2[:, 1])


def test_agreement_of_stable_and_of_reversed_rankings():
    rng = np.random.default_rng(0)
    level = np.arange(6, dtype=float)
    sim_units = level[None] * 10 + rng.normal(0, 0.1, (400, 6))  # order never flips
    off_units = level[None] + rng.normal(0, 0.01, (300, 6))
    s = resampled_means(sim_units, None, 400, 0)
    o = resampled_means(off_units, None, 400, 1)
    a = agreement(s[0], s[1], o[0], o[1])
    for m in ("spearman", "kendall"):
        assert (a[m]["mean"], a[m]["lo"], a[m]["hi"]) == pytest.approx((1.0, 1.0, 1.0))
    assert a["sim_rank"] == [6, 5, 4, 3, 2, 1] == a["offline_rank"]
    assert a["spearman_null_p"] == pytest.approx(1 / 720)
    r = agreement(s[0], s[1], -o[0], -o[1])
    assert r["spearman"]["mean"] == pytest.approx(-1.0) and r["kendall"]["hi"] == pytest.approx(-1)
    # two policies that swap places between resamples: the CI must open up
    noisy = level[None] + rng.normal(0, 3.0, (30, 6))
    n = resampled_means(noisy, None, 400, 2)
    wide = agreement(s[0], s[1], n[0], n[1])
    assert wide["spearman"]["lo"] < wide["spearman"]["hi"]


def test_slate_metrics():
    label = np.zeros((2, 6), dtype=bool)
    label[:, [1, 4]] = True
    slate = np.array([[1, 0, 4], [0, 2, 3]])
    m = slate_metrics(slate, label)
    assert np.allclose(m["precision"], [2 / 3, 0.0])
    ideal = 1 + 1 / np.log2(3)
    assert np.allclose(m["ndcg"], [(1 + 1 / np.log2(4)) / ideal, 0.0])
    assert slate_metrics(np.array([[4, 1, 0]]), label[:1])["ndcg"][0] == pytest.approx(1.0)


def test_config_rejects_unknown_policies():
    with pytest.raises(ValueError):
        FidelityCardConfig(ranking_policies=["random", "oracle"])
    with pytest.raises(ValueError):
        FidelityCardConfig(ranking_policies=["random", "random"])


# --------------------------------------------------------------------------- world side


def test_run_lives_reproduces_the_task_runner():
    """The card's life logger gives run_policy's per-life returns and return rate."""
    from recoworld.envs.observation import IDS_VIEW
    from recoworld.envs.vector_env import RecoWorldVectorEnv
    from recoworld.evaluation.fidelity_ranking import TASK, run_lives
    from recoworld.policies.baselines import make_baseline
    from recoworld.tasks.check import evaluate_on_task
    from recoworld.tasks.spec import load_task

    task = load_task(TASK)
    ref = evaluate_on_task(task, {"popular": "popular"}, seeds=[1000], episodes=24, users=8)
    env = RecoWorldVectorEnv(num_envs=8, config=task.world_config(), observation=IDS_VIEW)
    try:
        rows = np.arange(10_000)
        lives = run_lives(env, make_baseline("popular", env.world), rows, [1000], 24)
    finally:
        env.close()
    r = ref["popular"][0]
    assert np.allclose(lives.ret, r["episode_returns"])
    assert lives.returns.sum() / lives.session_ends.sum() == pytest.approx(r["return_rate"])
    assert len(lives.gaps) == lives.returns.sum() and (lives.gaps > 0).all()
    assert lives.topic_mass.sum() == pytest.approx(lives.clicks.sum(), rel=1e-5)


def test_real_observation_is_the_train_history(movielens):
    from recoworld.envs.world import World
    from recoworld.evaluation.fidelity_ranking import TASK, real_observations
    from recoworld.tasks.spec import load_task

    data = movielens
    world = World(load_task(TASK).world_config(), 2, catalog=data.catalog, movielens=data)
    u = int(data.user_index[0])
    train = np.zeros(data.n_ratings, dtype=bool)
    rows = np.flatnonzero(data.user_index == u)[:12]
    train[rows] = True
    order = rows[np.argsort(data.timestamp[rows], kind="stable")]
    first = list(data.item_index[order[:3]])
    rest = [i for i in range(40) if i not in first]
    items = np.array([first + rest[:17], rest[:20]])  # the world's 20 candidates
    obs = real_observations(world, data, train, np.array([u, u + 1]), items)
    newest = data.item_index[order][::-1][:10]
    assert np.array_equal(obs["recent_ids"][0, : len(newest)], newest)
    assert (obs["recent_ids"][1] == -1).all()  # no train rating: an empty history
    clicked = world.encoder.feature_index("clicked_before")
    assert obs["candidates"][0, :3, clicked].all()
    assert obs["history"][0, : data.catalog.n_topics].sum() == pytest.approx(1.0, abs=1e-5)
    assert not obs["candidates"][1, :, clicked].any()
    assert obs["candidates"].shape == (2, 20, world.encoder.candidate_dim)


# --------------------------------------------------------------------------- behaviour


def test_session_gaps_rule():
    h = 3600.0
    user = np.array([0, 0, 0, 0, 1, 1, 2])
    ts = np.array([0.0, 0.5 * h, 3.0 * h, 27.0 * h, 10.0, 10.0 + 0.9 * h, 5.0])
    out = session_gaps(user, ts, np.array([0, 1, 2]), gap_hours=1.0)
    # user 0: 0, 0.5h | 3h | 27h -> 3 sessions, gaps 2.5 h and 24 h; users 1, 2: one each
    assert np.allclose(np.sort(out["gaps"]), [2.5, 24.0])
    assert np.array_equal(out["sessions"], [3, 1, 1])
    # the rule's threshold matters: with 3 h, 2.5 h is inside a session
    assert np.allclose(session_gaps(user, ts, np.array([0]), 3.0)["gaps"], [24.0])


def test_activity_and_genre_statistics():
    user = np.array([0, 0, 0, 1, 1, 2])
    assert np.array_equal(per_user_counts(user, np.array([2, 0, 5])), [1, 3, 0])
    assert np.allclose(mean_normalised(np.array([1.0, 3.0])), [0.5, 1.5])
    topics = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    item = np.array([0, 0, 1, 1, 2, 0])
    s = genre_shares(user, item, np.array([0, 1, 2, 3]), topics)
    assert np.allclose(s[:3], [[2 / 3, 1 / 3], [0.25, 0.75], [1.0, 0.0]])
    assert np.isnan(s[3]).all()  # no ratings: undefined
    assert np.isnan(shares_of(np.zeros((1, 2)))).all()
    su, si = shuffled_users(user, item, seed=0)
    assert np.array_equal(su, user) and sorted(si) == sorted(item)
    # the same sample is at distance 0; a shifted one at the shift
    real = np.array([10.0, 20.0, 30.0, 40.0])
    a = activity_stats(real, {"same": real * 3, "other": np.array([1.0, 1, 1, 9])})
    assert a["distance"]["same"] == pytest.approx(0.0)
    assert a["distance"]["other"] > 0.1
    assert a["baselines"]["homogeneous users (Poisson, real mean)"] > 0
    w = mean_wasserstein(s[:3], s[:3] + np.array([0.1, -0.1]))
    assert w["mean"] == pytest.approx(0.1) and w["n"] == [3, 3]


def test_gap_statistics_baselines():
    rng = np.random.default_rng(0)
    real = rng.lognormal(4.0, 1.5, 2000)
    g = gap_stats(real, {"same": real.copy(), "short": real / 10.0}, seed=0)
    assert g["distance"]["same"] == pytest.approx(0.0)
    assert g["distance"]["short"] == pytest.approx(1.0)  # a decade on the log10 scale
    assert g["baselines"]["real split halves (noise floor)"] < 0.2
    assert g["baselines"]["exponential, real mean (memoryless)"] > 0.2


def test_behaviour_distance_cis_cover_the_spread_of_resamples():
    rng = np.random.default_rng(1)
    real = rng.lognormal(4.0, 1.5, 600)
    g = gap_stats(real, {"short": real[:300] / 10.0, "none": np.zeros(0)}, seed=0, n_boot=300)
    ci = g["distance_ci"]["short"]
    assert ci["n_boot"] == 300 and "none" not in g["distance_ci"]  # no gaps: no interval
    assert ci["lo"] < g["distance"]["short"] < ci["hi"] and ci["hi"] - ci["lo"] < 0.5
    assert gap_stats(real, {"short": real / 10.0}, seed=0)["distance_ci"] == {}  # off by default
    # activity: normalisation happens inside each resample, so a rescaled copy stays
    # closer than users who all rate at one rate
    counts = rng.gamma(2.0, 50.0, 500)
    sims = {"same": counts * 3.0, "flat": rng.poisson(counts.mean(), 500).astype(float)}
    a = activity_stats(counts, sims, seed=0, n_boot=200)["distance_ci"]
    assert 0.0 <= a["same"]["lo"] <= a["same"]["hi"] < a["flat"]["lo"]
    # genre shares: a shifted sample's interval sits at the shift (resampling only adds
    # to a pure shift, so the point can be at the interval's lower end)
    shares = rng.dirichlet(np.ones(4), 400)
    ge = genre_stats(shares, shares[::-1], {"shift": np.clip(shares + 0.05, 0, 1)}, n_boot=200)
    lo, hi = ge["distance_ci"]["shift"]["lo"], ge["distance_ci"]["shift"]["hi"]
    assert lo - 0.005 < ge["distance"]["shift"] < hi < 0.08
    assert abs(ge["distance"]["shift"] - 0.05) < 0.01

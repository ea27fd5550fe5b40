"""Baselines behind the ``Recommender`` protocol: valid slates (batched and single),
fitting item-kNN / implicit ALS on MovieLens and on trajectory logs, held-out ranking,
LinUCB learning online, the instruction heuristic, and clear errors on bad input. (The LLM
re-ranker is tested in tests/llm/test_reranker.py.)"""

from __future__ import annotations

import time

import numpy as np
import pytest

from recoworld import RecoWorldEnv, RecoWorldVectorEnv
from recoworld.catalog import generate_synthetic_catalog
from recoworld.catalog.config import SyntheticCatalogConfig
from recoworld.envs.config import WorldConfig
from recoworld.envs.trajectory import TrajectoryLog
from recoworld.envs.world import World
from recoworld.policies import (
    BASELINES,
    POLICIES,
    ALSConfig,
    ALSRecommender,
    InstructionHeuristicConfig,
    InstructionHeuristicRecommender,
    Interactions,
    ItemKNNRecommender,
    LinUCBRecommender,
    OnlineRecommender,
    Recommender,
    make_baseline,
)
from recoworld.policies.rollout import SimulateConfig, step_policy

NON_LLM = [p for p in POLICIES if p != "llm_rerank"]


@pytest.fixture(scope="module")
def ml_world(movielens) -> World:
    cfg = WorldConfig.model_validate(
        {
            "catalog": {"source": "movielens"},
            "candidates": {"n_candidates": 20},
            "episode": {"slate_size": 4, "max_sessions": 2, "max_session_steps": 10},
        }
    )
    return World(cfg, n_users=8, catalog=movielens.catalog, movielens=movielens)


@pytest.fixture(scope="module")
def fitted(ml_world) -> dict[str, Recommender]:
    return {name: make_baseline(name, ml_world, seed=0) for name in ("knn", "mf")}


def _assert_slates(slates: np.ndarray, shape: tuple[int, ...], m: int) -> None:
    assert slates.shape == shape and np.issubdtype(slates.dtype, np.integer)
    assert slates.min() >= 0 and slates.max() < m
    rows = slates.reshape(-1, shape[-1])
    assert all(len(set(r.tolist())) == len(r) for r in rows)


@pytest.mark.parametrize("name", NON_LLM)
def test_slates_are_distinct_in_range_batched_and_single(name, ml_world, fitted):
    rec = fitted.get(name) or make_baseline(name, ml_world, seed=0)
    assert isinstance(rec, Recommender)
    obs, _ = ml_world.reset(seed=1)
    for _ in range(3):  # a few steps so recent_items fill
        slates = rec.act(obs)
        _assert_slates(slates, (8, 4), 20)
        single = rec.act({key: v[0] for key, v in obs.items()}) if name != "oracle" else None
        if single is not None and name != "random":
            _assert_slates(single, (4,), 20)
            np.testing.assert_array_equal(single, slates[0])
        obs, *_ = ml_world.step(slates)


def test_names_and_simulate_config_know_the_baselines():
    assert {"knn", "mf", "linucb", "instruction", "llm_rerank"} <= set(POLICIES)
    assert "knn" not in BASELINES and "linucb" in BASELINES
    assert SimulateConfig(policies=["knn", "mf", "linucb", "instruction"]).policies
    with pytest.raises(ValueError, match="unknown policies"):
        SimulateConfig(policies=["nope"])


def test_fitted_baselines_need_fit_data(small_config):
    world = World(small_config, n_users=2)
    for name in ("knn", "mf"):
        with pytest.raises(ValueError, match="needs logged interactions"):
            make_baseline(name, world)
    with pytest.raises(ValueError, match="unknown policy 'nope'"):
        make_baseline("nope", world)


def test_fit_is_fast_and_deterministic(movielens):
    data = Interactions.from_movielens(movielens)
    assert len(data) > 40_000 and data.n_items == 1682
    start = time.perf_counter()
    a = ALSRecommender(3, ALSConfig(seed=3)).fit(data)
    knn_a = ItemKNNRecommender(3).fit(data)
    assert time.perf_counter() - start < 10.0
    b = ALSRecommender(3, ALSConfig(seed=3)).fit(data)
    c = ALSRecommender(3, ALSConfig(seed=4)).fit(data)
    knn_b = ItemKNNRecommender(3).fit(data)
    np.testing.assert_array_equal(a.item_factors, b.item_factors)
    assert not np.allclose(a.item_factors, c.item_factors)
    assert (knn_a.similarity != knn_b.similarity).nnz == 0
    assert knn_a.similarity.diagonal().max() == 0.0
    assert knn_a.similarity.getnnz(axis=1).max() <= 100


def test_knn_and_mf_rank_held_out_liked_film_above_random(movielens):
    """Leave each user's last liked film out, fit on the rest, and rank it among 49 films the
    user never rated from its 10 previous likes: both beat chance (AUC 0.5) by far."""
    d = movielens
    liked = np.flatnonzero(d.rating >= d.like_threshold)
    order = liked[np.lexsort((d.timestamp[liked], d.user_index[liked]))]
    user = d.user_index[order]
    is_last = np.r_[user[1:] != user[:-1], True]
    counts = np.bincount(user, minlength=d.n_users)
    held = order[is_last & (counts[user] >= 5)][:300]
    data = Interactions.from_movielens(d, rows=np.setdiff1d(liked, held))
    rated = np.zeros((d.n_users, d.catalog.n_items), bool)
    rated[d.user_index, d.item_index] = True
    rng = np.random.default_rng(0)
    items, recent = [], []
    for r in held:
        u = d.user_index[r]
        previous = order[user == u]
        previous = previous[previous != r][::-1][:10]
        negatives = rng.permutation(np.flatnonzero(~rated[u]))[:49]
        items.append([d.item_index[r], *negatives])
        recent.append(np.pad(d.item_index[previous], (0, 10 - len(previous)), constant_values=-1))
    obs = {"candidates": np.zeros((len(items), 50, 1), np.float32),
           "candidate_ids": np.array(items), "recent_ids": np.array(recent)}  # fmt: skip
    for rec in (ItemKNNRecommender(5).fit(data), ALSRecommender(5).fit(data)):
        s = rec.scores(obs)
        auc = (s[:, :1] > s[:, 1:]).mean()
        assert auc > 0.75, (rec.name, auc)
        assert (rec.act(obs) == 0).any(axis=1).mean() > 0.3  # held-out film in the top 5


def test_fit_from_trajectory_log(small_config, tmp_path):
    env = RecoWorldVectorEnv(num_envs=16, config=small_config, observation="features+ids")
    rec = make_baseline("popular", env.world)
    log = TrajectoryLog()
    obs, _ = env.reset(seed=0)
    for t in range(40):
        obs, reward, term, trunc, info = env.step(rec.act(obs))
        log.record(t, info, reward, term, trunc)
    path = log.write(tmp_path / "log.parquet")
    data = Interactions.from_trajectories(path, env.catalog)
    clicks = log.to_table().column("click").combine_chunks().flatten()
    assert len(data) == int(clicks.to_numpy(zero_copy_only=False).sum())
    for name in ("knn", "mf"):
        fitted = make_baseline(name, env.world, seed=0, interactions=data)
        _assert_slates(fitted.act(obs), (16, 3), 10)
    small = generate_synthetic_catalog(SyntheticCatalogConfig(n_items=50, n_creators=5, seed=1))
    with pytest.raises(ValueError, match="clicked item ids are not in catalog"):
        Interactions.from_trajectories(path, small)
    with pytest.raises(ValueError, match="interactions cover 50 items"):
        make_baseline("knn", env.world, interactions=Interactions(np.r_[0], np.r_[1], 1, 50))


def test_linucb_learns_to_beat_random(small_config):
    def clicks(name: str) -> int:
        env = RecoWorldVectorEnv(num_envs=32, config=small_config, observation="features+ids")
        rec = make_baseline(name, env.world, seed=0)
        obs, _ = env.reset(seed=11)
        total = 0
        for _ in range(250):
            obs, _, _, _, info = step_policy(env, rec, obs)
            total += int(info["click"][info["_click"]].sum())
        if name == "linucb":
            assert isinstance(rec, OnlineRecommender) and rec.n_updates > 5_000
        return total

    random, linucb = clicks("random"), clicks("linucb")
    assert linucb > 1.15 * random, (linucb, random)


def test_linucb_updates_from_a_single_env(small_config):
    env = RecoWorldEnv(config=small_config)
    rec = make_baseline("linucb", env.world)
    obs, _ = env.reset(seed=0)
    clicks = steps = 0
    while clicks == 0 or steps < 5:  # theta moves only once a shown slot is clicked
        slate = rec.act(obs)
        _assert_slates(slate, (3,), 10)
        nxt, reward, term, trunc, info = env.step(slate)
        rec.update(obs, slate, np.float32(reward), nxt, np.array(term or trunc), info)
        clicks += int(np.sum(info["click"]))
        steps += 1
        obs, _ = env.reset() if term or trunc else (nxt, None)
        assert steps < 200, "no click in 200 steps"
    assert rec.n_updates == 3 * steps and np.abs(rec.theta).sum() > 0
    with pytest.raises(ValueError, match="lacks 'click'"):
        rec.update(obs, slate, 0.0, obs, False, {})


def _heuristic_obs(world: World, topic: int, sign: float, novelty: float = 0.0):
    obs, _ = world.reset(seed=4)
    t = world.catalog.n_topics
    obs["instruction"][:] = 0.0
    obs["instruction"][:, topic] = sign
    obs["instruction"][:, t] = novelty
    obs["user"][:, 7] = 1.0  # instruction_recency: written just now
    return obs


def test_instruction_heuristic_honours_the_instruction(small_config):
    world = World(small_config, n_users=64)
    names = world.encoder.candidate_feature_names
    rec = InstructionHeuristicRecommender(3, names)  # instruction vs popularity, balanced
    strict = InstructionHeuristicRecommender(3, names, InstructionHeuristicConfig(
        popularity_weight=0.0, novelty_weight=1.0))  # fmt: skip
    popular = make_baseline("popular", world)
    topic = int(np.argmax(world.catalog.topics.sum(0)))
    has = lambda obs, slates: np.take_along_axis(obs["candidates"][..., topic], slates, 1) > 0  # noqa: E731

    more = _heuristic_obs(world, topic, 1.0)
    enough = (more["candidates"][..., topic] > 0).sum(1) >= 3
    assert enough.sum() > 5
    assert has(more, strict.act(more))[enough].all()
    assert has(more, rec.act(more)).mean() > has(more, popular.act(more)).mean() + 0.2

    less = _heuristic_obs(world, topic, -1.0)
    spare = (less["candidates"][..., topic] == 0).sum(1) >= 3
    assert not has(less, strict.act(less))[spare].any()
    assert has(less, rec.act(less)).mean() < has(less, popular.act(less)).mean()

    shown = names.index("shown_before")
    new = _heuristic_obs(world, topic, 0.0, novelty=1.0)
    new["candidates"][:, :5, shown] = 1.0
    assert (strict.act(new) >= 5).all()
    assert (rec.act(new) >= 5).mean() > (popular.act(new) >= 5).mean()

    # an old instruction (recency low) or none at all: popularity order
    stale = _heuristic_obs(world, topic, 1.0)
    stale["user"][:, 7] = np.exp(-10 / 5)
    np.testing.assert_array_equal(rec.act(stale), popular.act(stale))
    always = InstructionHeuristicRecommender(3, names, InstructionHeuristicConfig(
        popularity_weight=0.0, follow_steps=None))  # fmt: skip
    assert has(stale, always.act(stale))[enough].all()
    none = _heuristic_obs(world, topic, 0.0)
    np.testing.assert_array_equal(rec.act(none), popular.act(none))


def test_bad_inputs_give_clear_errors(small_config, ml_world, fitted):
    obs, _ = ml_world.reset(seed=0)
    knn = fitted["knn"]
    with pytest.raises(ValueError, match="lacks \\['candidate_ids', 'recent_ids'\\]"):
        knn.act({"candidates": obs["candidates"]})
    with pytest.raises(ValueError, match="shape \\[M, d\\] or \\[B, M, d\\]"):
        knn.act({**obs, "candidates": obs["candidates"][0, 0]})
    with pytest.raises(ValueError, match="outside the fitted catalog"):
        knn.act({**obs, "candidate_ids": obs["candidate_ids"] + 5000})
    with pytest.raises(RuntimeError, match="call fit"):
        ALSRecommender(3).act(obs)
    with pytest.raises(TypeError, match="expected Interactions"):
        ALSRecommender(3).fit([(0, 1)])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="item indices must lie"):
        Interactions(np.array([0]), np.array([9]), n_users=1, n_items=5)
    with pytest.raises(ValueError, match="no positive events"):
        Interactions(np.array([], np.int64), np.array([], np.int64), 1, 5)
    small = World(small_config, n_users=2)
    small_obs, _ = small.reset(seed=0)
    linucb = LinUCBRecommender(3, ml_world.encoder.candidate_feature_names)
    with pytest.raises(ValueError, match="candidate features"):
        linucb.act(small_obs)
    with pytest.raises(ValueError, match="slate size 30 exceeds"):
        LinUCBRecommender(30, small.encoder.candidate_feature_names).act(small_obs)


def test_run_policy_lists_per_life_counts_that_add_up_to_its_ratios(small_config):
    """``episode_steps`` / ``episode_session_ends`` / ``episode_returned`` (one count per life,
    episode-id order) sum to exactly the totals behind session depth and return rate, so a
    paired bootstrap over lives can recompute both."""
    from recoworld.policies.rollout import run_policy

    sim = SimulateConfig(users=8, episodes=20, seed=4, log=False)
    out = run_policy(small_config, "popular", sim, None)
    steps = np.asarray(out["episode_steps"])
    ends = np.asarray(out["episode_session_ends"])
    back = np.asarray(out["episode_returned"])
    assert len(steps) == len(ends) == len(back) == len(out["episode_returns"]) == 20
    assert (ends >= 1).all() and (back <= ends).all()
    assert steps.sum() == out["user_steps"]
    assert out["session_depth"] == pytest.approx(steps.sum() / ends.sum())
    assert out["return_rate"] == pytest.approx(back.sum() / ends.sum())

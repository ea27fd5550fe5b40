"""Slate Thompson sampling: the model's posterior behaves (variance shrinks with exposure,
the ELBO rises on its training data), the three slate rules, episode -> row conversion, the
RLlib algorithm (vector, sync and population envs, checkpoints, `recoworld train --algo
slate_ts` through `train()`), and the offline path (our Parquet logs, the Open Bandit
Dataset sample)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from recoworld.envs.config import WorldConfig
from recoworld.rl.slate_ts.algorithm import item_groups, steps_to_rows
from recoworld.rl.slate_ts.config import SlateTSSettings
from recoworld.rl.slate_ts.model import ModelSpec, SlateTSModel, thompson_slates

torch.set_num_threads(1)

N_ITEMS, N_GROUPS = 60, 4


def _synthetic_rows(n: int = 3000, seed: int = 0) -> dict[str, torch.Tensor]:
    """Users of 4 tastes (one per item group) who click a slate item of their group 80% of
    the time; only items 0..29 are ever shown (and clicked): 30..59 are never exposed."""
    rng = np.random.default_rng(seed)
    hist = np.full((n, 5), -1)
    slate = np.zeros((n, 3), np.int64)
    target = np.zeros(n, np.int64)
    for r in range(n):
        g = rng.integers(N_GROUPS)
        slate[r] = rng.choice(30, 3, replace=False)
        hist[r, :2] = rng.choice([x for x in range(30) if x % N_GROUPS == g], 2)
        liked = [j for j in range(3) if slate[r, j] % N_GROUPS == g]
        target[r] = liked[0] + 1 if liked and rng.random() < 0.8 else 0
    shown = torch.ones(n, 3, dtype=torch.bool)
    return {"hist": torch.as_tensor(hist), "slate": torch.as_tensor(slate), "shown": shown,
            "target": torch.as_tensor(target)}  # fmt: skip


def _fit(model: SlateTSModel, rows: dict[str, torch.Tensor], updates: int, seed: int = 0):
    torch.manual_seed(seed)
    n = len(rows["target"])
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(updates):
        idx = torch.randint(0, n, (256,), generator=gen)
        loss, _ = model.loss({k: v[idx] for k, v in rows.items()}, n, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()


def _spec(**kw) -> ModelSpec:
    return ModelSpec(n_items=N_ITEMS, item_group=tuple(i % N_GROUPS for i in range(N_ITEMS)),
                     max_slate=5, **kw)  # fmt: skip


@pytest.fixture(scope="module")
def fitted():
    rows = _synthetic_rows()
    model = SlateTSModel(_spec())
    before = model.elbo(rows)
    _fit(model, rows, 500)
    return model, rows, before


def test_elbo_increases_on_training_data(fitted):
    model, rows, before = fitted
    after = model.elbo(rows)
    assert np.isfinite(before) and np.isfinite(after)
    assert after > before + 1.0, (before, after)
    # the fitted model predicts the observed choices far better than chance (1/4)
    p = model.mean_params()
    ll = model.log_likelihood(p, rows["hist"], rows["slate"], rows["shown"], rows["target"])
    assert ll.exp().mean() > 0.5


def test_posterior_variance_shrinks_with_exposure(fitted):
    model, rows, _ = fitted
    scale = model.items.scale.detach().mean(-1)
    exposed, unexposed = scale[:30], scale[30:]
    assert exposed.mean() < unexposed.mean() - 0.01, (exposed.mean(), unexposed.mean())
    # and more exposure (clicks) -> narrower: clicked counts vs posterior std
    clicked = rows["slate"].gather(1, (rows["target"] - 1).clamp_min(0)[:, None])[:, 0]
    counts = torch.bincount(clicked[rows["target"] > 0], minlength=N_ITEMS)[:30].float()
    corr = np.corrcoef(counts.numpy(), exposed.numpy())[0, 1]
    assert corr < 0, corr


@pytest.mark.parametrize(("score", "likelihood"), [("dot", "all_items"), ("distance", "all_items"),
                                                   ("dot", "slate")])  # fmt: skip
def test_score_and_likelihood_variants_learn(score, likelihood):
    rows = _synthetic_rows(1500, seed=1)
    model = SlateTSModel(_spec(score=score, likelihood=likelihood))
    before = model.elbo(rows, samples=4)
    _fit(model, rows, 150, seed=1)
    assert model.elbo(rows, samples=4) > before


def test_thompson_slates_interleave_rank_by_rank():
    # draw 0 ranks 0 > 1 > 2 > 3 ...; draw 1 ranks 0 > 4 > 5 ...; draw 2 ranks 6 > 0 > 1 ...
    m = 8
    scores = torch.zeros(3, 1, m)
    for s, order in enumerate([[0, 1, 2, 3], [0, 4, 5, 1], [6, 0, 1, 2]]):
        for rank, item in enumerate(order):
            scores[s, 0, item] = 10.0 - rank
    # rank 1: 0 (draw 0), 0 (dup), 6 (draw 2) -> rank 2: 1 (draw 0) ...
    assert thompson_slates(scores, 3).tolist() == [[0, 6, 1]]
    assert thompson_slates(scores[:1], 3).tolist() == [[0, 1, 2]]  # plain: one draw's top k
    big = thompson_slates(torch.randn(5, 50, 12), 5)
    assert all(len(set(r)) == 5 for r in big.tolist())


def test_select_modes(fitted):
    model, rows, _ = fitted
    hist, cands = rows["hist"][:64], torch.arange(40).expand(64, 40)
    greedy = model.select(hist, cands, 3, "greedy")
    assert torch.equal(greedy, model.select(hist, cands, 3, "greedy"))  # deterministic
    gen = torch.Generator().manual_seed(0)
    for mode in ("plain", "in_slate"):
        slates = model.select(hist, cands, 3, mode, generator=gen)
        assert slates.shape == (64, 3) and all(len(set(r)) == 3 for r in slates.tolist())
    # Thompson slates explore: the never-shown items 30..39 appear more often than greedily
    ts = model.select(hist, cands, 3, "in_slate", generator=gen)
    assert (ts >= 30).float().mean() >= (greedy >= 30).float().mean()
    with pytest.raises(ValueError, match="exploration mode"):
        model.select(hist, cands, 3, "softmax")  # type: ignore[arg-type]


def test_steps_to_rows_one_row_per_click():
    hist = np.array([[-1, -1], [5, -1]])
    slate = np.array([[1, 2, 3], [4, 5, 6]])
    shown = np.array([[True, True, False], [True, True, True]])
    click = np.array([[True, False, True], [False, False, False]])  # slot 2 not shown
    rows = steps_to_rows(hist, slate, shown, click)
    assert rows["target"].tolist() == [1, 0]
    assert rows["hist"].tolist() == [[-1, -1], [5, -1]]
    click[1] = [False, True, True]
    assert sorted(steps_to_rows(hist, slate, shown, click)["target"].tolist()) == [1, 2, 3]


def test_spec_and_settings_validation(small_catalog):
    with pytest.raises(ValueError, match="item_group"):
        ModelSpec(n_items=3, item_group=(0, 1))
    with pytest.raises(ValueError, match="score"):
        ModelSpec(n_items=2, item_group=(0, 1), score="cosine")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        SlateTSSettings(exploration="epsilon")
    groups = item_groups(small_catalog, "topic")
    assert groups.shape == (small_catalog.n_items,) and groups.min() == 0
    assert len(np.unique(groups)) == groups.max() + 1 > 1
    assert item_groups(small_catalog, "none").max() == 0
    with pytest.raises(ValueError, match="grouping"):
        item_groups(small_catalog, "creator")


# ---------------------------------------------------------------------------- RLlib
TINY = {"algo": "slate_ts", "iterations": 2, "num_envs": 8, "eval_every": 0, "eval_episodes": 8,
        "eval_users": 8, "checkpoint_every": 0,
        "slate_ts": {"steps_per_iteration": 96, "updates_per_iteration": 5,
                     "minibatch_size": 64, "item_dim": 8, "hidden": 8}}  # fmt: skip


def _world(small_config) -> WorldConfig:
    return WorldConfig.model_validate({**small_config.model_dump(),
                                       "episode": {**small_config.episode.model_dump(),
                                                   "text_info": "none"}})  # fmt: skip


@pytest.mark.slow
def test_train_checkpoint_and_reload(ray_session, small_config, tmp_path):
    from recoworld.envs.vector_env import RecoWorldVectorEnv
    from recoworld.rl.config import TrainConfig
    from recoworld.rl.registry import load_recommender
    from recoworld.rl.trainer import train

    world = _world(small_config)
    out = tmp_path / "run"
    last = train(world, TrainConfig.model_validate(TINY), out, show_progress=False)
    assert np.isfinite(last["mean_return"]) and 0 <= last["click_rate"]
    results = [json.loads(x) for x in (out / "result.json").read_text().splitlines()]
    assert len(results) == 2
    ts = results[-1]["slate_ts"]
    assert 0 <= ts["online_click_rate"] and 0 < ts["online_slate_diversity"] <= 1
    assert ts["buffer_rows"] > results[0]["slate_ts"]["buffer_rows"]  # data accumulates
    assert np.isfinite(results[-1]["learners"]["default_policy"]["elbo_per_row"])
    rec = load_recommender(out / "checkpoint", "slate_ts")  # manifest says slate_ts
    env = RecoWorldVectorEnv(num_envs=5, config=world, observation="features+ids")
    obs, _ = env.reset(seed=0)
    slates = rec.act(obs)
    assert slates.shape == (5, 3) and all(len(set(r)) == 3 for r in slates.tolist())
    single = rec.act({k: v[0] for k, v in obs.items()})
    assert single.tolist() == slates[0].tolist()  # greedy: same slate for the same user


@pytest.mark.slow
def test_sync_vectorize_and_exploration_modes(ray_session, small_config):
    from recoworld.rl.config import TrainConfig
    from recoworld.rl.slate_ts.algorithm import build_slate_ts_config

    world = _world(small_config)
    for mode, vec in (("plain", "sync"), ("greedy", "vector_entry_point")):
        ts = {**TINY["slate_ts"], "exploration": mode}
        cfg = TrainConfig.model_validate({**TINY, "num_envs": 4, "vectorize": vec, "slate_ts": ts})
        algo = build_slate_ts_config(world, cfg).build_algo()
        try:
            result = algo.train()
            assert result["slate_ts"]["buffer_rows"] > 0
            assert algo.get_module().exploration == mode
        finally:
            algo.stop()


@pytest.mark.slow
def test_population_env(ray_session):
    from recoworld.envs.population.config import PopulationConfig
    from recoworld.rl.population.algorithm import SHARED
    from recoworld.rl.slate_ts.algorithm import build_population_slate_ts_config

    pop = PopulationConfig.model_validate(
        {"n_users": 4, "capacity": 6, "arrival_rate": 0.5, "max_cycles": 30,
         "world": {"catalog": {"synthetic": {"n_items": 300, "n_creators": 30, "seed": 3}},
                   "candidates": {"n_candidates": 10}}}
    )  # fmt: skip
    settings = SlateTSSettings.model_validate(TINY["slate_ts"])
    algo = build_population_slate_ts_config(pop, settings, seed=0).build_algo()
    try:
        for _ in range(2):
            result = algo.train()
        assert np.isfinite(result["learners"][SHARED]["elbo_per_row"])
        assert result["slate_ts"]["buffer_rows"] > 0
    finally:
        algo.stop()


# ---------------------------------------------------------------------------- offline
def test_offline_fit_on_trajectory_log(small_config, tmp_path):
    from recoworld.catalog import load_catalog
    from recoworld.evaluation.simulate import run_simulation
    from recoworld.policies.rollout import SimulateConfig
    from recoworld.rl.slate_ts.offline import (
        fit_posterior,
        from_trajectories,
        log_steps,
        model_hits,
        popularity_hits,
        split_by_sequence,
    )

    world = _world(small_config)
    run_simulation(world, SimulateConfig(policies=["random"], users=16, episodes=40),
                   tmp_path, show_progress=False)  # fmt: skip
    catalog, _ = load_catalog(world.catalog)
    groups = item_groups(catalog, "topic")
    log = from_trajectories(tmp_path / "trajectories_random.parquet", catalog, groups)
    assert log.n_clicks > 20 and len(np.unique(log.seq)) >= 40
    steps = log_steps(log, history=10)
    # histories hold earlier clicks only, newest first, and restart per user
    first = np.flatnonzero(np.r_[True, np.diff(steps.seq) != 0])
    assert (steps.hist[first] == -1).all() and (steps.step[first] == 0).all()
    r = int(np.flatnonzero(steps.click.any(1) & (np.r_[steps.seq[1:], -1] == steps.seq))[0])
    assert steps.hist[r + 1, 0] == steps.slate[r][steps.click[r]][0]
    train, test = split_by_sequence(steps, 0.25, seed=0)
    assert not set(train.seq) & set(test.seq)
    spec = ModelSpec(n_items=catalog.n_items, item_group=tuple(groups.tolist()), max_slate=3,
                     item_dim=8, hidden=8)  # fmt: skip
    model, trace = fit_posterior(train, spec, updates=200, seed=0)
    assert trace[-1] > trace[0]
    hits = model_hits(model, test, ks=(10, 300), min_step=0)
    assert len(hits[10]) == int(test.click.sum()) > 0
    assert hits[300].mean() == 1.0  # every item is within the top N
    pop = popularity_hits(train, test, catalog.n_items, ks=(10,), min_step=0)
    assert len(pop[10]) == len(hits[10])


def test_open_bandit_dataset_sample():
    from recoworld.rl.slate_ts.offline import evaluate_open_bandit, load_open_bandit

    log = load_open_bandit()  # obp==0.4.1 is a Makefile data package: missing data is a failure
    assert len(log) == 20_000 and log.n_items == 80
    assert log.n_clicks == 80  # 38 (random) + 42 (bts): what the wheel ships
    assert log.slate.shape == (20_000, 1) and len(np.unique(log.item_group)) == 12
    with pytest.raises(ValueError, match="behaviors"):
        load_open_bandit(("egreedy",))
    result = evaluate_open_bandit(ks=(5, 80), updates=100)
    assert result["train_clicks"] + result["test_clicks"] == 80
    assert result["slate_ts"]["hit@80"]["mean"] == 1.0

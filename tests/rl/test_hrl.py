"""Hierarchical novelty-seeking RL: the novelty signals (hand-computed), the two-level env
(RLlib's multi-agent checks, turn order, reward hand-over), one PPO iteration that updates
both levels, and the trained policy as a Recommender in the hybrid world."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recoworld import metrics as M
from recoworld.catalog.catalog import Catalog
from recoworld.envs.config import WorldConfig
from recoworld.envs.novelty import FEATURES, PRIOR_RATE, NoveltySignals
from recoworld.rl.hrl.algorithm import (
    CAND_NOVELTY_KEY,
    GOAL_KEY,
    HIGH,
    LOW,
    HierarchicalNoveltyEnv,
    NoveltyEnv,
    goal_values,
)
from recoworld.rl.hrl.config import HRLSettings


def _catalog() -> Catalog:
    from recoworld.catalog import load_catalog

    return load_catalog()[0]


def _env_config(small_config: WorldConfig, **hrl) -> dict:
    world = small_config.model_copy(deep=True)
    world.episode.text_info = "none"
    return {"config": world.model_dump(mode="json"), "hrl": hrl}


def test_item_novelty_is_topic_distance_plus_rarity():
    cat = _catalog()
    sig = NoveltySignals(cat, 2)
    t = cat.n_topics
    hist = np.zeros((2, t + 3))
    hist[0, :t] = cat.topics[0] / cat.topics[0].sum()  # user 0 consumed item 0's topics
    items = np.array([[0, 1, -1], [0, 1, 2]])
    nov = sig.item_novelty(items, hist)
    info = M.self_information(cat.popularity)
    rare = info / info.max()
    assert nov[0, 0] == pytest.approx(0.5 * 0.0 + 0.5 * rare[0])  # same topics: distance 0
    assert nov[1, 0] == pytest.approx(0.5 * 1.0 + 0.5 * rare[0])  # no history: distance 1
    assert nov[0, 2] == 0.0  # padding
    assert ((nov >= 0) & (nov <= 1)).all()


def test_signals_features_track_novel_and_familiar_clicks():
    cat = _catalog()
    sig = NoveltySignals(cat, 2)
    f0 = sig.features()
    assert f0.shape == (2, len(FEATURES))
    assert f0[0, 0] == pytest.approx(PRIOR_RATE)  # no history: the prior
    t = cat.n_topics
    hist = np.zeros((2, t + 3))
    items = np.array([[0, 1], [0, 1]])
    shown = np.ones((2, 2), bool)
    click = np.array([[1, 0], [0, 0]])
    nov = sig.record(items, hist, shown, click, rows=np.array([True, False]))
    assert sig.stats[1].sum() == 0  # user 1 did not step
    n = sig.item_novelty(items, hist)[0]
    assert nov[0] == pytest.approx(n.mean())
    f = sig.features()
    assert f[0, 0] == pytest.approx((n[0] + PRIOR_RATE) / (n.sum() + 1))  # life novel CTR
    assert f[0, 3] == pytest.approx(f[0, 0])  # same for the session so far
    sig.start_session(np.array([0]))
    assert sig.features()[0, 3] == pytest.approx(PRIOR_RATE)  # the session restarted
    assert sig.features()[0, 0] == pytest.approx(f[0, 0])  # the life did not


def test_settings_validate_goal_range():
    with pytest.raises(ValueError, match="goal_min"):
        HRLSettings(goal_min=0.8, goal_max=0.5)
    assert goal_values(HRLSettings(goal_levels=3, goal_min=0.2, goal_max=0.8)).tolist() == (
        pytest.approx([0.2, 0.5, 0.8])
    )


def test_hierarchical_env_passes_rllib_checks_and_hands_rewards(small_config):
    from ray.rllib.utils.pre_checks.env import check_multiagent_environments

    env = HierarchicalNoveltyEnv(_env_config(small_config, goal_weight=1.0))
    check_multiagent_environments(env)
    obs, _ = env.reset(seed=3)
    assert set(obs) == {HIGH} and env.observation_spaces[HIGH].contains(obs[HIGH])
    rng = np.random.default_rng(0)
    k = len(env.action_spaces[LOW].nvec)
    m = int(env.action_spaces[LOW].nvec[0])
    high_turns, low_turns, total = 0, 0, {HIGH: 0.0, LOW: 0.0}
    sessions_seen = set()
    for _ in range(400):
        if HIGH in obs:
            high_turns += 1
            g = int(rng.integers(3))
            obs, rew, term, trunc, _ = env.step({HIGH: g})
            assert set(obs) == {LOW}
            assert obs[LOW][GOAL_KEY].argmax() == g and obs[LOW][GOAL_KEY].sum() == 1
            assert env.observation_spaces[LOW].contains(obs[LOW])
            assert obs[LOW]["counters"][1] == 0  # goals are picked at session starts
            sessions_seen.add(int(obs[LOW]["counters"][0]))
        else:
            low_turns += 1
            obs, rew, term, trunc, info = env.step({LOW: rng.permutation(m)[:k]})
            assert 0.0 <= info[LOW]["slate_novelty"] <= 1.0
        for agent, r in rew.items():
            assert agent in obs  # a reward always comes with the agent's next observation
            total[agent] += r
        if term["__all__"] or trunc["__all__"]:
            assert set(obs) == {HIGH, LOW}
            break
    else:
        pytest.fail("the episode did not end in 400 steps")
    assert high_turns == len(sessions_seen) >= 1 and low_turns > high_turns
    assert total[HIGH] != 0.0 and total[LOW] != 0.0
    with pytest.raises(ValueError, match="expected a 'high' or 'low' action"):
        env.step({"other": 0})


def test_goal_every_repicks_within_a_session(small_config):
    env = HierarchicalNoveltyEnv(_env_config(small_config, goal_every=2))
    obs, _ = env.reset(seed=0)
    order = []
    m, k = int(env.action_spaces[LOW].nvec[0]), len(env.action_spaces[LOW].nvec)
    for _ in range(12):
        agent = HIGH if HIGH in obs else LOW
        order.append(agent)
        obs, *_ = env.step({HIGH: 0} if agent == HIGH else {LOW: np.arange(k) % m})
        if HIGH in obs and LOW in obs:
            break
    assert order[:4] == [HIGH, LOW, LOW, HIGH]


def test_flat_env_rewards(small_config):
    from gymnasium.utils.env_checker import check_env

    flat = NoveltyEnv(_env_config(small_config, mode="flat", novelty_weight=1.0,
                                  diversity_weight=0.0))  # fmt: skip
    eng = NoveltyEnv(_env_config(small_config, mode="flat_engagement"))
    check_env(flat, skip_render_check=True)
    assert GOAL_KEY not in flat.observation_space.spaces
    assert CAND_NOVELTY_KEY in flat.observation_space.spaces
    o1, _ = flat.reset(seed=5)
    o2, _ = eng.reset(seed=5)
    slate = np.arange(len(flat.action_space.nvec))
    _, r1, *_, info = flat.step(slate)
    _, r2, *_ = eng.step(slate)
    assert r1 == pytest.approx(r2 + info["slate_novelty"])  # same user, same slate
    with pytest.raises(ValueError, match="flat env"):
        NoveltyEnv(_env_config(small_config, mode="hierarchical"))


TINY_HRL = {
    "algo": "hrl", "iterations": 1, "num_envs": 4, "eval_every": 1, "eval_episodes": 4,
    "eval_users": 4, "checkpoint_every": 0,
    "ppo": {"train_batch_size": 256, "minibatch_size": 64, "num_epochs": 1},
    "model": {"hidden": [32], "value_hidden": [32]}, "hrl": {"high_hidden": [16]},
}  # fmt: skip


@pytest.mark.slow
def test_one_iteration_updates_both_levels(small_config):
    from recoworld.rl.config import TrainConfig
    from recoworld.rl.hrl.algorithm import build_hrl_config
    from recoworld.rl.runtime import ensure_ray

    world = small_config.model_copy(deep=True)
    world.episode.text_info = "none"
    ensure_ray(2)
    algo = build_hrl_config(world, TrainConfig.model_validate(TINY_HRL)).build_algo()
    try:
        before = {mid: {k: v.clone() for k, v in algo.get_module(mid).state_dict().items()}
                  for mid in (HIGH, LOW)}  # fmt: skip
        result = algo.train()
        for mid in (HIGH, LOW):
            after = algo.get_module(mid).state_dict()
            changed = any(not torch.equal(before[mid][k], after[k]) for k in after)
            assert changed, f"module {mid} was not updated"
            assert np.isfinite(result["learners"][mid]["policy_loss"])
    finally:
        algo.stop()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["hierarchical", "flat"])
def test_train_cli_checkpoint_and_recommender(small_config, tmp_path, mode):
    """`recoworld train --algo hrl` outputs; the checkpoint loads (by its run manifest) as a
    batched Recommender that picks goals at session starts."""
    from recoworld.policies.rollout import SimulateConfig, run_policy
    from recoworld.rl.config import TrainConfig
    from recoworld.rl.registry import checkpoint_algo, load_recommender
    from recoworld.rl.trainer import train

    world = small_config.model_copy(deep=True)
    world.episode.text_info = "none"
    cfg = TrainConfig.model_validate({**TINY_HRL, "hrl": {**TINY_HRL["hrl"], "mode": mode}})
    out = tmp_path / mode
    last = train(world, cfg, out, show_progress=False)
    assert np.isfinite(last["mean_return"])
    assert checkpoint_algo(out / "checkpoint") == "hrl"
    policy = load_recommender(out / "checkpoint", mode)
    assert (policy.high is not None) == (mode == "hierarchical")
    summary = run_policy(world, policy, SimulateConfig(users=5, episodes=5, seed=1, log=False),
                         None)  # fmt: skip
    assert summary["episodes"] == 5 and summary["user_steps"] > 0
    if mode == "hierarchical":
        goals = set(np.round(policy.last_goal, 6))
        assert goals <= set(np.round(goal_values(policy.settings), 6))

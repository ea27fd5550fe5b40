"""Gymnasium's standard wrappers, checker and vectorization modes on every RecoWorld id."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.wrappers import vector as vector_wrappers

VIEWS = ("features", "features+ids", "flat")


def _run_until_done(env: gym.Env, seed: int, max_steps: int = 10_000):
    """Step ``env`` with random slates from ``reset(seed=seed)`` until the episode ends;
    returns (rewards, last info, terminated, truncated)."""
    env.reset(seed=seed)
    env.action_space.seed(seed)
    rewards = []
    for _ in range(max_steps):
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        rewards.append(reward)
        if terminated or truncated:
            return rewards, info, terminated, truncated
    raise AssertionError(f"no episode end in {max_steps} steps")


@pytest.mark.parametrize("view", VIEWS)
def test_gymnasium_check_env_each_view(recoworld_id, view):
    env = gym.make(recoworld_id, observation=view)
    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    env.close()


def test_flatten_observation(recoworld_id):
    env = gym.make(recoworld_id)
    assert isinstance(env.observation_space, gym.spaces.Dict)
    flat = gym.wrappers.FlattenObservation(env)
    space = flat.observation_space
    assert isinstance(space, gym.spaces.Box) and len(space.shape) == 1
    obs, _ = flat.reset(seed=0)
    assert space.contains(obs)
    for _ in range(20):
        obs, _, terminated, truncated, _ = flat.step(flat.action_space.sample())
        assert space.contains(obs)
        if terminated or truncated:
            obs, _ = flat.reset()
            assert space.contains(obs)
    # the same features as the env's own 'flat' view (which orders the keys differently)
    view = gym.make(recoworld_id, observation="flat")
    assert view.observation_space.shape == space.shape
    view.close()
    flat.close()


def test_record_episode_statistics(recoworld_id):
    env = gym.wrappers.RecordEpisodeStatistics(gym.make(recoworld_id))
    rewards, info, _, _ = _run_until_done(env, seed=1)
    episode = info["episode"]
    assert int(episode["l"]) == len(rewards)
    assert float(episode["r"]) == pytest.approx(sum(rewards), rel=1e-5, abs=1e-5)
    assert float(episode["t"]) >= 0.0
    assert len(env.return_queue) == len(env.length_queue) == 1
    env.close()


def test_normalize_reward(recoworld_id):
    env = gym.wrappers.NormalizeReward(gym.make(recoworld_id), gamma=0.99)
    env.reset(seed=2)
    env.action_space.seed(2)
    rewards = []
    for _ in range(100):
        _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        rewards.append(reward)
        if terminated or truncated:
            env.reset()
    assert np.isfinite(rewards).all()
    assert env.return_rms.count > 100  # every step updated the running statistics
    env.close()


@pytest.mark.parametrize("via_make", [False, True])
def test_time_limit_truncates(recoworld_id, via_make):
    limit = 3
    if via_make:
        env = gym.make(recoworld_id, max_episode_steps=limit)
    else:
        env = gym.wrappers.TimeLimit(gym.make(recoworld_id), max_episode_steps=limit)
    truncated_at_limit = 0
    for seed in range(10):
        rewards, _, terminated, truncated = _run_until_done(env, seed=seed)
        assert len(rewards) <= limit
        if len(rewards) == limit and not terminated:
            assert truncated
            truncated_at_limit += 1
    assert truncated_at_limit > 0
    env.close()


def test_record_video_wraps_and_steps(recoworld_id, tmp_path):
    spec = gym.spec(recoworld_id)
    render_modes = gym.make(recoworld_id).metadata.get("render_modes", [])
    if "rgb_array" not in render_modes:
        pytest.skip(f"{spec.id} has no rgb_array render mode (render_modes={render_modes})")
    env = gym.make(recoworld_id, render_mode="rgb_array")
    env = gym.wrappers.RecordVideo(
        env, str(tmp_path / "videos"), episode_trigger=lambda ep: ep == 0
    )
    env.reset(seed=0)
    for _ in range(5):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    env.close()


# --- vector envs -----------------------------------------------------------------------


def _vector_entry(recoworld_id: str, num_envs: int = 4) -> gym.vector.VectorEnv:
    if gym.spec(recoworld_id).vector_entry_point is None:
        pytest.skip(f"{recoworld_id} registers no vector_entry_point")
    return gym.make_vec(recoworld_id, num_envs=num_envs, vectorization_mode="vector_entry_point")


def _check_episode_statistics(envs: gym.vector.VectorEnv, seed: int, n_steps: int) -> int:
    """Step ``envs`` (wrapped in RecordEpisodeStatistics) with random slates, tracking each
    slot's return and length by hand under NEXT_STEP autoreset; checks every reported
    episode against them. Returns the number of episodes reported."""
    n = envs.num_envs
    obs, _ = envs.reset(seed=seed)
    envs.action_space.seed(seed)
    returns, lengths = np.zeros(n), np.zeros(n, dtype=int)
    autoreset = np.zeros(n, dtype=bool)
    reported = 0
    for _ in range(n_steps):
        obs, reward, terminated, truncated, info = envs.step(envs.action_space.sample())
        assert envs.observation_space.contains(obs)
        assert reward.shape == (n,)
        # the autoreset step returns a new user's first observation, reward 0, no end
        assert np.all(reward[autoreset] == 0.0)
        assert not np.any((terminated | truncated)[autoreset])
        returns[autoreset], lengths[autoreset] = 0.0, 0
        returns[~autoreset] += reward[~autoreset]
        lengths[~autoreset] += 1
        done = terminated | truncated
        if "episode" in info:
            mask = info["_episode"]
            np.testing.assert_array_equal(mask, done)
            np.testing.assert_allclose(info["episode"]["r"][mask], returns[mask], rtol=1e-5)
            np.testing.assert_array_equal(info["episode"]["l"][mask], lengths[mask])
            reported += int(mask.sum())
        else:
            assert not done.any()
        autoreset = done
    return reported


def test_vector_entry_point_record_episode_statistics(recoworld_id):
    envs = _vector_entry(recoworld_id)
    assert envs.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
    envs = vector_wrappers.RecordEpisodeStatistics(envs)
    assert _check_episode_statistics(envs, seed=0, n_steps=80) > 0
    assert len(envs.return_queue) > 0
    envs.close()


def test_vector_entry_point_normalize_reward(recoworld_id):
    envs = vector_wrappers.NormalizeReward(_vector_entry(recoworld_id), gamma=0.99)
    envs.reset(seed=0)
    envs.action_space.seed(0)
    for _ in range(50):
        _, reward, _, _, _ = envs.step(envs.action_space.sample())
        assert reward.shape == (4,) and np.isfinite(reward).all()
    assert envs.return_rms.count >= 50 * 4
    envs.close()


def test_sync_vector_env(recoworld_id):
    envs = gym.make_vec(recoworld_id, num_envs=4, vectorization_mode="sync")
    assert isinstance(envs, gym.vector.SyncVectorEnv)
    assert envs.single_observation_space == gym.make(recoworld_id).observation_space
    envs = vector_wrappers.RecordEpisodeStatistics(envs)
    assert _check_episode_statistics(envs, seed=0, n_steps=80) > 0
    envs.close()

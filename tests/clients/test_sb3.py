"""Stable-Baselines3 on every registered RecoWorld id, used the way its docs show.

``make_vec_env(env_id, n_envs=8)`` with no extra arguments (so SB3's default
``render_mode="rgb_array"`` reaches the env) and ``MultiInputPolicy`` on the default
``"features"`` Dict view; ``MlpPolicy`` on the ``"flat"`` view. See docs/clients/sb3.md.
"""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import check_env
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

N_ENVS = 8
LEARN_STEPS = 300  # n_steps=32 x 8 envs: two rollouts, two updates


@pytest.fixture(scope="module")
def trained(recoworld_id):
    """PPO + MultiInputPolicy after a few hundred steps of ``make_vec_env(id, n_envs=8)``."""
    env = make_vec_env(recoworld_id, n_envs=N_ENVS)
    model = PPO("MultiInputPolicy", env, n_steps=32, batch_size=64, seed=0, device="cpu")
    model.learn(total_timesteps=LEARN_STEPS)
    yield model
    env.close()


def _assert_valid_slate(action, space: gym.spaces.MultiDiscrete) -> None:
    action = np.asarray(action)
    assert action.shape == space.shape
    assert np.issubdtype(action.dtype, np.integer)
    assert space.contains(action.astype(space.dtype)), action


@pytest.mark.slow
def test_make_vec_env_multi_input_ppo_learns(trained, recoworld_id):
    env = trained.get_env()
    assert env.num_envs == N_ENVS
    assert isinstance(env.observation_space, gym.spaces.Dict)
    assert isinstance(env.action_space, gym.spaces.MultiDiscrete)
    assert trained.num_timesteps >= LEARN_STEPS
    # Monitor (added by make_vec_env) saw whole episodes
    assert len(trained.ep_info_buffer) > 0
    assert all(np.isfinite(ep["r"]) and ep["l"] >= 1 for ep in trained.ep_info_buffer)
    # the policy's parameters were updated and stay finite
    assert trained._n_updates > 0
    for p in trained.policy.parameters():
        assert np.isfinite(p.detach().numpy()).all()


@pytest.mark.slow
def test_flat_view_mlp_policy(recoworld_id):
    env = make_vec_env(recoworld_id, n_envs=2, env_kwargs={"observation": "flat"})
    assert isinstance(env.observation_space, gym.spaces.Box)
    assert len(env.observation_space.shape) == 1
    model = PPO("MlpPolicy", env, n_steps=64, batch_size=64, seed=0, device="cpu")
    model.learn(total_timesteps=256)
    assert model.num_timesteps >= 256 and model._n_updates > 0
    obs = env.reset()
    action, _ = model.predict(obs, deterministic=True)
    assert action.shape == (2, *env.action_space.shape)
    env.close()


@pytest.mark.parametrize("view", ["features", "flat"])
def test_sb3_check_env(recoworld_id, view):
    kwargs = {} if view == "features" else {"observation": view}
    env = gym.make(recoworld_id, **kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env)
    # The only advice SB3 gives: the (M, d) candidate matrix is neither an image nor a
    # vector. That is by design (MultiInputPolicy flattens it; 'flat' avoids it).
    others = [str(w.message) for w in caught if "unconventional shape" not in str(w.message)]
    assert others == []
    assert all("candidates" in str(w.message) for w in caught)
    env.close()


@pytest.mark.slow
def test_trained_model_predicts_valid_slates_on_a_fresh_env(trained, recoworld_id):
    env = gym.make(recoworld_id)
    obs, _ = env.reset(seed=7)
    for deterministic in (True, False, True, False, True):
        action, _ = trained.predict(obs, deterministic=deterministic)
        _assert_valid_slate(action, env.action_space)
        obs, reward, terminated, truncated, info = env.step(action)
        assert np.isfinite(reward)
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()


@pytest.mark.slow
def test_evaluate_policy(trained, recoworld_id):
    mean, std = evaluate_policy(trained, trained.get_env(), n_eval_episodes=8)
    assert np.isfinite(mean) and np.isfinite(std)
    fresh = make_vec_env(recoworld_id, n_envs=2, seed=3)
    rewards, lengths = evaluate_policy(
        trained, fresh, n_eval_episodes=4, deterministic=True, return_episode_rewards=True
    )
    assert len(rewards) == len(lengths) == 4
    assert all(length >= 1 for length in lengths)
    fresh.close()

"""The slate RLModule without a Ray runtime: shapes, values, distinct slates, sampling
through RLlib's own env runner on the vector env, the Recommender wrapper."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns

from recoworld import RecoWorldVectorEnv
from recoworld.rl.common.recommender import ModuleRecommender
from recoworld.rl.common.slate_module import SlateScoringModule
from recoworld.rl.config import TrainConfig
from recoworld.rl.ppo.algorithm import build_algorithm_config


@pytest.fixture(scope="module")
def venv(small_config):
    env = RecoWorldVectorEnv(num_envs=6, config=small_config)
    yield env
    env.close()


def make_module(env) -> SlateScoringModule:
    return SlateScoringModule(observation_space=env.single_observation_space,
                              action_space=env.single_action_space, model_config={})  # fmt: skip


def test_forward_shapes_and_values(venv):
    mod = make_module(venv)
    obs, _ = venv.reset(seed=0)
    batch = {Columns.OBS: {k: torch.as_tensor(v) for k, v in obs.items()}}
    out = mod.forward_exploration(batch)
    logits = out[Columns.ACTION_DIST_INPUTS]
    assert logits.shape == (6, venv.world.n_candidates)
    dist = mod.get_exploration_action_dist_cls().from_logits(logits)
    slates = dist.sample()
    assert slates.shape == (6, venv.world.slate_size)
    assert all(len(set(s)) == len(s) for s in slates.tolist())
    assert mod.compute_values(batch).shape == (6,)
    # unknown observation keys are ignored
    batch[Columns.OBS]["extra"] = torch.zeros(6, 3)
    assert torch.equal(mod.forward_inference(batch)[Columns.ACTION_DIST_INPUTS], logits)


def test_bad_spaces():
    with pytest.raises(ValueError, match="observation dict"):
        SlateScoringModule(
            observation_space=gym.spaces.Box(0, 1, (3,)),
            action_space=gym.spaces.MultiDiscrete([5, 5]),
            model_config={},
        )


def test_recommender_wrapper(venv):
    rec = ModuleRecommender(make_module(venv))
    obs, _ = venv.reset(seed=1)
    slates = rec.act(obs)
    assert slates.shape == (6, venv.world.slate_size)
    single = rec.act({k: v[0] for k, v in obs.items()})
    assert np.array_equal(single, slates[0])
    explore = ModuleRecommender(rec.module, explore=True, seed=3).act(obs)
    assert all(len(set(s)) == len(s) for s in explore.tolist())


@pytest.mark.parametrize("vectorize", ["vector_entry_point", "sync"])
def test_rllib_env_runner_samples_distinct_slates(small_config, vectorize):
    from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

    cfg = build_algorithm_config(small_config, TrainConfig(num_envs=4, vectorize=vectorize))
    runner = SingleAgentEnvRunner(config=cfg)
    episodes = runner.sample(num_timesteps=60, random_actions=False)
    actions = np.concatenate([np.asarray(e.get_actions()) for e in episodes])
    assert actions.shape[1] == small_config.episode.slate_size
    assert all(len(set(a)) == len(a) for a in actions.tolist())
    logp = np.concatenate([np.asarray(e.get_extra_model_outputs(Columns.ACTION_LOGP))
                           for e in episodes])  # fmt: skip
    assert np.isfinite(logp).all() and (logp < 0).all()
    runner.stop()

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


def test_relative_features_linear_path_and_value_scale(venv):
    """The options ``ModelSettings`` turns on: a zero-initialised linear path on the
    candidate's features (ranking by one feature is one weight), features relative to the
    slate, values predicted in units of ``value_scale``."""
    space, act = venv.single_observation_space, venv.single_action_space
    plain = SlateScoringModule(observation_space=space, action_space=act, model_config={})
    assert plain.linear is None and not plain.inputs.relative and plain.value_scale == 1.0
    cfg = {"relative_features": True, "linear_path": True, "value_scale": 10.0}
    mod = SlateScoringModule(observation_space=space, action_space=act, model_config=cfg)
    assert torch.count_nonzero(mod.linear.weight) == 0
    obs, _ = venv.reset(seed=2)
    tobs = {k: torch.as_tensor(v) for k, v in obs.items()}
    with torch.no_grad():
        assert mod.scores(tobs).shape == (6, venv.world.n_candidates)
        values = mod.compute_values({Columns.OBS: tobs})
        assert torch.allclose(values, 10.0 * mod.value(mod._context(tobs)).squeeze(-1))
        pop = venv.world.encoder.feature_index("popularity")
        for p in mod.scorer.parameters():
            p.zero_()
        mod.linear.weight[0, pop] = 5.0
        slate = torch.topk(mod.scores(tobs), venv.world.slate_size, dim=-1).indices
    popularity = tobs["candidates"][..., pop].float()
    chosen = popularity.gather(1, slate)
    rest = popularity.scatter(1, slate, float("-inf"))
    assert (chosen.min(1).values >= rest.max(1).values).all()  # the most popular k


def test_model_settings_module_config():
    from recoworld.rl.common.config import ModelSettings

    cfg = ModelSettings().module_config(gamma=0.97)
    assert cfg["relative_features"] and cfg["linear_path"]
    assert cfg["value_scale"] == pytest.approx(1 / 0.03)
    assert ModelSettings(value_scale=2.0).module_config(0.97)["value_scale"] == 2.0

"""RecoWorld's Stable-Baselines3 slate policy (``recoworld.rl.sb3.SlatePolicy``): the
Plackett-Luce distribution's arithmetic, distinct slates, PPO and A2C on every registered
id through ``make_vec_env``, and save/load."""

from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np
import pytest
import torch

pytest.importorskip("stable_baselines3")

from stable_baselines3 import A2C, PPO
from stable_baselines3.common.env_util import make_vec_env

from recoworld.rl.sb3 import SlateDistribution, SlatePolicy


def test_slate_distribution_is_a_distribution_over_ordered_distinct_slates():
    torch.manual_seed(0)
    logits = torch.randn(2, 5)
    dist = SlateDistribution(3).proba_distribution(logits)
    slates = torch.tensor(list(itertools.permutations(range(5), 3)))  # all 60 ordered slates
    for row in range(2):
        each = SlateDistribution(3).proba_distribution(logits[row].expand(len(slates), 5))
        assert each.log_prob(slates).exp().sum().item() == pytest.approx(1.0, abs=1e-5)
    # samples: k distinct candidates; the mode is the top k, best first
    draws = dist.sample()
    assert draws.shape == (2, 3) and all(len(set(r)) == 3 for r in draws.tolist())
    assert torch.equal(dist.mode(), torch.topk(logits, 3).indices)
    assert torch.equal(dist.get_actions(deterministic=True), dist.mode())
    # k = 1: the entropy proxy is the categorical entropy
    one = SlateDistribution(1).proba_distribution(logits)
    expected = torch.distributions.Categorical(logits=logits).entropy()
    assert torch.allclose(one.entropy(), expected, atol=1e-6)
    with pytest.raises(ValueError, match="slate size 6 exceeds the 5 candidates"):
        SlateDistribution(6).proba_distribution(logits)


def test_sampling_frequencies_match_the_probabilities():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    dist = SlateDistribution(2).proba_distribution(logits.expand(20_000, 4))
    torch.manual_seed(1)
    draws = dist.sample()
    first = torch.bincount(draws[:, 0], minlength=4).float() / len(draws)
    assert torch.allclose(first, torch.softmax(logits[0], -1), atol=0.015)


def test_slate_policy_rejects_the_flat_view():
    env = make_vec_env("recoworld/RecoWorld-v0", n_envs=1, env_kwargs={"observation": "flat"})
    with pytest.raises(ValueError, match="'flat' view is for MlpPolicy"):
        PPO(SlatePolicy, env, device="cpu")


@pytest.mark.slow
def test_ppo_with_slate_policy_on_every_task(recoworld_id, tmp_path):
    env = make_vec_env(recoworld_id, n_envs=2, seed=0)
    model = PPO(SlatePolicy, env, n_steps=64, batch_size=64, n_epochs=2, seed=0, device="cpu")
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(total_timesteps=256)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.policy.parameters(),
                                                     strict=True))  # fmt: skip
    single = gym.make(recoworld_id)
    obs, _ = single.reset(seed=3)
    slate, _ = model.predict(obs, deterministic=True)
    assert single.action_space.contains(slate) and len(set(slate.tolist())) == len(slate)
    model.save(tmp_path / "slate.zip")
    again = PPO.load(tmp_path / "slate.zip", device="cpu")
    assert np.array_equal(again.predict(obs, deterministic=True)[0], slate)
    env.close()


def test_a2c_with_slate_policy():
    env = make_vec_env("recoworld/RecoWorld-v0", n_envs=2, seed=0)
    model = A2C(SlatePolicy, env, n_steps=8, seed=0, device="cpu",
                policy_kwargs={"hidden": [16], "value_hidden": [16]})  # fmt: skip
    model.learn(total_timesteps=64)
    obs = env.reset()
    actions, _ = model.predict(obs, deterministic=True)
    assert actions.shape == (2, 3) and all(len(set(a)) == 3 for a in actions.tolist())

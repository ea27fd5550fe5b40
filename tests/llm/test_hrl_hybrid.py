"""The trained hierarchical novelty policy runs as a Recommender in the hybrid world (real
vLLM engine with the embedded model writing the instructions)."""

from __future__ import annotations

import numpy as np
import pytest

from recoworld.policies.rollout import SimulateConfig, run_policy
from recoworld.rl.config import TrainConfig
from recoworld.rl.hrl.algorithm import goal_values
from recoworld.rl.registry import load_recommender
from recoworld.rl.trainer import train

pytestmark = pytest.mark.slow


def test_trained_hrl_policy_in_hybrid_world(small_config, vllm_backend, tmp_path):
    world = small_config.model_copy(deep=True)
    world.episode.text_info = "none"
    cfg = TrainConfig.model_validate(
        {"algo": "hrl", "iterations": 1, "num_envs": 4, "eval_every": 0, "eval_episodes": 4,
         "eval_users": 4, "checkpoint_every": 0,
         "ppo": {"train_batch_size": 256, "minibatch_size": 64, "num_epochs": 1},
         "model": {"hidden": [32], "value_hidden": [32]}, "hrl": {"high_hidden": [16]}}
    )  # fmt: skip
    train(world, cfg, tmp_path / "hrl", show_progress=False)
    policy = load_recommender(tmp_path / "hrl" / "checkpoint", "hrl")
    hybrid = world.model_copy(deep=True)
    hybrid.simulator = "hybrid"
    hybrid.episode.text_info = "all"
    before = vllm_backend.stats["requests"]
    summary = run_policy(hybrid, policy, SimulateConfig(users=4, episodes=4, seed=2, log=False),
                         None, llm_backend=vllm_backend)  # fmt: skip
    assert summary["episodes"] == 4 and summary["user_steps"] > 0
    assert summary["instructions_per_1k_steps"] > 0
    assert vllm_backend.stats["requests"] > before  # the LLM wrote the users' sentences
    assert set(np.round(policy.last_goal, 6)) <= set(np.round(goal_values(policy.settings), 6))

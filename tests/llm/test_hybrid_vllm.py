"""The hybrid world on the real vLLM engine with the embedded model."""

from __future__ import annotations

import numpy as np
import pytest

from recoworld import RecoWorldVectorEnv
from recoworld.envs.config import WorldConfig

pytestmark = pytest.mark.slow


def test_hybrid_world_on_vllm(vllm_backend):
    cfg = WorldConfig.model_validate({
        "simulator": "hybrid",
        "catalog": {"source": "movielens"},
        "users": {"source": "movielens", "instruction_prob": 1.0},
        "candidates": {"n_candidates": 10},
        "episode": {"slate_size": 3, "max_sessions": 2, "max_session_steps": 12},
    })  # fmt: skip
    env = RecoWorldVectorEnv(num_envs=16, config=cfg, llm_backend=vllm_backend)
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    outcomes = []
    for _ in range(20):
        actions = np.argsort(rng.random((16, 10)), axis=1)[:, :3]
        _, _, _, _, info = env.step(actions)
        for b in np.flatnonzero(info["instructed"] & info["_click"]):
            outcomes.append(info["instruction_source"][b])
            assert info["instruction"][b]
            # whatever the source, the text the recommender reads means what the user wants
            parsed = env.world.parser.vector(info["instruction"][b])
            assert np.array_equal(parsed[:-1] != 0, env.world.platform.instruction[b][:-1] != 0)
    stats = env.world.simulator.stats
    assert len(outcomes) >= 5 and stats["instructions"] == len(outcomes)
    fallbacks = stats["fallback_invalid"] + stats["fallback_unclean"] + stats["fallback_mismatch"]
    assert stats["paraphrased"] + fallbacks == len(outcomes)
    print(f"\nhybrid on SmolLM2-135M: {stats}")

"""The population env with LLM-driven users: every user's LLM call of a step in one batch."""

from __future__ import annotations

import numpy as np
import pytest

from recoworld.envs.population.population import PopulationEnv

WORLD = {
    "catalog": {"synthetic": {"n_items": 300, "n_creators": 30, "seed": 3}},
    "candidates": {"n_candidates": 10},
    "episode": {"slate_size": 3, "max_session_steps": 6},
}


@pytest.mark.slow
@pytest.mark.parametrize("simulator", ["llm", "hybrid"])
def test_population_llm_users_one_batch_per_step(vllm_backend, simulator, monkeypatch):
    batches: list[int] = []
    real = vllm_backend.generate

    def spy(requests, schema, **kwargs):
        batches.append(len(requests))
        return real(requests, schema, **kwargs)

    monkeypatch.setattr(vllm_backend, "generate", spy)
    env = PopulationEnv(
        {"world": {**WORLD, "simulator": simulator}, "n_users": 5, "max_cycles": 3},
        llm_backend=vllm_backend,
    )
    obs, _ = env.reset(seed=0)
    steps = 0
    while env.agents:
        present = len(env.agents)
        before = len(batches)
        actions = {a: np.array([0, 1, 2]) for a in env.agents}
        obs, rewards, terms, truncs, infos = env.step(actions)
        calls = batches[before:]
        if simulator == "llm":  # score mode narrates every present user, in one request list
            assert present in calls, calls
        assert all(n <= present for n in calls)
        assert set(rewards) >= set(actions)
        steps += 1
    assert steps == 3
    if simulator == "llm":  # every present user took an LLM turn each step
        assert env.population.world.simulator.stats["turns"] >= 5
    env.close()

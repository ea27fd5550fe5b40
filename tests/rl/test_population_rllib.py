"""The population env on RLlib: the multi-agent wrapper passes RLlib's checks with users
joining and leaving, RLlib's env runner samples it, and multi-agent PPO with one shared
slate module trains (Ray started once per session, num_env_runners=0)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recoworld.envs.population.config import PopulationConfig
from recoworld.rl.common.config import ModelSettings
from recoworld.rl.population.algorithm import (
    ENV_NAME,
    MODULE_SUBDIR,
    SHARED,
    build_population_ppo_config,
    make_population_rllib_env,
    register_population_env,
    summarize_result,
    train_population,
)
from recoworld.rl.ppo.config import PPOSettings

WORLD = {"catalog": {"synthetic": {"n_items": 300, "n_creators": 30, "seed": 3}},
         "candidates": {"n_candidates": 10}}  # fmt: skip
SMALL = {"n_users": 4, "capacity": 6, "arrival_rate": 0.5, "max_cycles": 30, "world": WORLD}
# short user lives: users leave and join all the time
CHURN = {**SMALL, "capacity": 12, "max_cycles": 60,
         "world": {**WORLD, "episode": {"max_sessions": 1, "max_session_steps": 4}}}  # fmt: skip
TINY_PPO = PPOSettings(train_batch_size=256, minibatch_size=64, num_epochs=1)
TINY_MODEL = ModelSettings(hidden=[32], value_hidden=[32])


def test_rllib_check_multiagent_environments():
    from ray.rllib.env.multi_agent_env import MultiAgentEnv
    from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv
    from ray.rllib.utils.pre_checks.env import check_multiagent_environments

    env = make_population_rllib_env(SMALL)
    assert isinstance(env, ParallelPettingZooEnv) and isinstance(env, MultiAgentEnv)
    assert env.possible_agents == [f"user_{i}" for i in range(6)]
    check_multiagent_environments(env)  # resets with seed 42
    # the check's single step may bring no new user: check with seeds where one joins
    joined_seeds = 0
    for seed in range(12):
        env.reset = lambda seed=None, options=None, s=seed, r=env.reset: r(seed=s, options=options)
        check_multiagent_environments(env)
        del env.reset
        joined_seeds += any(a not in env.par_env.possible_agents[:4] for a in env.agents)
    assert joined_seeds > 0
    # every possible agent has the single-user spaces
    space = env.get_observation_space("user_5")
    assert space is env.par_env.observation_space("user_0") and "candidates" in space.spaces
    assert env.get_action_space("user_5") == env.par_env.action_space("user_0")
    assert register_population_env() == ENV_NAME


def test_episode_ends_when_everyone_present_left():
    env = make_population_rllib_env(CHURN)
    joined = ends = 0
    for seed in range(10):
        env.reset(seed=seed)
        while True:
            actions = {a: env.get_action_space(a).sample() for a in env.par_env.agents}
            obs, rew, term, trunc, info = env.step(actions)
            keys = set(obs)
            assert keys == set(rew) == set(term) - {"__all__"} == set(trunc) - {"__all__"}
            assert set(actions) <= keys  # every user that acted gets its (last) observation
            new = keys - set(actions)
            joined += len(new)
            assert all(not term[a] and not trunc[a] for a in new)
            over = term["__all__"] or trunc["__all__"]
            # RLlib's MultiAgentEpisode ends when every agent it saw is done: same rule
            assert over == all(term[a] or trunc[a] for a in actions)
            assert not (term["__all__"] and trunc["__all__"])
            if over:  # nobody who acted is still there; users joining now are dropped
                assert not new and not set(actions) & set(env.par_env.agents)
                ends += 1
                break
            assert {a for a in keys if not (term[a] or trunc[a])} == set(env.par_env.agents)
    assert ends == 10 and joined > 0


def test_env_runner_samples_population():
    """RLlib's own MultiAgentEnvRunner (no Ray needed; here the population's subclass)
    steps the churning population: new users need their spaces, episode ends must agree
    with MultiAgentEpisode's, and steps are counted per user (agent steps)."""
    from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner

    config = build_population_ppo_config(PopulationConfig.model_validate(CHURN), TINY_PPO,
                                         TINY_MODEL, seed=0)  # fmt: skip
    assert config.count_steps_by == "agent_steps"
    runner = config.env_runner_cls(config=config)
    assert isinstance(runner, MultiAgentEnvRunner)
    try:
        from ray.rllib.utils.metrics import NUM_AGENT_STEPS_SAMPLED

        episodes = runner.sample(num_timesteps=300, random_actions=False)
        counted = sum(int(c) for c in runner.get_metrics()[NUM_AGENT_STEPS_SAMPLED].values())
        # RLlib counts an agent step per observation (a user's last one and a newcomer's
        # first one included); the last env step may add up to `capacity` of them
        assert 300 <= counted < 300 + 12
        acted = sum(e.agent_steps() for e in episodes)
        assert sum(len(e) for e in episodes) < acted <= counted  # several users per env step
        # users who left sampled nothing since: no NaN counter reaches PPO's sampling loop
        for _ in range(3):
            runner.sample(num_timesteps=100, random_actions=False)
            counts = runner.get_metrics()[NUM_AGENT_STEPS_SAMPLED]
            assert sum(int(c) for c in counts.values()) >= 100
        assert sum(e.is_done for e in episodes) >= 2
        agents = {a for e in episodes for a in e.agent_ids}
        assert len(agents) > 4  # users that joined acted too
        assert all(e.module_for(a) == SHARED for e in episodes for a in e.agent_ids)
    finally:
        runner.stop()


@pytest.mark.slow
def test_population_ppo_trains_shared_module(ray_session):
    config = build_population_ppo_config(PopulationConfig.model_validate(SMALL), TINY_PPO,
                                         TINY_MODEL, seed=0)  # fmt: skip
    assert config.is_multi_agent and config.num_env_runners == 0
    algo = config.build_algo()
    try:
        module = algo.get_module(SHARED)
        assert type(module).__name__ == "SlateScoringModule" and module.slate_size == 3
        before = {k: v.detach().clone() for k, v in module.state_dict().items()}
        for _ in range(2):
            result = algo.train()
        after = algo.get_module(SHARED).state_dict()
        assert any(not torch.equal(before[k], after[k]) for k in before)
        summary = summarize_result(result)
        assert summary["num_agent_steps_sampled_lifetime"] >= 2 * 256  # user steps
        assert (
            summary["num_agent_steps_sampled_lifetime"] > summary["num_env_steps_sampled_lifetime"]
        )  # several users per env step
        for key in ("policy_loss", "vf_loss", "entropy", "user_return_mean"):
            assert summary[key] is not None and np.isfinite(summary[key]), key
    finally:
        algo.stop()


@pytest.mark.slow
def test_train_population_checkpoint(ray_session, tmp_path, monkeypatch):
    from recoworld.envs.population.population import parallel_env
    from recoworld.rl.common.recommender import ModuleRecommender

    monkeypatch.chdir(tmp_path)  # a relative out_dir: the checkpoint path must be absolute
    seen: list[dict] = []
    last = train_population(PopulationConfig.model_validate(SMALL), 1, "out", seed=1,
                            ppo=TINY_PPO, model=TINY_MODEL, show_progress=False,
                            on_iteration=seen.append)  # fmt: skip
    assert [s["iteration"] for s in seen] == [1]
    assert last["num_agent_steps_sampled_lifetime"] >= 256
    ckpt = tmp_path / "out" / "checkpoint"
    assert last["checkpoint"] == str(ckpt) and (ckpt / MODULE_SUBDIR).is_dir()
    assert len((tmp_path / "out" / "result.json").read_text().splitlines()) == 1
    # the shared module acts for every user of a population, without Ray
    rec = ModuleRecommender.from_checkpoint(ckpt / MODULE_SUBDIR)
    env = parallel_env(config=SMALL)
    obs, _ = env.reset(seed=0)
    batch = {k: np.stack([o[k] for o in obs.values()]) for k in next(iter(obs.values()))}
    slates = rec.act(batch)
    assert slates.shape == (4, 3) and all(len(set(s)) == 3 for s in slates.tolist())

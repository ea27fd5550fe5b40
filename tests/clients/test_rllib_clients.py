"""Ray RLlib (2.60, new API stack) used the way a generic RLlib user would: its own
multi-agent checker and PettingZoo wrapper, and PPO with RLlib's DEFAULT model (no custom
RLModule) on every registered RecoWorld id and on the population. See docs/clients/rllib.md.

The project's own slate module (Plackett-Luce slates of distinct items) is trained in
``tests/rl`` (``test_train.py``, ``test_population_rllib.py``); here only what RLlib gives
out of the box: the default catalog reads a ``MultiDiscrete([M] * k)`` action as k
independent categoricals, so its slates can repeat an item (an empty slot, counted in
``info["n_duplicates"]``).

Ray is started once for this module (``ensure_ray(2)``) and shut down at its end only when
this module started it: ``tests/rl/conftest.py``'s session fixture starts it again for
``tests/rl`` and shuts it down at the end of the session.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ray.rllib")
pytest.importorskip("torch")

import gymnasium as gym
import torch
from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv
from ray.rllib.utils.pre_checks.env import check_multiagent_environments

from recoworld.envs.population import population
from recoworld.rl.population.algorithm import PopulationRLlibEnv, make_population_rllib_env

WORLD = {
    "catalog": {"synthetic": {"n_items": 300, "n_creators": 30, "seed": 3}},
    "candidates": {"n_candidates": 10},
    "episode": {"slate_size": 3, "text_info": "none"},
}
N_ITEMS, M, K = 300, 10, 3
FLAT_DIM = M * 27 + 8 + 19 + 17  # candidates (M x d), user, history, instruction
TINY = {"train_batch_size": 256, "minibatch_size": 64, "num_epochs": 1}
VIEWS = ("features", "features+ids", "flat")


def pop_config(view: str = "flat", **overrides) -> dict:
    """A fixed population of 8 users (no arrivals unless ``overrides`` ask)."""
    return {"world": {**WORLD, "observation": view}, "n_users": 8, "max_cycles": 20,
            **overrides}  # fmt: skip


ARRIVALS = {"n_users": 4, "capacity": 8, "arrival_rate": 1.0}


@pytest.fixture(scope="module")
def ray_runtime():
    import ray

    from recoworld.rl.runtime import ensure_ray

    started_here = not ray.is_initialized()
    ensure_ray(2)
    yield
    if started_here:
        ray.shutdown()


def _losses_finite(result: dict, policy: str) -> None:
    learner = result["learners"][policy]
    for key in ("policy_loss", "vf_loss", "entropy"):
        assert np.isfinite(float(learner[key])), key


def _ppo(env, env_config: dict, **env_runners):
    from ray.rllib.algorithms.ppo import PPOConfig

    return (
        PPOConfig()
        .environment(env, env_config=env_config)
        .env_runners(num_env_runners=0, **env_runners)
        .learners(num_learners=0)
        .training(**TINY)
        .debugging(seed=0)
    )


# --------------------------------------------------------------------------- env checks


@pytest.mark.parametrize("view", VIEWS)
def test_check_multiagent_environments_on_rllibs_pettingzoo_wrapper(view):
    """RLlib's own ``ParallelPettingZooEnv`` over a population without arrivals passes
    RLlib's multi-agent check on every view; each agent has RecoWorld-v0's spaces."""
    env = ParallelPettingZooEnv(population.parallel_env(config=pop_config(view)))
    check_multiagent_environments(env)
    single = gym.make("recoworld/RecoWorld-v0", observation=view, config=WORLD)
    for agent in env.possible_agents:
        assert env.get_observation_space(agent) == single.observation_space
        assert env.get_action_space(agent) == single.action_space
    env.close()


def test_arrivals_need_the_projects_wrapper():
    """With users joining, RLlib's plain wrapper fails its own check (it fixes the agent
    ids at the first reset); ``make_population_rllib_env`` (a ``ParallelPettingZooEnv``
    subclass, checked at length in tests/rl/test_population_rllib.py) passes."""
    failed = 0
    for seed in range(8):
        plain = ParallelPettingZooEnv(population.parallel_env(config=pop_config(**ARRIVALS)))
        fixed = make_population_rllib_env(pop_config(**ARRIVALS))
        assert isinstance(fixed, ParallelPettingZooEnv) and isinstance(fixed, PopulationRLlibEnv)
        for env in (plain, fixed):
            env.reset = lambda seed=None, options=None, s=seed, r=env.reset: r(
                seed=s, options=options
            )
        try:
            check_multiagent_environments(plain)
        except ValueError as err:
            assert "not the names of the agents in the env" in str(err)
            failed += 1
        check_multiagent_environments(fixed)
    assert failed > 0


# --------------------------------------------------------------------------- PPO, default model


@pytest.mark.slow
def test_ppo_default_model_trains_on_the_flat_view(ray_runtime, recoworld_id):
    from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import (
        DefaultPPOTorchRLModule,
    )

    algo = _ppo(recoworld_id, {"observation": "flat", "config": WORLD}).build_algo()
    try:
        module = algo.get_module()
        assert type(module) is DefaultPPOTorchRLModule  # RLlib's default catalog
        result = algo.train()
        _losses_finite(result, "default_policy")
        assert result["env_runners"]["num_env_steps_sampled_lifetime"] >= TINY["train_batch_size"]

        # the default policy's slates: k independent categoricals over the M candidates
        env = gym.make(recoworld_id, observation="flat", config=WORLD)
        obs, _ = env.reset(seed=0)
        batch = torch.as_tensor(np.repeat(obs[None], 500, axis=0))
        with torch.no_grad():
            logits = module.forward_exploration({"obs": batch})["action_dist_inputs"]
        assert logits.shape == (500, K * M)
        slates = module.get_exploration_action_dist_cls().from_logits(logits).sample().numpy()
        assert slates.shape == (500, K) and all(env.action_space.contains(s) for s in slates)
        repeated = np.array([len(set(s)) < K for s in slates.tolist()])
        assert repeated.mean() > 0.1  # near-uniform after one iteration: ~28% repeat
        _, _, _, _, info = env.step(slates[np.argmax(repeated)])
        assert info["n_duplicates"] > 0  # the repeat is an empty slot
    finally:
        algo.stop()


@pytest.mark.slow
def test_ppo_default_model_on_dict_views_needs_flatten_observations(ray_runtime, recoworld_id):
    """RLlib's default catalog has no encoder for a Dict observation; its
    ``FlattenObservations`` connector makes one vector (MultiDiscrete ids one-hot)."""
    from ray.rllib.connectors.env_to_module import FlattenObservations

    def flatten(env, spaces=None, device=None):
        return FlattenObservations()

    with pytest.raises(ValueError, match="No default encoder config"):
        _ppo(recoworld_id, {"config": WORLD}).build_algo()

    sizes = {"features": FLAT_DIM, "features+ids": FLAT_DIM + 4 + M * N_ITEMS + 10 * (N_ITEMS + 1)}
    for view, size in sizes.items():
        config = _ppo(recoworld_id, {"observation": view, "config": WORLD},
                      env_to_module_connector=flatten)  # fmt: skip
        algo = config.build_algo()
        try:
            first = algo.get_module().encoder.actor_encoder.net.mlp[0]
            assert first.in_features == size, view
            _losses_finite(algo.train(), "default_policy")
        finally:
            algo.stop()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*Overriding environment rllib-multi-agent-env-v0")
@pytest.mark.parametrize("arrivals", [False, True], ids=["fixed", "arrivals"])
def test_multi_agent_ppo_default_model_on_the_population(ray_runtime, arrivals):
    """One shared default module for every user: RLlib's plain wrapper for a fixed
    population, the project's ``make_population_rllib_env`` when users join."""
    from ray.tune.registry import register_env

    name = f"clients_population_{'arrivals' if arrivals else 'fixed'}"
    if arrivals:
        register_env(name, make_population_rllib_env)
    else:
        register_env(name, lambda cfg: ParallelPettingZooEnv(population.parallel_env(config=cfg)))
    env_config = pop_config(**ARRIVALS) if arrivals else pop_config()
    config = _ppo(name, env_config).multi_agent(
        policies={"shared"}, policy_mapping_fn=lambda agent_id, *args, **kwargs: "shared"
    )
    algo = config.build_algo()
    try:
        result = algo.train()
        _losses_finite(result, "shared")
        assert result["env_runners"]["num_episodes_lifetime"] > 0
    finally:
        algo.stop()

"""The population env (``recoworld.envs.population``) through standard PettingZoo tooling:
the API tests on every observation view, the AEC <-> parallel converters, and SuperSuit's
vector-env wrappers (what SB3-style trainers take). See docs/clients/pettingzoo.md.

``tests/test_population.py`` already runs ``parallel_api_test``, ``api_test``, the seed
tests and ``max_cycles_test`` on the default ``"features"`` view with arrivals; here the
other views and the client tooling.

SuperSuit (3.11) findings: ``black_death_v3`` accepts only ``Box`` observations, so only the
``"flat"`` view goes through ``pettingzoo_env_to_vec_env_v1(black_death_v3(...))``; users
must not arrive (``capacity == n_users``: the vector env has one row per possible agent from
the start); black death never reports a single user's end (a gone user's row reads zeros
with reward 0 and done False), and it ends the episode one step late: its
``(terminations & truncations).all()`` is false when every user is truncated at
``max_cycles`` or the last ones leave, and the next step, on an empty population, ends it.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from pettingzoo.test import api_test, parallel_api_test
from pettingzoo.utils.conversions import aec_to_parallel, aec_to_parallel_wrapper

import recoworld
from recoworld.envs.population import population
from recoworld.envs.population.population import PopulationEnv

WORLD = {
    "catalog": {"synthetic": {"n_items": 300, "n_creators": 30, "seed": 3}},
    "candidates": {"n_candidates": 10},
    "episode": {"slate_size": 3, "text_info": "none"},
}
N_USERS, MAX_CYCLES = 8, 20
ARRIVALS = {"capacity": 12, "arrival_rate": 0.5}
VIEWS = ("features", "features+ids", "flat")


def config(view: str = "features", **overrides) -> dict:
    """A small population of ``N_USERS`` users (no arrivals unless ``overrides`` ask)."""
    return {"world": {**WORLD, "observation": view}, "n_users": N_USERS,
            "max_cycles": MAX_CYCLES, **overrides}  # fmt: skip


def random_slates(env, agents, rng: np.random.Generator) -> dict:
    """A random slate (distinct items) per agent."""
    space = env.action_space(env.possible_agents[0])
    m, k = space.nvec[0], len(space)
    return {a: rng.permutation(m)[:k] for a in agents}


# --------------------------------------------------------------------------- PettingZoo


# api_test's notes: the MultiDiscrete slate and Dict observations "probably should be" a
# Box or Discrete
@pytest.mark.filterwarnings("ignore::UserWarning:pettingzoo.test.api_test")
@pytest.mark.parametrize("view", ["features+ids", "flat"])
def test_api_tests_on_the_other_views(view):
    par = population.parallel_env(config=config(view, **ARRIVALS))
    parallel_api_test(par, num_cycles=40)
    par.close()
    aec = population.env(config=config(view, **ARRIVALS))
    api_test(aec, num_cycles=40)
    aec.close()


@pytest.mark.parametrize("view", VIEWS)
def test_every_agent_has_the_single_user_spaces(view):
    par = population.parallel_env(config=config(view, **ARRIVALS))
    single = gym.make(recoworld.ENV_ID, observation=view, config=WORLD)
    assert len(par.possible_agents) == ARRIVALS["capacity"]
    for agent in par.possible_agents:  # those who join later too
        assert par.observation_space(agent) == single.observation_space
        assert par.action_space(agent) == single.action_space
    obs, _ = par.reset(seed=0)
    space = par.observation_space("user_0")
    assert len(obs) == N_USERS and all(space.contains(o) for o in obs.values())
    if view == "flat":  # one Box per agent, what SuperSuit and SB3-style vector envs take
        assert isinstance(space, spaces.Box) and space.dtype == np.float32
        assert space.shape == single.unwrapped.observation_space.shape
    par.close()


def test_aec_parallel_round_trip_keeps_the_trajectory():
    """``env()`` is ``parallel_to_aec(parallel_env())``; ``aec_to_parallel`` unwraps it back
    to the ``PopulationEnv``, and PettingZoo's generic ``aec_to_parallel_wrapper`` over the
    AEC env replays the native parallel env step for step, users joining and leaving."""
    cfg = config("features+ids", **ARRIVALS)
    assert isinstance(aec_to_parallel(population.env(config=cfg)), PopulationEnv)

    native = population.parallel_env(config=cfg)
    wrapped = aec_to_parallel_wrapper(population.env(config=cfg))
    parallel_api_test(aec_to_parallel_wrapper(population.env(config=cfg)), num_cycles=30)

    rng = np.random.default_rng(0)
    obs_a, _ = native.reset(seed=7)
    obs_b, _ = wrapped.reset(seed=7)
    joined = left = 0
    for _ in range(MAX_CYCLES):
        assert sorted(native.agents) == sorted(wrapped.agents)
        assert set(obs_a) == set(obs_b)
        for agent in obs_a:
            for key in obs_a[agent]:
                np.testing.assert_array_equal(obs_a[agent][key], obs_b[agent][key])
        if not native.agents:
            break
        actions = random_slates(native, native.agents, rng)
        before = set(native.agents)
        obs_a, rew_a, term_a, trunc_a, _ = native.step(actions)
        obs_b, rew_b, term_b, trunc_b, _ = wrapped.step(actions)
        assert rew_a == rew_b and term_a == term_b and trunc_a == trunc_b
        joined += len(set(native.agents) - before)
        left += len(before - set(native.agents))
    assert joined > 0 and left > 0  # the check covered both


# --------------------------------------------------------------------------- SuperSuit


def supersuit_vec(view: str = "flat", num_vec_envs: int = 1):
    ss = pytest.importorskip("supersuit")
    vec = ss.pettingzoo_env_to_vec_env_v1(
        ss.black_death_v3(population.parallel_env(config=config(view)))
    )
    return ss.concat_vec_envs_v1(vec, num_vec_envs=num_vec_envs, base_class="gymnasium")


def test_supersuit_black_death_vec_env_on_the_flat_view():
    env = supersuit_vec("flat")
    single = gym.make(recoworld.ENV_ID, observation="flat", config=WORLD)
    assert env.num_envs == N_USERS  # one row per user
    assert env.observation_space == single.observation_space
    assert env.action_space == single.action_space
    obs, infos = env.reset(seed=0)
    assert obs.shape == (N_USERS, *single.observation_space.shape) and obs.dtype == np.float32
    assert len(infos) == N_USERS

    # the same users, seed and actions on the native env: rows are possible_agents in order
    native = population.parallel_env(config=config("flat"))
    ref, _ = native.reset(seed=0)
    np.testing.assert_array_equal(obs, np.stack([ref[a] for a in native.possible_agents]))

    rng = np.random.default_rng(1)
    m, k = single.action_space.nvec[0], len(single.action_space)
    steps = 0
    while True:
        actions = np.stack([rng.permutation(m)[:k] for _ in range(N_USERS)])
        obs, rew, term, trunc, infos = env.step(actions)
        steps += 1
        done = term | trunc
        if done.all():
            break
        assert not done.any()  # black death: no single user's end is reported
        present = native.agents
        ref, ref_rew, *_ = native.step(
            {a: actions[i] for i, a in enumerate(native.possible_agents) if a in present}
        )
        for i, agent in enumerate(native.possible_agents):
            if agent in present:
                assert rew[i] == pytest.approx(ref_rew[agent])
                np.testing.assert_array_equal(obs[i], ref[agent])
            else:  # gone: zeros and no reward
                assert rew[i] == 0.0 and not obs[i].any()
    # ended one step after the native population emptied: SuperSuit 3.11's `&` test
    # (SuperSuit issue #254; PR #265 makes it `|`, then this is `native._cycles`)
    assert native.agents == [] and steps <= MAX_CYCLES + 1
    assert steps == native._cycles + 1
    # auto-reset: the returned observation is a fresh population's
    assert obs.shape == (N_USERS, *single.observation_space.shape) and obs.any(axis=1).all()
    env.close()


def test_supersuit_concat_two_populations():
    env = supersuit_vec("flat", num_vec_envs=2)
    assert env.num_envs == 2 * N_USERS
    obs, _ = env.reset(seed=0)
    assert obs.shape[0] == 2 * N_USERS
    assert not np.array_equal(obs[:N_USERS], obs[N_USERS:])  # seeds 0 and 1
    for _ in range(5):
        obs, rew, term, trunc, _ = env.step(
            np.stack([env.action_space.sample() for _ in range(env.num_envs)])
        )
        assert rew.shape == term.shape == trunc.shape == (2 * N_USERS,)
        assert np.isfinite(obs).all() and np.isfinite(rew).all()
    env.close()


@pytest.mark.parametrize("view", ["features", "features+ids"])
def test_supersuit_needs_the_flat_view(view):
    """Dict views: ``black_death_v3`` rejects them; without it the vector env stops at the
    first user who leaves."""
    ss = pytest.importorskip("supersuit")
    with pytest.raises(AssertionError, match="must be Box"):
        supersuit_vec(view).reset(seed=0)

    vec = ss.pettingzoo_env_to_vec_env_v1(population.parallel_env(config=config(view)))
    vec.reset(seed=0)
    rng = np.random.default_rng(0)
    space = vec.action_space
    with pytest.raises(AssertionError, match="varying numbers of active agents"):
        for _ in range(MAX_CYCLES):
            vec.step(np.stack([rng.permutation(space.nvec[0])[: len(space)]
                               for _ in range(N_USERS)]))  # fmt: skip
    vec.close()


@pytest.mark.slow
def test_sb3_ppo_on_the_supersuit_vec_env():
    """SB3's PPO + ``MlpPolicy`` trains on the population through SuperSuit's SB3 vector env
    (one row per user; the usual PettingZoo + SB3 parameter-sharing recipe)."""
    ss = pytest.importorskip("supersuit")
    pytest.importorskip("stable_baselines3")
    from stable_baselines3 import PPO
    from stable_baselines3.common.utils import set_random_seed

    def make():
        vec = ss.pettingzoo_env_to_vec_env_v1(
            ss.black_death_v3(population.parallel_env(config=config("flat")))
        )
        return ss.concat_vec_envs_v1(vec, num_vec_envs=1, base_class="stable_baselines3")

    # SuperSuit 3.11's SB3 wrapper has no `seed`: PPO(seed=...) fails in set_random_seed
    with pytest.raises(AttributeError, match="has no attribute 'seed'"):
        PPO("MlpPolicy", make(), n_steps=32, batch_size=64, seed=0, device="cpu")

    set_random_seed(0)  # torch / numpy / random, what seed= would have done for the model
    env = make()
    assert env.num_envs == N_USERS
    model = PPO("MlpPolicy", env, n_steps=32, batch_size=64, device="cpu")
    model.learn(total_timesteps=2 * 32 * N_USERS)
    assert model.num_timesteps >= 2 * 32 * N_USERS and model._n_updates > 0
    for p in model.policy.parameters():
        assert np.isfinite(p.detach().cpu().numpy()).all()
    slates, _ = model.predict(env.reset(), deterministic=True)
    assert slates.shape == (N_USERS, WORLD["episode"]["slate_size"])
    env.close()

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st

import recoworld
from recoworld import RecoWorldEnv, RecoWorldVectorEnv

ENV_ID = "recoworld/RecoWorld-v0"


@pytest.mark.parametrize("catalog", ["synthetic", "movielens"])
def test_check_env_passes(catalog):
    env = gym.make(ENV_ID, catalog=catalog)
    check_env(env.unwrapped, skip_render_check=True)


def test_movielens_users_env_passes_check_env():
    env = gym.make(ENV_ID, catalog="movielens", config={"users": {"source": "movielens"}})
    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert obs["candidates"].shape == (20, 19 + 11)


def _rollout(env, seed, steps=60):
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(123)
    out = []
    for _ in range(steps):
        action = rng.permutation(env.action_space.nvec[0])[: len(env.action_space.nvec)]
        obs, reward, term, trunc, info = env.step(action)
        out.append((reward, term, trunc, tuple(info["item_ids"]), info["reasoning"],
                    obs["candidates"].sum()))  # fmt: skip
        if term or trunc:
            obs, _ = env.reset()
    return out


def test_same_seed_same_trajectory(small_config):
    a = _rollout(gym.make(ENV_ID, config=small_config), seed=5)
    b = _rollout(gym.make(ENV_ID, config=small_config), seed=5)
    c = _rollout(gym.make(ENV_ID, config=small_config), seed=6)
    assert a == b
    assert a != c


def test_single_env_is_the_b1_vector_env(small_config):
    single = gym.make(ENV_ID, config=small_config).unwrapped
    vec = RecoWorldVectorEnv(num_envs=1, config=small_config)
    o1, _ = single.reset(seed=9)
    o2, _ = vec.reset(seed=9)
    for _ in range(15):
        for key in o1:
            np.testing.assert_array_equal(o1[key], o2[key][0])
        a = np.array([0, 1, 2])
        o1, r1, t1, u1, _ = single.step(a)
        o2, r2, t2, u2, _ = vec.step(a[None])
        assert r1 == pytest.approx(float(r2[0])) and (t1, u1) == (bool(t2[0]), bool(u2[0]))
        if t1 or u1:
            break


def test_make_vec_uses_native_vector_env(small_config):
    envs = gym.make_vec(ENV_ID, num_envs=8, vectorization_mode="vector_entry_point",
                        config=small_config)  # fmt: skip
    assert isinstance(envs.unwrapped, RecoWorldVectorEnv)
    obs, info = envs.reset(seed=0)
    assert obs["candidates"].shape == (8, 10, small_config_dim(envs))
    assert envs.observation_space.contains(obs)
    obs, reward, term, trunc, info = envs.step(envs.action_space.sample())
    assert reward.shape == (8,) and info["click"].shape == (8, 3) and info["_click"].all()


def small_config_dim(envs) -> int:
    return envs.unwrapped.single_observation_space["candidates"].shape[1]


def test_vector_autoreset_next_step(small_config):
    cfg = small_config.model_copy(deep=True)
    cfg.users.leave_bias = 20.0  # everyone leaves at once ...
    cfg.users.instruction_prob = 0.0
    cfg.users.return_bias = -20.0  # ... and never comes back
    env = RecoWorldVectorEnv(num_envs=4, config=cfg, observation="features+ids")
    env.reset(seed=0)
    actions = np.tile(np.arange(3), (4, 1))
    _, reward, term, trunc, info = env.step(actions)
    assert term.all() and not trunc.any() and info["left"].all()
    ids_before = info["episode_id"].copy()
    obs, reward, term, trunc, info = env.step(actions)  # autoreset step
    assert (reward == 0).all() and not term.any() and not info["_click"].any()
    assert (info["episode_id"] > ids_before).all() and info["_episode_id"].all()
    assert (obs["counters"][:, 2] == 0).all()  # fresh users, no steps yet


def test_leaving_ends_the_session_and_returning_starts_the_next(small_config):
    cfg = small_config.model_copy(deep=True)
    cfg.users.leave_bias = 20.0
    cfg.users.instruction_prob = 0.0
    cfg.users.return_bias = 20.0
    env = RecoWorldEnv(config=cfg, observation="features+ids")
    obs, _ = env.reset(seed=1)
    sessions = []
    for _ in range(cfg.episode.max_sessions):
        obs, reward, term, trunc, info = env.step(np.array([0, 1, 2]))
        sessions.append(info["session"])
        assert info["left"] and info["session_end"] and info["returned"]
        assert reward == pytest.approx(
            info["reward_leave"]
            + info["reward_return_bonus"]
            + sum(info[f"reward_{k}"] for k in ("click", "watch", "like", "follow", "gift"))
        )
        if not trunc:
            assert obs["counters"][1] == 0  # a new session starts at step 0
    assert sessions == list(range(cfg.episode.max_sessions))
    assert trunc and not term


def test_session_cap_ends_a_session_without_leaving(small_config):
    cfg = small_config.model_copy(deep=True)
    cfg.users.leave_bias = -50.0
    cfg.users.return_bias = 50.0
    env = RecoWorldEnv(config=cfg)
    env.reset(seed=2)
    ended = []
    for _ in range(cfg.episode.max_session_steps):
        _, _, term, trunc, info = env.step(np.array([0, 1, 2]))
        ended.append(info["session_end"])
    assert ended == [False] * (cfg.episode.max_session_steps - 1) + [True]
    assert not info["left"] and info["reward_leave"] == 0 and not (term or trunc)


def test_duplicates_are_shown_once(small_config):
    env = RecoWorldEnv(config=small_config)
    env.reset(seed=3)
    _, _, _, _, info = env.step(np.array([4, 4, 2]))
    assert info["n_duplicates"] == 1 and info["shown"].tolist() == [True, False, True]
    assert not info["click"][1]


def test_bad_actions_are_rejected(small_config):
    env = RecoWorldEnv(config=small_config)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        env.step(np.array([0, 1, 10]))
    with pytest.raises(ValueError, match="expected shape"):
        env.step(np.array([0, 1]))


def test_render_ansi_and_text_info(small_config):
    env = gym.make(ENV_ID, config=small_config, render_mode="ansi")
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([0, 1, 2]))
    text = env.render()
    assert all(title in text for title in info["titles"])
    assert info["reasoning"] and info["mindset"] and "reward" in text
    with pytest.raises(ValueError, match="render_mode"):
        RecoWorldEnv(render_mode="human")


def test_gym_make_keyword_arguments(tmp_path, small_catalog):
    path = tmp_path / "w.yaml"
    path.write_text("episode:\n  slate_size: 4\n")
    env = gym.make(ENV_ID, config=str(path))
    assert env.action_space.shape == (4,)
    env = gym.make(ENV_ID, catalog=small_catalog)
    assert env.unwrapped.catalog is small_catalog
    with pytest.raises(Exception, match="simulator"):
        gym.make(ENV_ID, simulator="psychic")
    assert recoworld.ENV_ID in gym.registry


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    actions=st.lists(st.lists(st.integers(0, 9), min_size=3, max_size=3), min_size=1, max_size=40),
)
def test_env_invariants_under_arbitrary_slates(small_config, seed, actions):
    env = RecoWorldEnv(config=small_config, observation="features+ids")
    obs, _ = env.reset(seed=seed)
    total_steps = 0
    for a in actions:
        obs, reward, term, trunc, info = env.step(np.array(a))
        total_steps += 1
        assert env.observation_space.contains(obs)
        assert np.isfinite(reward)
        assert (obs["counters"] >= 0).all() and obs["counters"][2] == total_steps
        if info["left"]:
            assert info["session_end"]
        if term:
            assert info["session_end"] and not info["returned"]
        if trunc:
            assert info["session"] == small_config.episode.max_sessions - 1
        if term or trunc:
            break


def test_env_docstring_examples_run():
    import doctest

    import recoworld.envs.recoworld_env as module

    result = doctest.testmod(module, raise_on_error=False, verbose=False)
    assert result.attempted >= 4 and result.failed == 0


def test_gymnasium_sync_vectorization_also_works(small_config):
    envs = gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="sync", config=small_config)
    obs, _ = envs.reset(seed=0)
    for _ in range(20):
        obs, reward, term, trunc, info = envs.step(envs.action_space.sample())
        assert envs.observation_space.contains(obs) and reward.shape == (2,)


def test_import_keeps_numba_out_so_vllm_workers_can_start():
    """vLLM's spawned CPU workers re-import the main module and choke on llvmlite; importing
    the package (or its CLI) must not load numba/llvmlite."""
    import subprocess
    import sys

    code = ("import sys, recoworld, recoworld.cli, recoworld.evaluation.simulate, recoworld.llm; "
            "print('numba' in sys.modules, 'llvmlite' in sys.modules)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_items_and_recent_items_track_candidates_and_clicks(small_config):
    cfg = small_config.model_copy(deep=True)
    cfg.episode.recent_items = 4
    envs = RecoWorldVectorEnv(num_envs=16, config=cfg, observation="features+ids")
    space = envs.single_observation_space
    assert space["candidate_ids"].shape == (10,) and space["candidate_ids"].dtype == np.int64
    assert space["recent_ids"].shape == (4,) and space["recent_ids"].start.min() == -1
    obs, _ = envs.reset(seed=2)
    assert (obs["recent_ids"] == -1).all()
    expected = [[] for _ in range(16)]  # clicked catalog indices per slot, newest first
    rng = np.random.default_rng(0)
    for _ in range(60):
        np.testing.assert_array_equal(obs["candidate_ids"], envs.world.cands)
        action = np.argsort(rng.random((16, 10)), axis=1)[:, :3]
        obs, _, term, trunc, info = envs.step(action)
        assert envs.observation_space.contains(obs)
        for b in range(16):
            if not info["_click"][b]:  # autoreset: a new user, no clicks yet
                expected[b] = []
            else:
                clicked = info["item_index"][b][info["click"][b]].tolist()
                expected[b] = (clicked + expected[b])[:4]
            row = expected[b] + [-1] * (4 - len(expected[b]))
            np.testing.assert_array_equal(obs["recent_ids"][b], row)
    assert (obs["recent_ids"] >= 0).any()


def test_vector_autoreset_disabled_resets_only_masked_slots(small_config):
    """autoreset_mode='Disabled': ended slots wait (reward 0, done repeated, not simulated)
    until reset(options={"reset_mask": ...}) gives them new users; other slots keep theirs."""
    from gymnasium.vector import AutoresetMode

    cfg = small_config.model_copy(deep=True)
    cfg.users.leave_bias = 20.0  # everyone leaves at once ...
    cfg.users.instruction_prob = 0.0
    cfg.users.return_bias = -20.0  # ... and never comes back
    env = RecoWorldVectorEnv(num_envs=4, config=cfg, autoreset_mode="Disabled")
    assert env.autoreset_mode == AutoresetMode.DISABLED
    assert env.metadata["autoreset_mode"] == AutoresetMode.DISABLED
    env.reset(seed=0)
    actions = np.tile(np.arange(3), (4, 1))
    _, _, term, trunc, info = env.step(actions)
    assert term.all() and not trunc.any()
    ids = info["episode_id"].copy()
    _, reward, term, trunc, info = env.step(actions)  # no autoreset: still ended
    assert (reward == 0).all() and term.all() and not info["_click"].any()
    assert (info["episode_id"] == ids).all()
    mask = np.array([True, False, True, False])
    obs, info = env.reset(options={"reset_mask": mask})
    assert (info["_episode_id"] == mask).all() and (info["episode_id"][mask] > ids.max()).all()
    assert obs["candidates"].shape[0] == 4
    _, _, term, _, info = env.step(actions)
    assert (info["_click"] == mask).all()  # only the new users were simulated
    with pytest.raises(ValueError, match="autoreset_mode"):
        RecoWorldVectorEnv(num_envs=2, config=cfg, autoreset_mode="SameStep")
    with pytest.raises(ValueError, match="reset_mask"):
        env.reset(options={"reset_mask": np.ones(3, bool)})

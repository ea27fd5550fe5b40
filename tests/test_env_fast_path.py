"""The single-user fast path (``recoworld.envs.single_step``) and the PettingZoo API's
per-agent dicts change no trajectory: recorded digests of trajectories of the unmodified code
(commit 193b890), and the fast path step by step against ``World.step`` (B = 1)."""

from __future__ import annotations

import hashlib
import pickle
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from recoworld import RecoWorldEnv, RecoWorldVectorEnv
from recoworld.envs.population.config import PopulationConfig
from recoworld.envs.population.population import PopulationEnv

SMALL = {
    "catalog": {"synthetic": {"n_items": 600, "n_topics": 8, "n_creators": 40}},
    "candidates": {"n_candidates": 10},
    "episode": {"slate_size": 3, "max_sessions": 3, "max_session_steps": 12},
}


def _with_text(text: str, **episode: Any) -> dict:
    return {**SMALL, "episode": {**SMALL["episode"], "text_info": text, **episode}}


def _update(h: Any, value: Any, lists: bool = False) -> None:
    """Hash ``value``: dicts by sorted key, arrays by dtype and bytes, lists item by item
    (``lists``) or by repr, anything else by repr."""
    if isinstance(value, dict):
        for key in sorted(value):
            h.update(key.encode())
            _update(h, value[key], lists)
    elif isinstance(value, np.ndarray):
        h.update(str(value.dtype).encode())
        h.update(np.ascontiguousarray(value).tobytes())
    elif lists and isinstance(value, list):
        for v in value:
            _update(h, v, lists)
    else:
        h.update(repr(value).encode())


def cpu_signature() -> str:
    """What the recorded digests' float bits depend on: the CPU numba compiles for, the SIMD
    features numpy dispatches on, numpy's version."""
    import llvmlite.binding as llvm
    from numpy._core._multiarray_umath import __cpu_features__

    enabled = sorted(k for k, v in __cpu_features__.items() if v)
    text = llvm.get_host_cpu_name() + ",".join(enabled) + np.__version__
    return hashlib.sha256(text.encode()).hexdigest()[:16]


RECORDED_ON = "cfe1f4ec65587904"  # rocketlake, numpy 2.3 (the development VM)
same_cpu = pytest.mark.skipif(
    cpu_signature() != RECORDED_ON,
    reason="the digests were recorded on another CPU / numpy build (float bits may differ); "
    "the step-by-step comparisons with World.step below still run",
)


def _single_digest(config: dict | None, observation: str, n_steps: int = 400) -> str:
    env = RecoWorldEnv(config=config, observation=observation)
    h = hashlib.sha256()
    obs, info = env.reset(seed=7)
    _update(h, obs)
    _update(h, info)
    m, k = env.world.n_candidates, env.world.slate_size
    for a in np.random.default_rng(123).integers(0, m, size=(n_steps, k)):
        obs, reward, term, trunc, info = env.step(a)
        _update(h, obs)
        h.update(repr([reward, term, trunc]).encode())
        _update(h, info)
        if term or trunc:
            obs, info = env.reset()
            _update(h, obs)
            _update(h, info)
    return h.hexdigest()


# Recorded on the code before the fast path (x86-64, numpy 2.3, numba 0.65): observations
# (every key, bytes), rewards, flags and every info entry of 400 steps of random slates with
# duplicates (instructions, returns, new users included).
SINGLE_DIGESTS = [
    (SMALL, "features+ids", "83cc43bfcb9de30f35437956c0d84c056dd96e345076583d1ca1ca629a18b7a8"),
    (_with_text("none"), "features",
     "93105b9e7093a2461e15e7558826794bb4864f314147e93f3d8a3afd9705bece"),
    (_with_text("instructions"), "flat",
     "9b314f3348190ca14cc699c04211464429de1aa8e9db55fe7bf929ec697901dc"),
    (None, "features+ids", "7e471b526e99f9a4846aefab7c284f9e11376f3846920fcee9679e61a68e91a1"),
]  # fmt: skip


@same_cpu
@pytest.mark.parametrize(("config", "observation", "digest"), SINGLE_DIGESTS)
def test_single_env_trajectory_is_bit_identical_to_the_recorded_one(config, observation, digest):
    env = RecoWorldEnv(config=config, observation=observation)
    assert env._fast is not None  # the fast path is what this checks
    assert _single_digest(config, observation) == digest


def _object_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.dtype == object


@same_cpu
def test_vector_env_trajectory_is_bit_identical_to_the_recorded_one():
    env = RecoWorldVectorEnv(num_envs=4, config=SMALL, observation="features+ids")
    h = hashlib.sha256()
    obs, info = env.reset(seed=3)
    _update(h, obs)
    _update(h, info)
    slates = np.random.default_rng(5).integers(0, 10, size=(200, 4, 3))
    for a in slates:
        obs, reward, term, trunc, info = env.step(a)
        for part in (obs, reward, term, trunc):
            _update(h, part)
        _update(h, {k: v for k, v in info.items() if not _object_array(v)})
    assert h.hexdigest() == "a2101c302ef9296bf27e19927f989c16ddf247e1bc137183b517412e2085adfb"


POPULATION_DIGESTS = [
    ("features+ids", "e5ddd0bead767ee70c6459a71ca8b028c272208909d672b8578865a63cfa3dc9"),
    ("features", "fd25e13465936a0b23c2bbd663f83a4eaff49e9298d4b7bb2723f6e4424284a6"),
    ("flat", "87a7d381a16cf2359936502614377ca7c3b9d6b4434661c16b81775cf5f8af71"),
]


@same_cpu
@pytest.mark.parametrize(("view", "digest"), POPULATION_DIGESTS)
def test_pettingzoo_api_outputs_are_identical_to_the_recorded_ones(view, digest):
    world = {
        "catalog": {"synthetic": {"n_items": 300, "n_creators": 30, "seed": 3}},
        "candidates": {"n_candidates": 10},
        "episode": {"slate_size": 3, "text_info": "instructions"},
        "observation": view,
    }
    cfg = {"world": world, "n_users": 8, "capacity": 12, "arrival_rate": 0.5, "max_cycles": 40}
    env = PopulationEnv(PopulationConfig.model_validate(cfg))
    h = hashlib.sha256()
    obs, infos = env.reset(seed=1)
    _update(h, obs, lists=True)
    _update(h, infos, lists=True)
    rng = np.random.default_rng(9)
    while env.agents:
        out = env.step({a: rng.integers(0, 10, size=3) for a in env.agents})
        for part in out:
            _update(h, part, lists=True)
        _update(h, env.agents, lists=True)
    assert h.hexdigest() == digest


# --------------------------------------------------------------------------- against World


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        return (
            isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and a.tobytes() == b.tobytes()
        )
    return type(a) is type(b) and repr(a) == repr(b)


CONFIGS = [
    SMALL,
    _with_text("none"),
    _with_text("instructions"),
    # every session is the last: truncations
    _with_text("none", max_sessions=1, max_session_steps=4),
    {**SMALL, "users": {"patience_mean": 0.2, "instruction_prob": 0.9}},
]


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("observation", ["features+ids", "flat"])
def test_fast_path_matches_the_batched_world_step_by_step(config, observation):
    _compare_with_world(config, observation)


def test_fast_path_with_the_history_in_numpy_matches_the_batched_world():
    """Catalogs of more than 128 topics take the history's features from numpy."""
    _compare_with_world(SMALL, "features+ids", numpy_history=True)


def _compare_with_world(config: dict, observation: str, numpy_history: bool = False) -> None:
    fast = RecoWorldEnv(config=config, observation=observation)
    slow = RecoWorldEnv(config=config, observation=observation)
    assert fast._fast is not None
    fast._fast._small_history = not numpy_history
    slow._fast = None  # World.reset / World.step with B = 1
    slow.world.set_compiled(False)  # ... on the numpy reference path
    events = {"term": 0, "trunc": 0, "instructed": 0, "returned": 0, "click": 0}
    a, b = fast.reset(seed=11), slow.reset(seed=11)
    assert _same(a, b)
    rng = np.random.default_rng(2)
    m, k = fast.world.n_candidates, fast.world.slate_size
    for step in range(300):
        action = rng.integers(0, m, size=k)
        a, b = fast.step(action), slow.step(action)
        assert _same(a, b), f"step {step}"
        _, _, term, trunc, info = a
        events["term"] += term
        events["trunc"] += trunc
        events["instructed"] += info["instructed"]
        events["returned"] += info["returned"]
        events["click"] += bool(info["click"].any())
        if term or trunc:
            seed = 100 + step if step % 3 == 0 else None  # seeded and unseeded resets
            assert _same(fast.reset(seed=seed), slow.reset(seed=seed))
    assert events["term"] + events["trunc"] > 0 and events["click"] > 0


def test_fast_path_covers_every_event():
    """The configs above reach every rare event the fast path hands to numpy."""
    seen = {"trunc": False, "instructed": False, "returned": False}
    for config in CONFIGS:
        env = RecoWorldEnv(config=config)
        env.reset(seed=11)
        rng = np.random.default_rng(2)
        for _ in range(300):
            _, _, term, trunc, info = env.step(rng.integers(0, 10, size=3))
            seen["trunc"] |= trunc
            seen["instructed"] |= info["instructed"]
            seen["returned"] |= info["returned"]
            if term or trunc:
                env.reset()
    assert all(seen.values()), seen


def test_fast_path_is_used_only_where_it_applies():
    assert RecoWorldEnv(config=SMALL)._fast is not None
    assert RecoWorldEnv(config=SMALL, render_mode="ansi")._fast is None
    truth = {**SMALL, "episode": {**SMALL["episode"], "ground_truth_info": True}}
    assert RecoWorldEnv(config=truth)._fast is None


def test_observations_handed_out_are_fresh_arrays():
    """The fast path writes into buffers; what the env hands out must not change later."""
    env = RecoWorldEnv(config=SMALL, observation="features+ids")
    obs0, _ = env.reset(seed=0)
    kept = [pickle.dumps(obs0)]
    history = [obs0]
    for _ in range(30):
        obs, *_rest, info = env.step(env.action_space.sample())
        history.append(obs)
        kept.append(pickle.dumps(obs))
        info["click"][:] = True  # the caller's copy: the next step must not see it
    assert all(pickle.dumps(o) == p for o, p in zip(history, kept, strict=True))
    buffers = env._fast.obs
    assert all(not np.shares_memory(v, buffers[k]) for o in history for k, v in o.items())


def test_fast_path_rejects_bad_actions_like_the_world():
    env = RecoWorldEnv(config=SMALL)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="candidate indices must lie in"):
        env.step(np.array([0, 1, 10]))
    with pytest.raises(ValueError, match="expected shape"):
        env.step(np.array([0, 1]))
    with pytest.raises(ValueError, match="integer candidate indices"):
        env.step(np.array([0.5, 1.0, 2.0]))
    obs, *_ = env.step([0.0, 1.0, 2.0])  # integral floats and lists are accepted
    assert env.observation_space.contains(obs)


def test_gym_make_wrappers_and_vector_envs_over_the_fast_path():
    env = gym.make("recoworld/RecoWorld-v0", config=SMALL)
    assert env.unwrapped._fast is not None
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs)
    envs = gym.vector.SyncVectorEnv(
        [lambda: gym.make("recoworld/RecoWorld-v0", config=SMALL) for _ in range(3)]
    )
    obs, _ = envs.reset(seed=0)
    for _ in range(20):
        obs, *_ = envs.step(envs.action_space.sample())
    assert envs.observation_space.contains(obs)


@pytest.mark.parametrize("contiguous", [True, False])
def test_a_replaced_state_array_is_rebound_or_handed_to_the_world(contiguous):
    """A state array replaced between steps (not written into) is noticed: the fast path
    binds the new one, or, if the kernel cannot take its layout, the env goes on with
    World.step; either way the trajectory is the batched world's."""
    fast = RecoWorldEnv(config=SMALL)
    slow = RecoWorldEnv(config=SMALL)
    slow._fast = None
    slow.world.set_compiled(False)
    fast.reset(seed=4)
    slow.reset(seed=4)
    rng = np.random.default_rng(0)
    for step in range(60):
        if step == 10:
            for env in (fast, slow):
                st = env.world.state
                wide = np.zeros((1, 2 * st.interest.shape[1]), np.float32)
                wide[:, ::2] = st.interest
                st.interest = st.interest.copy() if contiguous else wide[:, ::2]
        action = rng.integers(0, 10, size=3)
        a, b = fast.step(action), slow.step(action)
        assert _same(a, b), f"step {step}"
        if a[2] or a[3]:
            assert _same(fast.reset(), slow.reset())
    assert (fast._fast is not None) == contiguous

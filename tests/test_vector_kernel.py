"""The batched world's compiled step (``recoworld.envs.batch_step``) changes no trajectory:
recorded digests of trajectories of the unmodified code (commit f3864f9), and the compiled
step, step by step, against the reference numpy path (``World(..., fast=False)``)."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pytest
from test_env_fast_path import _same, _update, same_cpu

from recoworld import RecoWorldVectorEnv
from recoworld.envs.population.config import PopulationConfig
from recoworld.envs.population.population import Population

SMALL = {
    "catalog": {"synthetic": {"n_items": 600, "n_topics": 8, "n_creators": 40}},
    "candidates": {"n_candidates": 10},
    "episode": {"slate_size": 3, "max_sessions": 3, "max_session_steps": 12},
}


def _config(text: str = "none", users: dict | None = None, **episode: Any) -> dict:
    cfg = {**SMALL, "episode": {**SMALL["episode"], "text_info": text, **episode}}
    return {**cfg, "users": users} if users else cfg


VECTOR_CONFIGS = {
    "none": _config(),
    "instructions": _config("instructions"),
    "impatient": _config(users={"patience_mean": 0.2, "instruction_prob": 0.9}),
    "truncating": _config(max_sessions=1, max_session_steps=4),
}


def _object_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.dtype == object


def _vector_digest(config: dict, mode: str = "NextStep", n: int = 16, steps: int = 150) -> str:
    env = RecoWorldVectorEnv(
        num_envs=n, config=config, observation="features+ids", autoreset_mode=mode
    )
    h = hashlib.sha256()
    obs, info = env.reset(seed=3)
    _update(h, obs)
    _update(h, info)
    rng = np.random.default_rng(5)
    for step in range(steps):
        a = rng.integers(0, 10, size=(n, 3))
        obs, reward, term, trunc, info = env.step(a)
        for part in (obs, reward, term, trunc):
            _update(h, part)
        _update(h, {k: v for k, v in info.items() if not _object_array(v)})
        if mode == "Disabled" and step % 5 == 4:
            obs, info = env.reset(options={"reset_mask": term | trunc})
            _update(h, obs)
            _update(h, {k: v for k, v in info.items() if not _object_array(v)})
    return h.hexdigest()


def _population_config(arrivals: float = 0.5) -> PopulationConfig:
    world = {
        "catalog": {"synthetic": {"n_items": 400, "n_topics": 8, "n_creators": 30, "seed": 3}},
        "candidates": {"n_candidates": 10},
        "episode": {"slate_size": 2, "text_info": "none"},
    }
    return PopulationConfig.model_validate(
        {
            "world": world,
            "n_users": 24,
            "capacity": 40,
            "arrival_rate": arrivals,
            "max_cycles": 200,
            "social": {"degree": 4, "rewire": 0.1, "share_probability": 0.25, "slots": 1},
            "trending": {"slots": 2},
            "publishing": {"reserve": 50, "rate": 1.0, "follower_slots": 1},
        }
    )


def _population_digest(steps: int = 60) -> str:
    pop = Population(_population_config())
    h = hashlib.sha256()
    _update(h, pop.reset(3))
    rng = np.random.default_rng(8)
    for _ in range(steps):
        out = pop.step(rng.integers(0, 10, size=(pop.capacity, 2)))
        for part in out:
            if isinstance(part, dict):
                part = {k: v for k, v in part.items() if not _object_array(v)}
            _update(h, part)
        _update(h, pop.alive)
    return h.hexdigest()


# Recorded on the code before the compiled batched step (commit f3864f9, x86-64 rocketlake,
# numpy 2.3, numba 0.65): observations (every key, bytes), rewards, flags and every
# non-text info entry.
VECTOR_DIGESTS = {
    ("none", "NextStep"): "d45d33bf918d78332790e3d5d652a2e23aee5ef26a836f09cf77fdb355957a66",
    (
        "instructions",
        "NextStep",
    ): "bc5fd42896874960567b528289b9cb5dcc42590255f57129904f7d979eb1c87e",
    ("impatient", "NextStep"): "0ef084db3e0222d2b86b77bfd4fabbbeb9fcc5697e517b3b5607b26482a1e6ef",
    ("truncating", "NextStep"): "83dec2922d559e907f1c00822c89dd5189864f3c2c1922fd1c6327a8608e37ab",
    ("impatient", "Disabled"): "68d1321f8aed67bb099af9a73046e273cd13ddfe0d694b8fc3062f93cf401b9e",
}
POPULATION_DIGEST = "b481ed5a73b6fe825300c61d567fa89902dd412bd80be08f2815538f43ddd317"


@same_cpu
@pytest.mark.parametrize(("name", "mode"), list(VECTOR_DIGESTS))
def test_vector_env_trajectory_is_bit_identical_to_the_recorded_one(name, mode):
    assert _vector_digest(VECTOR_CONFIGS[name], mode) == VECTOR_DIGESTS[(name, mode)]


@same_cpu
def test_population_trajectory_is_bit_identical_to_the_recorded_one():
    assert _population_digest() == POPULATION_DIGEST


# --------------------------------------------------------------------------- against numpy


def _same_info(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same_info(a[k], b[k]) for k in a)
    if _object_array(a):
        return _object_array(b) and a.tolist() == b.tolist()
    return _same(a, b)


@pytest.mark.parametrize("mode", ["NextStep", "Disabled"])
@pytest.mark.parametrize("name", list(VECTOR_CONFIGS))
def test_compiled_step_matches_the_numpy_path_step_by_step(name, mode):
    envs = [
        RecoWorldVectorEnv(num_envs=12, config=VECTOR_CONFIGS[name], observation="features+ids",
                           autoreset_mode=mode)
        for _ in range(2)
    ]  # fmt: skip
    envs[1].world.set_compiled(False)
    assert _same_info(*(e.reset(seed=3) for e in envs))
    assert envs[0].world.compiled and not envs[1].world.compiled
    rng = np.random.default_rng(5)
    ended = 0
    for step in range(120):
        a = rng.integers(0, 10, size=(12, 3))
        out = [e.step(a) for e in envs]
        assert _same_info(out[0], out[1]), f"step {step}"
        ended += int((out[0][2] | out[0][3]).sum())
        if mode == "Disabled" and step % 5 == 4:
            mask = out[0][2] | out[0][3]
            assert _same_info(*(e.reset(options={"reset_mask": mask}) for e in envs))
    assert ended > 0


def test_population_compiled_step_matches_the_numpy_path():
    pops = [Population(_population_config()) for _ in range(2)]
    pops[1].world.set_compiled(False)
    assert _same_info(*(p.reset(3) for p in pops))
    rng = np.random.default_rng(8)
    for step in range(60):
        a = rng.integers(0, 10, size=(pops[0].capacity, 2))
        out = [p.step(a) for p in pops]
        assert _same_info(out[0], out[1]), f"step {step}"
        assert _same(pops[0].alive, pops[1].alive)
    assert pops[0].world.compiled


def test_compiled_step_applies_only_where_it_can():
    env = RecoWorldVectorEnv(num_envs=2, config=_config("all"))
    env.reset(seed=0)
    assert not env.world.compiled  # per-user text: the numpy path
    truth = _config(ground_truth_info=True)
    env = RecoWorldVectorEnv(num_envs=2, config=truth)
    env.reset(seed=0)
    assert not env.world.compiled


def test_observations_handed_out_are_never_written_later():
    env = RecoWorldVectorEnv(num_envs=6, config=VECTOR_CONFIGS["impatient"],
                             observation="features+ids")  # fmt: skip
    obs, _ = env.reset(seed=0)
    kept = [(obs, {k: v.copy() for k, v in obs.items()})]
    rng = np.random.default_rng(1)
    for _ in range(30):
        obs, *_ = env.step(rng.integers(0, 10, size=(6, 3)))
        kept.append((obs, {k: v.copy() for k, v in obs.items()}))
    assert all(_same(o, c) for o, c in kept)


def test_state_bytes_per_user():
    """What ``docs/results/benchmarks.md`` reports: the simulator's and the platform's
    state arrays per user (the benchmark world: 5,000 items, 20 topics, 300 creators)."""
    from recoworld.evaluation.throughput import WORLD

    env = RecoWorldVectorEnv(num_envs=8, config=WORLD)
    env.reset(seed=0)
    w = env.world
    arrays = [*vars(w.state).values(), *vars(w.platform).values()]
    per_user = sum(a.nbytes for a in arrays) / 8
    assert 4000 < per_user < 6000, per_user


def test_a_hooked_simulator_is_stepped_by_the_numpy_path():
    """A hook on the simulator (e.g. a fidelity probe wrapping ``respond``) is called: the
    compiled step and the single-user fast path would bypass it, so they stand aside."""
    import gymnasium as gym

    env = RecoWorldVectorEnv(num_envs=4, config=_config("none"))
    env.reset(seed=0)
    assert env.world.compiled
    sim = env.world.simulator
    seen: list[Any] = []
    original = sim.respond
    sim.respond = lambda *a, **kw: seen.append(1) or original(*a, **kw)
    assert not env.world.compiled
    env.step(np.tile(np.arange(3), (4, 1)))
    assert seen == [1]
    single = gym.make("recoworld/RecoWorld-v0", config=_config("none")).unwrapped
    single.reset(seed=0)
    assert single._fast is not None
    calls: list[Any] = []
    inner = single.world.simulator.respond
    single.world.simulator.respond = lambda *a, **kw: calls.append(1) or inner(*a, **kw)
    single.step(np.arange(3))
    assert calls == [1] and single._fast is None

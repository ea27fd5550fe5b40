"""The task suite: registry and Gymnasium ids, frozen parameters, the oracle lenses, the
phenomenon check (at a small size) and normalized scores."""

from __future__ import annotations

import hashlib
import json
import shutil

import gymnasium as gym
import numpy as np
import pytest
import yaml
from gymnasium.utils.env_checker import check_env

import recoworld
from recoworld.envs.vector_env import RecoWorldVectorEnv
from recoworld.tasks import all_tasks, load_task
from recoworld.tasks.check import check_phenomenon, normalized_score, reference_scores
from recoworld.tasks.oracles import LENSES, TaskOracle, new_items
from recoworld.tasks.spec import read_task, write_reference

GYM_TASKS = [
    "ColdStart-v0", "Creators-v0", "Instructions-v0", "MovieLens-v0", "MovieLens-v1",
    "NoveltyIntent-v0",
]  # fmt: skip
# sha256 (first 16 hex) of what defines each task: its world (or population) and the fields
# of its proof and protocol (FROZEN_FIELDS). A task never changes once learners have seen it:
# a change fails here; make a new version file instead. (Adding an algorithm to compare, with
# its pre-registered expectation, is not a change of the task.)
FROZEN_FIELDS = (
    "name", "version", "exploit", "blind", "margin", "budget_steps", "eval_users",
    "eval_episodes", "check_seeds",
)  # fmt: skip
FROZEN = {
    "ColdStart-v0": "d679858dbaf363da",
    "Creators-v0": "7a0a4c6f49e2461c",
    "Instructions-v0": "b554b61fc870025d",
    "MovieLens-v0": "9d688abbcc272974",
    "MovieLens-v1": "93f85661d9340a57",
    "NoveltyIntent-v0": "27367a3ba4ba542f",
    "Population-v0": "ab2db047485d6903",
}


def test_every_task_is_registered_and_frozen() -> None:
    ids = sorted(e for e in gym.registry if e.startswith("recoworld/") and e != recoworld.ENV_ID)
    assert ids == [f"recoworld/{k}" for k in GYM_TASKS]
    for task in all_tasks():
        raw = yaml.safe_load(task.path.read_text())
        frozen = {k: raw[k] for k in ("world", "population") if k in raw}
        frozen["task"] = {k: getattr(task, k) for k in FROZEN_FIELDS}
        digest = hashlib.sha256(json.dumps(frozen, sort_keys=True).encode()).hexdigest()[:16]
        assert FROZEN[task.key] == digest, (
            f"{task.key} changed: make {task.name}-v{task.version + 1}"
        )
        assert task.reference is not None and task.reference.valid, task.key
        assert task.reference.seeds == task.check_seeds
        assert set(task.expected) == set(task.algorithms), task.key
    assert sorted(t.key for t in all_tasks()) == sorted([*GYM_TASKS, "Population-v0"])


@pytest.mark.parametrize("key", GYM_TASKS)
def test_task_env_passes_check_env_and_vectorizes(key: str) -> None:
    env = gym.make(f"recoworld/{key}")
    check_env(env.unwrapped)
    assert env.unwrapped.config == load_task(key).world_config()
    env.close()
    venv = gym.make_vec(f"recoworld/{key}", num_envs=3, vectorization_mode="vector_entry_point")
    obs, _ = venv.reset(seed=0)
    venv.step(venv.action_space.sample())
    assert obs["candidates"].shape[0] == 3
    venv.close()


def test_task_file_errors(tmp_path) -> None:
    src = load_task("Creators-v0").path
    wrong = tmp_path / "Creators-v7.yaml"
    shutil.copy(src, wrong)
    with pytest.raises(ValueError, match="file name says Creators-v7"):
        read_task(wrong)
    with pytest.raises(ValueError, match="unknown task 'Nope-v0'"):
        load_task("Nope-v0")


def test_write_reference_keeps_the_file_and_replaces_the_section(tmp_path, monkeypatch) -> None:
    task = load_task("Instructions-v0")
    copy = tmp_path / task.path.name
    shutil.copy(task.path, copy)
    local = task.model_copy(update={"path": copy})
    head = copy.read_text().split("# Written by")[0]
    ref = task.reference.model_copy(update={"required": 1.5})
    write_reference(local, ref)
    write_reference(local, ref)  # twice: replaced, not appended
    text = copy.read_text()
    assert text.startswith(head) and text.count("reference:") == 1
    assert read_task(copy).reference.required == 1.5


def _world_with_state(key: str, steps: int = 12):
    env = RecoWorldVectorEnv(num_envs=8, config=load_task(key).world_config())
    obs, _ = env.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        obs, *_ = env.step(np.stack([rng.permutation(20)[:3] for _ in range(8)]))
    return env


def test_lenses_differ_from_the_oracle_only_where_they_should() -> None:
    env = _world_with_state("Instructions-v0", steps=25)
    w = env.world
    terms = w.simulator.utility_components(w.state, w.cands)
    full = LENSES["oracle"](TaskOracle(w, "oracle"), w.state, w.cands, terms)
    no_instr = LENSES["no_instruction"](TaskOracle(w, "no_instruction"), w.state, w.cands, terms)
    active = w.state.instruction_age < w.simulator.config.instruction_memory
    assert active.any() and (~active).any()
    np.testing.assert_allclose(no_instr[~active], full[~active], atol=1e-5)
    assert np.abs(no_instr[active] - full[active]).max() > 0.1
    # static novelty == oracle for users whose session propensity equals the static one
    w.state.novelty_session[:4] = w.state.novelty_static[:4]
    terms = w.simulator.utility_components(w.state, w.cands)
    static = LENSES["static_novelty"](TaskOracle(w, "static_novelty"), w.state, w.cands, terms)
    np.testing.assert_allclose(static[:4], terms[2][:4], atol=1e-4)
    # the population lens: the same item scores the same for every user who never clicked it
    pop = LENSES["population"](TaskOracle(w, "population"), w.state, w.cands, terms)
    item = int(w.cands[0, 0])
    comps = terms[0]
    rows, cols = np.nonzero(w.cands == item)
    clicked = w.state.was_consumed(w.cands)[rows, cols]
    assert np.allclose(pop[rows, cols][~clicked], pop[rows[~clicked][0], cols[~clicked][0]])
    assert np.allclose(pop, comps[..., 2] + comps[..., 7] + terms[2] - comps.sum(-1), atol=1e-5)
    env.close()


def test_old_quality_lens_hides_only_new_items_quality() -> None:
    env = _world_with_state("ColdStart-v0", steps=3)
    w = env.world
    oracle = TaskOracle(w, "old_quality")
    new = new_items(w)
    assert new.sum() == w.config.candidates.fresh_window
    terms = w.simulator.utility_components(w.state, w.cands)
    blind = LENSES["old_quality"](oracle, w.state, w.cands, terms)
    is_new = new[w.cands]
    assert is_new.any() and (~is_new).any()
    np.testing.assert_allclose(blind[~is_new], terms[2][~is_new], atol=1e-5)
    assert np.abs(blind[is_new] - terms[2][is_new]).max() > 0.1
    slate = oracle.act(env.world._observe())
    assert slate.shape == (8, 3) and all(len(set(r)) == 3 for r in slate.tolist())
    with pytest.raises(ValueError, match="unknown oracle lens"):
        TaskOracle(w, "telepathy")
    env.close()


def test_normalized_score_anchors() -> None:
    assert normalized_score(10.0, 10.0, 30.0) == 0.0
    assert normalized_score(30.0, 10.0, 30.0) == 100.0
    assert normalized_score(20.0, 10.0, 30.0) == 50.0
    assert normalized_score(5.0, 10.0, 30.0) == -25.0
    assert np.isnan(normalized_score(1.0, 2.0, 2.0))


@pytest.mark.parametrize("key", GYM_TASKS)
def test_phenomenon_check_passes_at_a_small_size(key: str) -> None:
    """The exploiting oracle beats the blind one by the task's margin (3 seeds x 150 lives;
    the full check, 5 seeds x 200 lives, is in the task file's reference section)."""
    task = load_task(key)
    result = check_phenomenon(task, seeds=[1000, 1001, 1002], episodes=150, users=64)
    assert result["valid"], result["difference"]
    assert result["normalized"]["mean_return"]["random"] == 0.0
    assert result["normalized"]["mean_return"]["exploit"] == pytest.approx(100.0)
    ref = reference_scores(result)
    assert ref.valid and ref.seeds == [1000, 1001, 1002]


def test_population_task_is_a_pettingzoo_env_and_its_phenomenon_holds() -> None:
    from pettingzoo.test import parallel_api_test

    from recoworld.tasks.population import coupled_slots, parallel_env, population_config

    task = load_task("Population-v0")
    assert task.kind == "pettingzoo" and coupled_slots(population_config(task)) == 5
    env = parallel_env("Population-v0", n_users=12, max_cycles=20)
    parallel_api_test(env, num_cycles=20)
    env.close()
    result = check_phenomenon(task)  # the full check: 5 seeds x 256 users, ~5 s
    assert result["valid"], result["difference"]
    assert result["difference"]["mean"] == pytest.approx(task.reference.difference["mean"], 1e-3)

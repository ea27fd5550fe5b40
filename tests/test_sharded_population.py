"""The sharded population: same seed, same run, whatever the number of shards.

In process (``use_ray=False``) for speed: one block is exactly ``Population``; with a fixed
number of blocks, 1, 2 and 4 shards give identical observations, rewards, terminations and
infos, every coupling on (sharing across shard borders, trending, publishing, follower
slots, arrivals). One test runs the shards as Ray actors in a subprocess (its own local Ray,
so it never meets the Ray instance other tests start). The two-node cluster is in
``test_ray_cluster.py``."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test

from recoworld.envs.population.config import PopulationConfig
from recoworld.envs.population.population import Population, PopulationEnv
from recoworld.envs.population.sharded import (
    ReplayedUniforms,
    ShardedPopulation,
    ShardedPopulationEnv,
    block_ranges,
    block_seed,
    shard_blocks,
)

ROOT = Path(__file__).resolve().parents[1]
WORLD = {
    "catalog": {"synthetic": {"n_items": 300, "n_creators": 30, "seed": 3}},
    "candidates": {"n_candidates": 10},
    "episode": {"slate_size": 3, "text_info": "none"},
}
COUPLED = {
    "world": WORLD,
    "n_users": 24,
    "capacity": 32,
    "arrival_rate": 0.6,
    "social": {"share_probability": 0.6, "degree": 4, "rewire": 0.3},
    "trending": {"slots": 2},
    "publishing": {"reserve": 40, "rate": 1.0, "every": 2, "follower_slots": 1},
}


def config(**overrides) -> PopulationConfig:
    data = copy.deepcopy(COUPLED)
    data.update(overrides)
    return PopulationConfig.model_validate(data)


def trajectory(pop, steps: int = 30, seed: int = 7) -> list[tuple]:
    """Random slates (fixed stream) through ``step`` + ``arrivals``; everything returned."""
    obs = pop.reset(seed)
    out = [({k: v.copy() for k, v in obs.items()},)]
    rng = np.random.default_rng(1)
    m, k = pop.world.n_candidates, pop.world.slate_size
    for _ in range(steps):
        actions = np.argsort(rng.random((pop.capacity, m)), axis=1)[:, :k]
        obs, reward, term, trunc, info = pop.step(actions)
        rows = pop.arrivals(obs)
        out.append((
            {k: np.array(v) for k, v in obs.items()}, reward, term, trunc,
            {k: np.array(v) for k, v in info.items()}, rows, pop.alive.copy(),
            pop.creator_exposure.copy(), pop.trending.copy(), pop.n_released,
        ))  # fmt: skip
    return out


def assert_same(a: list[tuple], b: list[tuple]) -> None:
    assert len(a) == len(b)
    for t, (x, y) in enumerate(zip(a, b, strict=True)):
        for i, (u, v) in enumerate(zip(x, y, strict=True)):
            if isinstance(u, dict):
                assert set(u) == set(v), f"step {t} item {i}: keys {set(u) ^ set(v)}"
                for key in u:
                    np.testing.assert_array_equal(u[key], v[key], err_msg=f"step {t} {key}")
            else:
                np.testing.assert_array_equal(u, v, err_msg=f"step {t} item {i}")


def test_one_block_is_exactly_the_single_process_population():
    cfg = config()
    reference = trajectory(Population(cfg))
    assert_same(reference, trajectory(ShardedPopulation(cfg, shards=1, use_ray=False)))
    # the run is not trivial: users clicked, shared across the graph, arrived, items released
    steps = reference[1:]
    assert sum(s[4]["click"].sum() for s in steps) > 50
    assert sum(s[4]["shared"].sum() for s in steps) > 0
    assert sum(len(s[5]) for s in steps) > 0
    assert steps[-1][9] > steps[0][9]


@pytest.mark.parametrize("shards", [2, 4])
def test_results_do_not_depend_on_the_number_of_shards(shards):
    cfg = config()
    one = trajectory(ShardedPopulation(cfg, shards=1, blocks=4, use_ray=False))
    assert_same(one, trajectory(ShardedPopulation(cfg, shards=shards, blocks=4, use_ray=False)))


def test_shares_cross_shard_borders():
    # a ring of friends without rewiring: the users at a block border have friends in the
    # neighbouring block, so shared items must travel between shards
    cfg = config(social={"share_probability": 1.0, "degree": 2, "rewire": 0.0})
    pop = ShardedPopulation(cfg, shards=2, blocks=2, use_ray=False)
    run = trajectory(pop, steps=20)
    lo, hi = pop.ranges[1]
    border = [lo, lo - 1]  # first user of block 1, last of block 0: friends of each other
    shared_at_border = sum(s[4]["shared"][border].sum() for s in run[1:])
    assert shared_at_border > 0
    assert_same(run, trajectory(ShardedPopulation(cfg, shards=1, blocks=2, use_ray=False), 20))


def test_blocks_change_the_streams_but_not_the_population_stream():
    cfg = config()
    one, two = (trajectory(ShardedPopulation(cfg, shards=1, blocks=b, use_ray=False), 5)
                for b in (1, 2))  # fmt: skip
    # block 1's users come from another stream, block 0's from the same one
    lo = block_ranges(cfg.max_users, 2)[1][0]
    obs1, obs2 = one[0][0], two[0][0]
    key = next(k for k in obs1 if obs1[k].ndim >= 2 and obs1[k].dtype.kind == "f")
    np.testing.assert_array_equal(obs1[key][:lo], obs2[key][:lo])
    assert not np.array_equal(obs1[key][lo:], obs2[key][lo:])
    assert block_seed(5, 0) == 5 and block_seed(5, 1) != block_seed(5, 2)


def test_sharded_env_is_the_population_env():
    cfg = config()
    env = ShardedPopulationEnv(cfg, shards=2, blocks=2, use_ray=False)
    parallel_api_test(env, num_cycles=40)
    env.close()

    def run(env) -> list:
        obs, _ = env.reset(seed=3)
        rng = np.random.default_rng(0)
        out = []
        for _ in range(15):
            acts = {a: rng.permutation(10)[:3] for a in env.agents}
            obs, rew, term, trunc, info = env.step(acts)
            out.append((sorted(obs), rew, term, trunc, env.state()))
        return out

    a = run(PopulationEnv(cfg))
    b = run(ShardedPopulationEnv(cfg, shards=1, use_ray=False))
    for x, y in zip(a, b, strict=True):
        assert x[0] == y[0] and x[1] == y[1] and x[2] == y[2] and x[3] == y[3]
        np.testing.assert_array_equal(x[4], y[4])


def test_layout_and_replay_errors_name_the_bad_input():
    assert block_ranges(10, 3) == [(0, 4), (4, 7), (7, 10)]
    assert shard_blocks(5, 2) == [[0, 1, 2], [3, 4]]
    with pytest.raises(ValueError, match="blocks=11"):
        block_ranges(10, 11)
    with pytest.raises(ValueError, match="shards=3"):
        shard_blocks(2, 3)
    with pytest.raises(ValueError, match="shards=3"):
        ShardedPopulation(config(), shards=3, blocks=2, use_ray=False)
    replay = ReplayedUniforms()
    with pytest.raises(RuntimeError, match="did not draw"):
        replay.random(4)
    replay.load([np.zeros(3)])
    with pytest.raises(RuntimeError, match="asked 4"):
        replay.random(4)
    replay.load([np.zeros(3)])
    with pytest.raises(RuntimeError, match="never used"):
        replay.check_used()
    pop = ShardedPopulation(config(), shards=2, use_ray=False)
    pop.reset(0)
    with pytest.raises(ValueError, match="expected shape"):
        pop.step(np.zeros((3, 3), dtype=np.int64))


def test_a_failing_shard_step_raises_and_leaves_no_paused_world():
    pop = ShardedPopulation(config(), shards=2, use_ray=False)
    pop.reset(0)
    bad = np.zeros((pop.capacity, 3), dtype=np.int64)
    bad[-1] = [0, 1, 99]  # out of range in the second shard only
    with pytest.raises(ValueError, match="candidate indices"):
        pop.step(bad)
    assert all(b._paused is None for s in pop.shards for b in s.blocks)


RAY_SCRIPT = """
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from test_sharded_population import COUPLED, assert_same, trajectory
from recoworld.envs.population.sharded import ShardedPopulation

reference = trajectory(ShardedPopulation(COUPLED, shards=1, blocks=2, use_ray=False), 15)
pop = ShardedPopulation(COUPLED, shards=2, blocks=2, use_ray=True, ray_address="local",
                        shard_options={"num_cpus": 0.5})
pids = pop._each("pid")
sharded = trajectory(pop, 15)
reach = pop.reach(int(sharded[-1][4]["item_index"][0, 0]))
again = trajectory(pop, 15)  # a reset after steps (replies from the object store are read-only)
pop.close()
assert_same(reference, sharded)
assert_same(reference, again)
print("RESULT " + json.dumps({"pids": pids, "reach": reach}))
"""


def test_shards_as_ray_actors_give_the_same_run():
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT),
           "RAY_AUTH_MODE": "disabled"}  # fmt: skip
    env.pop("RAY_ADDRESS", None)
    out = subprocess.run([sys.executable, "-c", RAY_SCRIPT, str(ROOT / "tests")], env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    assert out.returncode == 0 and lines, out.stderr[-4000:]
    result = json.loads(lines[-1][len("RESULT ") :])
    assert len(set(result["pids"])) == 2 and os.getpid() not in result["pids"]
    assert result["reach"] >= 1


def test_a_block_holds_the_responded_step_between_begin_and_finish():
    """No thread pauses a world step: ``begin_step`` runs ``World.respond`` and keeps its
    result, ``finish_step`` runs ``World.advance`` on it."""
    import threading

    from recoworld.envs.world import Responded

    pop = ShardedPopulation(config(), shards=2, blocks=2, use_ray=False)
    pop.reset(0)
    threads = threading.active_count()
    shard = pop.shards[0]
    block = shard.blocks[0]
    k = pop.world.slate_size
    actions = np.tile(np.arange(k), (block.capacity, 1))
    summary = block.begin_step(actions, np.ones(block.capacity, dtype=bool))
    assert isinstance(block._paused, Responded)
    assert threading.active_count() == threads
    assert summary.exposure.sum() == block._paused.shown.sum()
    with pytest.raises(RuntimeError, match="without begin_step"):
        pop.shards[1].blocks[0].finish_step({})
    block.abort()
    assert block._paused is None
    pop.close()

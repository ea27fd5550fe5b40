"""Offline RL data and training: RLlib's column layout (columns, obs round trip, returns to
go, behaviour log-probabilities), clear errors for bad inputs, and BC / MARWIL with the
slate module on a tiny log (Ray started once per session)."""

from __future__ import annotations

import csv
import itertools
import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recoworld import RecoWorldVectorEnv
from recoworld.envs.config import WorldConfig
from recoworld.policies.baselines import make_baseline
from recoworld.rl.offline.algorithm import (
    RLLIB_COLUMNS,
    EpsilonMixture,
    OfflineTrainConfig,
    dataset_world,
    decode_obs,
    offline_data_dir,
    read_offline,
    record_offline,
    train_offline,
)

GAMMA = 0.9


def _world(small_config) -> WorldConfig:
    return WorldConfig.model_validate(
        {
            **small_config.model_dump(),
            "episode": {**small_config.episode.model_dump(), "text_info": "none"},
        }
    )


@pytest.fixture(scope="module")
def dataset(small_config, tmp_path_factory):
    out = tmp_path_factory.mktemp("offline") / "ds"
    stats = record_offline(_world(small_config), "popular", out, episodes=24, users=6, seed=0,
                           epsilon=0.3, gamma=GAMMA, trajectories=True)  # fmt: skip
    return out, stats


def test_columns_and_obs_round_trip(dataset, small_config):
    out, stats = dataset
    table = read_offline(out)
    assert table.num_rows == stats["rows"] > 24
    assert set(RLLIB_COLUMNS) <= set(table.column_names)
    assert {"action_logp", "returns_to_go"} <= set(table.column_names)
    assert table.schema.field("actions").type == pa.list_(pa.int64(), 3)
    assert table.schema.metadata[b"gamma"] == b"0.9"
    assert sorted(set(table["eps_id"].to_pylist())) == list(range(24))  # exactly those lives

    # the first rows are the first step of each slot: obs == the env's reset observation
    world = _world(small_config)
    env = RecoWorldVectorEnv(num_envs=6, config=world, observation="features+ids")
    reset_obs, _ = env.reset(seed=0)
    env.close()
    for slot in range(6):
        obs = decode_obs(table["obs"][slot].as_py())
        assert set(obs) == set(reset_obs)  # every key, extra ones included
        for key, value in reset_obs.items():
            assert obs[key].dtype == value.dtype and np.array_equal(obs[key], value[slot]), key

    # within a life: new_obs of step t is obs of step t + 1; returns to go are discounted
    eps, t = table["eps_id"].to_numpy(), table["t"].to_numpy()
    rewards, rtg = table["rewards"].to_numpy(), table["returns_to_go"].to_numpy()
    done = table["terminateds"].to_numpy() | table["truncateds"].to_numpy()
    actions = np.stack(table["actions"].to_numpy(zero_copy_only=False))
    assert all(len(set(a)) == 3 for a in actions.tolist())
    rows = np.flatnonzero(eps == eps[0])
    assert list(t[rows]) == list(range(len(rows))) and done[rows[-1]] and not done[rows[:-1]].any()
    for a, b in itertools.pairwise(rows):
        nxt, cur = decode_obs(table["new_obs"][a].as_py()), decode_obs(table["obs"][b].as_py())
        assert all(np.array_equal(nxt[k], cur[k]) for k in cur)
        assert rtg[a] == pytest.approx(rewards[a] + GAMMA * rtg[b], rel=1e-5, abs=1e-5)
    assert rtg[rows[-1]] == pytest.approx(rewards[rows[-1]])

    # behaviour log-probabilities: popular slate (p ~ 0.7) or a uniform one (~ 0.3 / 720)
    p = np.exp(table["action_logp"].to_numpy())
    uniform = 0.3 / (10 * 9 * 8)
    assert np.all(np.isclose(p, uniform) | np.isclose(p, 0.7 + uniform))

    # the trajectory log holds the same user-steps, row for row; the manifest the world
    traj = pq.read_table(out / "trajectories.parquet")
    assert traj["episode_id"].to_pylist() == table["eps_id"].to_pylist()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["dataset"]["rows"] == table.num_rows
    assert dataset_world(out) == world


def test_epsilon_mixture_probabilities(small_config):
    env = RecoWorldVectorEnv(num_envs=4000, config=_world(small_config))
    obs, _ = env.reset(seed=1)
    base = make_baseline("popular", env.world)
    mix = EpsilonMixture(base, 0.4, env.world.slate_size, seed=0)
    slates, logp = mix.act_with_logp(obs)
    same = (slates == base.act(obs)).all(1)
    assert same.mean() == pytest.approx(0.6, abs=0.03)
    assert np.allclose(np.exp(logp[same]), 0.6 + 0.4 / 720)
    assert np.allclose(np.exp(logp[~same]), 0.4 / 720)
    single, lp = mix.act_with_logp({k: v[0] for k, v in obs.items()})
    assert single.shape == (3,) and math.isfinite(float(lp))
    env.close()
    with pytest.raises(ValueError, match="epsilon"):
        EpsilonMixture(base, 1.5, 3)


def test_missing_or_bad_dataset_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="offline dataset not found"):
        offline_data_dir(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="offline dataset not found"):
        train_offline(tmp_path / "nope", OfflineTrainConfig(), tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no Parquet files"):
        offline_data_dir(tmp_path / "empty")
    (tmp_path / "other").mkdir()
    pq.write_table(pa.table({"x": [1, 2]}), tmp_path / "other" / "a.parquet")
    with pytest.raises(ValueError, match="lacks columns"):
        offline_data_dir(tmp_path / "other")


TINY = {"iterations": 2, "updates_per_iteration": 2, "minibatch_size": 32, "eval_episodes": 6,
        "eval_users": 6, "model": {"hidden": [32], "value_hidden": [32]}}  # fmt: skip


@pytest.mark.slow
def test_bc_trains_and_clones(ray_session, dataset, small_config, tmp_path):
    out, _ = dataset
    res = train_offline(out, OfflineTrainConfig.model_validate(TINY), tmp_path / "bc")
    assert len(res["losses"]) == 2
    assert all(np.isfinite(r["policy_loss"]) and r["policy_loss"] > 0 for r in res["losses"])
    with (tmp_path / "bc" / "progress.csv").open() as f:
        assert [r["iteration"] for r in csv.DictReader(f)] == ["1", "2"]
    assert np.isfinite(res["eval"]["mean_return"]) and res["eval"]["episodes"] == 6
    assert json.loads((tmp_path / "bc" / "eval.json").read_text()) == res["eval"]
    manifest = json.loads((tmp_path / "bc" / "manifest.json").read_text())
    assert manifest["config"]["offline"]["algo"] == "bc"
    # the cloned policy (loaded from the checkpoint) recommends distinct items
    env = RecoWorldVectorEnv(num_envs=16, config=_world(small_config), observation="features+ids")
    obs, _ = env.reset(seed=5)
    env.close()
    slates = res["recommender"].act(obs)
    assert slates.shape == (16, 3) and all(len(set(s)) == 3 for s in slates.tolist())


@pytest.mark.slow
def test_marwil_trains_on_logged_returns(ray_session, dataset, tmp_path):
    out, _ = dataset
    cfg = OfflineTrainConfig.model_validate({**TINY, "algo": "marwil", "iterations": 1})
    res = train_offline(out, cfg, tmp_path / "marwil")
    row = res["losses"][-1]
    assert np.isfinite(row["policy_loss"]) and np.isfinite(row["vf_loss"]) and row["vf_loss"] > 0
    assert (tmp_path / "marwil" / "checkpoint").is_dir()

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from recoworld import RecoWorldVectorEnv
from recoworld.cli import main
from recoworld.envs.trajectory import (
    SCALAR_COLUMNS,
    SLATE_COLUMNS,
    TrajectoryLog,
    read_trajectories,
)
from recoworld.policies import RandomRecommender


def _log(config, steps=30, b=6):
    env = RecoWorldVectorEnv(num_envs=b, config=config)
    rec = RandomRecommender(env.world.slate_size, seed=0)
    obs, _ = env.reset(seed=0)
    log = TrajectoryLog({"policy": "random"})
    stepped = 0
    for t in range(steps):
        obs, reward, term, trunc, info = env.step(rec.act(obs))
        log.record(t, info, reward, term, trunc)
        stepped += int(info["_click"].sum())
    return log, stepped


def test_log_roundtrip_keeps_text(tmp_path, small_config):
    log, stepped = _log(small_config)
    path = log.write(tmp_path / "traj.parquet")
    table = read_trajectories(path)
    assert table.num_rows == stepped == log.n_rows
    row = table.slice(0, 1).to_pylist()[0]
    assert len(row["titles"]) == 3 and len(row["click"]) == 3 and row["reasoning"]
    assert table.schema.metadata[b"policy"] == b"random"
    # rewards add up from their terms
    terms = [c for c in table.column_names if c.startswith("reward_")]
    total = np.sum([table[c].to_numpy() for c in terms], axis=0)
    np.testing.assert_allclose(total, table["reward"].to_numpy(), rtol=1e-5, atol=1e-5)
    # an episode ends with terminated or truncated and nothing after it for that episode
    ends = table.filter(table["terminated"]).column("episode_id").to_pylist()
    assert len(ends) == len(set(ends))


def test_failed_write_keeps_the_previous_file(tmp_path, small_config, monkeypatch):
    log, _ = _log(small_config, steps=5)
    path = log.write(tmp_path / "traj.parquet")
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", boom)
    with pytest.raises(OSError, match="disk full"):
        log.write(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["traj.parquet"]


def test_empty_log_is_an_error():
    with pytest.raises(ValueError, match="nothing recorded"):
        TrajectoryLog().to_table()


RUN_YAML = """
simulate:
  policies: [random, popular, oracle]
  users: 16
  episodes: 20
  seed: 1
world:
  catalog:
    synthetic: {n_items: 300, n_creators: 30}
  candidates: {n_candidates: 10}
  episode: {slate_size: 3, max_sessions: 3, max_session_steps: 10}
"""


def test_cli_simulate_writes_everything(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(RUN_YAML)
    out = tmp_path / "out"
    assert main(["simulate", "--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"random", "popular", "oracle"}
    assert all(s["episodes"] == 20 for s in summary.values())
    assert summary["oracle"]["mean_return"] > summary["random"]["mean_return"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 1 and manifest["packages"]["gymnasium"] == "1.2.2"
    assert manifest["config"]["world"]["episode"]["slate_size"] == 3
    assert (out / "retention.png").stat().st_size > 1000
    table = read_trajectories(out / "trajectories_random.parquet")
    assert table.num_rows > 0


def test_cli_rejects_bad_config_naming_the_field(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("world:\n  episode:\n    slate_size: -2\n")
    assert main(["simulate", "--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    assert "slate_size" in capsys.readouterr().err
    cfg.write_text("simulate:\n  policies: [clairvoyant]\n")
    assert main(["simulate", "--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    assert "clairvoyant" in capsys.readouterr().err
    assert main(["simulate", "--config", str(tmp_path / "none.yaml")]) == 2
    assert "not found" in capsys.readouterr().err


def test_cli_catalog_and_config(tmp_path, capsys):
    save = tmp_path / "c.parquet"
    assert main(["catalog", "--source", "movielens", "--save", str(save)]) == 0
    out = capsys.readouterr().out
    assert "100000" in out and "943" in out and save.exists()
    assert main(["config"]) == 0
    assert "slate_size" in capsys.readouterr().out


def test_summary_covers_the_first_lives_started(tmp_path):
    """The summary is over episode ids 0..E-1 (in start order), not the first E to end."""
    cfg = tmp_path / "run.yaml"
    cfg.write_text(RUN_YAML.replace("policies: [random, popular, oracle]", "policies: [random]"))
    out = tmp_path / "out"
    assert main(["simulate", "--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())["random"]
    table = read_trajectories(out / "trajectories_random.parquet").to_pandas()
    first = table[table["episode_id"] < 20]
    assert first["episode_id"].nunique() == 20
    assert summary["mean_steps_per_episode"] == pytest.approx(len(first) / 20)
    assert summary["mean_return"] == pytest.approx(first["reward"].sum() / 20, rel=1e-4)
    ended = first[first["terminated"] | first["truncated"]]["episode_id"]
    assert sorted(ended) == list(range(20))


def test_trajectory_log_text_column_absent_from_some_steps():
    def info(with_source: bool) -> dict:
        k = 2
        d = {key: np.zeros(1) for key in SCALAR_COLUMNS}
        d.update({key: np.zeros((1, k)) for key in SLATE_COLUMNS})
        d["instruction"] = np.array(["more jazz" if with_source else None], dtype=object)
        if with_source:
            d["instruction_source"] = np.array(["llm"], dtype=object)
        return d

    log = TrajectoryLog()
    log.record(0, info(False), np.zeros(1), np.zeros(1, bool), np.zeros(1, bool))
    log.record(1, info(True), np.zeros(1), np.zeros(1, bool), np.zeros(1, bool))
    table = log.to_table()
    assert table.column("instruction_source").to_pylist() == [None, "llm"]

"""The evaluation runner: common random numbers, outputs, determinism, config errors."""

from __future__ import annotations

import json
import re

import numpy as np
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from recoworld.envs.config import WorldConfig
from recoworld.envs.vector_env import RecoWorldVectorEnv
from recoworld.evaluation.runner import EvalConfig, load_eval_config, run_evaluation
from recoworld.policies.baselines import make_baseline
from recoworld.simulators.parametric.model import TraitStream

WORLD = {
    "catalog": {"synthetic": {"n_items": 300, "n_creators": 30, "seed": 3}},
    "candidates": {"n_candidates": 10},
    "episode": {"slate_size": 3, "max_sessions": 3, "max_session_steps": 12},
}


def _eval_config(**update) -> EvalConfig:
    raw = {
        "policies": ["random", "popular", "oracle", "instruction"],
        "worlds": [{"name": "small", "overrides": WORLD}],
        "seeds": [0, 1],
        "users": 8,
        "episodes": 24,
        "n_boot": 200,
        "transcripts": 2,
    }
    raw.update(update)
    return EvalConfig.model_validate(raw)


def test_trait_stream_is_batching_independent():
    def draw(n, rng):
        return {"x": rng.normal(size=n), "y": rng.integers(0, 100, size=(n, 2))}

    a, b = TraitStream(block=5), TraitStream(block=5)
    rng_a, rng_b = np.random.default_rng(7), np.random.default_rng(7)
    one = np.concatenate([a.take(1, rng_a, draw)["x"] for _ in range(13)])
    many = np.concatenate([b.take(n, rng_b, draw)["x"] for n in (4, 7, 2)])
    np.testing.assert_array_equal(one, many)
    # a new generator object restarts the stream
    again = a.take(3, np.random.default_rng(7), draw)["x"]
    np.testing.assert_array_equal(again, one[:3])


def test_same_users_meet_every_policy(small_config: WorldConfig):
    """Common random numbers: episode j is the same user under any policy (users end their
    lives at different steps, so autoresets batch differently)."""
    cfg = small_config.model_copy(deep=True)
    cfg.episode.ground_truth_info = True
    first_novelty = {}
    for policy in ("random", "oracle"):
        env = RecoWorldVectorEnv(num_envs=6, config=cfg)
        rec = make_baseline(policy, env.world, seed=0)
        obs, _ = env.reset(seed=11)
        seen: dict[int, float] = {}
        for _ in range(150):
            obs, _, _, _, info = env.step(rec.act(obs))
            live = info["_click"]
            for e, nov in zip(info["episode_id"][live], info["user_novelty"][live], strict=True):
                seen.setdefault(int(e), float(nov))
        env.close()
        first_novelty[policy] = seen
    common = sorted(set(first_novelty["random"]) & set(first_novelty["oracle"]))
    assert len(common) > 12
    for e in common:
        assert first_novelty["random"][e] == first_novelty["oracle"][e]


def test_ground_truth_info_shapes(small_config: WorldConfig):
    cfg = small_config.model_copy(deep=True)
    cfg.episode.ground_truth_info = True
    env = RecoWorldVectorEnv(num_envs=4, config=cfg)
    obs, _ = env.reset(seed=0)
    rec = make_baseline("oracle", env.world, seed=0)
    obs, _, _, _, info = env.step(rec.act(obs))
    m, k = cfg.candidates.n_candidates, cfg.episode.slate_size
    assert info["candidate_relevance"].shape == (4, m)
    assert info["slate_relevance"].shape == (4, k)
    assert np.all((info["candidate_relevance"] > 0) & (info["candidate_relevance"] < 1))
    # the oracle's slate holds the k most relevant candidates (relevance is monotone in utility)
    top = np.sort(info["candidate_relevance"], axis=1)[:, ::-1][:, :k]
    np.testing.assert_allclose(np.sort(info["slate_relevance"], 1)[:, ::-1], top, rtol=1e-6)
    env.close()


def _strip_time(text: str) -> str:
    text = re.sub(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(\+00:00)?", "<time>", text)
    return text


@pytest.mark.slow
def test_run_evaluation_outputs_and_determinism(tmp_path):
    cfg = _eval_config()
    a = run_evaluation(cfg, tmp_path / "a", show_progress=False)
    b = run_evaluation(cfg, tmp_path / "b", show_progress=False)
    for name in ("report.html", "results.json", "episodes.parquet", "manifest.json"):
        assert (tmp_path / "a" / name).is_file(), name
    for policy in ("random", "popular", "oracle", "instruction"):
        for seed in (0, 1):
            path = tmp_path / "a" / "trajectories" / "small" / f"{policy}_seed{seed}.parquet"
            assert pq.read_metadata(path).metadata[b"status"] == b"complete"
    a.pop("created"), b.pop("created")
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    html_a = _strip_time((tmp_path / "a" / "report.html").read_text())
    html_b = _strip_time((tmp_path / "b" / "report.html").read_text())
    assert html_a == html_b

    res = {(r["policy"], r["metric"]): r for r in a["results"]}
    # the oracle ranks by the ground truth: NDCG 1 and the best candidate always shown first
    assert res[("oracle", "ndcg")]["mean"] == pytest.approx(1.0)
    assert res[("oracle", "mrr")]["mean"] == pytest.approx(1.0)
    assert res[("random", "ndcg")]["mean"] < 0.9
    # every metric has a value and a CI that holds the mean (set metrics and lives alike)
    for (policy, metric), r in res.items():
        if metric in ("dpfr",) or r["mean"] is None:
            continue
        assert r["lo"] <= r["mean"] + 1e-9 and r["mean"] <= r["hi"] + 1e-9, (policy, metric)
    assert a["frontier"]["small"]["points"]
    # paired differences: per policy except the baseline, for every metric but DPFR
    pairs = {(p["policy"], p["metric"]) for p in a["paired"]}
    assert ("oracle", "return_rate") in pairs and ("popular", "return_rate") not in pairs
    episodes = pq.read_table(tmp_path / "a" / "episodes.parquet")
    assert episodes.num_rows == 4 * 2 * 24
    assert a["transcripts"]["small"]


def test_eval_config_errors(tmp_path):
    with pytest.raises(ValidationError, match="not a baseline"):
        _eval_config(policies=["random", "popular", "nope"])
    with pytest.raises(ValidationError, match="baseline 'popular' is not among"):
        _eval_config(policies=["random", "oracle"])
    with pytest.raises(ValidationError, match="unknown worlds"):
        _eval_config(policies=["popular", {"name": "random", "worlds": ["elsewhere"]}])
    with pytest.raises(ValidationError, match="unknown policies"):
        _eval_config(worlds=[{"name": "small", "overrides": WORLD, "policies": ["popular", "x"]}])
    with pytest.raises(ValidationError, match="must include the baseline"):
        _eval_config(worlds=[{"name": "small", "overrides": WORLD, "policies": ["random"]}])
    with pytest.raises(ValidationError, match="unknown metrics"):
        _eval_config(leaderboard=["ndcg", "happiness"])
    bad = tmp_path / "eval.yaml"
    bad.write_text("evaluate: [1, 2]\n")
    with pytest.raises(ValueError, match="must be a mapping"):
        load_eval_config(bad)


def test_shipped_eval_config_validates():
    cfg = load_eval_config("experiments/configs/eval.yaml")
    assert cfg.baseline == "popular"
    assert {w.name for w in cfg.worlds} >= {"movielens", "synthetic", "hybrid"}


@pytest.mark.slow
def test_evaluate_cli(tmp_path, capsys):
    from recoworld.cli import main

    config = tmp_path / "eval.yaml"
    config.write_text(
        json.dumps(
            {
                "evaluate": {
                    "policies": ["random", "popular"],
                    "worlds": [{"name": "tiny", "overrides": WORLD}],
                    "episodes": 10,
                    "users": 5,
                    "n_boot": 100,
                }
            }
        )
    )
    out = tmp_path / "report"
    assert main(["evaluate", "--config", str(config), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "tiny" in printed and "random" in printed and "popular" in printed
    assert (out / "report.html").is_file() and (out / "results.json").is_file()
    # a missing checkpoint is reported before anything runs
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        json.dumps(
            {
                "evaluate": {
                    "policies": ["popular", {"name": "ppo", "checkpoint": "no/such/dir"}],
                    "worlds": [{"name": "tiny", "overrides": WORLD}],
                }
            }
        )
    )
    assert main(["evaluate", "--config", str(bad), "--out", str(tmp_path / "x")]) == 2
    assert "checkpoint no/such/dir not found" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()

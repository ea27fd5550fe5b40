"""PPO with the slate module on RLlib (Ray started once per session, num_env_runners=0):
finite losses, metric keys, outputs, checkpoint round trip and resume, the trained policy
as a Recommender in a fresh process without Ray, and the `recoworld train` CLI."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from recoworld.envs.config import WorldConfig
from recoworld.rl.config import TrainConfig, load_train_run
from recoworld.rl.trainer import train

pytestmark = pytest.mark.slow

TINY = {"iterations": 2, "num_envs": 8, "eval_every": 1, "eval_episodes": 8, "eval_users": 8,
        "checkpoint_every": 2, "ppo": {"train_batch_size": 128, "minibatch_size": 64,
                                       "num_epochs": 1}}  # fmt: skip


def _world(small_config) -> WorldConfig:
    return WorldConfig.model_validate(
        {
            **small_config.model_dump(),
            "episode": {**small_config.episode.model_dump(), "text_info": "none"},
        }
    )


def test_train_outputs_and_resume(ray_session, small_config, tmp_path):
    world = _world(small_config)
    out = tmp_path / "run"
    last = train(world, TrainConfig.model_validate(TINY), out, show_progress=False)
    assert np.isfinite(last["mean_return"]) and 0 <= last["return_rate"] <= 1
    results = [json.loads(line) for line in (out / "result.json").read_text().splitlines()]
    assert len(results) == 2
    learner = results[-1]["learners"]["default_policy"]
    for key in ("policy_loss", "vf_loss", "entropy"):
        assert np.isfinite(learner[key]), key
    assert "episode_return_mean" in results[-1]["env_runners"]
    with (out / "eval_curve.csv").open() as f:
        curve = list(csv.DictReader(f))
    assert [r["iteration"] for r in curve] == ["1", "2"]
    assert {"return_rate", "session_depth", "mean_return"} <= set(curve[0])
    assert any((out / "tb").iterdir())
    assert (out / "checkpoints" / "iter_0002").is_dir() and (out / "checkpoint").is_dir()
    assert json.loads((out / "manifest.json").read_text())["config"]["train"]["iterations"] == 2

    # resume: iteration numbers continue, the evaluation curve keeps its rows
    train(world, TrainConfig.model_validate({**TINY, "iterations": 1}), out,
          resume=out / "checkpoint", show_progress=False)  # fmt: skip
    with (out / "eval_curve.csv").open() as f:
        assert [r["iteration"] for r in csv.DictReader(f)] == ["1", "2", "3"]

    # the trained policy acts in a fresh process, without starting Ray
    code = (
        "import numpy as np, ray, recoworld\n"
        "from recoworld.rl.common.recommender import ModuleRecommender\n"
        f"rec = ModuleRecommender.from_checkpoint({str(out / 'checkpoint')!r})\n"
        f"cfg = {world.model_dump(mode='json')!r}\n"
        "env = recoworld.RecoWorldVectorEnv(num_envs=5, config=cfg)\n"
        "obs, _ = env.reset(seed=0)\n"
        "s = rec.act(obs)\n"
        "assert s.shape == (5, 3) and all(len(set(r)) == 3 for r in s.tolist())\n"
        "assert not ray.is_initialized()\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")


def test_cli_train(ray_session, small_config, tmp_path, monkeypatch):
    import yaml

    from recoworld.cli import main

    monkeypatch.chdir(tmp_path)  # a relative --out (RLlib checkpoints need absolute paths)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"world": _world(small_config).model_dump(mode="json"),
                                    "train": {**TINY, "iterations": 2}}))  # fmt: skip
    assert main(["train", "--config", str(path), "--out", "o", "--quiet"]) == 0
    assert (tmp_path / "o" / "checkpoint").is_dir()
    assert (tmp_path / "o" / "checkpoints" / "iter_0002").is_dir()
    from recoworld.rl.common.recommender import ModuleRecommender

    assert ModuleRecommender.from_checkpoint("o/checkpoint").module.slate_size == 3


def test_bad_train_config(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  iterations: 0\n")
    with pytest.raises(ValueError, match="iterations"):
        load_train_run(path)
    path.write_text("trian:\n  iterations: 3\n")
    with pytest.raises(ValueError, match="unknown top-level sections"):
        load_train_run(path)


def test_cli_record_then_bc(ray_session, small_config, tmp_path):
    import yaml

    from recoworld.cli import main

    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"world": _world(small_config).model_dump(mode="json")}))
    data = tmp_path / "logged"
    assert main(["record", "--config", str(path), "--policy", "popular", "--epsilon", "0.3",
                 "--episodes", "12", "--users", "6", "--out", str(data)]) == 0  # fmt: skip
    assert (data / "data" / "part-00000.parquet").is_file()
    assert main(["train", "--algo", "bc", "--data", str(data), "--iterations", "1",
                 "--out", str(tmp_path / "bc"), "--quiet"]) == 0  # fmt: skip
    assert (tmp_path / "bc" / "checkpoint").is_dir()
    assert main(["train", "--algo", "bc", "--out", str(tmp_path / "x")]) == 2  # no --data

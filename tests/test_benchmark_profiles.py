"""The benchmarks' --quick profiles run in CI (the full runs are not tests: their figures
live in docs/results with the command that reproduces them)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_sb3_learning_quick_profile(tmp_path: Path) -> None:
    out = tmp_path / "sb3.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/sb3_learning.py"), "--quick", "--json", str(out)],
        capture_output=True, text=True, timeout=600, env=env, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    import json

    rows = json.loads(out.read_text())["worlds"]["synthetic"]
    assert set(rows) == {"random", "popular", "sb3_ppo", "sb3_slate", "rllib_ppo"}
    for name in ("sb3_ppo", "sb3_slate", "rllib_ppo"):
        lo, hi = rows[name]["ci"]
        assert lo <= rows[name]["mean_return"] <= hi
        assert len(rows[name]["minus_random"]) == 3
    assert "sb3_ppo" in done.stdout and "gap closed" in done.stdout


@pytest.mark.slow
def test_task_suite_benchmark_quick_profile(tmp_path: Path) -> None:
    """`recoworld benchmark --quick`: every task, every algorithm the task lists, one
    training seed of 256 env steps, 16 lives on one evaluation seed (docs/benchmark.md)."""
    import json
    import time

    out = tmp_path / "bench"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.time()
    done = subprocess.run(
        [sys.executable, "-m", "recoworld.cli", "benchmark", "--quick", "--quiet",
         "--out", str(out)],
        capture_output=True, text=True, timeout=600, env=env, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads((out / "benchmark.json").read_text())
    from recoworld.evaluation.benchmark import task_keys
    from recoworld.tasks import load_task

    assert list(results["tasks"]) == task_keys()
    for key, task in results["tasks"].items():
        learners = {n for n, p in task["policies"].items() if p["kind"] == "learner"}
        assert learners == set(load_task(key).algorithms), key
    print(f"quick profile: {time.time() - start:.0f} s")


@pytest.mark.slow
def test_ppo_iteration_timing_runs_and_its_parts_add_up(tmp_path: Path) -> None:
    """`benchmarks/rllib_sampling.py --ppo-iteration` at a tiny size: it reaches into
    RLlib's runner and learner to time their parts, so an RLlib upgrade that moves them
    must fail here, not in a benchmark run."""
    import json

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/rllib_sampling.py"), "--ppo-iteration",
         "--iterations", "1", "--train-batch", "256", "--num-envs", "8",
         "--text-info", "none", "--json"],
        capture_output=True, text=True, timeout=600, env=env, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = json.loads(done.stdout)
    (row,) = result["iterations"]
    assert row["env_steps"] >= 256 and result["num_envs"] == 8
    parts = row["parts_s"]
    assert all(parts[p] > 0 for p in ("env_step", "module", "learner_rest"))
    assert sum(parts.values()) == pytest.approx(row["seconds"])  # "other" is the remainder
    assert sum(result["share"].values()) == pytest.approx(1.0)

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
    assert set(rows) == {"random", "popular", "sb3_ppo", "rllib_ppo"}
    for name in ("sb3_ppo", "rllib_ppo"):
        lo, hi = rows[name]["ci"]
        assert lo <= rows[name]["mean_return"] <= hi
        assert len(rows[name]["minus_random"]) == 3
    assert "sb3_ppo" in done.stdout and "gap closed" in done.stdout

"""Google RecSim baseline for the throughput benchmark.

This module owns everything RecoWorld needs to measure the *reference* simulator, Google's
RecSim (``recsim-no-tf``), on the same machine:

* :func:`ensure_recsim_venv` builds an isolated virtualenv (RecSim needs the unmaintained
  ``gym`` package, which must never leak into RecoWorld's own environment);
* :func:`run_recsim` steps RecSim's ``interest_evolution`` environment with a uniformly random
  slate policy in a subprocess of that venv and reports steps per second.

It imports nothing from ``recoworld`` and only the standard library, so it runs from any Python
3.11 interpreter. ``python benchmarks/recsim_baseline.py`` builds the venv (if needed) and
prints one JSON line for 20,000 steps.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VENV = REPO_ROOT / ".bench-venv" / "recsim"

# What the RecSim venv holds. recsim-no-tf 0.2.3 declares gym/numpy/scipy unpinned; gym 0.26.2
# is the last gym release. NumPy 2 works on this path: gym's only NumPy-2 breakage (``np.bool8``)
# is in its passive env checker, which ``create_environment`` never runs; trajectories match
# NumPy 1.26.4 bit for bit, and stepping is ~5-10% faster, so the baseline is not handicapped.
RECSIM_PINS: tuple[str, ...] = (
    "recsim-no-tf==0.2.3",
    "six",
    "gym==0.26.2",
    "numpy==2.4.6",
)
_STAMP_NAME = ".recoworld-recsim-stamp"

# Runs inside the RecSim venv: argv = [steps, seed]; prints one JSON line on stdout.
_WORKER = r"""
import json, sys, time
import numpy as np
from recsim.environments import interest_evolution

steps, seed = int(sys.argv[1]), int(sys.argv[2])
np.random.seed(seed)  # RecSim's choice model draws from NumPy's global RNG
env = interest_evolution.create_environment(
    {"num_candidates": 10, "slate_size": 2, "resample_documents": True, "seed": seed}
)
# Uniformly random slates: 2 distinct indices of the 10 candidates per step, drawn up front so
# the timed loop measures the simulator only.
rng = np.random.default_rng(seed)
slates = np.argsort(rng.random((steps, 10)), axis=1)[:, :2]
episodes = 0
t0 = time.perf_counter()
env.reset()
for i in range(steps):
    _obs, _reward, done, _info = env.step(slates[i])
    if done:
        episodes += 1
        env.reset()
seconds = time.perf_counter() - t0
print(json.dumps({"steps": steps, "seconds": seconds, "steps_per_s": steps / seconds,
                  "episodes": episodes}))
"""


def _log(msg: str) -> None:
    print(f"[recsim-baseline] {msg}", file=sys.stderr, flush=True)


def _venv_python(path: Path) -> Path:
    return path / "bin" / "python"


def _clean_env() -> dict[str, str]:
    """Environment for venv subprocesses: single-threaded BLAS, no leaked import paths."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        PYTHONNOUSERSITE="1",
    )
    return env


def _run_checked(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_clean_env(), check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-20:])
        raise RuntimeError(
            f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n--- output tail ---\n{tail}"
        )


def ensure_recsim_venv(path: Path = DEFAULT_VENV) -> Path:
    """Create (if missing) the RecSim virtualenv at ``path`` and return its python.

    Installs :data:`RECSIM_PINS`. A stamp file recording the pins makes later calls instant;
    changing the pins triggers a reinstall. Raises :class:`RuntimeError` naming the failing
    command when creation, install or the import check fails.
    """
    path = Path(path).resolve()
    python = _venv_python(path)
    stamp = path / _STAMP_NAME
    wanted = json.dumps({"pins": list(RECSIM_PINS)}, sort_keys=True)
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python

    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.parent / f".{path.name}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another benchmark process may be building it
        if python.exists() and stamp.exists() and stamp.read_text() == wanted:
            return python
        if not python.exists():
            _log(f"creating venv {path}")
            _run_checked([sys.executable, "-m", "venv", "--clear", str(path)], "venv creation")
        stamp.unlink(missing_ok=True)
        _log(f"installing {' '.join(RECSIM_PINS)} (first run only)")
        _run_checked(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                *RECSIM_PINS,
            ],
            "pip install",
        )
        _log("checking that recsim imports")
        _run_checked(
            [str(python), "-c", "import recsim.environments.interest_evolution"],
            "recsim import check",
        )
        stamp.write_text(wanted)
        _log("recsim venv ready")
    return python


def run_recsim(python: Path, steps: int, seed: int = 0) -> dict[str, Any]:
    """Step RecSim ``interest_evolution`` with a random slate policy in ``python``'s venv.

    Config: 10 candidates, slate size 2, documents resampled every step, ``seed``. Episodes are
    reset as they end (RecSim's old gym API: ``step`` returns a 4-tuple). Only the reset/step
    loop is timed (``time.perf_counter``). Returns
    ``{"steps": int, "seconds": float, "steps_per_s": float, "episodes": int}`` where
    ``episodes`` counts episodes that finished within ``steps``.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    cmd = [str(python), "-c", _WORKER, str(int(steps)), str(int(seed))]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_clean_env(), check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-20:])
        raise RuntimeError(
            f"RecSim worker failed (exit {proc.returncode}) under {python}\n"
            f"--- stderr tail ---\n{tail}"
        )
    result = json.loads(lines[-1])
    return {
        "steps": int(result["steps"]),
        "seconds": float(result["seconds"]),
        "steps_per_s": float(result["steps_per_s"]),
        "episodes": int(result["episodes"]),
    }


if __name__ == "__main__":
    print(json.dumps(run_recsim(ensure_recsim_venv(DEFAULT_VENV), steps=20000)))

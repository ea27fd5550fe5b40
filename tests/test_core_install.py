"""The core install: ``pip install recoworld`` with no extras (no torch, Ray, vLLM or
transformers) in a fresh virtual environment gives the parametric worlds, the baselines
and ``recoworld simulate``; a command that needs an extra says which one in one line.

One venv per module (built from a copy of the sources, so the build leaves nothing in the
checkout); pip's cache keeps the install to well under a minute after the first run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "ray", "vllm", "transformers")
# only in extras: a core install must not pull them in (else this test proves nothing)
NOT_IN_CORE = (*HEAVY, "tensorboardX", "matplotlib", "httpx", "gguf", "accelerate")
TINY_RUN = """\
simulate:
  policies: [random, popular]
  users: 4
  episodes: 4
  seed: 0
world:
  instruction_parser: lexical
  catalog:
    synthetic: {n_items: 200, n_creators: 20}
  candidates:
    n_candidates: 20
  episode:
    slate_size: 3
    max_sessions: 2
    max_session_steps: 10
"""

CORE_SNIPPET = """
import sys

import gymnasium as gym
import numpy as np

import recoworld
from recoworld.envs.population import parallel_env

loaded = [m for m in ("torch", "ray", "vllm", "transformers") if m in sys.modules]
assert not loaded, f"import recoworld loaded {loaded}"

env = gym.make("recoworld/RecoWorld-v0")  # the default world
env.action_space.seed(0)
obs, info = env.reset(seed=0)
assert env.observation_space.contains(obs)
resets = 0
for _ in range(100):
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert np.isfinite(reward)
    if terminated or truncated:
        obs, info = env.reset()
        resets += 1
env.close()

venv = gym.make_vec("recoworld/RecoWorld-v0", num_envs=4, vectorization_mode="vector_entry_point")
venv.action_space.seed(0)
obs, info = venv.reset(seed=0)
for _ in range(5):
    obs, reward, terminated, truncated, info = venv.step(venv.action_space.sample())
    assert reward.shape == (4,)
venv.close()

pz = parallel_env()
obs, infos = pz.reset(seed=0)
assert pz.agents and set(obs) == set(pz.agents)
for i, a in enumerate(pz.agents):
    pz.action_space(a).seed(i)
actions = {a: pz.action_space(a).sample() for a in pz.agents}
obs, rewards, terms, truncs, infos = pz.step(actions)
assert set(rewards) <= set(pz.possible_agents)
pz.close()

loaded = [m for m in ("torch", "ray", "vllm", "transformers") if m in sys.modules]
assert not loaded, f"stepping the worlds loaded {loaded}"
print("core ok", recoworld.__version__, "resets", resets)
"""

MISSING_EXTRAS_SNIPPET = """
from recoworld.core.errors import MissingExtraError

try:
    from recoworld.rl.trainer import train  # noqa: F401
except MissingExtraError as err:
    assert err.extra == "rllib", err.extra
    assert "recoworld[rllib]" in err.hint, err.hint
else:
    raise AssertionError("recoworld.rl.trainer imported without the rllib extra")

from recoworld.text.encoder import load_encoder

try:
    load_encoder("unused")
except MissingExtraError as err:
    assert err.extra == "embeddings", err.extra
else:
    raise AssertionError("the MiniLM encoder loaded without the embeddings extra")
print("extras ok")
"""


def _run(cmd: list[str | Path], cwd: Path, env: dict[str, str], timeout: float = 600):
    return subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def _check(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, f"{proc.args}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def core_venv(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A fresh venv with ``pip install <copy of the repo>`` (no extras)."""
    tmp = tmp_path_factory.mktemp("core_install")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(ROOT / "recoworld", src / "recoworld", ignore=ignore)

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(OMP_NUM_THREADS="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    venv = tmp / "venv"
    _check(_run([sys.executable, "-m", "venv", venv], tmp, env))
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / "python"
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    # reuse the venv's own build backend only when it is new enough for pyproject.toml
    has_backend = _run(
        [python, "-c", "import setuptools, wheel, sys; "
         "sys.exit(int(setuptools.__version__.split('.')[0]) < 68)"],
        tmp, env,
    ).returncode == 0  # fmt: skip
    flags = ["--no-build-isolation"] if has_backend else []
    _check(_run([python, "-m", "pip", "install", "--quiet", *flags, src], tmp, env))

    installed = _run(
        [python, "-c", "import importlib.util as u, sys; "
         f"print([m for m in {NOT_IN_CORE!r} if u.find_spec(m) is not None])"],
        tmp, env,
    )  # fmt: skip
    assert _check(installed).strip() == "[]", f"the core install pulled in {installed.stdout}"
    return {"python": python, "bin": bindir, "env": env, "tmp": tmp}


@pytest.mark.slow
def test_core_install_worlds_without_torch(core_venv):
    out = _check(_run([core_venv["python"], "-c", CORE_SNIPPET], core_venv["tmp"],
                      core_venv["env"]))  # fmt: skip
    assert "core ok" in out


@pytest.mark.slow
def test_core_install_simulate_cli(core_venv):
    tmp: Path = core_venv["tmp"]
    (tmp / "tiny.yaml").write_text(TINY_RUN)
    out = tmp / "sim"
    proc = _run(
        [core_venv["bin"] / "recoworld", "simulate", "--config", "tiny.yaml", "--out", out,
         "--quiet"],
        tmp, core_venv["env"],
    )  # fmt: skip
    _check(proc)
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"random", "popular"}
    assert all(s["episodes"] == 4 for s in summary.values())
    for policy in ("random", "popular"):
        assert (out / f"trajectories_{policy}.parquet").stat().st_size > 0
    assert (out / "manifest.json").exists()
    # no matplotlib in the core: the plot is skipped with a one-line note
    assert not (out / "retention.png").exists()
    assert "retention.png skipped" in proc.stderr and "recoworld[report]" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_core_install_missing_extra_is_one_line(core_venv):
    tmp: Path = core_venv["tmp"]
    _check(_run([core_venv["python"], "-c", textwrap.dedent(MISSING_EXTRAS_SNIPPET)], tmp,
                core_venv["env"]))  # fmt: skip

    (tmp / "train.yaml").write_text("world:\n  instruction_parser: lexical\n")
    proc = _run(
        [core_venv["bin"] / "recoworld", "train", "--algo", "ppo", "--config", "train.yaml",
         "--iterations", "1", "--out", tmp / "train"],
        tmp, core_venv["env"],
    )  # fmt: skip
    assert proc.returncode != 0
    assert "recoworld[rllib]" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 3, proc.stderr

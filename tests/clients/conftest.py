"""Client-library tests: RecoWorld driven by the RL libraries people train with.

Every test that takes a ``recoworld_id`` argument runs once per registered
``recoworld/...`` id (read from Gymnasium's registry after ``import recoworld``, so new task
ids are covered without editing the tests). Torch, when installed, runs on one thread: the
CI machines have two cores and small networks are slower with more threads.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import gymnasium as gym
import pytest

import recoworld  # noqa: F401  (registers the ids)

try:
    import torch
except ImportError:  # the core install has no torch; the wrapper tests need none
    torch = None
else:
    torch.set_num_threads(1)


def recoworld_ids() -> list[str]:
    """Every registered RecoWorld env id, sorted."""
    return sorted(env_id for env_id in gym.registry if env_id.startswith("recoworld/"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "recoworld_id" in metafunc.fixturenames:
        ids = recoworld_ids()
        assert ids, "import recoworld registered no recoworld/ ids"
        # module scope: a module-scoped fixture (a trained model) is built once per id
        metafunc.parametrize("recoworld_id", ids, scope="module")

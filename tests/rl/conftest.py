"""Ray is started once per test session, for the tests that train (docs/platform.md#rllib-notes)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ray_session():
    import ray

    from recoworld.rl.runtime import ensure_ray

    ensure_ray(2)
    yield
    ray.shutdown()

"""Shared fixtures. torch/numpy threads are pinned to 1 (2-core CI machines)."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest

from recoworld.catalog import generate_synthetic_catalog, load_movielens
from recoworld.catalog.config import SyntheticCatalogConfig
from recoworld.envs.config import WorldConfig


@pytest.fixture(scope="session")
def small_catalog():
    return generate_synthetic_catalog(SyntheticCatalogConfig(n_items=300, n_creators=30, seed=3))


@pytest.fixture(scope="session")
def movielens():
    return load_movielens()


@pytest.fixture(scope="session")
def small_config() -> WorldConfig:
    """A small world (tests that change it take a deep copy first)."""
    return WorldConfig.model_validate(
        {
            "catalog": {"synthetic": {"n_items": 300, "n_creators": 30, "seed": 3}},
            "candidates": {"n_candidates": 10},
            "episode": {"slate_size": 3, "max_sessions": 3, "max_session_steps": 10},
        }
    )

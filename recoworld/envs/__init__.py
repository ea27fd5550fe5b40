"""Gymnasium environments over the batched world: ``RecoWorldEnv`` (one user) and
``RecoWorldVectorEnv`` (B users natively), plus observation encoding and reward composition.

Importing ``recoworld`` registers ``recoworld/RecoWorld-v0`` with the vector env as its
``vector_entry_point``."""

from __future__ import annotations

import gymnasium as gym

from recoworld.envs.recoworld_env import RecoWorldEnv, build_world_config
from recoworld.envs.vector_env import RecoWorldVectorEnv
from recoworld.envs.world import World

ENV_ID = "recoworld/RecoWorld-v0"

__all__ = [
    "ENV_ID",
    "RecoWorldEnv",
    "RecoWorldVectorEnv",
    "World",
    "build_world_config",
    "register",
]


def register() -> None:
    """Register RecoWorld-v0 (idempotent)."""
    if ENV_ID in gym.registry:
        return
    gym.register(
        id=ENV_ID,
        entry_point="recoworld.envs.recoworld_env:RecoWorldEnv",
        vector_entry_point="recoworld.envs.vector_env:RecoWorldVectorEnv",
        disable_env_checker=False,
    )

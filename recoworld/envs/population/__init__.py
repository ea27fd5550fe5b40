"""Populations on one platform: the PettingZoo env (``env()``, ``parallel_env()``,
``raw_env``), coupling between users, and the sharded population on Ray."""

from recoworld.envs.population.population import (
    Population,
    PopulationEnv,
    env,
    parallel_env,
    raw_env,
)

__all__ = ["Population", "PopulationEnv", "env", "parallel_env", "raw_env"]

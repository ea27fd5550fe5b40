"""RecoWorld: simulated worlds where recommender policies learn by interacting with
simulated users. Importing the package registers ``recoworld/RecoWorld-v0`` and the task
suite's ids (``recoworld/<Task>-v<version>``, ``recoworld.tasks``)."""

from __future__ import annotations

from recoworld.envs import ENV_ID, RecoWorldEnv, RecoWorldVectorEnv, World, register
from recoworld.envs.config import WorldConfig, load_world_config
from recoworld.tasks import register_tasks

__version__ = "0.1.0"
__all__ = [
    "ENV_ID",
    "RecoWorldEnv",
    "RecoWorldVectorEnv",
    "World",
    "WorldConfig",
    "__version__",
    "load_world_config",
]

register()
register_tasks()

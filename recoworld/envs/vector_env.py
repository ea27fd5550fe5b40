"""RecoWorldVectorEnv: B users natively batched (the ``vector_entry_point`` of RecoWorld-v0).

``gym.make_vec("recoworld/RecoWorld-v0", num_envs=B, vectorization_mode="vector_entry_point")``
returns this class: one ``World`` with B users, no per-env Python loop. Sub-environment b is
user slot b. Autoreset follows Gymnasium's default ``NEXT_STEP`` mode (like
``CartPoleVectorEnv``): the step after a slot terminates or truncates ignores that slot's
action and returns the first observation of a new user with reward 0.

Info follows Gymnasium's vector convention: every key holds an array with a leading axis of
B, and ``info["_<key>"]`` masks the slots where it is meaningful (slots that were reset this
step carry their reset info: ``episode_id`` and ``candidates``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from recoworld.catalog import Catalog
from recoworld.envs.config import WorldConfig
from recoworld.envs.recoworld_env import build_world, format_step
from recoworld.llm import LLMBackend


class RecoWorldVectorEnv(VectorEnv):
    """B RecoWorld users stepped together; see ``RecoWorldEnv`` for the per-user manual."""

    metadata = {"render_modes": ["ansi"], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        num_envs: int = 1,
        catalog: str | Path | Catalog | None = None,
        simulator: str | None = None,
        representation: str | None = None,
        config: WorldConfig | str | Path | dict[str, Any] | None = None,
        render_mode: str | None = None,
        llm_backend: LLMBackend | None = None,
    ) -> None:
        self.world = build_world(
            num_envs, catalog, simulator, representation, config, render_mode,
            self.metadata["render_modes"], llm_backend,
        )  # fmt: skip
        self.config = self.world.config
        self.num_envs = num_envs
        self.single_observation_space = self.world.observation_space
        self.single_action_space = self.world.action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.render_mode = render_mode
        self._autoreset = np.zeros(num_envs, dtype=bool)
        self._last_text = ""

    @property
    def catalog(self) -> Catalog:
        return self.world.catalog

    def reset(
        self,
        *,
        seed: int | list[int] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if isinstance(seed, list | tuple):
            seed = int(seed[0]) if seed and seed[0] is not None else None
        super().reset(seed=seed)
        if seed is None and self.world.state is None:
            seed = int(self.np_random.integers(0, 2**63 - 1))
        self._autoreset[:] = False
        obs, info = self.world.reset(seed=seed)
        return obs, _with_masks(info, np.ones(self.num_envs, dtype=bool))

    def step(
        self, actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = np.asarray(actions)
        done_before = self._autoreset.copy()
        if done_before.any():
            # The slate of a finished slot is ignored (and the slot not simulated); keep
            # the batch well-formed.
            actions = actions.copy()
            actions[done_before] = np.arange(self.world.slate_size) % self.world.n_candidates
        obs, reward, terminated, truncated, info = self.world.step(actions, ~done_before)
        info = _with_masks(info, ~done_before)
        if done_before.any():
            rows = np.flatnonzero(done_before)
            reset_info = self.world.reset_rows(rows, obs)
            reward[rows] = 0.0
            terminated[rows] = False
            truncated[rows] = False
            info["episode_id"][rows] = reset_info["episode_id"]
            info["_episode_id"][rows] = True
        self._autoreset = terminated | truncated
        if self.render_mode == "ansi":
            self._last_text = format_step(self.world.catalog, info, float(reward[0]))
        return obs, reward, terminated, truncated, info

    def render(self) -> str | None:
        return self._last_text if self.render_mode == "ansi" else None

    def close_extras(self, **kwargs: Any) -> None:
        world = getattr(self, "world", None)  # absent if __init__ failed
        if world is not None:
            world.close()


def _with_masks(info: dict[str, Any], mask: np.ndarray) -> dict[str, Any]:
    out = dict(info)
    for key in info:
        out[f"_{key}"] = mask.copy()
    return out

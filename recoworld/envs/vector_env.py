"""RecoWorldVectorEnv: B users natively batched (the ``vector_entry_point`` of RecoWorld-v0).

``gym.make_vec("recoworld/RecoWorld-v0", num_envs=B, vectorization_mode="vector_entry_point")``
returns this class: one ``World`` with B users, no per-env Python loop. Sub-environment b is
user slot b. Autoreset follows Gymnasium's default ``NEXT_STEP`` mode (like
``CartPoleVectorEnv``): the step after a slot terminates or truncates ignores that slot's
action and returns the first observation of a new user with reward 0.
``autoreset_mode="Disabled"`` (Gymnasium's other mode, the one TorchRL's ``GymWrapper``
drives) never resets by itself: a slot whose user's life ended is not simulated (reward 0,
its ``terminated``/``truncated`` repeated) until ``reset(options={"reset_mask": mask})``
draws new users for the masked slots and keeps the others.

``render_mode="rgb_array"`` follows Gymnasium's vector convention too: ``render()`` returns a
tuple of ``num_envs`` frames (``RecoWorldEnv``'s), drawn only when it is called (a slot reset
at the last step shows its new user); ``"ansi"`` returns the transcript of slot 0.

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
from recoworld.envs.observation import view_observation, view_space
from recoworld.envs.recoworld_env import build_world, format_step
from recoworld.envs.render import LastStep, draw_last
from recoworld.llm import LLMBackend


class RecoWorldVectorEnv(VectorEnv):
    """B RecoWorld users stepped together; see ``RecoWorldEnv`` for the per-user manual."""

    metadata = {
        "render_modes": ["ansi", "rgb_array"],
        "render_fps": 4,
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(
        self,
        num_envs: int = 1,
        catalog: str | Path | Catalog | None = None,
        simulator: str | None = None,
        representation: str | None = None,
        config: WorldConfig | str | Path | dict[str, Any] | None = None,
        render_mode: str | None = None,
        llm_backend: LLMBackend | None = None,
        observation: str | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
    ) -> None:
        mode = AutoresetMode(autoreset_mode)
        if mode not in (AutoresetMode.NEXT_STEP, AutoresetMode.DISABLED):
            raise ValueError(
                f"autoreset_mode={mode.value!r}: RecoWorldVectorEnv supports 'NextStep' "
                "(the default) and 'Disabled' (reset(options={'reset_mask': mask}))"
            )
        self.autoreset_mode = mode  # an attribute too: TorchRL's GymWrapper reads it there
        self.metadata = {**self.metadata, "autoreset_mode": mode}
        self.world = build_world(
            num_envs, catalog, simulator, representation, config, render_mode,
            self.metadata["render_modes"], llm_backend, observation,
        )  # fmt: skip
        self.config = self.world.config
        self.num_envs = num_envs
        self.observation_view = self.config.observation
        self.single_observation_space = view_space(
            self.world.observation_space, self.observation_view
        )
        self.single_action_space = self.world.action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.render_mode = render_mode
        self._autoreset = np.zeros(num_envs, dtype=bool)  # slots whose episode has ended
        self._obs: dict[str, np.ndarray] | None = None  # the world's last full observation
        self._terminated = np.zeros(num_envs, dtype=bool)  # how an ended slot ended
        self._last_text = ""
        self._last_step: LastStep | None = None  # what render() draws (rgb_array)

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
        mask = (options or {}).get("reset_mask")
        if mask is not None and self._obs is not None:
            return self._reset_some(np.asarray(mask, dtype=bool))
        super().reset(seed=seed)
        if seed is None and self.world.state is None:
            seed = int(self.np_random.integers(0, 2**63 - 1))
        self._autoreset[:] = False
        self._terminated[:] = False
        obs, info = self.world.reset(seed=seed)
        self._obs = obs
        if self.render_mode == "rgb_array":
            assert self.world.cands is not None
            self._last_step = LastStep(info["episode_id"], candidates=self.world.cands.copy())
        view = view_observation(obs, self.observation_view)
        return view, _with_masks(info, np.ones(self.num_envs, dtype=bool))

    def _reset_some(self, mask: np.ndarray) -> tuple[Any, dict[str, Any]]:
        """``reset(options={"reset_mask": mask})`` (Gymnasium's partial reset, the way to
        start new users in ``autoreset_mode='Disabled'``): new users in the ``mask`` slots,
        the others keep theirs; info only for the reset slots (``_<key>`` masks)."""
        assert self._obs is not None
        if mask.shape != (self.num_envs,):
            raise ValueError(f"reset_mask: expected shape ({self.num_envs},), got {mask.shape}")
        rows = np.flatnonzero(mask)
        info: dict[str, Any] = {}
        if rows.size:
            sub = self.world.reset_rows(rows, self._obs)
            for key, value in sub.items():
                full = np.zeros(
                    (self.num_envs, *np.shape(value)[1:]), dtype=np.asarray(value).dtype
                )
                full[rows] = value
                info[key] = full
            self._autoreset[rows] = False
            self._terminated[rows] = False
        return view_observation(self._obs, self.observation_view), _with_masks(info, mask)

    def step(
        self, actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = np.asarray(actions)
        ended = self._autoreset.copy()  # slots whose user's life ended at the last step
        if ended.any():
            # The slate of an ended slot is ignored (and the slot not simulated); keep the
            # batch well-formed.
            actions = actions.copy()
            actions[ended] = np.arange(self.world.slate_size) % self.world.n_candidates
        obs, reward, terminated, truncated, info = self.world.step(actions, ~ended)
        self._obs = obs
        info = _with_masks(info, ~ended)
        reward[ended] = 0.0
        rows = np.flatnonzero(ended)
        new_users = rows.size > 0 and self.autoreset_mode == AutoresetMode.NEXT_STEP
        if new_users:  # NEXT_STEP: the ended slots start new users now
            reset_info = self.world.reset_rows(rows, obs)
            terminated[rows] = False
            truncated[rows] = False
            info["episode_id"][rows] = reset_info["episode_id"]
            info["_episode_id"][rows] = True
        elif rows.size:  # DISABLED: they wait for reset(options={"reset_mask": ...})
            terminated[rows] = self._terminated[rows]
            truncated[rows] = ~self._terminated[rows]
        self._terminated = terminated.copy()
        self._autoreset = terminated | truncated
        if self.render_mode == "ansi":
            self._last_text = format_step(self.world.catalog, info, float(reward[0]))
        elif self.render_mode == "rgb_array":
            cands = self.world.cands.copy() if new_users else None  # type: ignore[union-attr]
            self._last_step = LastStep(
                info["episode_id"], cands, info, reward.copy(), ended if new_users else None
            )
        view = view_observation(obs, self.observation_view)
        return view, reward, terminated, truncated, info

    def render(self) -> str | tuple[np.ndarray, ...] | None:
        """``"rgb_array"``: one frame per sub-environment (drawn now, from the last step);
        ``"ansi"``: the transcript of slot 0's last step."""
        if self.render_mode == "rgb_array":
            return tuple(draw_last(self.world, self._last_step, b) for b in range(self.num_envs))
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

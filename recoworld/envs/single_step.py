"""The single-user fast path: ``World.step`` for B = 1 without the batch machinery's fixed
costs, for ``RecoWorldEnv``.

A step of one parametric user is about 30 small numpy operations in the batched world (each
~1 us whatever B is) plus two generator unboxings into numba (~7 us each); here it is one
compiled call (``single_kernels.step_kernel``) that responds, logs, samples the next
candidates and encodes the observation into preallocated buffers, with numpy only for the
rare events (a session ends, an instruction is written: the model's own numpy code), for the
history's entropy when the user clicked, and for the text the config asks for. The result is
bit-identical to ``World.step`` (``tests/test_env_fast_path.py`` checks every observation,
reward, flag and info entry against it).

Used for the parametric simulator without ground-truth info and without rendering; every
other world (hybrid, LLM, ``ground_truth_info``, ``render_mode``) takes ``World.step``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recoworld.envs.batch_step import (
    bind_world,
    hooked,
    is_bound,
    kernel_settings,
    step_buffers,
)
from recoworld.envs.observation import (
    gap_feature,
    history_features,
)
from recoworld.envs.world import World
from recoworld.simulators.base import Responses
from recoworld.simulators.parametric.model import ParametricUserModel

_ROW0 = np.zeros(1, dtype=np.int64)


def supports(world: World, render_mode: str | None) -> bool:
    """Whether the fast path can step ``world`` (see module docstring)."""
    return (
        world.n_users == 1
        and type(world.simulator) is ParametricUserModel
        and not world.config.episode.ground_truth_info
        and render_mode is None
    )


class SingleUserStep:
    """``World.reset``/``World.step`` for the one user of ``world`` (see module docstring).

    ``reset(seed)`` and ``step(action)`` return the full observation as the fast path's
    buffers (batched, B = 1), which the next step overwrites: copy what you hand out. The
    info is ``RecoWorldEnv``'s (row 0 of ``World.step``'s, with Python scalars)."""

    def __init__(self, world: World) -> None:
        from recoworld.envs import single_kernels as kernels

        self._k = kernels
        self.world = world
        ep, t = world.config.episode, world.catalog.n_topics
        self._settings = kernel_settings(world)
        self._log_t = float(self._settings[kernels.C_LOG_T])
        self._max_sessions = ep.max_sessions
        self._small_history = t <= kernels.PAIRWISE_BLOCK  # else: history_features (numpy)
        self._text = ep.text_info
        self._item_ids = world.catalog.item_ids
        self._titles = world.catalog.titles
        self._scalars = np.zeros(kernels.N_SCALARS, dtype=np.float64)
        self._buf = step_buffers(world, 1)
        self._new_history = self._buf["new_history"]
        self._new_gap = float(self._settings[kernels.C_NEW_GAP])
        self.obs: dict[str, np.ndarray] | None = None
        self._tab: np.ndarray | None = None
        self._rngs = np.zeros((2, 6), dtype=np.int64)
        self._fields: list[Any] = []
        self._keep: list[np.ndarray] = []
        self._reasoning: str | None = None
        self._mindset: str | None = None
        self.usable = True  # False once the world's arrays do not fit the kernel

    # ------------------------------------------------------------------ binding
    def _bind(self) -> bool:
        """Point the address table at the world's current arrays and generators; False if
        one of them does not have the layout the kernel expects."""
        assert self.obs is not None
        bound = bind_world(self.world, self._buf, self.obs, self._rngs, self._settings)
        if bound is None:
            return False
        self._tab, self._keep, self._fields = bound
        return True

    def _is_bound(self) -> bool:
        return bool(self._fields) and is_bound(self.world, self._fields)

    # ------------------------------------------------------------------ reset
    def reset(self, seed: int | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """``World.reset(seed)`` for B = 1: a new user (the same draws), its first
        candidates and observation; returns the observation buffers and the info row."""
        w = self.world
        if w.state is None or self.obs is None or seed is not None or not self._is_bound():
            obs, info = w.reset(seed=seed)  # (a seed makes new generators: bind again)
            self.obs = {key: np.ascontiguousarray(value) for key, value in obs.items()}
            self.usable = self._bind()  # False: the caller goes on with World.step
            self._buf["gap_feature"][0] = gap_feature(w.platform.gap_hours)[0]  # type: ignore[union-attr]
            return self.obs, _reset_row(info, self._item_ids)
        st = w.state
        sim = w.simulator
        assert isinstance(sim, ParametricUserModel)
        sim.replace_users(st, _ROW0, w.rng_users)  # = sample_users(1), in place
        w.episode_id[0] = w._next_episode
        w._next_episode += 1
        k = self._k
        self._buf["gap_feature"][0] = self._new_gap
        k.step_kernel(k.NEW_USER | k.ADVANCE, self._tab, self._rngs, self._settings, self._scalars)
        self.obs["history"][:] = self._new_history
        info = {"episode_id": int(w.episode_id[0]), "candidates": self._ids(w.cands[0])}  # type: ignore[index]
        return self.obs, info

    def _ids(self, items: np.ndarray) -> Any:
        ids = self._item_ids[items]
        return ids.tolist() if ids.dtype == object else ids

    # ------------------------------------------------------------------ step
    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        w = self.world
        if w.state is None or self.obs is None:
            raise RuntimeError("World.step called before reset()")
        if not self._is_bound() and not self._bind():
            self.usable = False
            raise FastPathUnavailable("array layout changed")  # before touching the world
        if hooked(w.simulator):
            self.usable = False
            raise FastPathUnavailable("simulator hooked")  # World.step calls the hook
        b = self._buf
        a = np.asarray(action)
        if a.dtype != np.int64 or a.shape != b["action"].shape:
            a = w.check_actions(a[None])[0]  # the world's checks and messages
        b["action"][:] = a
        k, tab, rngs, settings, s = self._k, self._tab, self._rngs, self._settings, self._scalars
        code = k.step_kernel(k.RESPOND, tab, rngs, settings, s)
        if code == k.BAD_ACTION:
            w.check_actions(b["action"][None])  # raises the world's message
        instruction = None
        terminated = truncated = returned = False
        gap = 0.0
        if code == k.PAUSED:  # a session end or an instruction: numpy, as World.step
            instruction, returned, gap, terminated, truncated = self._rare()
        elif self._text == "all":
            self._say()
        if s[k.S_CLICKED]:  # the click-topic history moved: its entropy, with numpy's log
            if self._small_history:
                np.log(b["safe"], out=b["log_safe"])
                k.step_kernel(k.HISTORY, tab, rngs, settings, s)
            else:
                p = w.platform
                assert p is not None
                self.obs["history"][:] = history_features(
                    p.topic_history, p.ema_click, p.ema_watch, self._log_t
                )
        items = b["items"][0]
        info: dict[str, Any] = {
            "episode_id": int(w.episode_id[0]),
            "session": int(s[k.S_SESSION]),
            "step_in_session": int(s[k.S_STEP]),
            "item_index": items.copy(),
            "item_ids": self._ids(items),
            "shown": b["valid"][0].copy(),
            "n_duplicates": int(s[k.S_N_DUP]),
            "click": b["click"][0].copy(),
            "watch": b["watch"][0].copy(),
            "like": b["like"][0].copy(),
            "follow": b["follow"][0].copy(),
            "gift": b["gift"][0].copy(),
            "utility": b["util"][0].copy(),
            "left": bool(s[k.S_LEFT]),
            "session_end": bool(s[k.S_SESSION_END]),
            "returned": returned,
            "gap_hours": gap,
            "satisfaction": float(s[k.S_SATISFACTION]),
            "instructed": bool(s[k.S_INSTRUCTED]),
            "reward_click": float(s[k.S_CLICK]),
            "reward_watch": float(s[k.S_WATCH]),
            "reward_like": float(s[k.S_LIKE]),
            "reward_follow": float(s[k.S_FOLLOW]),
            "reward_gift": float(s[k.S_GIFT]),
            "reward_leave": float(s[k.S_LEAVE]),
            "reward_return_bonus": float(s[k.S_RETURN]),
        }
        if self._text != "none":
            info["instruction"] = instruction
        if self._text == "all":
            titles = self._titles
            info["titles"] = [titles[i] for i in items.tolist()]
            info["reasoning"] = self._reasoning
            info["mindset"] = self._mindset
        return self.obs, float(s[k.S_REWARD]), terminated, truncated, info

    def _say(self) -> None:
        """The reasoning and mindset of this step (``text_info='all'``), from the response
        buffers and the state right after the response."""
        b, w = self._buf, self.world
        sim = w.simulator
        assert isinstance(sim, ParametricUserModel)
        self._reasoning = sim.reasoning(
            b["items"], b["comps"], b["choice"], b["watch"].max(1), b["instructed"], _ROW0
        )[0]
        self._mindset = sim.mindset(w.state, b["unmet"], _ROW0)[0]  # type: ignore[arg-type]

    def _rare(self) -> tuple[str | None, bool, float, bool, bool]:
        """The rest of a step in which the session ended or an instruction was written:
        ``World.respond``/``advance``'s numpy code for those events around the kernel's log
        and advance phases."""
        w, k, b = self.world, self._k, self._buf
        st, p, sim = w.state, w.platform, w.simulator
        assert st is not None and p is not None and isinstance(sim, ParametricUserModel)
        rows = _ROW0
        instruction: str | None = None
        vectors = None
        if b["instructed"][0]:
            vectors = sim.instruct(st, rows, b["unmet"])
            if self._text != "none":
                resp = Responses(
                    click=b["click"], watch=b["watch"], like=b["like"], follow=b["follow"],
                    gift=b["gift"], utility=b["util"], leave=b["leave"],
                    satisfaction=st.satisfaction.copy(), instructed=b["instructed"],
                    instruction=[None],
                )  # fmt: skip
                sim.say_instructions(st, rows, vectors, resp)
                instruction = resp.instruction[0]
        if self._text == "all":
            self._say()
        session_end = bool(self._scalars[k.S_SESSION_END])
        returned = False
        gap = np.zeros(1, dtype=np.float32)
        if session_end:
            came_back, gap = sim.end_session(st, rows, w.rng_responses)
            returned = bool(came_back[0])
        last_session = bool(st.session_index[0] + 1 >= self._max_sessions)
        b["returned"][0] = returned
        args = (self._tab, self._rngs, self._settings, self._scalars)
        k.step_kernel(k.LOG, *args)  # reward and platform logs
        if vectors is not None:  # World._log_platform's instruction part
            p.instruction[rows] = vectors
            p.steps_since_instruction[rows] = 0.0
            p.instructions_total[rows] += 1.0
        if session_end and returned and not last_session:
            sim.start_session(st, rows, w.rng_responses)
            p.start_session(rows, gap)
            b["gap_feature"][0] = gap_feature(p.gap_hours)[0]
        k.step_kernel(k.ADVANCE, *args)  # next candidates and observation
        terminated = session_end and not returned
        truncated = session_end and returned and last_session
        return instruction, returned, float(gap[0]), terminated, truncated


class FastPathUnavailable(RuntimeError):
    """The world's arrays do not have the layout the kernel expects (raised before the
    step touches the world: the caller goes on with ``World.step``)."""


def _reset_row(info: dict[str, Any], item_ids: np.ndarray) -> dict[str, Any]:
    """Row 0 of ``World.reset``'s info, as ``RecoWorldEnv`` hands it out."""
    ids = info["candidates"][0]
    return {
        "episode_id": int(info["episode_id"][0]),
        "candidates": ids.tolist() if ids.dtype == object else ids,
    }

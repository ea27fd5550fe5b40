"""The batched world's compiled step: ``World.respond`` / ``advance`` / ``reset_rows`` for B
parametric users in a few compiled passes over the batch (``single_kernels.batch_*``).

A step is: ``batch_respond`` (the slates' items, ``respond_batch``, the session ends), numpy
for the rows with a rare event (instructions, session ends and returns: the model's own
code, on those rows only), ``batch_log`` (reward, platform logs, the history's distribution),
numpy's ``log`` over the [B, T] history scratch (numpy's bits for the entropy), then
``batch_advance`` (next candidates and the observation; with an ``inject`` hook, sampling
and encoding are two passes around it). New users (``reset_rows``: autoreset, arrivals)
get their traits from the model's numpy draws and everything else (cleared state and logs,
candidates, observation) from one ``batch_advance`` over their rows.

The per-user code is ``single_kernels``' (the B = 1 fast path's), indexed by row; the
arrays reach the kernels as one address table (``single_step.bind_world``). Every
floating-point operation repeats the dtype and order of the numpy path, which stays as the
reference (``World.set_compiled(False)``); ``tests/test_vector_kernel.py`` checks both
against recorded digests and against each other step by step.

Buffers: responses, reward terms and the history's scratch are preallocated (the
``Responses`` and info the world hands out are copies); each step's observation arrays are
allocated fresh and written once by the kernel, so nothing handed out is overwritten later.

Used for the parametric simulator without ground-truth info, text ``none`` or
``instructions`` and at most ``PAIRWISE_BLOCK`` topics (``supports``); every other world
takes the numpy path.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from recoworld.envs.observation import (
    EMA,
    NO_INSTRUCTION,
    gap_feature,
    history_features,
    recency_table,
)
from recoworld.envs.reward import REWARD_TERMS
from recoworld.simulators.base import Responses
from recoworld.simulators.parametric.model import COMPONENTS, ParametricUserModel

GENERATOR_TABLES = (
    "counts", "pop_prob", "pop_alias", "fresh", "topic_items", "topic_offsets", "topic_counts",
)  # fmt: skip
"""The address table's names of ``CandidateGenerator.kernel_tables``."""

CONSTANTS = (
    "topic_idx", "topic_w", "topic_n", "item_latent", "quality", "creator_of", "nov_pop",
    "item_pop", "item_era", "era_mean", "interest_base", "params", "counts", "pop_prob",
    "pop_alias", "fresh", "topic_items", "topic_offsets", "topic_counts", "table",
    "source_onehot",
)  # fmt: skip
"""The arrays of the address table that never change (catalog, model and encoder tables)."""

OBS_NAMES = {
    "cand": "candidates", "user": "user", "history": "history", "instruction": "instruction",
    "counters": "counters", "ids": "candidate_ids", "recent": "recent_ids",
}  # fmt: skip
"""The kernel's observation buffers (``obs_<key>``) and the observation's keys."""


def kernel_settings(world: Any) -> np.ndarray:
    """The float64 ``settings`` the kernels read (``single_kernels.C_*``) for ``world``."""
    from recoworld.envs import single_kernels as k
    from recoworld.simulators.parametric.model import INACTIVE

    ep, rw = world.config.episode, world.config.reward
    settings = np.zeros(k.N_SETTINGS, dtype=np.float64)
    settings[k.C_CLICK : k.C_RETURN + 1] = [getattr(rw, term) for term in REWARD_TERMS]
    settings[k.C_DECAY] = ep.history_decay
    settings[k.C_MAX_STEPS] = ep.max_session_steps
    settings[k.C_MAX_SESSIONS] = ep.max_sessions
    settings[k.C_EMA] = EMA
    settings[k.C_LOG_T] = float(np.log(max(world.catalog.n_topics, 2)))
    settings[k.C_NO_INSTRUCTION] = NO_INSTRUCTION
    settings[k.C_SAT_INIT] = world.simulator.config.satisfaction_init
    settings[k.C_INACTIVE] = INACTIVE
    settings[k.C_NEW_GAP] = float(gap_feature(np.zeros(1, np.float32))[0])
    settings[k.C_N_AVAILABLE] = world.candidates.n_available
    return settings


def step_buffers(world: Any, n: int) -> dict[str, np.ndarray]:
    """The kernels' own buffers for ``n`` users (responses, the history's scratch, the
    reward terms) and their tables (instruction recency, a new user's history features)."""
    from recoworld.envs import single_kernels as kernels

    k, t = world.slate_size, world.catalog.n_topics
    f32, b1 = np.float32, np.bool_
    zero = np.zeros(1, f32)
    log_t = float(np.log(max(t, 2)))
    actions = np.zeros((n, k), np.int64)
    return {
        "action": actions[0],  # the single path's slate (row 0 of ``actions``)
        "actions": actions,
        "items": np.zeros((n, k), np.int64),
        "valid": np.zeros((n, k), b1),
        "click": np.zeros((n, k), b1),
        "watch": np.zeros((n, k), f32),
        "like": np.zeros((n, k), b1),
        "follow": np.zeros((n, k), b1),
        "gift": np.zeros((n, k), b1),
        "comps": np.zeros((n, k, len(COMPONENTS)), f32),
        "nov": np.zeros((n, k), f32),
        "util": np.zeros((n, k), f32),
        "probs": np.zeros((n, k + 1), f32),
        "leave": np.zeros(n, b1),
        "instructed": np.zeros(n, b1),
        "p_leave": np.zeros(n, f32),
        "unmet": np.zeros(n, f32),
        "choice": np.zeros(n, np.int64),
        "clicked_topics": np.zeros((n, t), f32),
        "pref": np.zeros((1, 1), f32),
        "recency": recency_table(),
        "gap_feature": np.zeros(n, np.float64),
        "dist": np.zeros((n, t), f32),
        "safe": np.zeros((n, t), f32),
        "log_safe": np.zeros((n, t), f32),
        "returned": np.zeros(n, b1),
        "active": np.ones(n, b1),
        "session_end": np.zeros(n, b1),
        "terms": np.zeros((kernels.N_TERMS, n), f32),
        # a new user's history features (empty logs): numpy's, once
        "new_history": history_features(np.zeros((1, t), f32), zero, zero, log_t),
    }


def bind_world(
    world: Any,
    buf: dict[str, np.ndarray],
    obs: dict[str, np.ndarray],
    rngs: np.ndarray,
    settings: np.ndarray,
) -> tuple[np.ndarray, list[np.ndarray], list[Any]] | None:
    """The address table of ``world``'s arrays, the kernels' buffers ``buf`` and the
    observation ``obs`` (``single_kernels.bind_table``), the arrays it points into and what
    ``is_bound`` compares; fills ``rngs`` (the responses' and candidates' generators'
    handles) and ``settings[C_N_AVAILABLE]``. None if an array does not have the layout
    the kernels expect."""
    from recoworld.envs import single_kernels as k

    st, p, gen, sim = world.state, world.platform, world.candidates, world.simulator
    assert st is not None and p is not None and world.cands is not None
    assert isinstance(sim, ParametricUserModel)
    names = [name for name, _, _ in k.ARRAYS]
    arrays = dict(zip(names[4:28], sim.kernel_args(st), strict=True))
    arrays.update(buf)
    arrays.update(
        cands=world.cands, follows=st.follows, patience=st.patience,
        satisfaction=st.satisfaction, session_step=st.session_step,
        session_index=st.session_index, instr_in_session=st.instructions_in_session,
        instruction=p.instruction, steps_since_instruction=p.steps_since_instruction,
        table=world.encoder.table, source_onehot=world.encoder.source_onehot,
        **dict(zip(GENERATOR_TABLES, gen.kernel_tables(), strict=True)),
        **{f"obs_{key}": obs[name] for key, name in OBS_NAMES.items()},
    )  # fmt: skip
    for name in ("topic_history", "ema_click", "ema_watch", "session_clicks",
                 "session_watch", "total_clicks", "total_steps", "gap_hours",
                 "instructions_total", "n_follows", "recent_items"):  # fmt: skip
        arrays[name] = getattr(p, name)
    for name in CONSTANTS:  # read-only tables: a contiguous copy is as good
        arrays[name] = np.ascontiguousarray(arrays[name])
    bound = k.bind_table(arrays)
    if bound is None:
        return None
    tab, keep = bound
    rngs[0] = k.rng_handle(world.rng_responses).view(np.int64)
    rngs[1] = k.rng_handle(world.rng_candidates).view(np.int64)
    settings[k.C_N_AVAILABLE] = gen.n_available
    return tab, keep, bound_objects(world)


def bound_objects(world: Any) -> list[Any]:
    """What a table bound to ``world`` points into: the state objects and their fields, the
    generators (kept alive by this list), the candidates, the model's and the candidate
    generator's tables and its catalog prefix (a field replaced rather than written into
    means a rebind)."""
    st, p, sim, gen = world.state, world.platform, world.simulator, world.candidates
    assert isinstance(sim, ParametricUserModel) and st is not None
    return [
        st, p, world.cands, world.rng_responses, world.rng_candidates, gen.n_available,
        *vars(st).values(), *vars(p).values(), *sim.kernel_args(st), *gen.kernel_tables(),
    ]  # fmt: skip


def is_bound(world: Any, fields: list[Any]) -> bool:
    """Whether a table bound with ``fields`` (``bind_world``) still points at ``world``'s
    arrays."""
    if world.state is None or world.platform is None:
        return False
    return all(map(operator.is_, bound_objects(world), fields))


RESPONSE_COPIES = ("click", "watch", "like", "follow", "gift", "util", "leave", "instructed")


HOOKABLE = ("respond", "replace_users", "sample_users")
"""Simulator methods the compiled kernels stand in for."""


def hooked(simulator: Any) -> bool:
    """Whether one of ``HOOKABLE`` was replaced on the simulator instance (a hook, e.g. a
    fidelity probe that wraps ``respond`` to capture what the users did): the compiled
    paths would bypass it, so the numpy path, which calls it, steps the world instead."""
    return any(name in vars(simulator) for name in HOOKABLE)


def supports(world: Any) -> bool:
    """Whether the compiled step can step ``world`` (see module docstring)."""
    from recoworld.envs.single_kernels import PAIRWISE_BLOCK

    ep = world.config.episode
    return (
        type(world.simulator) is ParametricUserModel
        and not ep.ground_truth_info
        and ep.text_info in ("none", "instructions")
        and world.catalog.n_topics <= PAIRWISE_BLOCK
    )


class BatchStep:
    """The compiled phases of ``World``'s step for all B users (see module docstring)."""

    def __init__(self, world: Any) -> None:
        from recoworld.envs import single_kernels as kernels

        self._k = kernels
        self.world = world
        n = world.n_users
        self._settings = kernel_settings(world)
        self._buf = step_buffers(world, n)
        self._rngs = np.zeros((2, 6), dtype=np.int64)
        self._all = np.arange(n, dtype=np.int64)
        self._tab: np.ndarray | None = None
        self._fields: list[Any] = []
        self._keep: list[np.ndarray] = []
        self._obs_rows = [kernels.ARRAYS.index(a) for a in kernels.ARRAYS if a[0][:4] == "obs_"]
        self._max_sessions = world.config.episode.max_sessions
        self._text = world.config.episode.text_info
        self.obs: dict[str, np.ndarray] | None = None  # what the table's obs rows point at

    # ------------------------------------------------------------------ binding
    def _fresh_obs(self) -> dict[str, np.ndarray]:
        """Uninitialised observation arrays of the world's shapes (the kernel fills them)."""
        space = self.world.observation_space
        n = self.world.n_users
        return {  # in the numpy path's order of keys
            key: np.empty((n, *space[key].shape), dtype=space[key].dtype)
            for key in OBS_NAMES.values()
        }

    def ready(self) -> bool:
        """Bind the table if the world's arrays moved; False if they do not fit it."""
        w = self.world
        if w.state is None or w.platform is None or w.cands is None:
            return False
        if self._fields and is_bound(w, self._fields):
            return True
        obs = self.obs if self.obs is not None else self._fresh_obs()
        bound = bind_world(w, self._buf, obs, self._rngs, self._settings)
        if bound is None:
            self._fields = []
            return False
        self._tab, self._keep, self._fields = bound
        self.obs = obs
        self._buf["gap_feature"][:] = gap_feature(w.platform.gap_hours)
        return True

    def _point_obs(self, obs: dict[str, np.ndarray]) -> bool:
        """Point the table's observation rows at ``obs``; False if an array does not fit."""
        k, tab = self._k, self._tab
        assert tab is not None
        for i in self._obs_rows:
            name, dtype, ndim = k.ARRAYS[i]
            a = obs[OBS_NAMES[name[4:]]]
            if a.dtype != dtype or a.ndim != ndim or not a.flags.c_contiguous:
                return False
            if a.shape != tuple(tab[i, 1 : 1 + ndim]):
                return False
            tab[i, 0] = a.ctypes.data
        self.obs = obs  # (kept alive while the table points into it)
        return True

    # ------------------------------------------------------------------ step
    def respond(self, actions: np.ndarray, active: np.ndarray) -> tuple:
        """``World.respond`` (the actions already checked; the table bound: ``ready``): the
        fields of its ``Responded``, in order."""
        w, k, b = self.world, self._k, self._buf
        st, p, sim = w.state, w.platform, w.simulator
        assert st is not None and p is not None and isinstance(sim, ParametricUserModel)
        n = w.n_users
        b["actions"][:] = actions
        b["active"][:] = active
        session_index = st.session_index.copy()
        step_in_session = st.session_step.copy()
        args = (self._tab, self._rngs, self._settings)
        n_end, n_instructed = k.batch_respond(*args)

        out = {name: b[name].copy() for name in RESPONSE_COPIES}
        instruction: list[str | None] = [None] * n
        vectors = None
        who = np.flatnonzero(out["instructed"]) if n_instructed else None
        resp = Responses(
            click=out["click"], watch=out["watch"], like=out["like"], follow=out["follow"],
            gift=out["gift"], utility=out["util"], leave=out["leave"],
            satisfaction=st.satisfaction.copy(), instructed=out["instructed"],
            instruction=instruction, reasoning=instruction.copy(), mindset=instruction.copy(),
        )  # fmt: skip
        if who is not None:
            vectors = sim.instruct(st, who, b["unmet"])
            if self._text != "none":
                sim.say_instructions(st, who, vectors, resp)
        resp.extra = {
            "p_leave": b["p_leave"].copy(),
            "choice_probs": b["probs"].copy(),
            "novelty": b["nov"].copy(),
            "instruction_vector": vectors,
            "clicked_topics": b["clicked_topics"].copy(),
        }

        session_end = b["session_end"].copy()
        returned = np.zeros(n, dtype=bool)
        gap = np.zeros(n, dtype=np.float32)
        if n_end:
            ends = np.flatnonzero(session_end)
            returned[ends], gap[ends] = sim.end_session(st, ends, w.rng_responses)
        last_session = st.session_index + 1 >= self._max_sessions
        terminated = session_end & ~returned
        truncated = session_end & returned & last_session
        b["returned"][:] = returned
        k.batch_log(self._tab, self._settings)
        np.log(b["safe"], out=b["log_safe"])
        if who is not None:  # World._log_platform's instruction part
            p.instruction[who] = vectors
            p.steps_since_instruction[who] = 0.0
            p.instructions_total[who] += 1.0
        terms = b["terms"].copy()
        return (
            resp, b["items"].copy(), b["valid"].copy(), np.asarray(active, dtype=bool),
            resp.leave, session_end, returned, gap, last_session, terminated, truncated,
            terms[0], dict(zip(REWARD_TERMS, terms[1:], strict=True)), session_index,
            step_in_session, {},
        )  # fmt: skip

    def advance(self, step: Any, inject: Callable | None) -> dict[str, np.ndarray]:
        """``World.advance`` up to the info: returning users' next sessions, the next
        candidates (``inject`` between sampling and encoding), the observation (fresh
        arrays)."""
        w, k = self.world, self._k
        st, p, sim = w.state, w.platform, w.simulator
        assert st is not None and p is not None and isinstance(sim, ParametricUserModel)
        cont = np.flatnonzero(step.session_end & step.returned & ~step.last_session)
        if cont.size:
            sim.start_session(st, cont, w.rng_responses)
            p.start_session(cont, step.gap[cont])
        # every step, as the numpy path does (another path may have moved a gap)
        self._buf["gap_feature"][:] = gap_feature(p.gap_hours)
        obs = self._fresh_obs()
        self._point_obs(obs)
        args = (self._tab, self._rngs, self._settings, self._all)
        if inject is None:
            k.batch_advance(k.SAMPLE | k.ENCODE, *args)
        else:
            k.batch_advance(k.SAMPLE, *args)
            assert w.cands is not None
            inject(w.cands, None)
            k.batch_advance(k.ENCODE, *args)
        return obs

    def reset_rows(
        self, rows: np.ndarray, obs: dict[str, np.ndarray], inject: Callable | None
    ) -> bool:
        """``World.reset_rows`` but its info: new users in ``rows`` (traits from the model's
        draws, the rest cleared by the kernel), their candidates and observation written
        into ``obs``. False (nothing done) if ``obs`` does not fit the kernel."""
        w, k = self.world, self._k
        st, sim = w.state, w.simulator
        assert st is not None and w.cands is not None and isinstance(sim, ParametricUserModel)
        previous = self.obs
        if not self._point_obs(obs):
            if previous is not None:
                self._point_obs(previous)
            return False
        sim.replace_users(st, rows, w.rng_users, clear=False)
        args = (self._tab, self._rngs, self._settings, rows)
        if inject is None:
            k.batch_advance(k.NEW_USER | k.SAMPLE | k.ENCODE | k.FRESH, *args)
        else:
            k.batch_advance(k.NEW_USER | k.SAMPLE, *args)
            sub = w.cands[rows]
            inject(sub, rows)
            w.cands[rows] = sub
            k.batch_advance(k.ENCODE | k.FRESH, *args)
        return True

"""Compiled (numba) kernels of the single-user fast path (``recoworld.envs.single_step``).

One call does what ``World.step`` does for B = 1 in the common case (no session end, no
instruction): the user's response (``respond_batch`` of the parametric model, the same
compiled code the batched world runs), the reward, the platform's logs, the next candidates
(``sample_candidates``) and the observation, written into preallocated buffers. Every
floating-point operation repeats the dtype and order of the numpy code it replaces, so the
trajectory is bit-identical to the batched world's; the few transcendental features whose
numpy (SIMD) results could differ in the last bit from a compiled libm (the history's
entropy, the gap since the last session) are computed by numpy outside, and the
instruction recency comes from a table numpy filled.

Random generators are passed as ``rng_handle`` arrays: numba unboxes a
``np.random.Generator`` argument in about 7 us (three ``ctypes.cast`` calls per call), more
than the whole step of one user; the handle (the bit generator's state and function
pointers, taken once) is rebuilt into numba's generator struct here, so the draws advance
the very same numpy generator. The caller keeps the generator alive while the handle is used.

Imported on first use, like ``recoworld.simulators.parametric.kernels`` (which says why).
"""

from __future__ import annotations

import ctypes

import numpy as np
from numba import carray, njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from recoworld.catalog.candidate_kernel import sample_row
from recoworld.simulators.parametric.kernels import respond_batch

_GENERATOR = types.NumPyRandomGeneratorType("generator")
_BIT_GENERATOR = types.NumPyRandomBitGeneratorType("bit_generator")

ARRAYS = (
    ("action", np.int64, 1),
    ("cands", np.int64, 2),
    ("items", np.int64, 2),
    ("valid", np.bool_, 2),
    # ParametricUserModel.kernel_args
    ("topic_idx", np.int64, 2),
    ("topic_w", np.float32, 2),
    ("topic_n", np.int64, 1),
    ("item_latent", np.float32, 2),
    ("quality", np.float32, 1),
    ("creator_of", np.int64, 1),
    ("nov_pop", np.float32, 1),
    ("item_pop", np.float32, 1),
    ("item_era", np.float32, 1),
    ("era_mean", np.float64, 1),
    ("interest_base", np.float32, 1),
    ("interest", np.float32, 2),
    ("latent", np.float32, 2),
    ("era", np.float32, 1),
    ("novelty_session", np.float32, 1),
    ("fatigue", np.float32, 2),
    ("exposure", np.float32, 2),
    ("affinity", np.float32, 2),
    ("creator_clicks", np.float32, 2),
    ("seen", np.uint8, 2),
    ("consumed", np.uint8, 2),
    ("instr_vec", np.float32, 2),
    ("instr_age", np.int32, 1),
    ("params", np.float64, 1),
    # the rest of the user state
    ("follows", np.bool_, 2),
    ("patience", np.float32, 1),
    ("satisfaction", np.float32, 1),
    ("session_step", np.int32, 1),
    ("session_index", np.int32, 1),
    ("instr_in_session", np.int32, 1),
    # respond_batch's outputs
    ("click", np.bool_, 2),
    ("watch", np.float32, 2),
    ("like", np.bool_, 2),
    ("follow", np.bool_, 2),
    ("gift", np.bool_, 2),
    ("comps", np.float32, 3),
    ("nov", np.float32, 2),
    ("util", np.float32, 2),
    ("probs", np.float32, 2),
    ("leave", np.bool_, 1),
    ("instructed", np.bool_, 1),
    ("p_leave", np.float32, 1),
    ("unmet", np.float32, 1),
    ("choice", np.int64, 1),
    ("clicked_topics", np.float32, 2),
    ("pref", np.float32, 2),
    # PlatformState
    ("topic_history", np.float32, 2),
    ("ema_click", np.float32, 1),
    ("ema_watch", np.float32, 1),
    ("session_clicks", np.float32, 1),
    ("session_watch", np.float32, 1),
    ("total_clicks", np.float32, 1),
    ("total_steps", np.float32, 1),
    ("gap_hours", np.float32, 1),
    ("instruction", np.float32, 2),
    ("steps_since_instruction", np.float32, 1),
    ("instructions_total", np.float32, 1),
    ("n_follows", np.float32, 1),
    ("recent_items", np.int64, 2),
    # CandidateGenerator's tables
    ("counts", np.int64, 1),
    ("pop_prob", np.float64, 1),
    ("pop_alias", np.int64, 1),
    ("fresh", np.int64, 1),
    ("topic_items", np.int64, 1),
    ("topic_offsets", np.int64, 1),
    ("topic_counts", np.int64, 1),
    # the encoder's tables, the observation and the history's scratch
    ("table", np.float32, 2),
    ("source_onehot", np.float32, 2),
    ("recency", np.float32, 1),
    ("gap_feature", np.float64, 1),
    ("obs_cand", np.float32, 3),
    ("obs_user", np.float32, 2),
    ("obs_history", np.float32, 2),
    ("obs_instruction", np.float32, 2),
    ("obs_counters", np.float32, 2),
    ("obs_ids", np.int64, 2),
    ("obs_recent", np.int64, 2),
    ("dist", np.float32, 2),
    ("safe", np.float32, 2),
    ("log_safe", np.float32, 2),
    ("returned", np.bool_, 1),
    # the batched step's own (``batch_*``; the single path binds one-row arrays)
    ("actions", np.int64, 2),
    ("active", np.bool_, 1),
    ("session_end", np.bool_, 1),
    ("terms", np.float32, 2),
    ("new_history", np.float32, 2),
)
"""The arrays a step reads and writes, in the order of the address table ``tab`` (name, dtype,
ndim); ``bind_table`` checks each array against it."""
(A_ACTION, A_CANDS, A_ITEMS, A_VALID, A_TOPIC_IDX, A_TOPIC_W, A_TOPIC_N, A_ITEM_LATENT,
 A_QUALITY, A_CREATOR_OF, A_NOV_POP, A_ITEM_POP, A_ITEM_ERA, A_ERA_MEAN, A_INTEREST_BASE,
 A_INTEREST, A_LATENT, A_ERA, A_NOVELTY_SESSION, A_FATIGUE, A_EXPOSURE, A_AFFINITY,
 A_CREATOR_CLICKS, A_SEEN, A_CONSUMED, A_INSTR_VEC, A_INSTR_AGE, A_PARAMS, A_FOLLOWS,
 A_PATIENCE, A_SATISFACTION, A_SESSION_STEP, A_SESSION_INDEX, A_INSTR_IN_SESSION, A_CLICK,
 A_WATCH, A_LIKE, A_FOLLOW, A_GIFT, A_COMPS, A_NOV, A_UTIL, A_PROBS, A_LEAVE, A_INSTRUCTED,
 A_P_LEAVE, A_UNMET, A_CHOICE, A_CLICKED_TOPICS, A_PREF, A_TOPIC_HISTORY, A_EMA_CLICK,
 A_EMA_WATCH, A_SESSION_CLICKS, A_SESSION_WATCH, A_TOTAL_CLICKS, A_TOTAL_STEPS, A_GAP_HOURS,
 A_INSTRUCTION, A_SSI, A_INSTRUCTIONS_TOTAL, A_N_FOLLOWS, A_RECENT_ITEMS, A_COUNTS,
 A_POP_PROB, A_POP_ALIAS, A_FRESH, A_TOPIC_ITEMS, A_TOPIC_OFFSETS, A_TOPIC_COUNTS, A_TABLE,
 A_SOURCE_ONEHOT, A_RECENCY, A_GAP_FEATURE, A_OBS_CAND, A_OBS_USER, A_OBS_HISTORY,
 A_OBS_INSTRUCTION, A_OBS_COUNTERS, A_OBS_IDS, A_OBS_RECENT, A_DIST, A_SAFE, A_LOG_SAFE,
 A_RETURNED, A_ACTIONS, A_ACTIVE, A_SESSION_END, A_TERMS,
 A_NEW_HISTORY) = range(len(ARRAYS))  # fmt: skip
# Layout of the float64 ``scalars`` output.
(S_REWARD, S_CLICK, S_WATCH, S_LIKE, S_FOLLOW, S_GIFT, S_LEAVE, S_RETURN, S_SESSION,
 S_STEP, S_N_DUP, S_LEFT, S_SESSION_END, S_SATISFACTION, S_INSTRUCTED,
 S_CLICKED) = range(16)  # fmt: skip
N_SCALARS = 16
# Layout of the float64 ``settings`` input (world config the kernel needs).
(C_CLICK, C_WATCH, C_LIKE, C_FOLLOW, C_GIFT, C_LEAVE, C_RETURN, C_DECAY, C_MAX_STEPS,
 C_MAX_SESSIONS, C_EMA, C_LOG_T, C_N_AVAILABLE, C_NO_INSTRUCTION, C_SAT_INIT, C_INACTIVE,
 C_NEW_GAP) = range(17)  # fmt: skip
N_SETTINGS = 17
# Phases of ``step_kernel`` (bits, except RESPOND and HISTORY) and ``batch_advance`` (bits).
RESPOND, LOG, ADVANCE, HISTORY, NEW_USER, SAMPLE, ENCODE, FRESH = 0, 1, 2, 4, 8, 16, 32, 64
# Rows of the float32 ``terms`` array [N_TERMS, B]: the reward, then its terms in
# ``REWARD_TERMS`` order.
N_TERMS = 8
# Return codes of ``step_kernel``.
DONE, PAUSED, BAD_ACTION = 0, 1, 2


def bind_table(arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]] | None:
    """The address table [len(ARRAYS), 4] (address, shape) of ``arrays`` (every name of
    ``ARRAYS``), and the arrays it points into (keep them alive while it is used); None if
    one of them is not a C-contiguous array of the expected dtype and rank."""
    tab = np.zeros((len(ARRAYS), 4), dtype=np.int64)
    keep = []
    for i, (name, dtype, ndim) in enumerate(ARRAYS):
        a = arrays[name]
        if a.dtype != dtype or a.ndim != ndim or not a.flags.c_contiguous:
            return None
        tab[i, 0] = a.ctypes.data
        tab[i, 1 : 1 + ndim] = a.shape
        keep.append(a)
    return tab, keep


def rng_handle(rng: np.random.Generator) -> np.ndarray:
    """The pointers numba's generator struct holds, for ``rng`` (see module docstring)."""
    c = rng.bit_generator.ctypes

    def address(fn: object) -> int:
        return int(ctypes.cast(fn, ctypes.c_void_p).value or 0)

    return np.array(
        [
            c.state_address,
            c.state.value,
            address(c.next_uint64),
            address(c.next_uint32),
            address(c.next_double),
            c.bit_generator.value,
        ],
        dtype=np.uint64,
    )


@intrinsic
def _generator(typingctx, handle):  # type: ignore[no-untyped-def]
    """numba's ``np.random.Generator`` value from a ``rng_handle`` row (no Python object:
    parent and meminfo are null, which numba's generator methods never touch)."""

    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        arr = context.make_array(sig.args[0])(context, builder, args[0])
        vals = [builder.load(cgutils.gep(builder, arr.data, i)) for i in range(6)]
        bits = cgutils.create_struct_proxy(_BIT_GENERATOR)(context, builder)
        (bits.state_address, bits.state, bits.fnptr_next_uint64, bits.fnptr_next_uint32,
         bits.fnptr_next_double, bits.bit_generator) = vals  # fmt: skip
        bits.parent = cgutils.get_null_value(bits.parent.type)
        gen = cgutils.create_struct_proxy(_GENERATOR)(context, builder)
        gen.bit_generator = bits._getvalue()
        gen.meminfo = cgutils.get_null_value(gen.meminfo.type)
        gen.parent = cgutils.get_null_value(gen.parent.type)
        return gen._getvalue()

    return _GENERATOR(handle), codegen


@intrinsic
def _voidptr(typingctx, address):  # type: ignore[no-untyped-def]
    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return types.voidptr(types.int64), codegen


@njit(inline="always")
def _a1(tab, i, dtype):  # type: ignore[no-untyped-def]
    return carray(_voidptr(tab[i, 0]), (tab[i, 1],), dtype)


@njit(inline="always")
def _a2(tab, i, dtype):  # type: ignore[no-untyped-def]
    return carray(_voidptr(tab[i, 0]), (tab[i, 1], tab[i, 2]), dtype)


@njit(inline="always")
def _a3(tab, i, dtype):  # type: ignore[no-untyped-def]
    return carray(_voidptr(tab[i, 0]), (tab[i, 1], tab[i, 2], tab[i, 3]), dtype)


@njit(cache=True, nogil=True)
def draw_uniform(handle, out):  # type: ignore[no-untyped-def]
    """out[:] = rng.random() draws (a check that a handle drives its generator)."""
    rng = _generator(handle)
    for i in range(out.shape[0]):
        out[i] = rng.random()


@njit(cache=True, nogil=True, inline="always")
def _clip01(x):  # type: ignore[no-untyped-def]
    """np.clip(x, 0, 1) (keeps -0.0 and NaN, as numpy does)."""
    if x < 0.0:
        return np.float32(0.0)
    if x > 1.0:
        return np.float32(1.0)
    return x


PAIRWISE_BLOCK = 128
"""numpy's pairwise summation adds up to this many elements in one block (beyond, it
recurses, which numba cannot cache): ``_pairwise_sum`` handles n <= PAIRWISE_BLOCK."""


@njit(cache=True, nogil=True)
def _pairwise_sum(a, n):  # type: ignore[no-untyped-def]
    """numpy's float32 pairwise sum of a[:n], n <= PAIRWISE_BLOCK (its order of additions)."""
    if n < 8:
        res = np.float32(0.0)
        for i in range(n):
            res += a[i]
        return res
    # eight accumulators as locals (an array here would be a heap allocation per call)
    r0, r1, r2, r3, r4, r5, r6, r7 = a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]
    i = 8
    while i < n - (n % 8):
        r0 += a[i]
        r1 += a[i + 1]
        r2 += a[i + 2]
        r3 += a[i + 3]
        r4 += a[i + 4]
        r5 += a[i + 5]
        r6 += a[i + 6]
        r7 += a[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[i]
        i += 1
    return res


@njit(cache=True, nogil=True)
def step_kernel(phase, tab, rngs, settings, scalars):  # type: ignore[no-untyped-def]
    """One step of user 0 over the arrays of ``tab`` (see module docstring). ``phase``
    ``RESPOND``: respond, and if the session goes on and no instruction was written, log and
    advance too (returns ``DONE``), else stop after the response (``PAUSED``: the caller
    ends the session / records the instruction in numpy). Otherwise the bits of ``phase``:
    ``NEW_USER`` clears the platform's logs; ``LOG`` composes the reward and logs
    (``returned`` [0] says whether the user came back); ``ADVANCE`` draws the next
    candidates and encodes the observation. ``HISTORY`` alone finishes the history's
    entropy from ``log_safe`` (numpy's log of ``safe``) after a click."""
    f32 = np.float32
    if phase == HISTORY:
        _finish_history(tab, settings, 0)
        return DONE
    if phase == RESPOND:
        code = _respond(tab, rngs, settings, scalars)
        if code != DONE:
            return code
        _a1(tab, A_RETURNED, np.bool_)[0] = False
        phase = LOG | ADVANCE
    if phase & NEW_USER:
        _clear_platform(tab, settings, 0)
    if phase & LOG:
        n_click = _log(tab, settings, 0)
        terms = _a2(tab, A_TERMS, f32)
        scalars[S_REWARD] = terms[0, 0]
        for q in range(N_TERMS - 1):
            scalars[S_CLICK + q] = terms[1 + q, 0]
        scalars[S_CLICKED] = n_click > 0
        if n_click > 0 and _a2(tab, A_TOPIC_HISTORY, f32).shape[1] <= PAIRWISE_BLOCK:
            _dist(tab, 0)
    if phase & ADVANCE:
        _sample(_generator(rngs[1]), tab, settings, 0)
        _encode(tab, settings, 0)
    return DONE


@njit(cache=True, nogil=True)
def _respond(tab, rngs, settings, scalars):  # type: ignore[no-untyped-def]
    """The slate's checks, ``_slate_respond`` for user 0, the session's end (PAUSED)."""
    b1, i32 = np.bool_, np.int32
    action = _a1(tab, A_ACTION, np.int64)
    m = _a2(tab, A_CANDS, np.int64).shape[1]
    k = action.shape[0]
    for j in range(k):
        if action[j] < 0 or action[j] >= m:
            return BAD_ACTION
    session_step = _a1(tab, A_SESSION_STEP, i32)
    leave = _a1(tab, A_LEAVE, b1)
    instructed = _a1(tab, A_INSTRUCTED, b1)
    scalars[S_SESSION] = _a1(tab, A_SESSION_INDEX, i32)[0]
    scalars[S_STEP] = session_step[0]
    scalars[S_N_DUP] = _slate_respond(tab, rngs, action.reshape((1, k)), np.ones(1, dtype=b1))
    satisfaction = _a1(tab, A_SATISFACTION, np.float32)
    session_end = leave[0] or session_step[0] >= settings[C_MAX_STEPS]
    scalars[S_LEFT] = leave[0]
    scalars[S_SESSION_END] = session_end
    scalars[S_SATISFACTION] = satisfaction[0]
    scalars[S_INSTRUCTED] = instructed[0]
    if session_end or instructed[0]:
        return PAUSED
    return DONE


@njit(cache=True, nogil=True)
def _clear_platform(tab, settings, b):  # type: ignore[no-untyped-def]
    """``PlatformState.zeros`` into row b: a new user's empty logs."""
    f32 = np.float32
    _a2(tab, A_TOPIC_HISTORY, f32)[b, :] = 0.0
    for name in (A_EMA_CLICK, A_EMA_WATCH, A_SESSION_CLICKS, A_SESSION_WATCH, A_TOTAL_CLICKS,
                 A_TOTAL_STEPS, A_GAP_HOURS, A_INSTRUCTIONS_TOTAL, A_N_FOLLOWS):  # fmt: skip
        _a1(tab, name, f32)[b] = 0.0
    _a2(tab, A_INSTRUCTION, f32)[b, :] = 0.0
    _a1(tab, A_SSI, f32)[b] = f32(settings[C_NO_INSTRUCTION])
    _a2(tab, A_RECENT_ITEMS, np.int64)[b, :] = -1


@njit(cache=True, nogil=True)
def _clear_user(tab, settings, b):  # type: ignore[no-untyped-def]
    """The part of ``ParametricUserModel.replace_users`` after the traits (``clear=False``
    leaves it here), for row b: everything a user has lived through, cleared."""
    f32, i32 = np.float32, np.int32
    for name in (A_FATIGUE, A_EXPOSURE, A_AFFINITY, A_CREATOR_CLICKS, A_INSTR_VEC):
        _a2(tab, name, f32)[b, :] = 0.0
    _a2(tab, A_FOLLOWS, np.bool_)[b, :] = False
    _a2(tab, A_SEEN, np.uint8)[b, :] = 0
    _a2(tab, A_CONSUMED, np.uint8)[b, :] = 0
    for name in (A_SESSION_STEP, A_SESSION_INDEX, A_INSTR_IN_SESSION):
        _a1(tab, name, i32)[b] = 0
    _a1(tab, A_SATISFACTION, f32)[b] = f32(settings[C_SAT_INIT])
    _a1(tab, A_INSTR_AGE, i32)[b] = i32(settings[C_INACTIVE])


@njit(cache=True, nogil=True, inline="always")
def _log(tab, settings, b):  # type: ignore[no-untyped-def]
    """The reward (``compose_reward``, into ``terms[:, b]``) and the platform's logs
    (``World._log_platform`` without the instruction, which the caller records) of row b,
    in their numpy dtypes; returns the number of clicks."""
    f32, b1 = np.float32, np.bool_
    items = _a2(tab, A_ITEMS, np.int64)
    click = _a2(tab, A_CLICK, b1)
    watch = _a2(tab, A_WATCH, f32)
    like = _a2(tab, A_LIKE, b1)
    follow = _a2(tab, A_FOLLOW, b1)
    gift = _a2(tab, A_GIFT, b1)
    leave = _a1(tab, A_LEAVE, b1)
    came_back = _a1(tab, A_RETURNED, b1)[b]
    clicked_topics = _a2(tab, A_CLICKED_TOPICS, f32)
    topic_history = _a2(tab, A_TOPIC_HISTORY, f32)
    k = items.shape[1]
    n_click = 0
    n_like = 0
    n_follow = 0
    n_gift = 0
    w_sum = f32(0.0)
    for j in range(k):
        n_click += click[b, j]
        n_like += like[b, j]
        n_follow += follow[b, j]
        n_gift += gift[b, j]
        w_sum += watch[b, j]
    # compose_reward: float64 weight x int64 count, float32 weight x float32 watch sum,
    # float64 weight x bool; each term float32, summed in float32 in term order
    t_click = f32(settings[C_CLICK] * n_click)
    t_watch = f32(settings[C_WATCH]) * w_sum
    t_like = f32(settings[C_LIKE] * n_like)
    t_follow = f32(settings[C_FOLLOW] * n_follow)
    t_gift = f32(settings[C_GIFT] * n_gift)
    t_leave = f32(settings[C_LEAVE] * (1.0 if leave[b] else 0.0))
    t_return = f32(settings[C_RETURN] * (1.0 if came_back else 0.0))
    terms = _a2(tab, A_TERMS, f32)
    terms[1, b] = t_click
    terms[2, b] = t_watch
    terms[3, b] = t_like
    terms[4, b] = t_follow
    terms[5, b] = t_gift
    terms[6, b] = t_leave
    terms[7, b] = t_return
    terms[0, b] = (((((t_click + t_watch) + t_like) + t_follow) + t_gift) + t_leave) + t_return
    clicks = f32(n_click)
    n_topics = topic_history.shape[1]
    if n_click > 0:  # decay (float64) and the click's topics; unchanged otherwise
        decay = settings[C_DECAY]
        for t in range(n_topics):
            topic_history[b, t] = f32(topic_history[b, t] * decay)
            topic_history[b, t] += clicked_topics[b, t]
    ema = f32(settings[C_EMA])
    rest = f32(1.0 - settings[C_EMA])
    ema_click = _a1(tab, A_EMA_CLICK, f32)
    ema_watch = _a1(tab, A_EMA_WATCH, f32)
    ema_click[b] = ema * ema_click[b] + rest * clicks
    ema_watch[b] = ema * ema_watch[b] + rest * w_sum
    _a1(tab, A_SESSION_CLICKS, f32)[b] += clicks
    _a1(tab, A_SESSION_WATCH, f32)[b] += w_sum
    _a1(tab, A_TOTAL_CLICKS, f32)[b] += clicks
    _a1(tab, A_TOTAL_STEPS, f32)[b] += f32(1.0)
    n_follows = _a1(tab, A_N_FOLLOWS, f32)
    n_follows[b] = f32(np.float64(n_follows[b]) + n_follow)
    _a1(tab, A_SSI, f32)[b] += f32(1.0)
    if n_click > 0:  # PlatformState.log_clicks: newest first, this step's in slate order
        recent_items = _a2(tab, A_RECENT_ITEMS, np.int64)
        h = recent_items.shape[1]
        # the kept items are a prefix (-1 after): shift them right by the clicks
        for q in range(h - 1, n_click - 1, -1):
            recent_items[b, q] = recent_items[b, q - n_click]
        n = 0
        for j in range(k):
            if click[b, j] and n < h:
                recent_items[b, n] = items[b, j]
                n += 1
    return n_click


@njit(cache=True, nogil=True, inline="always")
def _dist(tab, b):  # type: ignore[no-untyped-def]
    """history_features of row b up to numpy's log: the topic distribution and ``safe``
    (its zeros as ones) for the entropy."""
    f32 = np.float32
    topic_history = _a2(tab, A_TOPIC_HISTORY, f32)
    dist = _a2(tab, A_DIST, f32)
    safe = _a2(tab, A_SAFE, f32)
    n_topics = topic_history.shape[1]
    mass = _pairwise_sum(topic_history[b], n_topics)
    for t in range(n_topics):
        dist[b, t] = topic_history[b, t] / max(mass, f32(1e-12)) if mass > 0 else f32(0.0)
        safe[b, t] = dist[b, t] if dist[b, t] > 0 else f32(1.0)


@njit(cache=True, nogil=True, inline="always")
def _finish_history(tab, settings, b):  # type: ignore[no-untyped-def]
    """history_features after numpy's log: the entropy, the distribution into the obs."""
    f32 = np.float32
    dist = _a2(tab, A_DIST, f32)
    log_safe = _a2(tab, A_LOG_SAFE, f32)
    obs_history = _a2(tab, A_OBS_HISTORY, f32)
    n_topics = dist.shape[1]
    for t in range(n_topics):
        log_safe[b, t] = dist[b, t] * log_safe[b, t]
    ent = -_pairwise_sum(log_safe[b], n_topics) / f32(settings[C_LOG_T])
    for t in range(n_topics):
        obs_history[b, t] = _clip01(dist[b, t])
    obs_history[b, n_topics] = _clip01(ent)


@njit(cache=True, nogil=True, inline="always")
def _encode(tab, settings, b):  # type: ignore[no-untyped-def]
    """``ObservationEncoder.encode`` for row b, into the buffers; the history's topic
    distribution and entropy (``obs_history[b, :T + 1]``) are left to ``_finish_history``."""
    f32, i64, i32 = np.float32, np.int64, np.int32
    cands = _a2(tab, A_CANDS, i64)
    creator_of = _a1(tab, A_CREATOR_OF, i64)
    seen = _a2(tab, A_SEEN, np.uint8)
    consumed = _a2(tab, A_CONSUMED, np.uint8)
    follows = _a2(tab, A_FOLLOWS, np.bool_)
    creator_clicks = _a2(tab, A_CREATOR_CLICKS, f32)
    table = _a2(tab, A_TABLE, f32)
    source_onehot = _a2(tab, A_SOURCE_ONEHOT, f32)
    recency = _a1(tab, A_RECENCY, f32)
    obs_cand = _a3(tab, A_OBS_CAND, f32)
    obs_user = _a2(tab, A_OBS_USER, f32)
    obs_history = _a2(tab, A_OBS_HISTORY, f32)
    obs_ids = _a2(tab, A_OBS_IDS, i64)
    m, d = obs_cand.shape[1], obs_cand.shape[2]
    n_src = source_onehot.shape[1]
    n_static = d - 4 - n_src
    for j in range(m):
        item = cands[b, j]
        obs_ids[b, j] = item
        for q in range(n_static):
            obs_cand[b, j, q] = table[item, q]
        c = creator_of[item]
        obs_cand[b, j, n_static] = (seen[b, item >> 3] >> (item & 7)) & 1
        obs_cand[b, j, n_static + 1] = (consumed[b, item >> 3] >> (item & 7)) & 1
        obs_cand[b, j, n_static + 2] = 1.0 if follows[b, c] else 0.0
        obs_cand[b, j, n_static + 3] = min(creator_clicks[b, c] * f32(0.2), f32(1.0))
        for q in range(n_src):
            obs_cand[b, j, n_static + 4 + q] = source_onehot[j, q]
    session_index = _a1(tab, A_SESSION_INDEX, i32)[b]
    step = _a1(tab, A_SESSION_STEP, i32)[b]
    session_clicks = _a1(tab, A_SESSION_CLICKS, f32)[b]
    total_steps = _a1(tab, A_TOTAL_STEPS, f32)[b]
    n_follows = _a1(tab, A_N_FOLLOWS, f32)[b]
    s = _a1(tab, A_SSI, f32)[b]
    # float64 features (as numpy computes them), then float32, clipped
    obs_user[b, 0] = _clip01(f32(min(session_index / settings[C_MAX_SESSIONS], 1.0)))
    obs_user[b, 1] = _clip01(f32(min(step / settings[C_MAX_STEPS], 1.0)))
    obs_user[b, 2] = _clip01(f32(_a1(tab, A_GAP_FEATURE, np.float64)[b]))
    u3 = np.float64(session_clicks) / max(step, 1) if step > 0 else 0.0
    obs_user[b, 3] = _clip01(f32(u3))
    obs_user[b, 4] = _clip01(f32(_a1(tab, A_SESSION_WATCH, f32)[b] / max(session_clicks, f32(1.0))))
    obs_user[b, 5] = _clip01(f32(_a1(tab, A_TOTAL_CLICKS, f32)[b] / max(total_steps, f32(1.0))))
    obs_user[b, 6] = _clip01(f32(n_follows / (f32(1.0) + n_follows)))
    obs_user[b, 7] = _clip01(f32(recency[int(s)] if s < recency.shape[0] else 0.0))
    t = obs_history.shape[1] - 3
    obs_history[b, t + 1] = _clip01(_a1(tab, A_EMA_CLICK, f32)[b])
    obs_history[b, t + 2] = _clip01(_a1(tab, A_EMA_WATCH, f32)[b])
    _a2(tab, A_OBS_INSTRUCTION, f32)[b, :] = _a2(tab, A_INSTRUCTION, f32)[b, :]
    counters = _a2(tab, A_OBS_COUNTERS, f32)
    counters[b, 0] = session_index
    counters[b, 1] = step
    counters[b, 2] = total_steps
    counters[b, 3] = _a1(tab, A_INSTRUCTIONS_TOTAL, f32)[b]
    _a2(tab, A_OBS_RECENT, i64)[b, :] = _a2(tab, A_RECENT_ITEMS, i64)[b, :]


@njit(cache=True, nogil=True, inline="always")
def _sample(rng, tab, settings, b):  # type: ignore[no-untyped-def]
    """The next candidates of row b (``CandidateGenerator.sample``'s draws)."""
    i64 = np.int64
    sample_row(
        rng, _a2(tab, A_TOPIC_HISTORY, np.float32), b, _a1(tab, A_COUNTS, i64),
        _a1(tab, A_POP_PROB, np.float64), _a1(tab, A_POP_ALIAS, i64), _a1(tab, A_FRESH, i64),
        _a1(tab, A_TOPIC_ITEMS, i64), _a1(tab, A_TOPIC_OFFSETS, i64),
        _a1(tab, A_TOPIC_COUNTS, i64), i64(settings[C_N_AVAILABLE]), _a2(tab, A_CANDS, i64), b,
    )  # fmt: skip


# --------------------------------------------------------------------------- batched step


@njit(cache=True, nogil=True)
def _slate_respond(tab, rngs, actions, active):  # type: ignore[no-untyped-def]
    """The slates' items and duplicate masks from ``actions`` [n, k] (checked by the
    caller), cleared response buffers, ``respond_batch`` for the ``active`` rows; returns
    the number of duplicate slots. Shared by the B = 1 step and the batched one."""
    f32, i64, b1, i32 = np.float32, np.int64, np.bool_, np.int32
    cands = _a2(tab, A_CANDS, i64)
    items = _a2(tab, A_ITEMS, i64)
    valid = _a2(tab, A_VALID, b1)
    click = _a2(tab, A_CLICK, b1)
    watch = _a2(tab, A_WATCH, f32)
    like = _a2(tab, A_LIKE, b1)
    follow = _a2(tab, A_FOLLOW, b1)
    gift = _a2(tab, A_GIFT, b1)
    comps = _a3(tab, A_COMPS, f32)
    nov = _a2(tab, A_NOV, f32)
    util = _a2(tab, A_UTIL, f32)
    probs = _a2(tab, A_PROBS, f32)
    leave = _a1(tab, A_LEAVE, b1)
    instructed = _a1(tab, A_INSTRUCTED, b1)
    p_leave = _a1(tab, A_P_LEAVE, f32)
    unmet = _a1(tab, A_UNMET, f32)
    choice = _a1(tab, A_CHOICE, i64)
    clicked_topics = _a2(tab, A_CLICKED_TOPICS, f32)
    session_step = _a1(tab, A_SESSION_STEP, i32)
    n_users, k = actions.shape
    n_dup = 0
    for b in range(n_users):
        for j in range(k):
            items[b, j] = cands[b, actions[b, j]]
            ok = True
            for q in range(j):
                if actions[b, q] == actions[b, j]:
                    ok = False
                    break
            valid[b, j] = ok
            n_dup += not ok
            click[b, j] = False
            watch[b, j] = 0.0
            like[b, j] = False
            follow[b, j] = False
            gift[b, j] = False
            nov[b, j] = 0.0
            util[b, j] = 0.0
            probs[b, j] = 0.0
            for q in range(comps.shape[2]):
                comps[b, j, q] = 0.0
        probs[b, k] = 0.0
        leave[b] = False
        instructed[b] = False
        p_leave[b] = 0.0
        unmet[b] = 0.0
        choice[b] = 0
        clicked_topics[b, :] = 0.0
    respond_batch(
        _generator(rngs[0]), active, items, valid, _a2(tab, A_TOPIC_IDX, i64),
        _a2(tab, A_TOPIC_W, f32), _a1(tab, A_TOPIC_N, i64), _a2(tab, A_ITEM_LATENT, f32),
        _a1(tab, A_QUALITY, f32), _a1(tab, A_CREATOR_OF, i64), _a1(tab, A_NOV_POP, f32),
        _a1(tab, A_ITEM_POP, f32), _a1(tab, A_ITEM_ERA, f32), _a1(tab, A_ERA_MEAN, np.float64),
        _a1(tab, A_INTEREST_BASE, f32), _a2(tab, A_INTEREST, f32), _a2(tab, A_LATENT, f32),
        _a1(tab, A_ERA, f32), _a1(tab, A_NOVELTY_SESSION, f32), _a2(tab, A_FATIGUE, f32),
        _a2(tab, A_EXPOSURE, f32), _a2(tab, A_AFFINITY, f32), _a2(tab, A_CREATOR_CLICKS, f32),
        _a2(tab, A_SEEN, np.uint8), _a2(tab, A_CONSUMED, np.uint8),
        _a2(tab, A_INSTR_VEC, f32), _a1(tab, A_INSTR_AGE, i32),
        _a1(tab, A_PARAMS, np.float64), _a2(tab, A_FOLLOWS, b1), _a1(tab, A_PATIENCE, f32),
        _a1(tab, A_SATISFACTION, f32), session_step, _a1(tab, A_INSTR_IN_SESSION, i32), click,
        watch, like, follow, gift, comps, nov, util, probs, leave, instructed, p_leave, unmet,
        choice, clicked_topics, _a2(tab, A_PREF, f32), False,
    )  # fmt: skip
    return n_dup


@njit(cache=True, nogil=True)
def batch_respond(tab, rngs, settings):  # type: ignore[no-untyped-def]
    """``World.respond`` up to the rare events, for every row: ``_slate_respond`` on
    ``actions`` for the ``active`` rows, then the session ends. Returns (number of session
    ends, number of instructions)."""
    b1 = np.bool_
    active = _a1(tab, A_ACTIVE, b1)
    _slate_respond(tab, rngs, _a2(tab, A_ACTIONS, np.int64), active)
    leave = _a1(tab, A_LEAVE, b1)
    instructed = _a1(tab, A_INSTRUCTED, b1)
    session_step = _a1(tab, A_SESSION_STEP, np.int32)
    session_end = _a1(tab, A_SESSION_END, b1)
    n_end = 0
    n_instructed = 0
    max_steps = settings[C_MAX_STEPS]
    for b in range(active.shape[0]):
        end = (leave[b] or session_step[b] >= max_steps) and active[b]
        session_end[b] = end
        n_end += end
        n_instructed += instructed[b]
    return n_end, n_instructed


@njit(cache=True, nogil=True)
def batch_log(tab, settings):  # type: ignore[no-untyped-def]
    """The reward and the platform's logs of every row (``returned`` holds who came back),
    and the history's topic distribution up to numpy's log (``dist``, ``safe``)."""
    n_users = _a1(tab, A_ACTIVE, np.bool_).shape[0]
    for b in range(n_users):
        _log(tab, settings, b)
        _dist(tab, b)


@njit(cache=True, nogil=True)
def batch_advance(phase, tab, rngs, settings, rows):  # type: ignore[no-untyped-def]
    """For the users ``rows``, the bits of ``phase``: ``NEW_USER`` clears their state
    (after the traits) and logs; ``SAMPLE`` draws their next candidates (in row order);
    ``ENCODE`` encodes their observations, the history finished from ``log_safe`` (numpy's
    log of ``safe``), or with ``FRESH`` (new users) ``new_history``."""
    if phase & NEW_USER:
        gap = _a1(tab, A_GAP_FEATURE, np.float64)
        for b in rows:
            _clear_user(tab, settings, b)
            _clear_platform(tab, settings, b)
            gap[b] = settings[C_NEW_GAP]
    if phase & SAMPLE:
        rng = _generator(rngs[1])
        for b in rows:
            _sample(rng, tab, settings, b)
    if phase & ENCODE:
        obs_history = _a2(tab, A_OBS_HISTORY, np.float32)
        new_history = _a2(tab, A_NEW_HISTORY, np.float32)
        for b in rows:
            if phase & FRESH:
                obs_history[b, :] = new_history[0, :]
            else:
                _finish_history(tab, settings, b)
            _encode(tab, settings, b)

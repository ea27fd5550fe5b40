"""Engagement, retention and instruction following per episode: ``per_episode``,
``engagement_per_session``, ``retention``, ``survival_by_session``,
``instruction_following``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from recoworld.metrics.checks import (
    check_array,
    check_bool,
    check_float,
    check_ints,
    check_items,
    ratio,
    same_rows,
    shown_mask,
)

Grouped = tuple[np.ndarray, np.ndarray]
"""(episode ids [E], per-episode values [E]) as ``per_episode`` returns them."""


def per_episode(
    values: np.ndarray,
    episode_id: np.ndarray,
    how: Literal["sum", "mean", "max", "last"] = "sum",
) -> Grouped:
    """Aggregates ``values`` [N] per episode: returns ``(ids, agg)`` with ids the sorted unique
    ``episode_id`` and agg float64 the per-episode sum, mean, max, or last value (rows are in
    time order, so "last" is the value of the episode's last row). Empty input gives empty
    arrays."""
    v = check_float("values", values, 1)
    ep = check_ints("episode_id", episode_id, 1)
    same_rows(ep.shape[0], values=v)
    if how not in ("sum", "mean", "max", "last"):
        raise ValueError(f"how: expected 'sum', 'mean', 'max' or 'last', got {how!r}")
    ids, inv, n = np.unique(ep, return_inverse=True, return_counts=True)
    if how in ("sum", "mean"):
        s = np.bincount(inv, weights=v, minlength=ids.shape[0])
        return ids, (s / n if how == "mean" else s)
    ends = np.cumsum(n) - 1
    if how == "max":
        order = np.lexsort((v, inv))  # NaN sorts last, so a NaN max propagates like np.max
    else:
        order = np.argsort(inv, kind="stable")  # time order kept within an episode
    return ids, v[order[ends]]


def _row_total(name: str, a: object, mask: np.ndarray) -> np.ndarray:
    """Per-row total of a per-slot [N, k] signal over shown slots, or a per-step [N] signal."""
    if np.ndim(a) not in (1, 2):
        raise ValueError(f"{name}: expected [N, k] or [N], got shape {np.shape(a)}")
    arr = check_float(name, a, np.ndim(a))
    if arr.ndim == 1:
        same_rows(mask.shape[0], **{name: arr})
        return arr
    if arr.shape != mask.shape:
        raise ValueError(
            f"{name}: expected shape {mask.shape} or ({mask.shape[0]},), got {arr.shape}"
        )
    return np.where(mask, arr, 0.0).sum(axis=1)


def engagement_per_session(
    episode_id: np.ndarray,
    session: np.ndarray,
    click: np.ndarray,
    watch: np.ndarray,
    like: np.ndarray,
    follow: np.ndarray,
    gift: np.ndarray,
    shown: np.ndarray | None = None,
) -> dict[str, Grouped]:
    """Engagement per session of each episode: the episode's total of each signal (over shown
    slots) divided by its number of sessions, ``max(session) + 1`` (``session`` is the 0-based
    session index within the episode). Each signal is [N, k] per slot (``click`` sets the slate
    width) or [N] per step. Returns ``{"clicks", "watch", "likes", "follows", "gifts"}`` ->
    ``(ids, values)`` with ids the sorted unique episode ids."""
    ep = check_ints("episode_id", episode_id, 1)
    ses = check_ints("session", session, 1)
    same_rows(ep.shape[0], session=ses)
    cl = check_array("click", click, 2)
    same_rows(ep.shape[0], click=cl)
    mask = shown_mask(shown, cl.shape)
    ids, n_sessions = per_episode(ses, ep, "max")
    n_sessions = n_sessions + 1.0
    out: dict[str, Grouped] = {}
    for key, name, arr in (
        ("clicks", "click", click),
        ("watch", "watch", watch),
        ("likes", "like", like),
        ("follows", "follow", follow),
        ("gifts", "gift", gift),
    ):
        _, total = per_episode(_row_total(name, arr, mask), ep, "sum")
        out[key] = (ids, total / n_sessions)
    return out


def retention(
    episode_id: np.ndarray,
    session: np.ndarray,
    session_end: np.ndarray,
    returned: np.ndarray,
    gap_hours: np.ndarray,
    terminated: np.ndarray,
) -> dict[str, Grouped]:
    """Retention per episode, each as ``(ids, values)`` with ids the sorted unique episode ids:

    * ``session_depth``: steps / max(#session_end rows, 1);
    * ``return_rate``: #returned rows / #session_end rows, NaN if no session ended;
    * ``return_time_hours``: mean ``gap_hours`` over returned rows, NaN if none (gap_hours on
      other rows is ignored, it may be NaN);
    * ``churn``: 1.0 if any row is ``terminated`` (the user left for good), else 0.0;
    * ``sessions``: max(session) + 1."""
    ep = check_ints("episode_id", episode_id, 1)
    n = ep.shape[0]
    ses = check_ints("session", session, 1)
    end = check_bool("session_end", session_end, (n,))
    ret = check_bool("returned", returned, (n,))
    gap = check_float("gap_hours", gap_hours, 1)
    term = check_bool("terminated", terminated, (n,))
    same_rows(n, session=ses, gap_hours=gap)
    ids, inv, steps = np.unique(ep, return_inverse=True, return_counts=True)
    g = ids.shape[0]
    n_end = np.bincount(inv, weights=end, minlength=g)
    n_ret = np.bincount(inv, weights=ret, minlength=g)
    gap_sum = np.bincount(inv, weights=np.where(ret, gap, 0.0), minlength=g)
    n_term = np.bincount(inv, weights=term, minlength=g)
    _, sessions = per_episode(ses, ep, "max")
    return {
        "session_depth": (ids, steps / np.maximum(n_end, 1.0)),
        "return_rate": (ids, ratio(n_ret, n_end, np.nan)),
        "return_time_hours": (ids, ratio(gap_sum, n_ret, np.nan)),
        "churn": (ids, (n_term > 0).astype(np.float64)),
        "sessions": (ids, sessions + 1.0),
    }


def survival_by_session(
    sessions_per_episode: np.ndarray, max_sessions: int | None = None
) -> np.ndarray:
    """Session survival curve: for s = 1..max_sessions the share of episodes with at least s
    sessions, ``mean(sessions >= s)``. ``max_sessions`` defaults to the largest count (an
    empty curve if that is 0). Returns float64 [max_sessions]."""
    s = check_float("sessions_per_episode", sessions_per_episode, 1)
    if s.size == 0:
        raise ValueError("sessions_per_episode: expected at least one episode")
    if np.isnan(s).any() or (s < 0).any() or (s != np.round(s)).any():
        raise ValueError("sessions_per_episode: expected non-negative whole numbers")
    m = int(s.max()) if max_sessions is None else int(max_sessions)
    if m < 0:
        raise ValueError(f"max_sessions: must be >= 0, got {m}")
    hist = np.bincount(np.minimum(s.astype(np.int64), m), minlength=m + 1)
    at_least = np.cumsum(hist[::-1])[::-1]  # at_least[j] = #episodes with >= j sessions
    return at_least[1:] / s.shape[0]


def instruction_following(
    episode_id: np.ndarray,
    step: np.ndarray,
    instructed: np.ndarray,
    instruction_vector: np.ndarray,
    slate_items: np.ndarray,
    item_topics: np.ndarray,
    satisfaction: np.ndarray,
    window: int = 3,
    shown: np.ndarray | None = None,
) -> dict[str, np.ndarray | Grouped]:
    """How slates follow the user's instructions. Rows are sorted by (episode_id, step) first.
    For each instructed row p, the following rows are the next ``window`` rows of the same
    episode (fewer at the episode's end; later instructions do not cut the window). An item
    honours the instruction if ``item_topics[item] @ instruction_vector[p] > 0`` (vector: +1 more
    of a topic, -1 less, 0 none). Returns

    * ``"honour_rate"``: ``(rows, rate)``, the share of shown items of the following slates that
      honour the instruction, NaN if there are no following rows (or none shows an item);
    * ``"satisfaction_change"``: ``(rows, delta)``, ``satisfaction`` at the last following row
      minus that at the instructed row, NaN if there are no following rows;
    * ``"episode_id"``: the episode of each instructed row;

    where ``rows`` are the original indices of the instructed rows in (episode_id, step) order.
    A repeated (episode_id, step) pair raises ValueError."""
    ep = check_ints("episode_id", episode_id, 1)
    n = ep.shape[0]
    st = check_ints("step", step, 1)
    ins = check_bool("instructed", instructed, (n,))
    vec = check_float("instruction_vector", instruction_vector, 2)
    si = check_ints("slate_items", slate_items, 2)
    topics = check_float("item_topics", item_topics, 2)
    sat = check_float("satisfaction", satisfaction, 1)
    same_rows(n, step=st, instruction_vector=vec, slate_items=si, satisfaction=sat)
    if vec.shape[1] != topics.shape[1]:
        raise ValueError(
            f"instruction_vector: expected {topics.shape[1]} topics (item_topics), got "
            f"{vec.shape[1]}"
        )
    if window < 1:
        raise ValueError(f"window: must be >= 1, got {window}")
    mask = shown_mask(shown, si.shape)
    si = check_items("slate_items", si, mask, topics.shape[0])

    order = np.lexsort((st, ep))
    ep_s, st_s = ep[order], st[order]
    if n > 1 and ((ep_s[1:] == ep_s[:-1]) & (st_s[1:] == st_s[:-1])).any():
        raise ValueError("step: repeated (episode_id, step) pair")
    p = np.flatnonzero(ins[order])  # sorted positions of the instructed rows
    v = vec[order[p]]  # [I, T]
    honoured = np.zeros(p.shape[0])
    n_shown = np.zeros(p.shape[0])
    n_follow = np.zeros(p.shape[0], dtype=np.int64)
    alive = np.ones(p.shape[0], dtype=bool)  # the offset is still inside the episode
    for o in range(1, window + 1):
        q = p + o
        alive &= q < n
        alive[alive] &= ep_s[q[alive]] == ep_s[p[alive]]
        if not alive.any():
            break
        rows = order[q[alive]]  # original indices of the following rows
        score = np.einsum("nkt,nt->nk", topics[si[rows]], v[alive])
        m = mask[rows]
        honoured[alive] += ((score > 0) & m).sum(axis=1)
        n_shown[alive] += m.sum(axis=1)
        n_follow[alive] += 1
    last = order[np.minimum(p + n_follow, n - 1)]
    change = np.where(n_follow > 0, sat[last] - sat[order[p]], np.nan)
    rows = order[p]
    return {
        "honour_rate": (rows, ratio(honoured, n_shown, np.nan)),
        "satisfaction_change": (rows, change),
        "episode_id": ep[rows],
    }

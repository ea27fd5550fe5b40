"""Observation encoding: what the recommender may see (never the users' hidden state).

The world encodes the full observation, a ``gymnasium.spaces.Dict`` (shapes for one user; the
vector env stacks a leading batch axis); the env hands the policy one of three views of it
(``WorldConfig.observation``, or ``observation=`` of the env):

- ``"features"`` (the default): ``candidates``, ``user``, ``history``, ``instruction`` —
  bounded float features only, what a generic Dict policy should read;
- ``"features+ids"``: those plus ``counters`` and the ids, ``candidate_ids`` and
  ``recent_ids``, as ``MultiDiscrete`` spaces (identities, not magnitudes: a policy that
  learns per item embeds them);
- ``"flat"``: the features of ``"features"`` as one float ``Box``: the M x d candidate
  features row by row, then user, history and instruction.

================  ========  ==================================================================
key               shape     content
================  ========  ==================================================================
``candidates``    (M, d)    per candidate: topics multi-hot (T), popularity (log, scaled to
                            [0, 1]), freshness (1 - age / oldest age), duration (log, scaled),
                            shown-before, clicked-before, user follows the creator, the user's
                            clicks on the creator (/5, capped at 1), source one-hot (popular,
                            random, interest, fresh); d = T + 11
``user``          (8,)      session index / max, step / max, gap since last session (log,
                            scaled), session click rate, session mean watch, lifetime click
                            rate, follows / (1 + follows), instruction recency
``history``       (T + 3,)  decayed click-topic distribution (sums to 1, or zeros), its
                            entropy / log T, recent click rate, recent watch (both EMA 0.8)
``instruction``   (T + 1,)  topic deltas parsed from the session's latest instruction (+1
                            more, -1 less) and a "something new" flag; zeros when none
``counters``      (4,)      raw counts, each <= max_sessions x max_session_steps: session
                            index, step in session, total steps, instructions written so far
``candidate_ids`` (M,)    int64 catalog indices of the M candidates (row i of
                            ``candidates``), ``MultiDiscrete([N] * M)``: item identity, for
                            policies that learn per item (item-kNN, MF, LLM re-ranking)
``recent_ids``    (H,)      int64 catalog indices of the user's last H clicked items, most
                            recent first (one step's clicks in slate order), -1 padded
                            (``MultiDiscrete([N + 1] * H, start=-1)``); kept across the
                            sessions of an episode; H = ``episode.recent_items``
================  ========  ==================================================================

Everything here is platform-side data: logged impressions, clicks, follows and the text the
user typed (``candidate_ids`` and ``recent_ids`` are the ids of what was shown and clicked).
Quality, latent vectors, interests, fatigue, novelty propensity and satisfaction stay hidden.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from recoworld.catalog.candidates import SOURCES
from recoworld.catalog.catalog import Catalog
from recoworld.core.arrays import gather_bits, gather_rows
from recoworld.simulators.base import BatchState

USER_FEATURES = (
    "session_progress",
    "step_progress",
    "gap",
    "session_click_rate",
    "session_watch",
    "lifetime_click_rate",
    "follows",
    "instruction_recency",
)
COUNTERS = ("session_index", "session_step", "total_steps", "instructions")
VIEWS = ("features", "features+ids", "flat")
FEATURE_KEYS = ("candidates", "user", "history", "instruction")
"""The keys of the ``"features"`` view, in the order the ``"flat"`` view concatenates them."""
ID_KEYS = ("counters", "candidate_ids", "recent_ids")
"""What ``"features+ids"`` adds to ``"features"``."""
IDS_VIEW = "features+ids"
"""The view with the item ids: what policies that learn per item need (the evaluation runner
and ``recoworld simulate`` hand it to every policy; a policy reads the keys it knows)."""
EMA = 0.8
NO_INSTRUCTION = 1e6  # steps_since_instruction of a session without one
RECENCY_STEPS = 5.0  # user feature instruction_recency = exp(-steps since instruction / this)


@dataclass
class PlatformState(BatchState):
    """Per-user logs the platform keeps (observable; updated by the world each step)."""

    topic_history: np.ndarray  # [B, T] decayed click-topic mass
    ema_click: np.ndarray  # [B]
    ema_watch: np.ndarray  # [B]
    session_clicks: np.ndarray  # [B]
    session_watch: np.ndarray  # [B] sum of watch fractions this session
    total_clicks: np.ndarray  # [B]
    total_steps: np.ndarray  # [B]
    gap_hours: np.ndarray  # [B] gap before the current session (0 in the first)
    instruction: np.ndarray  # [B, T + 1] parsed latest instruction of the session
    steps_since_instruction: np.ndarray  # [B] (large = none)
    instructions_total: np.ndarray  # [B]
    n_follows: np.ndarray  # [B]
    recent_items: np.ndarray  # [B, H] int64 last clicked catalog indices, newest first, -1 pad

    def start_session(self, rows: np.ndarray, gap_hours: np.ndarray) -> None:
        """Users ``rows`` come back after ``gap_hours``: session logs and the session's
        instruction start afresh; the long-term logs (click history, recent items) stay."""
        self.session_clicks[rows] = 0.0
        self.session_watch[rows] = 0.0
        self.gap_hours[rows] = gap_hours
        self.instruction[rows] = 0.0
        self.steps_since_instruction[rows] = NO_INSTRUCTION

    @classmethod
    def zeros(cls, n: int, n_topics: int, n_recent: int = 10) -> PlatformState:
        f = np.float32
        return cls(
            topic_history=np.zeros((n, n_topics), f),
            ema_click=np.zeros(n, f),
            ema_watch=np.zeros(n, f),
            session_clicks=np.zeros(n, f),
            session_watch=np.zeros(n, f),
            total_clicks=np.zeros(n, f),
            total_steps=np.zeros(n, f),
            gap_hours=np.zeros(n, f),
            instruction=np.zeros((n, n_topics + 1), f),
            steps_since_instruction=np.full(n, NO_INSTRUCTION, f),
            instructions_total=np.zeros(n, f),
            n_follows=np.zeros(n, f),
            recent_items=np.full((n, n_recent), -1, np.int64),
        )

    def log_clicks(self, items: np.ndarray, click: np.ndarray) -> None:
        """Push the clicked items of this step (``items``/``click`` [B, k], catalog indices)
        onto ``recent_items``: newest first, this step's clicks in slate order."""
        n_clicks = click.sum(axis=1)
        one = np.flatnonzero(n_clicks == 1)  # the common case: shift right, put it first
        if one.size:
            recent = self.recent_items
            recent[one, 1:] = recent[one, :-1]
            recent[one, 0] = items[one, np.argmax(click[one], axis=1)]
        rows = np.flatnonzero(n_clicks > 1)
        if rows.size == 0:
            return
        h = self.recent_items.shape[1]
        new = np.where(click[rows], items[rows], -1).astype(np.int64)
        merged = np.concatenate([new, self.recent_items[rows]], axis=1)
        order = np.argsort(merged < 0, axis=1, kind="stable")[:, :h]  # clicked first
        self.recent_items[rows] = np.take_along_axis(merged, order, axis=1)


class ObservationEncoder:
    """Builds the Dict observation space and encodes batches of observations."""

    def __init__(
        self,
        catalog: Catalog,
        n_candidates: int,
        max_sessions: int,
        max_session_steps: int,
        sources: np.ndarray,
        n_recent: int = 10,
        extra_features: np.ndarray | None = None,
        extra_names: list[str] | None = None,
    ) -> None:
        """``extra_features`` [N, E] in [0, 1] (the item representation's features,
        ``recoworld.catalog.representation``) are appended to each candidate's static
        features, named ``extra_names``."""
        self.catalog = catalog
        self.n_recent = n_recent
        self.n_candidates = n_candidates
        self.max_sessions = max_sessions
        self.max_session_steps = max_session_steps
        t = catalog.n_topics
        age = catalog.age_days
        static = np.concatenate(
            [
                catalog.topics,
                (np.log1p(catalog.popularity) / np.log1p(catalog.popularity.max() + 1))[:, None],
                (1.0 - age / max(float(age.max()), 1e-6))[:, None],
                (np.log1p(catalog.duration) / np.log1p(catalog.duration.max()))[:, None],
            ],
            axis=1,
        ).astype(np.float32)
        n_extra = 0 if extra_features is None else extra_features.shape[1]
        if extra_features is not None:
            if extra_features.shape[0] != catalog.n_items:
                raise ValueError("extra_features: one row per catalog item expected")
            static = np.concatenate([static, extra_features.astype(np.float32)], axis=1)
        # Per-item table with zeroed dynamic/source columns: one contiguous gather per step.
        self._static_cols = static.shape[1]
        self._table = np.zeros((catalog.n_items, static.shape[1] + 4 + len(SOURCES)), np.float32)
        self._table[:, : static.shape[1]] = np.clip(static, 0.0, 1.0)
        self._source_onehot = np.eye(len(SOURCES), dtype=np.float32)[sources]  # [M, 4]
        self.candidate_feature_names = [
            *(f"topic:{n}" for n in catalog.topic_names),
            "popularity",
            "freshness",
            "duration",
            *(extra_names or [f"repr:{i}" for i in range(n_extra)]),
            "shown_before",
            "clicked_before",
            "follows_creator",
            "creator_clicks",
            *(f"source:{s}" for s in SOURCES),
        ]
        self.candidate_dim = len(self.candidate_feature_names)
        self.history_dim = t + 3
        self.instruction_dim = t + 1
        self._log_t = float(np.log(max(t, 2)))

    @property
    def max_counter(self) -> float:
        """Upper bound of every counter: the most steps an episode can have."""
        return float(self.max_sessions * self.max_session_steps)

    def feature_index(self, name: str) -> int:
        return self.candidate_feature_names.index(name)

    @property
    def space(self) -> spaces.Dict:
        """The full observation space for one user (what ``encode`` returns)."""
        m, d, n = self.n_candidates, self.candidate_dim, self.catalog.n_items
        h = self.n_recent
        return spaces.Dict(
            {
                "candidates": spaces.Box(0.0, 1.0, (m, d), np.float32),
                "user": spaces.Box(0.0, 1.0, (len(USER_FEATURES),), np.float32),
                "history": spaces.Box(0.0, 1.0, (self.history_dim,), np.float32),
                "instruction": spaces.Box(-1.0, 1.0, (self.instruction_dim,), np.float32),
                "counters": spaces.Box(0.0, self.max_counter, (len(COUNTERS),), np.float32),
                "candidate_ids": spaces.MultiDiscrete(np.full(m, n, np.int64)),
                "recent_ids": spaces.MultiDiscrete(
                    np.full(h, n + 1, np.int64), start=np.full(h, -1, np.int64)
                ),
            }
        )

    @property
    def table(self) -> np.ndarray:
        """[N, d] float32 per-item candidate features, the dynamic and source columns zero
        (what the compiled step gathers from)."""
        return self._table

    @property
    def source_onehot(self) -> np.ndarray:
        """[M, n_sources] float32 one-hot source of each candidate slot."""
        return self._source_onehot

    def encode(
        self,
        candidates: np.ndarray,
        platform: PlatformState,
        seen: np.ndarray,
        consumed: np.ndarray,
        follows: np.ndarray,
        creator_clicks: np.ndarray,
        session_index: np.ndarray,
        session_step: np.ndarray,
        rows: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """Batched observation dict for candidates [B', M] of users ``rows`` (default: all
        B users; ``platform`` and the session counters are already restricted to ``rows``,
        the [B, N] / [B, C] arrays are not)."""
        creators = self.catalog.creator[candidates]
        t3 = self._static_cols
        cand = np.take(self._table, candidates, axis=0)  # [B', M, d], contiguous
        cand[:, :, t3] = gather_bits(seen, candidates, rows)
        cand[:, :, t3 + 1] = gather_bits(consumed, candidates, rows)
        cand[:, :, t3 + 2] = gather_rows(follows, creators, rows)
        cand[:, :, t3 + 3] = np.minimum(gather_rows(creator_clicks, creators, rows) * 0.2, 1.0)
        cand[:, :, t3 + 4 :] = self._source_onehot
        p = platform
        steps_in_session = np.maximum(session_step, 1)
        user = np.stack(
            [
                np.minimum(session_index / self.max_sessions, 1.0),
                np.minimum(session_step / self.max_session_steps, 1.0),
                gap_feature(p.gap_hours),
                np.where(session_step > 0, p.session_clicks / steps_in_session, 0.0),
                p.session_watch / np.maximum(p.session_clicks, 1.0),
                p.total_clicks / np.maximum(p.total_steps, 1.0),
                p.n_follows / (1.0 + p.n_follows),
                np.exp(-p.steps_since_instruction / RECENCY_STEPS),
            ],
            axis=1,
        ).astype(np.float32)
        history = history_features(p.topic_history, p.ema_click, p.ema_watch, self._log_t)
        counters = np.stack(
            [session_index, session_step, p.total_steps, p.instructions_total], axis=1
        ).astype(np.float32)
        return {
            "candidates": cand,
            "user": np.clip(user, 0.0, 1.0),
            "history": history,
            "instruction": p.instruction.astype(np.float32, copy=True),
            "counters": counters,
            "candidate_ids": candidates.astype(np.int64, copy=True),
            "recent_ids": p.recent_items.copy(),
        }


def gap_feature(gap_hours: np.ndarray) -> np.ndarray:
    """User feature ``gap`` [B] (float64) of the gaps since the last session [B] (float32)."""
    return np.minimum(np.log1p(gap_hours) / np.log1p(24.0 * 30.0), 1.0)


def history_features(
    topic_history: np.ndarray, ema_click: np.ndarray, ema_watch: np.ndarray, log_t: float
) -> np.ndarray:
    """The ``history`` observation [B, T + 3] (float32, clipped to [0, 1]) of the platform's
    click-topic history [B, T] and click / watch EMAs [B]; ``log_t`` = log(max(T, 2))."""
    mass = topic_history.sum(1, keepdims=True)
    dist = np.where(mass > 0, topic_history / np.maximum(mass, 1e-12), 0.0)
    ent = -(dist * np.log(np.where(dist > 0, dist, 1.0))).sum(1) / log_t
    history = np.concatenate(
        [dist, ent[:, None], ema_click[:, None], ema_watch[:, None]], axis=1
    ).astype(np.float32)
    return np.clip(history, 0.0, 1.0)


def recency_table(size: int = 1024) -> np.ndarray:
    """User feature ``instruction_recency`` for 0 .. size - 1 steps since the instruction
    (float32; numpy's own ``exp``, as ``encode``; 0 from ``size`` on, where it underflows)."""
    table = np.exp(-np.arange(size, dtype=np.float32) / RECENCY_STEPS)
    if table[-1] != 0.0:
        raise ValueError(f"recency_table: size {size} is below float32 underflow")
    return table


def view_space(full: spaces.Dict, view: str) -> spaces.Space:
    """The observation space of ``view`` (one of ``VIEWS``) given the full space of one user
    (``ObservationEncoder.space``)."""
    if view == "features+ids":
        return full
    if view == "features":
        return spaces.Dict({k: full[k] for k in FEATURE_KEYS})
    if view == "flat":
        boxes = [full[k] for k in FEATURE_KEYS]
        low = np.concatenate([np.ravel(b.low) for b in boxes]).astype(np.float32)
        high = np.concatenate([np.ravel(b.high) for b in boxes]).astype(np.float32)
        return spaces.Box(low, high, dtype=np.float32)
    raise ValueError(f"observation view {view!r}: expected one of {list(VIEWS)}")


def view_observation(obs: dict[str, np.ndarray], view: str) -> dict[str, np.ndarray] | np.ndarray:
    """``view`` of a batched full observation ``obs`` (arrays with a leading batch axis): a
    dict of the view's keys (the same arrays, not copies), or for ``"flat"`` one [B, F]
    float32 array."""
    if view == "features+ids":
        return obs
    if view == "features":
        return {k: obs[k] for k in FEATURE_KEYS}
    if view == "flat":
        b = obs["candidates"].shape[0]
        return np.concatenate([obs[k].reshape(b, -1) for k in FEATURE_KEYS], axis=1)
    raise ValueError(f"observation view {view!r}: expected one of {list(VIEWS)}")

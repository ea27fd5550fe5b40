"""Novelty signals a recommender can observe: per-candidate novelty for the user, slate
novelty and diversity, and the features that reveal a user's two novelty propensities.

The simulator's users have a static novelty propensity and a session-level one drawn around
it (``recoworld.simulators.parametric.model``); both stay hidden. What the platform can see is how
a user responds to novel items, so ``NoveltySignals`` (batched: arrays ``[B, ...]``, the
single env is B = 1) keeps, per user:

* long-term: novelty-weighted and familiarity-weighted click rates over the user's life,
  and the mean novelty of what it clicked (with the topic entropy of past consumption,
  already in the observation's ``history``);
* in-session: the same three, reset at every session start.

Item novelty for user b is platform-side and lies in [0, 1]::

    nov(b, i) = 0.5 * profile_distance(topics_i, click-topic history_b)
              + 0.5 * self_information(popularity)_i / max self-information

— new topics for this user and rarely consumed items; both parts are the evaluation
metrics' own functions (``recoworld.metrics.profile_distance`` and
``self_information``), so the reward a policy is trained on and the novelty a report shows
are one implementation. Slate diversity is ``metrics.intra_list_diversity`` over topics.

``FEATURES`` names the columns of ``features()`` (``[B, 6]``, all in [0, 1]); rates are
smoothed towards ``PRIOR_RATE`` with one pseudo-observation, so a user with no history
reads as average rather than as 0 or 1.
"""

from __future__ import annotations

import numpy as np

from recoworld import metrics as M
from recoworld.catalog.catalog import Catalog

FEATURES = (
    "life_novel_ctr",
    "life_familiar_ctr",
    "life_clicked_novelty",
    "session_novel_ctr",
    "session_familiar_ctr",
    "session_clicked_novelty",
)
PRIOR_RATE = 0.2  # smoothed click rate of a user with no history
PRIOR_NOVELTY = 0.5  # mean novelty of the clicks of a user who has clicked nothing


class NoveltySignals:
    """Per-user novelty response statistics over ``n_users`` slots (see module docstring)."""

    def __init__(self, catalog: Catalog, n_users: int) -> None:
        self.topics = catalog.topics.astype(np.float64)
        info = M.self_information(catalog.popularity)
        self.rarity = info / info.max()  # [N] in (0, 1]
        self.n_topics = catalog.n_topics
        # columns: novel-weighted clicks, novelty shown, familiar-weighted clicks, familiarity
        # shown, clicks, clicked novelty -- for the life (0) and the session (1)
        self.stats = np.zeros((n_users, 2, 6))

    # ------------------------------------------------------------------ item measures
    def item_novelty(self, items: np.ndarray, history: np.ndarray) -> np.ndarray:
        """[B, M] novelty of catalog items ``items`` [B, M] for each user, given the users'
        click-topic ``history`` [B, >= T] (the observation's ``history``; its first T
        columns are the decayed topic distribution). Padding ids (< 0) give 0."""
        items = np.asarray(items)
        dist = M.profile_distance(items, self.topics, np.asarray(history)[:, : self.n_topics])
        rare = self.rarity[np.clip(items, 0, len(self.rarity) - 1)]
        return np.where(items >= 0, 0.5 * np.nan_to_num(dist) + 0.5 * rare, 0.0)

    def slate_novelty(
        self, items: np.ndarray, history: np.ndarray, shown: np.ndarray
    ) -> np.ndarray:
        """[B] mean novelty of the shown slate items (0 when nothing is shown)."""
        shown = np.asarray(shown, dtype=bool)
        return _mean((self.item_novelty(items, history) * shown).sum(axis=1), shown.sum(axis=1))

    def slate_diversity(self, items: np.ndarray, shown: np.ndarray) -> np.ndarray:
        """[B] intra-list diversity over topics (0 when fewer than 2 items are shown)."""
        return np.nan_to_num(M.intra_list_diversity(items, self.topics, shown), nan=0.0)

    # ------------------------------------------------------------------ per-user statistics
    def reset(self, rows: np.ndarray | slice = slice(None)) -> None:
        """New users in ``rows``: forget everything."""
        self.stats[rows] = 0.0

    def start_session(self, rows: np.ndarray | slice) -> None:
        """Users ``rows`` start a new session: the in-session statistics restart."""
        self.stats[rows, 1] = 0.0

    def record(
        self,
        items: np.ndarray,
        history: np.ndarray,
        shown: np.ndarray,
        click: np.ndarray,
        rows: np.ndarray | None = None,
    ) -> np.ndarray:
        """Account one step: slate ``items`` [B, k] shown (``shown`` [B, k]) to users whose
        pre-step ``history`` is given, with per-slot ``click`` [B, k]; only ``rows`` (a
        bool or index mask; default all) are updated. Returns the slate novelty [B]."""
        shown = np.asarray(shown, dtype=bool)
        click = np.asarray(click, dtype=np.float64) * shown
        nov = self.item_novelty(items, history) * shown
        fam = (1.0 - nov) * shown
        step = np.stack(
            [
                (click * nov).sum(1),
                nov.sum(1),
                (click * fam).sum(1),
                fam.sum(1),
                click.sum(1),
                (click * nov).sum(1),
            ],
            axis=1,
        )
        if rows is not None:
            step = step * _mask(rows, len(step))[:, None]
        self.stats += step[:, None, :]
        return _mean(nov.sum(1), shown.sum(1))

    def features(self) -> np.ndarray:
        """[B, 6] float32 in [0, 1], columns ``FEATURES``."""
        s = self.stats
        novel_ctr = (s[..., 0] + PRIOR_RATE) / (s[..., 1] + 1.0)
        familiar_ctr = (s[..., 2] + PRIOR_RATE) / (s[..., 3] + 1.0)
        clicked_nov = (s[..., 5] + PRIOR_NOVELTY) / (s[..., 4] + 1.0)
        out = np.stack(
            [novel_ctr[:, 0], familiar_ctr[:, 0], clicked_nov[:, 0],
             novel_ctr[:, 1], familiar_ctr[:, 1], clicked_nov[:, 1]], axis=1,
        )  # fmt: skip
        return np.clip(out, 0.0, 1.0).astype(np.float32)


def _mean(total: np.ndarray, count: np.ndarray) -> np.ndarray:
    return np.divide(total, count, out=np.zeros(np.shape(total)), where=count > 0)


def _mask(rows: np.ndarray, n: int) -> np.ndarray:
    rows = np.asarray(rows)
    if rows.dtype == bool:
        if rows.shape != (n,):
            raise ValueError(f"rows: expected a bool mask of length {n}, got {rows.shape}")
        return rows
    mask = np.zeros(n, dtype=bool)
    mask[rows] = True
    return mask

"""Candidate generation: M distinct candidates per user per step from a configurable mix.

Sources (``CandidateMix`` weights, split into slot counts by largest remainder):

- ``popular``: items sampled with probability ∝ popularity**power (alias table, O(1));
- ``random``: uniform over the catalog;
- ``interest``: a topic drawn from the user's *observed* click-topic history (platform-side
  data, never the hidden interests; uniform for users with no history), then an item
  uniformly among that topic's items (pre-built topic index);
- ``fresh``: uniform among the ``fresh_window`` newest releases.

Every source costs O(B·M) (plus O(B·T) for the interest source), independent of catalog
size. Duplicates within a user's M candidates are redrawn uniformly (vectorized rounds);
the slot layout is fixed, so ``sources`` (slot -> source id) is one [M] array shared by all
users. Extra items can be injected per user (e.g. an item a friend shared) by overwriting
slots after sampling.
"""

from __future__ import annotations

import numpy as np

from recoworld.catalog.catalog import Catalog
from recoworld.config import CandidateConfig

SOURCES = ("popular", "random", "interest", "fresh")


def split_slots(weights: np.ndarray, total: int) -> np.ndarray:
    """Integer slot counts proportional to ``weights`` summing to ``total`` (largest remainder)."""
    w = np.asarray(weights, dtype=np.float64)
    raw = w / w.sum() * total
    counts = np.floor(raw).astype(np.int64)
    rest = total - counts.sum()
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[:rest]] += 1
    return counts


def alias_table(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias table for O(1) sampling from the distribution ``p`` (sums to 1):
    draw u ~ U[0, N), i = floor(u); take i if frac(u) < prob[i], else alias[i]."""
    n = len(p)
    scaled = np.asarray(p, dtype=np.float64) * n
    prob = np.ones(n, dtype=np.float64)
    alias = np.arange(n, dtype=np.int64)
    small = [int(i) for i in np.flatnonzero(scaled < 1.0)]
    large = [int(i) for i in np.flatnonzero(scaled >= 1.0)]
    while small and large:
        s, g = small.pop(), large.pop()
        prob[s], alias[s] = scaled[s], g
        scaled[g] -= 1.0 - scaled[s]
        (small if scaled[g] < 1.0 else large).append(g)
    return prob, alias


class CandidateGenerator:
    """Samples [B, M] candidate item indices; see the module docstring for the sources."""

    def __init__(self, catalog: Catalog, config: CandidateConfig) -> None:
        if config.n_candidates > catalog.n_items:
            raise ValueError(
                f"candidates.n_candidates={config.n_candidates} exceeds the catalog size "
                f"({catalog.n_items} items)"
            )
        self.catalog = catalog
        self.config = config
        mix = config.mix
        self.counts = split_slots(
            np.array([mix.popular, mix.random, mix.interest, mix.fresh]), config.n_candidates
        )
        self.sources = np.repeat(np.arange(len(SOURCES)), self.counts)  # [M]
        pop = catalog.popularity.astype(np.float64) ** config.popularity_power + 1e-12
        self._pop_prob, self._pop_alias = alias_table(pop / pop.sum())
        self._fresh = catalog.newest_first[: min(config.fresh_window, catalog.n_items)]
        self._topic_items, self._topic_offsets, self._topic_counts = catalog.topic_index
        self._topic_has_items = self._topic_counts > 0

    @property
    def n_candidates(self) -> int:
        return self.config.n_candidates

    def sample(self, rng: np.random.Generator, topic_history: np.ndarray) -> np.ndarray:
        """Candidates [B, M] (int64, distinct per row). ``topic_history`` is [B, T] >= 0."""
        b = topic_history.shape[0]
        n = self.catalog.n_items
        n_pop, n_rand, n_int, n_fresh = (int(c) for c in self.counts)
        parts = []
        if n_pop:
            u = rng.random((b, n_pop)) * n
            i = np.minimum(u.astype(np.int64), n - 1)
            parts.append(np.where(u - i < self._pop_prob[i], i, self._pop_alias[i]))
        if n_rand:
            parts.append(rng.integers(0, n, size=(b, n_rand)))
        if n_int:
            parts.append(self._interest(rng, topic_history, n_int))
        if n_fresh:
            parts.append(self._fresh[rng.integers(0, len(self._fresh), size=(b, n_fresh))])
        cand = np.concatenate(parts, axis=1).astype(np.int64)
        return self._dedupe(rng, cand)

    def _interest(self, rng: np.random.Generator, history: np.ndarray, m: int) -> np.ndarray:
        weights = np.where(self._topic_has_items, history + 0.05, 0.0)  # [B, T], smoothed
        cdf = np.cumsum(weights, axis=1, dtype=np.float32)
        cdf /= cdf[:, -1:]
        u = rng.random((history.shape[0], m), dtype=np.float32)
        topic = (u[:, :, None] > cdf[:, None, :]).sum(axis=2, dtype=np.int64)  # [B, m]
        topic = np.minimum(topic, history.shape[1] - 1)
        within = (rng.random((history.shape[0], m)) * self._topic_counts[topic]).astype(np.int64)
        return self._topic_items[self._topic_offsets[topic] + within]

    def _dedupe(self, rng: np.random.Generator, cand: np.ndarray) -> np.ndarray:
        n = self.catalog.n_items
        srt = np.sort(cand, axis=1)
        rows = np.flatnonzero((srt[:, 1:] == srt[:, :-1]).any(axis=1))
        for _ in range(32):
            if rows.size == 0:
                return cand
            sub = cand[rows]
            order = np.argsort(sub, axis=1, kind="stable")
            srt = np.take_along_axis(sub, order, axis=1)
            dup_sorted = np.zeros_like(sub, dtype=bool)
            dup_sorted[:, 1:] = srt[:, 1:] == srt[:, :-1]
            dup = np.zeros_like(dup_sorted)
            np.put_along_axis(dup, order, dup_sorted, axis=1)
            sub[dup] = rng.integers(0, n, size=int(dup.sum()))
            cand[rows] = sub
            srt = np.sort(sub, axis=1)
            rows = rows[(srt[:, 1:] == srt[:, :-1]).any(axis=1)]
        # Pathological (M close to N): fill each remaining row with unused items, in order.
        for row in np.flatnonzero([len(np.unique(r)) < len(r) for r in cand]):
            seen: set[int] = set()
            free = iter(np.setdiff1d(np.arange(n), cand[row]))
            for j, item in enumerate(cand[row]):
                if int(item) in seen:
                    cand[row, j] = next(free)
                seen.add(int(cand[row, j]))
        return cand

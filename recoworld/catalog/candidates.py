"""Candidate generation: M distinct candidates per user per step from a configurable mix.

Sources (``CandidateMix`` weights, split into slot counts by largest remainder):

- ``popular``: items sampled with probability ∝ popularity**power (alias table, O(1));
- ``random``: uniform over the catalog;
- ``interest``: a topic drawn from the user's *observed* click-topic history (platform-side
  data, never the hidden interests; uniform for users with no history), then an item
  uniformly among that topic's items (pre-built topic index);
- ``fresh``: uniform among the ``fresh_window`` newest releases.

Every source costs O(B·M) (plus O(B·T) for the interest source), independent of catalog
size; one compiled (numba) pass fills the [B, M] block. Duplicates within a user's M
candidates are redrawn uniformly; the slot layout is fixed, so ``sources`` (slot -> source
id) is one [M] array shared by all users. Extra items can be injected per user (e.g. an item
a friend shared) by overwriting slots after sampling.
"""

from __future__ import annotations

import numpy as np
from numba import njit

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
        history = np.ascontiguousarray(topic_history, dtype=np.float64)
        out = np.empty((history.shape[0], self.n_candidates), dtype=np.int64)
        _sample_candidates(
            rng, history, self.counts, self._pop_prob, self._pop_alias, self._fresh,
            self._topic_items, self._topic_offsets, self._topic_counts, self.catalog.n_items,
            out,
        )  # fmt: skip
        return out


@njit(cache=True, nogil=True)
def _sample_candidates(
    rng, history, counts, pop_prob, pop_alias, fresh, topic_items, topic_offsets, topic_counts,
    n_items, out,
):  # fmt: skip
    """Fill ``out[b]`` with M distinct items per user (sources in slot order, then dedupe:
    a repeated item is redrawn uniformly, after 64 misses the first unused item is taken)."""
    n_users, m = out.shape
    n_topics = history.shape[1]
    for b in range(n_users):
        j = 0
        for _ in range(counts[0]):  # popular: alias table
            u = rng.random() * n_items
            i = min(int(u), n_items - 1)
            out[b, j] = i if u - i < pop_prob[i] else pop_alias[i]
            j += 1
        for _ in range(counts[1]):  # random
            out[b, j] = rng.integers(0, n_items)
            j += 1
        if counts[2] > 0:  # interest: topic ~ observed history (+0.05), item ~ U(topic)
            total = 0.0
            for t in range(n_topics):
                if topic_counts[t] > 0:
                    total += history[b, t] + 0.05
            for _ in range(counts[2]):
                u = rng.random() * total
                topic = -1
                for t in range(n_topics):
                    if topic_counts[t] > 0:
                        topic = t
                        u -= history[b, t] + 0.05
                        if u < 0.0:
                            break
                k = int(rng.random() * topic_counts[topic])
                out[b, j] = topic_items[topic_offsets[topic] + min(k, topic_counts[topic] - 1)]
                j += 1
        for _ in range(counts[3]):  # fresh
            out[b, j] = fresh[rng.integers(0, len(fresh))]
            j += 1
        for j in range(1, m):  # dedupe (M is small: quadratic is cheapest)
            tries = 0
            while True:
                dup = False
                for q in range(j):
                    if out[b, q] == out[b, j]:
                        dup = True
                        break
                if not dup:
                    break
                tries += 1
                if tries <= 64:
                    out[b, j] = rng.integers(0, n_items)
                else:
                    out[b, j] = (out[b, j] + 1) % n_items

"""Candidate generation: M distinct candidates per user per step from a configurable mix.

Sources (``CandidateMix`` weights, split into slot counts by largest remainder):

- ``popular``: items sampled with probability ∝ popularity**power (alias table, O(1));
- ``random``: uniform over the catalog;
- ``interest``: a topic drawn from the user's *observed* click-topic history (platform-side
  data, never the hidden interests; uniform for users with no history), then an item
  uniformly among that topic's items (pre-built topic index);
- ``fresh``: uniform among the ``fresh_window`` newest releases.

Every source costs O(B·M) (plus O(B·T) for the interest source), independent of catalog
size; one compiled (numba) pass fills the [B, M] block (``candidate_kernel``, imported on
first use so that ``import recoworld`` stays free of numba: see
``recoworld.simulators.parametric_kernels``). Duplicates within a user's M
candidates are redrawn uniformly; the slot layout is fixed, so ``sources`` (slot -> source
id) is one [M] array shared by all users. Extra items can be injected per user (e.g. an item
a friend shared) by overwriting slots after sampling.
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
        history = np.ascontiguousarray(topic_history, dtype=np.float64)
        out = np.empty((history.shape[0], self.n_candidates), dtype=np.int64)
        from recoworld.catalog.candidate_kernel import sample_candidates

        sample_candidates(
            rng, history, self.counts, self._pop_prob, self._pop_alias, self._fresh,
            self._topic_items, self._topic_offsets, self._topic_counts, self.catalog.n_items,
            out,
        )  # fmt: skip
        return out

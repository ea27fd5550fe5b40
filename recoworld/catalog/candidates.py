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
``recoworld.simulators.parametric.kernels``). Duplicates within a user's M
candidates are redrawn uniformly; the slot layout is fixed, so ``sources`` (slot -> source
id) is one [M] array shared by all users. Extra items can be injected per user (e.g. an item
a friend shared) by overwriting slots after sampling.
"""

from __future__ import annotations

import numpy as np

from recoworld.catalog.catalog import Catalog
from recoworld.catalog.config import CandidateConfig

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
        self._topic_items, self._topic_offsets, self._all_topic_counts = catalog.topic_index
        self.set_available(catalog.n_items)

    def set_available(self, n_available: int) -> None:
        """Sample only items ``0 .. n_available - 1`` (a catalog prefix: a population holds
        back its newest items and releases them over time, in index order). Rebuilds the
        popularity table, the fresh window and the per-topic counts (O(N), so call it when
        items are released, not every step)."""
        n_items = self.catalog.n_items
        if not self.config.n_candidates <= n_available <= n_items:
            raise ValueError(
                f"n_available={n_available}: must lie in [n_candidates="
                f"{self.config.n_candidates}, {n_items}]"
            )
        self.n_available = n_available
        pop = self.catalog.popularity[:n_available].astype(np.float64)
        pop = pop**self.config.popularity_power + 1e-12
        self._pop_prob, self._pop_alias = alias_table(pop / pop.sum())
        newest = self.catalog.newest_first
        self._fresh = newest[newest < n_available][: self.config.fresh_window]
        # items of topic t are sorted by index in the topic index: the available ones come first
        counts = np.array(
            [
                np.searchsorted(self._topic_items[o : o + c], n_available)
                for o, c in zip(self._topic_offsets, self._all_topic_counts, strict=True)
            ],
            dtype=np.int64,
        )
        self._topic_counts = counts

    def kernel_tables(self) -> tuple[np.ndarray, ...]:
        """What the compiled sampler reads, in its order (``candidate_kernel.sample_row``):
        slot counts per source, the popularity alias table (prob, alias), the fresh window,
        the topic index (items, offsets, available counts). Replaced, not written into, by
        ``set_available``."""
        return (
            self.counts, self._pop_prob, self._pop_alias, self._fresh, self._topic_items,
            self._topic_offsets, self._topic_counts,
        )  # fmt: skip

    @property
    def n_candidates(self) -> int:
        return self.config.n_candidates

    def sample(self, rng: np.random.Generator, topic_history: np.ndarray) -> np.ndarray:
        """Candidates [B, M] (int64, distinct per row). ``topic_history`` is [B, T] >= 0."""
        history = np.ascontiguousarray(topic_history, dtype=np.float64)
        out = np.empty((history.shape[0], self.n_candidates), dtype=np.int64)
        from recoworld.catalog.candidate_kernel import sample_candidates

        sample_candidates(rng, history, *self.kernel_tables(), self.n_available, out)
        return out

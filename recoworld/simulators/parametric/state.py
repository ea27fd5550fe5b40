"""The state of B parametric users (``UserState``: interests, novelty propensities, fatigue,
creator affinity, patience, satisfaction, session counters, seen/consumed bitsets) and the
per-user parameters fitted to real data that users are drawn from (``FittedPopulation``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recoworld.core.arrays import gather_bits
from recoworld.simulators.base import BatchState


@dataclass
class UserState(BatchState):
    """Hidden state of B parametric users (see module docstring)."""

    interest: np.ndarray  # [B, T] float32 in [0, 1]
    latent: np.ndarray  # [B, D] float32
    novelty_static: np.ndarray  # [B] float32 in [0, 1]
    novelty_session: np.ndarray  # [B] float32 in [0, 1]
    fatigue: np.ndarray  # [B, T] float32 >= 0
    exposure: np.ndarray  # [B, T] float32 >= 0 (lifetime clicked topic mass)
    creator_affinity: np.ndarray  # [B, C] float32 >= 0
    creator_clicks: np.ndarray  # [B, C] float32 >= 0
    follows: np.ndarray  # [B, C] bool
    seen: np.ndarray  # [B, ceil(N / 8)] uint8 bitset: items shown to the user
    consumed: np.ndarray  # [B, ceil(N / 8)] uint8 bitset: items the user clicked
    patience: np.ndarray  # [B] float32 >= 0
    satisfaction: np.ndarray  # [B] float32 in [0, 1]
    session_step: np.ndarray  # [B] int32
    session_index: np.ndarray  # [B] int32
    instructions_in_session: np.ndarray  # [B] int32
    instruction_vec: np.ndarray  # [B, T] float32 in {-1, 0, 1}
    instruction_age: np.ndarray  # [B] int32 steps since the last instruction
    population_row: np.ndarray  # [B] int64 row of the fitted population (-1 = sampled)
    era: np.ndarray  # [B] float32 preferred release era, as a release-time percentile
    segment: np.ndarray  # [B] int64 segment of the population (-1 = no segments)

    def was_shown(self, items: np.ndarray) -> np.ndarray:
        """[B, m] bool: item items[b, j] was shown to user b before."""
        return gather_bits(self.seen, items)

    def was_consumed(self, items: np.ndarray) -> np.ndarray:
        """[B, m] bool: user b clicked item items[b, j] before."""
        return gather_bits(self.consumed, items)


@dataclass(frozen=True, eq=False)
class FittedPopulation:
    """Per-user parameters fitted to real data; users are drawn from these rows."""

    interest: np.ndarray  # [U, T]
    latent: np.ndarray  # [U, D]
    novelty_static: np.ndarray  # [U]
    patience: np.ndarray  # [U]
    name: str = "fitted"
    era: np.ndarray | None = None  # [U] preferred release-time percentile (None: 0.5)
    interest_base: np.ndarray | None = None  # [T] per-topic base of interest (None: 0.5)
    # fitted preference weights (ParametricUserConfig field -> value) and how they were fitted
    weights: dict[str, float] | None = None
    fit_info: dict | None = None

    def __len__(self) -> int:
        return len(self.novelty_static)

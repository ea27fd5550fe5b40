"""The ``Recommender`` protocol: every policy — baseline, RLlib-trained module, LLM
re-ranker — maps an observation to a slate, so evaluation treats them alike.

``act`` accepts one observation (``candidates`` of shape [M, d]) or a batch (``[B, M, d]``)
and returns ``[k]`` or ``[B, k]`` candidate indices. Online learners also implement
``update(observation, slate, reward, next_observation, done)``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Recommender(Protocol):
    name: str

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray: ...


def batched(observation: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], bool]:
    """(observation with a leading batch axis, whether the input was a single observation)."""
    single = observation["candidates"].ndim == 2
    if single:
        return {key: np.asarray(v)[None] for key, v in observation.items()}, True
    return observation, False


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores per row, best first, ties to the lower index."""
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def unbatch(slates: np.ndarray, single: bool) -> np.ndarray:
    return slates[0] if single else slates

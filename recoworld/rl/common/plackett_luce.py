"""The Plackett-Luce slate distribution for RLlib: k distinct items out of M, ordered, from M
scores.

The math (Gumbel-top-k sampling, the exact log-probability, the entropy proxy and the KL
along the greedy order) lives in ``recoworld.rl.common.plackett_luce_ops``, shared with the
Stable-Baselines3 distribution; this module wraps it in RLlib's ``Distribution`` API.

RLlib's multi-discrete default repeats items (docs/platform.md#rllib-notes measured a greedy slate
``[15 15 13]``); this class is what the slate RLModule declares as its action distribution.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import gymnasium as gym
import torch
from ray.rllib.core.distribution.distribution import Distribution

from recoworld.rl.common import plackett_luce_ops as ops


class PlackettLuce(Distribution):
    """Distribution over ordered slates of ``k`` distinct indices of ``logits[..., M]``."""

    k: int = 1

    def __init__(self, logits: torch.Tensor, k: int | None = None) -> None:
        super().__init__()
        self.logits = logits
        self.k = int(k if k is not None else type(self).k)
        if self.k > logits.shape[-1]:
            raise ValueError(f"slate size {self.k} exceeds the {logits.shape[-1]} candidates")

    # ------------------------------------------------------------------ sampling
    def sample(self, *, sample_shape: Any = None) -> torch.Tensor:
        if sample_shape:
            raise NotImplementedError("PlackettLuce.sample supports one draw per row")
        return ops.sample(self.logits, self.k)

    def rsample(self, *, sample_shape: Any = None) -> torch.Tensor:
        raise NotImplementedError("a discrete slate has no reparameterised sample")

    def greedy(self) -> torch.Tensor:
        """The k highest-scoring items, best first (the mode of the distribution)."""
        return ops.greedy(self.logits, self.k)

    # ------------------------------------------------------------------ densities
    def logp(self, value: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return ops.log_prob(self.logits, value, self.k)

    def entropy(self, **kwargs: Any) -> torch.Tensor:
        return ops.entropy(self.logits, self.k)

    def kl(self, other: Distribution, **kwargs: Any) -> torch.Tensor:
        if not isinstance(other, PlackettLuce):
            raise TypeError(f"KL between PlackettLuce and {type(other).__name__}")
        return ops.kl(self.logits, other.logits, self.k)

    # ------------------------------------------------------------------ RLlib API
    @staticmethod
    def required_input_dim(space: gym.Space, **kwargs: Any) -> int:
        if not isinstance(space, gym.spaces.MultiDiscrete):
            raise TypeError(f"a slate action space is MultiDiscrete, got {space}")
        return int(space.nvec.reshape(-1)[0])

    @classmethod
    def from_logits(cls, logits: torch.Tensor, **kwargs: Any) -> PlackettLuce:
        return cls(logits, **kwargs)

    def to_deterministic(self) -> GreedySlate:
        return GreedySlate(self.logits, self.k)


class GreedySlate(PlackettLuce):
    """The deterministic counterpart: always the top-k slate (evaluation, inference)."""

    def sample(self, *, sample_shape: Any = None) -> torch.Tensor:
        return self.greedy()


@cache
def plackett_luce(k: int) -> type[PlackettLuce]:
    """A PlackettLuce class with slate size ``k`` fixed (RLlib builds distributions with
    ``from_logits(logits)`` only)."""
    if k < 1:
        raise ValueError(f"slate size must be >= 1, got {k}")
    return type(f"PlackettLuce{k}", (PlackettLuce,), {"k": k})

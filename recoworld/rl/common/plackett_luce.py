"""The Plackett-Luce slate distribution: k distinct items out of M, ordered, from M scores.

A slate (a_1, ..., a_k) is drawn by picking a_1 with probability softmax(s)[a_1], then a_2
among the remaining items, and so on:

    log p(a) = sum_j [ s_{a_j} - logsumexp_{i not in {a_1..a_{j-1}}} s_i ]

Sampling uses the Gumbel-top-k trick (the k largest of s_i + Gumbel noise, in order), which
draws exactly this distribution and never repeats an item; ``logp`` is exact. The entropy
of a Plackett-Luce slate has no closed form: ``entropy`` returns the sum over positions of
the categorical entropy of each choice along the greedy (deterministic) order, a smooth
proxy that equals the exact entropy for k = 1 and is what PPO's entropy bonus uses here;
``kl`` is the matching sum of per-position categorical KLs along the same order (RLlib's
PPO only needs it when ``use_kl_loss`` is on).

RLlib's multi-discrete default repeats items (docs/platform.md#rllib-notes measured a greedy slate
``[15 15 13]``); this class is what the slate RLModule declares as its action distribution.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import gymnasium as gym
import torch
from ray.rllib.core.distribution.distribution import Distribution

NEG_INF = -1e9


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
        u = torch.rand_like(self.logits).clamp_(1e-10, 1.0 - 1e-7)
        gumbel = -torch.log(-torch.log(u))
        return torch.topk(self.logits.detach() + gumbel, self.k, dim=-1).indices

    def rsample(self, *, sample_shape: Any = None) -> torch.Tensor:
        raise NotImplementedError("a discrete slate has no reparameterised sample")

    def greedy(self) -> torch.Tensor:
        """The k highest-scoring items, best first (the mode of the distribution)."""
        return torch.topk(self.logits, self.k, dim=-1).indices

    # ------------------------------------------------------------------ densities
    def _masked_logits(self, order: torch.Tensor) -> list[torch.Tensor]:
        """Per position j: the logits with the items chosen before j masked out."""
        out = []
        masked = self.logits
        for j in range(self.k):
            out.append(masked)
            if j + 1 < self.k:
                masked = masked.scatter(-1, order[..., j : j + 1], NEG_INF)
        return out

    def logp(self, value: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        value = value.long()
        total = torch.zeros(self.logits.shape[:-1], dtype=self.logits.dtype,
                            device=self.logits.device)  # fmt: skip
        for j, masked in enumerate(self._masked_logits(value)):
            chosen = masked.gather(-1, value[..., j : j + 1]).squeeze(-1)
            total = total + chosen - torch.logsumexp(masked, dim=-1)
        return total

    def entropy(self, **kwargs: Any) -> torch.Tensor:
        total = torch.zeros(self.logits.shape[:-1], dtype=self.logits.dtype,
                            device=self.logits.device)  # fmt: skip
        for masked in self._masked_logits(self.greedy()):
            logp = torch.log_softmax(masked, dim=-1)
            total = total - (logp.exp() * logp).sum(-1)
        return total

    def kl(self, other: Distribution, **kwargs: Any) -> torch.Tensor:
        if not isinstance(other, PlackettLuce):
            raise TypeError(f"KL between PlackettLuce and {type(other).__name__}")
        order = self.greedy()
        total = torch.zeros(self.logits.shape[:-1], dtype=self.logits.dtype,
                            device=self.logits.device)  # fmt: skip
        mine, theirs = self._masked_logits(order), other._masked_logits(order)
        for a, b in zip(mine, theirs, strict=True):
            pa, pb = torch.log_softmax(a, dim=-1), torch.log_softmax(b, dim=-1)
            total = total + (pa.exp() * (pa - pb)).sum(-1)
        return total

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

"""What a shared candidate scorer reads from a RecoWorld observation, in plain torch.

``SlateInputs`` (built from the observation ``Dict`` space) turns a batch of observations into
one input row per candidate:

- context c = [user; history; instruction], plus log(1 + counters) when the observation has
  them and the other ``OPTIONAL_CONTEXT_KEYS`` it carries (``novelty``, ``goal``);
- per candidate i: x_i (the candidate's features, plus its ``PER_CANDIDATE_KEYS`` values),
  and x_i[:T] * instruction[:T], x_i[:T] * history[:T] (does the item match what the user
  asked for / has been clicking);
- with ``relative``, also x_i - mean_j x_j (each feature relative to the slate's other
  candidates).

``build`` returns the scorer's input [B, M, scorer_dim] (context broadcast to every
candidate) and the item part [B, M, item_dim] (the linear path's input). Both slate
learners use it: the RLlib slate module (``recoworld.rl.common.slate_module``) and the
Stable-Baselines3 slate policy (``recoworld.rl.sb3.slate_policy``). No Ray, no SB3 here.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import gymnasium as gym
import torch
from torch import nn

CONTEXT_KEYS = ("user", "history", "instruction")
OPTIONAL_CONTEXT_KEYS = ("counters", "novelty", "goal")
PER_CANDIDATE_KEYS = ("candidate_novelty",)


def mlp(sizes: list[int], out: int) -> nn.Sequential:
    """Linear + tanh layers of ``sizes`` (input first), then a linear layer to ``out``."""
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), nn.Tanh()]
    layers.append(nn.Linear(sizes[-1], out))
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class SlateInputs:
    """The observation keys a scorer reads and the widths of its inputs (module docstring)."""

    context_keys: tuple[str, ...]
    candidate_keys: tuple[str, ...]
    n_features: int  # d: features per candidate
    n_topics: int
    context_dim: int
    relative: bool = False

    @classmethod
    def from_space(cls, space: gym.Space, relative: bool = False) -> SlateInputs:
        """From a RecoWorld observation ``Dict`` (``ValueError`` naming what is missing)."""
        if not isinstance(space, gym.spaces.Dict) or "candidates" not in space.spaces:
            raise ValueError(
                "a slate scorer needs the RecoWorld observation dict (with 'candidates'), got "
                f"{space}"
            )
        missing = [k for k in CONTEXT_KEYS if k not in space.spaces]
        if missing:
            raise ValueError(f"the observation has no {missing} (a slate scorer reads them)")
        # membership of the keys (``k in space`` would test whether k is a sample of it)
        context = CONTEXT_KEYS + tuple(k for k in OPTIONAL_CONTEXT_KEYS if k in space.spaces)
        return cls(
            context_keys=context,
            candidate_keys=tuple(k for k in PER_CANDIDATE_KEYS if k in space.spaces),
            n_features=int(space["candidates"].shape[-1]),
            n_topics=int(space["instruction"].shape[0]) - 1,
            context_dim=sum(int(space[k].shape[0]) for k in context),
            relative=relative,
        )

    @property
    def item_dim(self) -> int:
        """Width of the item part (the linear path's input)."""
        return self.n_features + len(self.candidate_keys) + 2 * self.n_topics

    @property
    def scorer_dim(self) -> int:
        """Width of one candidate's scorer input."""
        extra = self.n_features + len(self.candidate_keys) if self.relative else 0
        return self.context_dim + self.item_dim + extra

    def context(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """[B, context_dim] the context (counters as log(1 + count))."""
        parts = [torch.log1p(obs[k].float()) if k == "counters" else obs[k].float()
                 for k in self.context_keys]  # fmt: skip
        return torch.cat(parts, dim=-1)

    def build(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """([B, M, scorer_dim] scorer input, [B, M, item_dim] item part)."""
        cands = obs["candidates"].float()
        if self.candidate_keys:
            cands = torch.cat(
                [cands, *(obs[k].float()[..., None] for k in self.candidate_keys)], -1
            )
        ctx = self.context(obs)
        t = self.n_topics
        topics = cands[..., :t]
        wanted = topics * obs["instruction"][..., None, :t].float()
        habit = topics * obs["history"][..., None, :t].float()
        m = cands.shape[-2]
        item = torch.cat([cands, wanted, habit], dim=-1)
        parts = [ctx[..., None, :].expand(*ctx.shape[:-1], m, ctx.shape[-1]), item]
        if self.relative:
            parts.append(cands - cands.mean(dim=-2, keepdim=True))
        return torch.cat(parts, dim=-1), item


def candidate_scores(
    inputs: SlateInputs,
    scorer: nn.Module,
    linear: nn.Module | None,
    obs: dict[str, torch.Tensor],
) -> torch.Tensor:
    """[B, M] s_i = scorer(inputs_i) (+ linear(item_i) when there is a linear path)."""
    x, item = inputs.build(obs)
    s = scorer(x).squeeze(-1)
    if linear is not None:
        s = s + linear(item).squeeze(-1)
    return s

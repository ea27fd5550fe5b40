"""The slate RLModule: one score per candidate from a shared network, a Plackett-Luce slate.

For each user the module reads the observation dict of ``RecoWorld-v0``:

- context c = [user (8); history (T + 3); instruction (T + 1)], plus log(1 + counters) (4)
  when the observation has them (the ``features+ids`` view)
- per candidate i: item features x_i (M x d; topics, popularity, freshness, shown/clicked
  before, creator follow/clicks, candidate source)

and scores every candidate with one MLP shared across candidates,

    s_i = MLP([c; x_i; x_i[:T] * instruction[:T]; x_i[:T] * history[:T]])

(the two products let a small network see at once whether an item matches what the user
asked for and what it has been clicking). When the observation carries them, the context
also takes the other ``OPTIONAL_CONTEXT_KEYS`` (``novelty``: novelty-response features, ``goal``: a
one-hot novelty goal from a higher-level policy; ``recoworld.rl.hrl.algorithm``) and each candidate
its ``PER_CANDIDATE_KEYS`` value (``candidate_novelty`` [M]).

The scores are the inputs of the Plackett-Luce slate distribution (``slate_distribution``):
exploration samples k distinct candidates by Gumbel-top-k, inference takes the top k,
training uses the exact log-probability. The value head reads the context only
(``ValueFunctionAPI``), so PPO and other actor-critic learners work unchanged. Observation
keys the module does not know are ignored, so it keeps working when the observation grows.

Two options help the scorer rank (``ModelSettings`` turns both on; the module's own
defaults keep the original network, so older checkpoints load):

- ``relative_features``: the MLP also reads x_i - mean_j x_j (each candidate feature
  relative to the other candidates: "more popular than the rest" is on the same scale on
  every slate);
- ``linear_path``: s_i += w . [x_i; x_i[:T] * instruction[:T]; x_i[:T] * history[:T]], a
  zero-initialised linear score, so "rank by popularity" (or by any one feature) is a
  single weight the MLP need not first learn to represent.

``value_scale``: the value head predicts V / value_scale (PPO passes 1 / (1 - gamma), the
return of a constant unit reward), so its output layer need not grow to returns of tens.

``model_config``: ``hidden`` (list of layer widths, default [128, 128]), ``value_hidden``
(default [128, 128]), ``slate_size`` (default: the action space's length),
``relative_features`` (default False), ``linear_path`` (default False), ``value_scale``
(default 1.0).
"""

from __future__ import annotations

import itertools
from typing import Any

import gymnasium as gym
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis import ValueFunctionAPI
from ray.rllib.core.rl_module.torch import TorchRLModule
from torch import nn

from recoworld.rl.common.plackett_luce import PlackettLuce, plackett_luce

CONTEXT_KEYS = ("user", "history", "instruction")
OPTIONAL_CONTEXT_KEYS = ("counters", "novelty", "goal")
PER_CANDIDATE_KEYS = ("candidate_novelty",)


def _mlp(sizes: list[int], out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), nn.Tanh()]
    layers.append(nn.Linear(sizes[-1], out))
    return nn.Sequential(*layers)


class SlateScoringModule(TorchRLModule, ValueFunctionAPI):
    """Shared candidate scorer + context value head (see module docstring)."""

    def setup(self) -> None:
        obs = self.observation_space
        if not isinstance(obs, gym.spaces.Dict) or "candidates" not in obs.spaces:
            raise ValueError(
                "SlateScoringModule needs the RecoWorld observation dict (with 'candidates')"
            )
        act = self.action_space
        if not isinstance(act, gym.spaces.MultiDiscrete):
            raise ValueError(f"SlateScoringModule needs a MultiDiscrete slate space, got {act}")
        cfg = self.model_config or {}
        self.slate_size = int(cfg.get("slate_size", len(act.nvec)))
        d = obs["candidates"].shape[-1]
        self.n_topics = obs["instruction"].shape[0] - 1
        # membership of the keys (``k in space`` would test whether k is a sample of it)
        self.context_keys = CONTEXT_KEYS + tuple(
            k for k in OPTIONAL_CONTEXT_KEYS if k in obs.spaces
        )
        self.candidate_keys = tuple(k for k in PER_CANDIDATE_KEYS if k in obs.spaces)
        ctx = sum(int(obs[key].shape[0]) for key in self.context_keys)
        item_in = ctx + d + len(self.candidate_keys) + 2 * self.n_topics
        self.relative = bool(cfg.get("relative_features", False))
        if self.relative:  # each feature relative to the slate's mean
            item_in += d + len(self.candidate_keys)
        self.scorer = _mlp([item_in, *cfg.get("hidden", [128, 128])], 1)
        # linear path on the candidate's own features: "rank by feature j" is one weight
        # (not on the relative ones: a per-row shift leaves the Plackett-Luce slate unchanged)
        self.linear = (nn.Linear(d + len(self.candidate_keys) + 2 * self.n_topics, 1, bias=False)
                       if cfg.get("linear_path", False) else None)  # fmt: skip
        if self.linear is not None:
            nn.init.zeros_(self.linear.weight)
        self.value_scale = float(cfg.get("value_scale", 1.0))
        if not self.inference_only:
            self.value = _mlp([ctx, *cfg.get("value_hidden", [128, 128])], 1)
        self.action_dist_cls = plackett_luce(self.slate_size)

    # ------------------------------------------------------------------ features
    def _context(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = [torch.log1p(obs[k].float()) if k == "counters" else obs[k].float()
                 for k in self.context_keys]  # fmt: skip
        return torch.cat(parts, dim=-1)

    def scores(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """[B, M] candidate scores (the Plackett-Luce logits)."""
        cands = obs["candidates"].float()
        if self.candidate_keys:
            cands = torch.cat(
                [cands, *(obs[k].float()[..., None] for k in self.candidate_keys)], -1
            )
        ctx = self._context(obs)
        t = self.n_topics
        topics = cands[..., :t]
        wanted = topics * obs["instruction"][..., None, :t].float()
        habit = topics * obs["history"][..., None, :t].float()
        m = cands.shape[-2]
        item = torch.cat([cands, wanted, habit], dim=-1)
        parts = [ctx[..., None, :].expand(*ctx.shape[:-1], m, ctx.shape[-1]), item]
        if self.relative:
            parts.append(cands - cands.mean(dim=-2, keepdim=True))
        s = self.scorer(torch.cat(parts, dim=-1)).squeeze(-1)
        if self.linear is not None:
            s = s + self.linear(item).squeeze(-1)
        return s

    # ------------------------------------------------------------------ RLModule
    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {Columns.ACTION_DIST_INPUTS: self.scores(batch[Columns.OBS])}

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        return self.value_scale * self.value(self._context(batch[Columns.OBS])).squeeze(-1)

    def get_inference_action_dist_cls(self) -> type[PlackettLuce]:
        return self.action_dist_cls

    def get_exploration_action_dist_cls(self) -> type[PlackettLuce]:
        return self.action_dist_cls

    def get_train_action_dist_cls(self) -> type[PlackettLuce]:
        return self.action_dist_cls

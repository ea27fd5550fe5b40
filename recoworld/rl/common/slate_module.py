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

from typing import Any

import gymnasium as gym
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis import ValueFunctionAPI
from ray.rllib.core.rl_module.torch import TorchRLModule
from torch import nn

from recoworld.rl.common.plackett_luce import PlackettLuce, plackett_luce
from recoworld.rl.common.slate_inputs import SlateInputs, candidate_scores, mlp


class SlateScoringModule(TorchRLModule, ValueFunctionAPI):
    """Shared candidate scorer + context value head (see module docstring)."""

    def setup(self) -> None:
        obs = self.observation_space
        act = self.action_space
        if not isinstance(act, gym.spaces.MultiDiscrete):
            raise ValueError(f"SlateScoringModule needs a MultiDiscrete slate space, got {act}")
        cfg = self.model_config or {}
        self.slate_size = int(cfg.get("slate_size", len(act.nvec)))
        self.inputs = SlateInputs.from_space(obs, bool(cfg.get("relative_features", False)))
        self.scorer = mlp([self.inputs.scorer_dim, *cfg.get("hidden", [128, 128])], 1)
        # linear path on the candidate's own features: "rank by feature j" is one weight
        # (not on the relative ones: a per-row shift leaves the Plackett-Luce slate unchanged)
        self.linear = (nn.Linear(self.inputs.item_dim, 1, bias=False)
                       if cfg.get("linear_path", False) else None)  # fmt: skip
        if self.linear is not None:
            nn.init.zeros_(self.linear.weight)
        self.value_scale = float(cfg.get("value_scale", 1.0))
        if not self.inference_only:
            self.value = mlp([self.inputs.context_dim, *cfg.get("value_hidden", [128, 128])], 1)
        self.action_dist_cls = plackett_luce(self.slate_size)

    # ------------------------------------------------------------------ features
    def _context(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.inputs.context(obs)

    def scores(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """[B, M] candidate scores (the Plackett-Luce logits)."""
        return candidate_scores(self.inputs, self.scorer, self.linear, obs)

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

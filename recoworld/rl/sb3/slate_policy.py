"""``SlatePolicy``: a Stable-Baselines3 actor-critic policy that scores every candidate with
one shared network and draws a Plackett-Luce slate, for PPO and A2C on any RecoWorld env.

SB3's ``MultiInputPolicy`` flattens the M x d candidate features into one vector and puts an
independent categorical over the M positions on each of the k slots: it must learn "this
candidate looks good" separately for every position and slot, and its slots can repeat a
candidate. ``SlatePolicy`` is the RLlib slate module's design (``recoworld.rl.common``) in
SB3's API:

- actor: s_i = MLP(inputs_i) + w . item_i for every candidate i, the same network for all
  (``recoworld.rl.common.slate_inputs``: context, candidate features, instruction and
  history matches, features relative to the slate's mean);
- action distribution: Plackett-Luce over the scores (``SlateDistribution``): sampling is
  Gumbel-top-k (k distinct candidates), ``deterministic=True`` is the top k, the
  log-probability is exact; the entropy is the per-position proxy of
  ``recoworld.rl.common.plackett_luce_ops``;
- critic: an MLP over the context (user, history, instruction).

Use it as any SB3 policy class, with the ``"features"`` (default) or ``"features+ids"``
observation views (ids are ignored)::

    from stable_baselines3 import PPO
    from recoworld.rl.sb3 import SlatePolicy
    model = PPO(SlatePolicy, make_vec_env("recoworld/MovieLens-v0", n_envs=8))

``policy_kwargs``: ``hidden`` (scorer widths, default [64, 64]), ``value_hidden`` (critic
widths, default [64, 64]), ``relative_features`` and ``linear_path`` (default True, as
``recoworld.rl.common.config.ModelSettings``). SB3's orthogonal initialisation is off by
default (``ortho_init=False``): the linear path starts at zero, so the first slates are
uniform Plackett-Luce draws. Needs ``torch`` and ``stable-baselines3`` (the ``clients``
extra), not Ray.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.distributions import Distribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from recoworld.rl.common import plackett_luce_ops as ops
from recoworld.rl.common.slate_inputs import SlateInputs, candidate_scores, mlp


class SlateDistribution(Distribution):
    """SB3 ``Distribution`` over ordered slates of ``k`` distinct candidates (Plackett-Luce
    over the actor's [B, M] scores)."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = int(k)
        self.logits: torch.Tensor | None = None

    def proba_distribution_net(self, *args: Any, **kwargs: Any) -> nn.Module:
        return nn.Identity()  # the actor outputs the scores themselves

    def proba_distribution(self, logits: torch.Tensor) -> SlateDistribution:
        if self.k > logits.shape[-1]:
            raise ValueError(f"slate size {self.k} exceeds the {logits.shape[-1]} candidates")
        self.logits = logits
        return self

    def _scores(self) -> torch.Tensor:
        if self.logits is None:
            raise RuntimeError("SlateDistribution used before proba_distribution(logits)")
        return self.logits

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        return ops.log_prob(self._scores(), actions, self.k)

    def entropy(self) -> torch.Tensor:
        return ops.entropy(self._scores(), self.k)

    def sample(self) -> torch.Tensor:
        return ops.sample(self._scores(), self.k)

    def mode(self) -> torch.Tensor:
        return ops.greedy(self._scores(), self.k)

    def actions_from_params(
        self, logits: torch.Tensor, deterministic: bool = False
    ) -> torch.Tensor:
        self.proba_distribution(logits)
        return self.get_actions(deterministic=deterministic)

    def log_prob_from_params(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        actions = self.actions_from_params(logits)
        return actions, self.log_prob(actions)


class ObservationDict(BaseFeaturesExtractor):
    """Hands the (preprocessed) observation dict through unchanged: the slate network reads
    the keys itself. ``features_dim`` is nominal (SB3 requires one)."""

    def __init__(self, observation_space: gym.spaces.Dict) -> None:
        super().__init__(observation_space, features_dim=1)

    def forward(self, observations: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:  # type: ignore[override]
        return observations


class SlateNetwork(nn.Module):
    """The actor's candidate scores and the critic's latent (SB3's ``mlp_extractor`` slot):
    ``forward_actor`` -> [B, M] scores, ``forward_critic`` -> [B, latent_dim_vf]."""

    def __init__(
        self,
        observation_space: gym.spaces.Dict,
        hidden: list[int],
        value_hidden: list[int],
        relative_features: bool,
        linear_path: bool,
    ) -> None:
        super().__init__()
        self.inputs = SlateInputs.from_space(observation_space, relative_features)
        self.scorer = mlp([self.inputs.scorer_dim, *hidden], 1)
        self.linear = nn.Linear(self.inputs.item_dim, 1, bias=False) if linear_path else None
        if self.linear is not None:
            nn.init.zeros_(self.linear.weight)
        layers: list[nn.Module] = []
        for a, b in zip([self.inputs.context_dim, *value_hidden], value_hidden, strict=False):
            layers += [nn.Linear(a, b), nn.Tanh()]
        self.critic = nn.Sequential(*layers)
        self.latent_dim_pi = int(observation_space["candidates"].shape[0])
        self.latent_dim_vf = value_hidden[-1] if value_hidden else self.inputs.context_dim

    def forward_actor(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        return candidate_scores(self.inputs, self.scorer, self.linear, features)

    def forward_critic(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.critic(self.inputs.context(features))

    def forward(self, features: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_actor(features), self.forward_critic(features)


class SlatePolicy(ActorCriticPolicy):
    """Shared candidate scorer + Plackett-Luce slate + context critic (module docstring)."""

    def __init__(
        self,
        observation_space: gym.spaces.Dict,
        action_space: gym.spaces.MultiDiscrete,
        lr_schedule: Any,
        hidden: list[int] | None = None,
        value_hidden: list[int] | None = None,
        relative_features: bool = True,
        linear_path: bool = True,
        ortho_init: bool = False,
        **kwargs: Any,
    ) -> None:
        if (
            not isinstance(action_space, gym.spaces.MultiDiscrete)
            or len(set(action_space.nvec.reshape(-1).tolist())) != 1
        ):
            raise ValueError(
                f"SlatePolicy needs a MultiDiscrete([M] * k) slate action space, got {action_space}"
            )
        if not isinstance(observation_space, gym.spaces.Dict):
            raise ValueError(
                "SlatePolicy reads the observation dict (the 'features' or 'features+ids' "
                f"view), got {observation_space}; the 'flat' view is for MlpPolicy"
            )
        self.slate_size = int(action_space.shape[0])
        self.net_settings = {
            "hidden": list(hidden or [64, 64]),
            "value_hidden": list(value_hidden or [64, 64]),
            "relative_features": relative_features,
            "linear_path": linear_path,
        }
        kwargs.setdefault("features_extractor_class", ObservationDict)
        kwargs.setdefault("share_features_extractor", True)
        super().__init__(observation_space, action_space, lr_schedule, ortho_init=ortho_init,
                         **kwargs)  # fmt: skip

    def _build_mlp_extractor(self) -> None:
        self.mlp_extractor = SlateNetwork(self.observation_space, **self.net_settings)  # type: ignore[arg-type]

    def _build(self, lr_schedule: Any) -> None:
        self._build_mlp_extractor()
        self.action_dist = SlateDistribution(self.slate_size)
        self.action_net = self.action_dist.proba_distribution_net()
        self.value_net = nn.Linear(self.mlp_extractor.latent_dim_vf, 1)
        if self.ortho_init:
            net = self.mlp_extractor
            gains = ((net.scorer, 2**0.5), (net.critic, 2**0.5), (self.value_net, 1.0))
            for module, gain in gains:
                module.apply(lambda m, g=gain: self.init_weights(m, gain=g))
        self.optimizer = self.optimizer_class(  # type: ignore[call-arg]
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )

    def _get_action_dist_from_latent(self, latent_pi: torch.Tensor) -> Distribution:
        return self.action_dist.proba_distribution(self.action_net(latent_pi))

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(self.net_settings)
        return data

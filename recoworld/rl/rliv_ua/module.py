"""RLIV-UA's RLModule and Learner: multi-task pair critics next to a PPO slate actor.

``RLIVUAModule`` extends the slate module (``slate_module.SlateScoringModule``: the PPO
actor's per-candidate scorer and the user-level value head stay as they are) with the
user-author critics:

- a shared encoder over one pair input x = [user context; author embedding; pair history
  (follows the creator, clicks on the creator / 5); item features; has-item flag]. The
  author embedding is learned per creator (``item_creator`` maps catalog items to creators);
  the pair history is what the observation shows of the pair. The *item-free* pair state
  (item features zeroed, flag 0) is the next state under ASA, where the adjacent request
  need not show the author;
- one critic head per signal, densest first: Q_click, Q_follow, Q_gift. With
  ``conditioning`` each head also reads the head before it (Q_follow sees Q_click, Q_gift
  sees Q_follow; detached, so each TD loss trains its own head and the shared encoder);
- auxiliary logits (click, follow, gift) on the encoder for the supervised BCE task.

Candidate scores (the Plackett-Luce logits of the slate; greedy top-k at inference):

    s_i = actor_i + critic_scale * norm(sum_h w_h Q_h(x_i))         (Q detached here)

where ``critic_norm="slate"`` (the default) standardises the weighted critic sum over the
request's M candidates (zero mean, unit spread), so ``critic_scale`` is in logits per
standard deviation of the critics' ranking; ``"none"`` adds it raw (model configs without
the key, i.e. older checkpoints, load as ``"none"``). Raw, the learned Q of gifts and follows
reached several logits and swamped the actor (Creators-v0: lower slate entropy, RLIV-UA
below PPO and LinUCB; docs/results/benchmark.md).

The slate policy softmax(actor + beta * Q) is the one that maximises beta * E[sum_h w_h
Q_h] with a KL penalty towards the PPO actor (which keeps optimising the user's own return:
engagement and retention). ``critic_scale = 0`` is plain PPO with the same actor.

``RLIVUATorchLearner`` (a ``PPOTorchLearner``) adds, per module, to PPO's loss on the same
batch: one TD loss per head on the SCRI pair transitions that ``recoworld.rl.rliv_ua.scri``'s
connector put into the batch, Q_h(x_t) and Q_h(x_t without item) both regressed on
y_h = r_h + gamma_h (1 - done) Q_h(x') (semi-gradient: no gradient through the target),
and the auxiliary BCE of the encoder's logits on r (the pair's click / follow / gift at t).
Settings come from ``AlgorithmConfig.learner_config_dict["rliv_ua"]``.

``model_config``: the slate module's (``hidden``, ``value_hidden``) plus ``item_creator``
(list: creator of each catalog item), ``n_creators``, ``critic_hidden``, ``author_dim``,
``head_weights`` ({signal: w}), ``critic_scale``, ``critic_norm``, ``conditioning``.
"""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.core.columns import Columns
from torch import nn
from torch.nn import functional as F

from recoworld.rl.common.slate_inputs import mlp
from recoworld.rl.common.slate_module import SlateScoringModule
from recoworld.rl.rliv_ua.scri import SIGNALS, pair_columns


class RLIVUAModule(SlateScoringModule):
    """The slate actor plus the multi-task user-author critics (see module docstring)."""

    def setup(self) -> None:
        super().setup()
        cfg = self.model_config or {}
        if "item_creator" not in cfg:
            raise ValueError("RLIVUAModule: model_config needs 'item_creator' (item -> creator)")
        item_creator = torch.as_tensor(cfg["item_creator"], dtype=torch.long)
        n_creators = int(cfg.get("n_creators", int(item_creator.max()) + 1))
        if item_creator.min() < 0 or item_creator.max() >= n_creators:
            raise ValueError(f"item_creator: creator indices must lie in [0, {n_creators})")
        self.register_buffer("item_creator", item_creator, persistent=False)
        obs = self.observation_space
        self.candidate_dim = int(obs["candidates"].shape[-1])
        self.follow_col, self.clicks_col = pair_columns(self.candidate_dim)
        self.ctx_dim = sum(int(obs[key].shape[0]) for key in ("user", "history", "instruction",
                                                               "counters"))  # fmt: skip
        weights = dict(cfg.get("head_weights", {"click": 1.0, "follow": 3.0, "gift": 3.0}))
        unknown = set(weights) - set(SIGNALS)
        if unknown:
            raise ValueError(f"head_weights: unknown heads {sorted(unknown)}; known {SIGNALS}")
        w = torch.tensor([float(weights.get(s, 0.0)) for s in SIGNALS])
        self.register_buffer("head_weights", w, persistent=False)
        self.critic_scale = float(cfg.get("critic_scale", 1.0))
        # older checkpoints (no critic_norm in their model_config) keep the raw critic sum
        self.critic_norm = str(cfg.get("critic_norm", "none"))
        if self.critic_norm not in ("slate", "none"):
            raise ValueError(f"critic_norm: {self.critic_norm!r} is not 'slate' or 'none'")
        self.conditioning = bool(cfg.get("conditioning", True))
        hidden = list(cfg.get("critic_hidden", [64, 64]))
        self.author = nn.Embedding(n_creators, int(cfg.get("author_dim", 8)))
        x_dim = self.ctx_dim + self.author.embedding_dim + 2 + self.candidate_dim + 1
        layers: list[nn.Module] = []
        for a, b in zip([x_dim, *hidden[:-1]], hidden, strict=True):
            layers += [nn.Linear(a, b), nn.Tanh()]
        self.encoder = nn.Sequential(*layers)
        h = hidden[-1]
        extra = 1 if self.conditioning else 0
        self.heads = nn.ModuleList([mlp([h + (extra if i else 0), h // 2], 1)
                                    for i in range(len(SIGNALS))])  # fmt: skip
        self.aux = nn.Linear(h, len(SIGNALS))

    # ------------------------------------------------------------------ critic
    def pair_input(
        self,
        user: torch.Tensor,
        history: torch.Tensor,
        instruction: torch.Tensor,
        counters: torch.Tensor,
        authors: torch.Tensor,
        pair: torch.Tensor,
        item: torch.Tensor,
        has_item: torch.Tensor,
    ) -> torch.Tensor:
        """[..., x] pair inputs: context parts [B, .] broadcast over the trailing pair axis
        of ``authors`` [B, n], ``pair`` [B, n, 2], ``item`` [B, n, d], ``has_item`` [B, n]."""
        if user.dim() == authors.dim() + 1:  # already per pair (the connector's next states)
            ctx = self._context({"user": user, "history": history, "instruction": instruction,
                                 "counters": counters})  # fmt: skip
        else:
            ctx = self._context({"user": user, "history": history, "instruction": instruction,
                                 "counters": counters})[..., None, :]  # fmt: skip
            ctx = ctx.expand(*authors.shape, ctx.shape[-1])
        has = has_item.float()[..., None]
        return torch.cat([ctx, self.author(authors.long()), pair.float(), item.float() * has,
                          has], dim=-1)  # fmt: skip

    def critic(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(Q [..., 3] click/follow/gift, auxiliary logits [..., 3]) of pair inputs x."""
        z = self.encoder(x)
        qs: list[torch.Tensor] = []
        for i, head in enumerate(self.heads):
            inp = torch.cat([z, qs[-1].detach()], dim=-1) if (self.conditioning and i) else z
            qs.append(head(inp))
        return torch.cat(qs, dim=-1), self.aux(z)

    def candidate_inputs(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """[B, M, x] pair inputs of every candidate (its author, pair history, item)."""
        cands = obs["candidates"].float()
        authors = self.item_creator[obs["candidate_ids"].long()]
        pair = cands[..., [self.follow_col, self.clicks_col]]
        ones = torch.ones(cands.shape[:-1], device=cands.device)
        return self.pair_input(obs["user"], obs["history"], obs["instruction"], obs["counters"],
                               authors, pair, cands, ones)  # fmt: skip

    def critic_scores(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """[B, M] sum_h w_h Q_h of every candidate."""
        q, _ = self.critic(self.candidate_inputs(obs))
        return (q * self.head_weights).sum(-1)

    def scores(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """[B, M] slate logits: actor + critic_scale * weighted critic heads (detached;
        with ``critic_norm="slate"`` standardised over each row's candidates)."""
        actor = super().scores(obs)
        if self.critic_scale == 0.0:
            return actor
        critic = self.critic_scores(obs).detach()
        if self.critic_norm == "slate":
            centred = critic - critic.mean(dim=-1, keepdim=True)
            critic = centred / (centred.std(dim=-1, keepdim=True) + 1e-6)
        return actor + self.critic_scale * critic


class RLIVUATorchLearner(PPOTorchLearner):
    """PPO's loss plus the per-head TD losses and the auxiliary BCE (module docstring)."""

    def compute_loss_for_module(
        self, *, module_id: str, config: Any, batch: dict[str, Any], fwd_out: dict[str, Any]
    ) -> torch.Tensor:
        total = super().compute_loss_for_module(
            module_id=module_id, config=config, batch=batch, fwd_out=fwd_out
        )
        settings = (config.learner_config_dict or {}).get("rliv_ua", {})
        module: RLIVUAModule = self.module[module_id].unwrapped()
        if "scri_valid" not in batch:
            raise KeyError("RLIV-UA learner: the batch has no scri_* columns (SCRIConnector)")
        valid = batch["scri_valid"].bool()
        if Columns.LOSS_MASK in batch:
            valid = valid & batch[Columns.LOSS_MASK].bool()[:, None]
        n_valid = valid.sum()
        w = valid.float()
        denom = n_valid.clamp(min=1).float()
        obs = batch[Columns.OBS]
        actions = batch[Columns.ACTIONS].long()
        cands = obs["candidates"].float()
        idx = actions[..., None].expand(*actions.shape, cands.shape[-1])
        item = cands.gather(1, idx)  # [B, k, d]
        authors = module.item_creator[obs["candidate_ids"].long().gather(1, actions)]
        pair = item[..., [module.follow_col, module.clicks_col]]
        ones = torch.ones(actions.shape, device=cands.device)
        args = (obs["user"], obs["history"], obs["instruction"], obs["counters"], authors, pair)
        q_item, aux_logits = module.critic(module.pair_input(*args, item, ones))
        q_free, _ = module.critic(module.pair_input(*args, item, torch.zeros_like(ones)))
        with torch.no_grad():
            nxt = module.pair_input(
                batch["scri_next_user"], batch["scri_next_history"],
                batch["scri_next_instruction"], batch["scri_next_counters"], authors,
                batch["scri_next_pair"], batch["scri_next_item"], batch["scri_next_has_item"],
            )  # fmt: skip
            q_next, _ = module.critic(nxt)
            gammas = settings.get("gammas", {})
            gamma = torch.tensor([float(gammas.get(s, 0.9)) for s in SIGNALS], device=cands.device)
            r = batch["scri_rewards"].float()
            target = r + gamma * (1.0 - batch["scri_done"].float())[..., None] * q_next
        td = (((q_item - target) ** 2 + (q_free - target) ** 2) * w[..., None]).sum((0, 1))
        td = td / denom  # [3] per head
        bce = F.binary_cross_entropy_with_logits(aux_logits, r, reduction="none")
        aux = (bce * w[..., None]).sum() / denom
        td_weight = float(settings.get("td_weight", 1.0))
        aux_weight = float(settings.get("aux_weight", 0.5))
        total = total + td_weight * td.sum() + aux_weight * aux
        stats = {f"td_loss_{s}": td[i] for i, s in enumerate(SIGNALS)}
        stats.update({f"q_mean_{s}": (q_item[..., i] * w).sum() / denom
                      for i, s in enumerate(SIGNALS)})  # fmt: skip
        stats.update(aux_loss=aux, scri_samples=n_valid.float())
        self.metrics.log_dict(stats, key=module_id, window=1)
        return total

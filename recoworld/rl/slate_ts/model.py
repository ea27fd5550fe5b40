"""The Bayesian slate model of slate Thompson sampling (Eide et al. 2021), in plain torch.

This module owns the model, its variational posterior, the ELBO and the three ways to pick
a slate from it (greedy, plain Thompson, in-slate Thompson). It knows nothing of RLlib or
of the env: ``recoworld.rl.slate_ts.algorithm`` wraps it in an RLModule/Learner/Algorithm and
``recoworld.rl.slate_ts.offline`` fits it on logged slates.

## Model (generative)

- Item groups g(i) (genre / topic / semantic-ID prefix) with a hierarchical prior:
  group mean m_g ~ N(0, s_m^2 I), group log-scale log s_g ~ N(log s_0, s_l^2) per dimension,
  item vector v_i ~ N(m_{g(i)}, diag(s_{g(i)}^2)) in R^D.
- User state: a GRU (no biases, as in the paper) over the vectors of the user's clicked
  items, oldest first, h_0 = 0; steps without a click do not enter the sequence, so the state
  is held on no-click steps; readout z = W_z h (D x H). GRU and readout weights ~ N(0, s_w^2).
- Score of item i: ``distance``: -a * ||z - v_i|| (the paper's scaled negative Euclidean
  distance), or ``dot``: a * <z, v_i>; a ~ N(1, s_a^2) enters as |a|.
- No click: an extra option with score b_L, where L is the number of items shown
  (b ~ N(0, s_b^2) per length 0..max_slate).
- Likelihood of one step: ``slate``: a categorical over {no click} + the items shown (the
  paper's choice); ``all_items``: a categorical over {no click} + every catalog item (the
  alternative that ignores what was shown). A step with several clicks contributes one
  categorical term per click (same history and slate), a step without clicks one "no click"
  term.

## Posterior

Mean-field Gaussian q over every latent (item vectors, group means and log-scales, GRU and
readout weights, score scale, no-click biases): a location and softplus-parameterised scale
per coordinate. The ELBO is

    ELBO = sum_n E_q[log p(y_n | theta)] - KL(q || p)

estimated with one reparameterised sample per minibatch (likelihood rescaled by
data_size / batch_size). The KL terms with fixed Gaussian priors are analytic; the item
vectors' KL is analytic given a reparameterised sample of their group's mean and scale
(so only the group level is Monte-Carlo). ``loss`` returns -ELBO / data_size.

Item vectors start at their prior scale (s_0): an item nobody has seen keeps a wide
posterior, which is what Thompson sampling explores; network weights start nearly
deterministic (scale ``init_weight_scale``), as usual for Bayes-by-backprop.

## Slates

``thompson_slates`` takes S posterior samples of the candidate scores [S, B, M]:
- ``in_slate`` (S = k): each sample ranks the candidates; the rankings are interleaved rank
  by rank (sample 1's best, sample 2's best, ..., sample 1's second, ...) and de-duplicated
  into k slots, so each slot comes from a different posterior draw;
- ``plain`` (S = 1): one posterior draw per slate, its top k;
- ``greedy``: the posterior mean's top k.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Score = Literal["distance", "dot"]
Likelihood = Literal["slate", "all_items"]
Exploration = Literal["in_slate", "plain", "greedy"]
MAX_LOGIT = 30.0


@dataclass(frozen=True)
class ModelSpec:
    """Sizes and priors of ``SlateTSModel`` (JSON-serialisable: RLlib stores it in the
    module's ``model_config``)."""

    n_items: int
    item_group: tuple[int, ...]
    item_dim: int = 16
    hidden: int = 16
    max_slate: int = 10
    score: Score = "distance"
    likelihood: Likelihood = "slate"
    prior_group_mean_scale: float = 0.5
    prior_item_scale: float = 0.2
    prior_log_scale_scale: float = 0.5
    prior_weight_scale: float = 1.0
    prior_score_scale: float = 1.0
    prior_bias_scale: float = 2.0
    init_weight_scale: float = 0.01

    def __post_init__(self) -> None:
        if self.n_items < 1:
            raise ValueError(f"n_items must be >= 1, got {self.n_items}")
        if len(self.item_group) != self.n_items:
            raise ValueError(
                f"item_group: one group per item expected ({self.n_items}), got "
                f"{len(self.item_group)}"
            )
        if min(self.item_group) < 0:
            raise ValueError("item_group: group ids must be >= 0")
        if self.score not in ("distance", "dot"):
            raise ValueError(f"score: 'distance' or 'dot', got {self.score!r}")
        if self.likelihood not in ("slate", "all_items"):
            raise ValueError(f"likelihood: 'slate' or 'all_items', got {self.likelihood!r}")
        for name in ("item_dim", "hidden", "max_slate"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def n_groups(self) -> int:
        return max(self.item_group) + 1

    def to_dict(self) -> dict:
        d = asdict(self)
        d["item_group"] = list(self.item_group)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelSpec:
        d = dict(d)
        d["item_group"] = tuple(int(g) for g in d["item_group"])
        return cls(**d)


def _inv_softplus(x: float) -> float:
    return x + math.log(-math.expm1(-x))


class GaussianParam(nn.Module):
    """A mean-field Gaussian variational factor q = N(loc, softplus(rho)^2) of one tensor."""

    def __init__(self, loc: torch.Tensor, scale: float) -> None:
        super().__init__()
        self.loc = nn.Parameter(loc)
        self.rho = nn.Parameter(torch.full_like(loc, _inv_softplus(scale)))

    @property
    def scale(self) -> torch.Tensor:
        return F.softplus(self.rho) + 1e-5

    def sample(self, n: int | None = None, generator: torch.Generator | None = None):
        """One reparameterised draw (``n`` None) or ``n`` draws stacked on a new axis 0."""
        shape = self.loc.shape if n is None else (n, *self.loc.shape)
        eps = torch.randn(shape, generator=generator, dtype=self.loc.dtype)
        return self.loc + self.scale * eps

    def kl_normal(self, prior_loc: float | torch.Tensor, prior_scale: float) -> torch.Tensor:
        """KL(q || N(prior_loc, prior_scale^2)), summed."""
        s = self.scale
        return (
            math.log(prior_scale) - torch.log(s) + (s**2 + (self.loc - prior_loc) ** 2)
            / (2 * prior_scale**2) - 0.5
        ).sum()  # fmt: skip


@dataclass
class Params:
    """One set of model parameters: a posterior draw (leading sample axis S) or the mean."""

    w_i: torch.Tensor  # [S, 3H, D]
    w_h: torch.Tensor  # [S, 3H, H]
    w_z: torch.Tensor  # [S, D, H]
    mult: torch.Tensor  # [S]
    bias: torch.Tensor  # [S, max_slate + 1]
    items: torch.Tensor  # [S, N, D]


class SlateTSModel(nn.Module):
    """Bayesian GRU slate model with its variational posterior (see module docstring)."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        d, h, g = spec.item_dim, spec.hidden, spec.n_groups
        self.register_buffer("item_group", torch.tensor(spec.item_group, dtype=torch.long))
        gen = torch.Generator().manual_seed(0)
        self.group_mean = GaussianParam(
            torch.randn(g, d, generator=gen) * spec.prior_group_mean_scale, 0.05
        )
        self.group_log_scale = GaussianParam(
            torch.full((g, d), math.log(spec.prior_item_scale)), 0.05
        )
        self.items = GaussianParam(
            self.group_mean.loc.detach()[self.item_group].clone()
            + torch.randn(spec.n_items, d, generator=gen) * spec.prior_item_scale,
            spec.prior_item_scale,
        )
        w = spec.init_weight_scale
        self.w_i = GaussianParam(torch.randn(3 * h, d, generator=gen) / math.sqrt(d), w)
        self.w_h = GaussianParam(torch.randn(3 * h, h, generator=gen) / math.sqrt(h), w)
        self.w_z = GaussianParam(torch.randn(d, h, generator=gen) / math.sqrt(h), w)
        self.mult = GaussianParam(torch.ones(()), w)
        self.bias = GaussianParam(torch.zeros(spec.max_slate + 1), w)

    # ------------------------------------------------------------------ parameters
    def draw(self, n: int, generator: torch.Generator | None = None) -> Params:
        """``n`` joint posterior draws of every latent the likelihood reads (all item
        vectors included, so an item has one vector per draw wherever it appears)."""
        return Params(
            w_i=self.w_i.sample(n, generator), w_h=self.w_h.sample(n, generator),
            w_z=self.w_z.sample(n, generator), mult=self.mult.sample(n, generator),
            bias=self.bias.sample(n, generator), items=self.items.sample(n, generator),
        )  # fmt: skip

    def mean_params(self) -> Params:
        """The posterior mean as a single 'draw' (S = 1)."""
        return Params(
            w_i=self.w_i.loc[None], w_h=self.w_h.loc[None], w_z=self.w_z.loc[None],
            mult=self.mult.loc[None], bias=self.bias.loc[None], items=self.items.loc[None],
        )  # fmt: skip

    @staticmethod
    def item_vectors(p: Params, idx: torch.Tensor) -> torch.Tensor:
        """[S, *idx.shape, D] vectors of catalog items ``idx`` (>= 0) under draw(s) ``p``."""
        return p.items[:, idx]

    # ------------------------------------------------------------------ user state
    def user_state(self, p: Params, hist_vec: torch.Tensor, hist_mask: torch.Tensor):
        """z [S, B, D] from the clicked items' vectors ``hist_vec`` [S, B, T, D], oldest
        first, with ``hist_mask`` [B, T] (False: padding, the state is held)."""
        s, b, t, _ = hist_vec.shape
        hdim = self.spec.hidden
        h = hist_vec.new_zeros(s, b, hdim)
        gi_all = torch.einsum("sbtd,sgd->sbtg", hist_vec, p.w_i)  # [S, B, T, 3H]
        for step in range(t):
            gi = gi_all[:, :, step]
            gh = torch.einsum("sbh,sgh->sbg", h, p.w_h)
            r = torch.sigmoid(gi[..., :hdim] + gh[..., :hdim])
            u = torch.sigmoid(gi[..., hdim : 2 * hdim] + gh[..., hdim : 2 * hdim])
            n = torch.tanh(gi[..., 2 * hdim :] + r * gh[..., 2 * hdim :])
            new = (1 - u) * n + u * h
            h = torch.where(hist_mask[None, :, step, None], new, h)
        return torch.einsum("sbh,sdh->sbd", h, p.w_z)

    def scores(self, p: Params, z: torch.Tensor, vec: torch.Tensor) -> torch.Tensor:
        """[S, B, M] scores of item vectors ``vec`` [S, B, M, D] (or [S, 1, M, D]) for
        user states ``z`` [S, B, D]."""
        a = p.mult.abs()[:, None, None]
        if self.spec.score == "dot":
            raw = torch.einsum("sbd,sbmd->sbm", z, vec.expand(-1, z.shape[1], -1, -1))
        else:
            raw = -torch.sqrt(((z[:, :, None, :] - vec) ** 2).sum(-1) + 1e-6)
        return (a * raw).clamp(-MAX_LOGIT, MAX_LOGIT)

    def _history(self, p: Params, hist: torch.Tensor) -> torch.Tensor:
        """z [S, B, D] from ``hist`` [B, H]: catalog indices of clicked items, newest first,
        -1 padded (the observation's ``recent_ids``)."""
        hist = hist.long().flip(-1)  # oldest first
        mask = hist >= 0
        vec = self.item_vectors(p, hist.clamp_min(0))
        return self.user_state(p, vec, mask)

    def candidate_scores(self, p: Params, hist: torch.Tensor, cands: torch.Tensor) -> torch.Tensor:
        """[S, B, M] scores of candidates ``cands`` [B, M] (catalog indices) for users with
        click histories ``hist`` [B, H] under draws ``p``."""
        z = self._history(p, hist)
        return self.scores(p, z, self.item_vectors(p, cands.long()))

    # ------------------------------------------------------------------ ELBO
    def log_likelihood(
        self,
        p: Params,
        hist: torch.Tensor,
        slate: torch.Tensor,
        shown: torch.Tensor,
        target: torch.Tensor,
    ) -> torch.Tensor:
        """[S, B] log-probability of the observed choices. ``slate`` [B, k] catalog indices
        of the items shown, ``shown`` [B, k] which slots really showed an item, ``target``
        [B]: 0 = no click, j + 1 = a click on slot j."""
        z = self._history(p, hist)
        shown = shown.bool()
        length = shown.sum(-1).clamp(max=self.spec.max_slate)  # [B]
        bias = p.bias[:, length]  # [S, B]
        target = target.long()
        if self.spec.likelihood == "slate":
            vec = self.item_vectors(p, slate.long().clamp_min(0))
            sc = self.scores(p, z, vec).masked_fill(~shown[None], -1e9)
            logits = torch.cat([bias[..., None], sc], dim=-1)
            idx = target
        else:
            sc = self.scores(p, z, p.items[:, None])  # [S, B, N]
            logits = torch.cat([bias[..., None], sc], dim=-1)
            clicked = slate.long().gather(-1, (target - 1).clamp_min(0)[:, None]).squeeze(-1)
            idx = torch.where(target > 0, clicked + 1, torch.zeros_like(target))
        logp = torch.log_softmax(logits, dim=-1)
        return logp.gather(-1, idx[None, :, None].expand(logp.shape[0], -1, 1)).squeeze(-1)

    def kl(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """KL(q || p) of every latent (group level by one reparameterised draw)."""
        sp = self.spec
        kl = self.group_mean.kl_normal(0.0, sp.prior_group_mean_scale)
        kl = kl + self.group_log_scale.kl_normal(
            math.log(sp.prior_item_scale), sp.prior_log_scale_scale
        )
        m = self.group_mean.sample(generator=generator)[self.item_group]  # [N, D]
        log_s = self.group_log_scale.sample(generator=generator)[self.item_group]
        q_s = self.items.scale
        kl = kl + (
            log_s - torch.log(q_s) + (q_s**2 + (self.items.loc - m) ** 2)
            / (2 * torch.exp(2 * log_s)) - 0.5
        ).sum()  # fmt: skip
        for w in (self.w_i, self.w_h, self.w_z):
            kl = kl + w.kl_normal(0.0, sp.prior_weight_scale)
        kl = kl + self.mult.kl_normal(1.0, sp.prior_score_scale)
        return kl + self.bias.kl_normal(0.0, sp.prior_bias_scale)

    def loss(
        self,
        batch: dict[str, torch.Tensor],
        data_size: int | float,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """-ELBO / data_size on a minibatch (keys ``hist``, ``slate``, ``shown``,
        ``target``) of a data set of ``data_size`` rows; also the ELBO's parts."""
        n = batch["target"].shape[0]
        if n == 0:
            raise ValueError("loss: empty minibatch")
        p = self.draw(1, generator)
        ll = self.log_likelihood(
            p, batch["hist"], batch["slate"], batch["shown"], batch["target"]
        ).mean()
        kl = self.kl(generator)
        loss = -ll + kl / float(data_size)
        return loss, {"loglik_per_row": ll.detach(), "kl": kl.detach(),
                      "elbo_per_row": (-loss).detach()}  # fmt: skip

    @torch.no_grad()
    def elbo(self, batch: dict[str, torch.Tensor], samples: int = 8, seed: int = 0) -> float:
        """ELBO per row of ``batch`` (the whole data set), averaged over ``samples`` draws."""
        gen = torch.Generator().manual_seed(seed)
        n = int(batch["target"].shape[0])
        vals = [-self.loss(batch, n, gen)[0].item() for _ in range(samples)]
        return float(sum(vals) / len(vals))

    # ------------------------------------------------------------------ acting
    @torch.no_grad()
    def select(
        self,
        hist: torch.Tensor,
        cands: torch.Tensor,
        k: int,
        mode: Exploration,
        samples: int | None = None,
        generator: torch.Generator | None = None,
        exclude: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """[B, k] distinct candidate positions for users ``hist`` [B, H] and candidates
        ``cands`` [B, M] (catalog indices). ``exclude`` [B, M] bool marks candidates never
        to show unless there are too few others."""
        if k > cands.shape[-1]:
            raise ValueError(f"slate size {k} exceeds the {cands.shape[-1]} candidates")
        if mode == "greedy":
            p = self.mean_params()
        elif mode == "plain":
            p = self.draw(1, generator)
        elif mode == "in_slate":
            p = self.draw(samples or k, generator)
        else:
            raise ValueError(f"exploration mode: in_slate, plain or greedy; got {mode!r}")
        sc = self.candidate_scores(p, hist, cands)
        if exclude is not None:
            sc = sc - 1e4 * exclude[None].float()
        return thompson_slates(sc, k)


def thompson_slates(scores: torch.Tensor, k: int) -> torch.Tensor:
    """[B, k] slates from S score draws [S, B, M]: each draw's top k, interleaved rank by
    rank (draw 1's best, draw 2's best, ..., draw 1's second, ...), de-duplicated, first k
    kept. S = 1 is the plain top k."""
    s, b, m = scores.shape
    if k > m:
        raise ValueError(f"slate size {k} exceeds the {m} candidates")
    top = scores.topk(k, dim=-1).indices  # [S, B, k]
    if s == 1:
        return top[0]
    inter = top.permute(1, 2, 0).reshape(b, k * s)  # rank-major
    n = inter.shape[1]
    earlier = torch.ones(n, n, dtype=torch.bool).tril(-1)
    dup = ((inter[:, :, None] == inter[:, None, :]) & earlier).any(-1)
    pos = torch.arange(n).expand(b, n)
    order = torch.where(dup, pos + n, pos).argsort(dim=-1)[:, :k]
    return inter.gather(1, order)

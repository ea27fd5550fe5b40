"""Plackett-Luce slate math in plain torch: sampling, log-probability, entropy proxy, KL.

A slate (a_1, ..., a_k) of k distinct items out of M is drawn from M scores s by picking a_1
with probability softmax(s)[a_1], then a_2 among the remaining items, and so on:

    log p(a) = sum_j [ s_{a_j} - logsumexp_{i not in {a_1..a_{j-1}}} s_i ]

``sample`` uses the Gumbel-top-k trick (the k largest of s_i + Gumbel noise, in order), which
draws exactly this distribution and never repeats an item; ``log_prob`` is exact. A
Plackett-Luce slate's entropy has no closed form: ``entropy`` is the sum over positions of
the categorical entropy of each choice along the greedy order, a smooth proxy that equals
the exact entropy for k = 1; ``kl`` is the matching sum of per-position categorical KLs.

Both slate distributions are built on these functions: RLlib's
(``recoworld.rl.common.plackett_luce``) and Stable-Baselines3's
(``recoworld.rl.sb3.slate_policy``). No Ray, no SB3 here.
"""

from __future__ import annotations

import torch

NEG_INF = -1e9


def greedy(logits: torch.Tensor, k: int) -> torch.Tensor:
    """[..., k] the k highest-scoring items, best first (the mode)."""
    return torch.topk(logits, k, dim=-1).indices


def sample(logits: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """[..., k] one Plackett-Luce slate per row (Gumbel-top-k; no gradient)."""
    u = torch.rand(logits.shape, generator=generator, dtype=logits.dtype, device=logits.device)
    gumbel = -torch.log(-torch.log(u.clamp_(1e-10, 1.0 - 1e-7)))
    return torch.topk(logits.detach() + gumbel, k, dim=-1).indices


def masked_logits(logits: torch.Tensor, order: torch.Tensor, k: int) -> list[torch.Tensor]:
    """Per position j < k: ``logits`` with the items ``order`` chose before j masked out."""
    out = []
    masked = logits
    for j in range(k):
        out.append(masked)
        if j + 1 < k:
            masked = masked.scatter(-1, order[..., j : j + 1], NEG_INF)
    return out


def log_prob(logits: torch.Tensor, slate: torch.Tensor, k: int) -> torch.Tensor:
    """[...] exact log-probability of each row's ordered ``slate`` ([..., k] indices)."""
    slate = slate.long()
    total = torch.zeros(logits.shape[:-1], dtype=logits.dtype, device=logits.device)
    for j, masked in enumerate(masked_logits(logits, slate, k)):
        chosen = masked.gather(-1, slate[..., j : j + 1]).squeeze(-1)
        total = total + chosen - torch.logsumexp(masked, dim=-1)
    return total


def entropy(logits: torch.Tensor, k: int) -> torch.Tensor:
    """[...] the entropy proxy (sum of per-position entropies along the greedy order)."""
    total = torch.zeros(logits.shape[:-1], dtype=logits.dtype, device=logits.device)
    for masked in masked_logits(logits, greedy(logits, k), k):
        logp = torch.log_softmax(masked, dim=-1)
        total = total - (logp.exp() * logp).sum(-1)
    return total


def kl(logits: torch.Tensor, other: torch.Tensor, k: int) -> torch.Tensor:
    """[...] sum of per-position categorical KL(logits || other) along ``logits``' greedy
    order."""
    order = greedy(logits, k)
    total = torch.zeros(logits.shape[:-1], dtype=logits.dtype, device=logits.device)
    mine, theirs = masked_logits(logits, order, k), masked_logits(other, order, k)
    for a, b in zip(mine, theirs, strict=True):
        pa, pb = torch.log_softmax(a, dim=-1), torch.log_softmax(b, dim=-1)
        total = total + (pa.exp() * (pa - pb)).sum(-1)
    return total

"""The Plackett-Luce slate distribution: exact probabilities, sampling, no duplicates."""

from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np
import pytest
import torch

from recoworld.rl.common.plackett_luce import GreedySlate, PlackettLuce, plackett_luce


def test_probabilities_sum_to_one_and_match_sampling():
    torch.manual_seed(0)
    logits = torch.randn(1, 5)
    slates = [list(p) for p in itertools.permutations(range(5), 2)]
    dist = plackett_luce(2).from_logits(logits.expand(len(slates), -1))
    probs = dist.logp(torch.tensor(slates)).exp()
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-5)
    counts = {tuple(s): 0 for s in slates}
    n = 20000
    draws = plackett_luce(2).from_logits(logits.expand(n, -1)).sample()
    for s in draws.tolist():
        counts[tuple(s)] += 1
    for s, p in zip(slates, probs.tolist(), strict=True):
        assert counts[tuple(s)] / n == pytest.approx(p, abs=0.01)


def test_no_duplicates_and_greedy_is_top_k():
    logits = torch.randn(256, 10)
    dist = plackett_luce(4).from_logits(logits)
    sample = dist.sample()
    assert sample.shape == (256, 4)
    assert all(len(set(row)) == 4 for row in sample.tolist())
    greedy = dist.to_deterministic()
    assert isinstance(greedy, GreedySlate)
    assert torch.equal(greedy.sample(), torch.topk(logits, 4).indices)


def test_k1_reduces_to_categorical():
    logits = torch.randn(8, 6)
    dist = plackett_luce(1).from_logits(logits)
    cat = torch.distributions.Categorical(logits=logits)
    a = dist.sample()
    assert torch.allclose(dist.logp(a), cat.log_prob(a[:, 0]), atol=1e-6)
    assert torch.allclose(dist.entropy(), cat.entropy(), atol=1e-6)


def test_kl_and_gradients():
    logits = torch.randn(4, 7, requires_grad=True)
    dist = plackett_luce(3).from_logits(logits)
    assert torch.allclose(dist.kl(plackett_luce(3).from_logits(logits.detach())),
                          torch.zeros(4), atol=1e-6)  # fmt: skip
    other = plackett_luce(3).from_logits(torch.randn(4, 7))
    assert (dist.kl(other) > 0).all()
    dist.logp(dist.sample()).sum().backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_bad_inputs():
    with pytest.raises(ValueError, match="slate size 5 exceeds"):
        PlackettLuce(torch.zeros(2, 3), k=5)
    with pytest.raises(ValueError, match="slate size must be"):
        plackett_luce(0)
    with pytest.raises(TypeError, match="MultiDiscrete"):
        PlackettLuce.required_input_dim(gym.spaces.Discrete(3))
    assert PlackettLuce.required_input_dim(gym.spaces.MultiDiscrete(np.full(3, 20))) == 20

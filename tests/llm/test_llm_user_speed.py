"""What the LLM world sends to the model per step (scripted backends that count calls): a
(persona, item) pair is scored once, users who left send nothing, ``narrate: false`` sends
no generation, and the vLLM scorer only pre-fills prefixes long enough to be cached."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from recoworld.llm.config import LLMConfig
from recoworld.simulators.parametric.persona import personas

from .test_llm_user import ScriptedBackend, model, narration, slate


class CountingBackend(ScriptedBackend):
    """ScriptedBackend that counts scoring calls and the (prefix, continuation) pairs sent."""

    def __init__(self, answer=None) -> None:
        super().__init__(answer)
        self.score_calls = 0
        self.scored: list[tuple[str, str]] = []

    def _continuation_logprobs(self, prefixes, continuations):
        self.score_calls += 1
        self.scored.extend(zip(prefixes, continuations, strict=True))
        return super()._continuation_logprobs(prefixes, continuations)


def tastes(state, catalog) -> list[tuple]:
    return [(p.likes, p.dislikes) for p in personas(state, np.arange(len(state)), catalog)]


def scoring_world(catalog, users: int, slate_len: int, seed: int, **user_config):
    """A counting backend, an LLM user in score mode, ``users`` users and their slates."""
    backend = CountingBackend(narration)
    sim = model(catalog, backend, mode="score", **user_config)
    rng = np.random.default_rng(seed)
    state = sim.sample_users(users, rng)
    return backend, sim, rng, state, slate(state, catalog, slate_len, rng)


def test_second_step_over_same_pairs_makes_no_scoring_calls(small_catalog):
    backend, sim, rng, state, items = scoring_world(small_catalog, 16, 4, 0)
    valid = np.ones_like(items, bool)
    first = sim.respond(state, items, valid, rng)
    assert backend.score_calls == 1  # one batch for all users of the step
    sent = len(backend.scored)
    assert sent == len(set(backend.scored))  # each distinct pair once
    before = tastes(state, small_catalog)
    second = sim.respond(state, items, valid, rng)
    assert tastes(state, small_catalog) == before  # same personas: same prompts
    assert backend.score_calls == 1 and len(backend.scored) == sent  # all from the cache
    np.testing.assert_array_equal(
        first.extra["llm_preference"], second.extra["llm_preference"]
    )  # same scores for the same prompts
    assert sim.scorer.stats["cached"] == 16 * 4 * 2
    # narration: one request per user and step (paraphrases only for users who instruct)
    narrations = [r for r in backend.requests if r.request_id.startswith("llm-user/narrate/")]
    assert len(narrations) == 2 * 16
    others = {r.request_id for r in backend.requests} - {r.request_id for r in narrations}
    assert len(others) == sim.stats["instructions"]  # (and their repairs)
    assert all(i.startswith("hybrid/") for i in others)


def test_users_who_left_send_nothing(small_catalog):
    backend, sim, rng, state, items = scoring_world(small_catalog, 8, 3, 1)
    active = np.arange(8) % 2 == 0
    resp = sim.respond(state, items, np.ones_like(items, bool), rng, active=active)
    titles = {small_catalog.titles[i] for i in items[active].ravel()}
    gone = {small_catalog.titles[i] for i in items[~active].ravel()} - titles
    assert all(not any(c.startswith(t) for t in gone) for _, c in backend.scored)
    assert len(backend.scored) <= int(active.sum()) * 3 * 2
    asked = {r.request_id.split("/")[2] for r in backend.requests}
    assert asked <= {f"row-{b}" for b in np.flatnonzero(active)}  # only active users
    assert not resp.extra["llm_preference"][~active].any()
    assert sim.stats["turns"] == int(active.sum())


def test_narrate_false_sends_no_generation(small_catalog):
    backend, sim, rng, state, items = scoring_world(small_catalog, 4, 3, 2, narrate=False)
    resp = sim.respond(state, items, np.ones_like(items, bool), rng, text="all")
    assert backend.requests == [] and backend.score_calls == 1
    assert all(r for r in resp.reasoning)  # the grounded template text stands


class FakeEngine:
    """Just enough of ``vllm.LLM`` for ``VLLMBackend._continuation_logprobs``: one token per
    character, log-prob -1 everywhere, no prefix cache hits; records each generate call."""

    def __init__(self) -> None:
        self.calls: list[list[list[int]]] = []

    def get_tokenizer(self):
        return SimpleNamespace(encode=lambda text, add_special_tokens=True: [ord(c) for c in text])

    def generate(self, prompts, params, use_tqdm=False):
        ids = [p["prompt_token_ids"] for p in prompts]
        self.calls.append(ids)
        return [
            SimpleNamespace(
                num_cached_tokens=0,
                prompt_logprobs=[None] + [{t: SimpleNamespace(logprob=-1.0)} for t in x[1:]],
            )
            for x in ids
        ]


@pytest.mark.parametrize("block_size, fills", [(32, 0), (4, 1)])
def test_vllm_scoring_fills_only_cacheable_prefixes(block_size, fills):
    pytest.importorskip("vllm")
    from recoworld.llm.vllm_backend import VLLMBackend

    backend = object.__new__(VLLMBackend)  # no engine start: the logic only
    backend.config = LLMConfig(cache=False, vllm={"block_size": block_size})
    backend.engine = FakeEngine()
    out = backend._continuation_logprobs(["You love jazz.\n"] * 2, ["Blue Train", "Kind of Blue"])
    assert len(backend.engine.calls) == fills + 1  # the prefix fill, then the scoring batch
    assert [len(o) for o in out] == [len("Blue Train"), len("Kind of Blue")]
    assert all((o == -1.0).all() for o in out)

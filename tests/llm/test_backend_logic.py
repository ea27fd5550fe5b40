"""Validation, repair, typed errors and caching of the backend base class, driven by a
scripted transport (unit tests of logic; the real engines are tested in the integration
modules)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field

from recoworld.llm import (
    ChatRequest,
    LLMBackend,
    RawCompletion,
    ResponseCache,
    StructuredOutputError,
)
from recoworld.llm.config import LLMConfig


class Review(BaseModel):
    click: bool
    reason: str = Field(max_length=40)


class Scripted(LLMBackend):
    """Answers each request with the next scripted text for its request id."""

    name = "scripted"

    def __init__(self, script: dict[str, list[str]], config: LLMConfig, cache=None) -> None:
        super().__init__(config, cache)
        self.script = {k: list(v) for k, v in script.items()}
        self.calls: list[list[str]] = []
        self.seen_messages: dict[str, list[list[dict[str, str]]]] = {}

    @property
    def model_id(self) -> str:
        return "scripted-model"

    def _complete(self, requests: list[ChatRequest], schema: dict[str, Any] | None):
        self.calls.append([r.request_id for r in requests])
        out = []
        for r in requests:
            self.seen_messages.setdefault(r.request_id, []).append(r.message_dicts())
            out.append(RawCompletion(self.script[r.request_id].pop(0), 10, 5, 0.01, "stop"))
        return out


def _req(rid: str, seed: int | None = None) -> ChatRequest:
    return ChatRequest.of("You are a user.", f"Review item {rid}.", request_id=rid, seed=seed)


GOOD = '{"click": true, "reason": "looks fun"}'


def test_valid_answers_in_one_batched_call():
    backend = Scripted({"a": [GOOD], "b": ['{"click": false, "reason": "meh"}']},
                       LLMConfig(cache=False))  # fmt: skip
    out = backend.generate([_req("a"), _req("b")], Review)
    assert [c.parsed.click for c in out] == [True, False]
    assert backend.calls == [["a", "b"]]
    assert all(c.attempts == 1 and c.prompt_tokens == 10 and c.ok for c in out)
    assert backend.stats["first_try_valid"] == 2


def test_invalid_output_is_repaired_with_the_error_shown():
    script = {"a": ['{"click": "maybe", "reason": "x"}', GOOD], "b": [GOOD]}
    backend = Scripted(script, LLMConfig(cache=False))
    out = backend.generate([_req("a"), _req("b")], Review)
    assert out[0].ok and out[0].attempts == 2
    assert out[0].history == ['{"click": "maybe", "reason": "x"}']
    assert backend.calls == [["a", "b"], ["a"]]  # only the failed one is re-asked
    repair = backend.seen_messages["a"][1]
    assert repair[-2]["role"] == "assistant" and "maybe" in repair[-2]["content"]
    assert "click" in repair[-1]["content"] and "schema" in repair[-1]["content"]
    assert out[0].prompt_tokens == 20  # tokens of both attempts are counted
    assert backend.stats["repaired"] == 1


def test_bounded_repairs_then_typed_error_naming_the_request():
    bad = ['{"click": true, "reason": "' + "x" * 100 + '"}'] * 3
    backend = Scripted({"user-7/step-3": bad}, LLMConfig(cache=False, max_repairs=2))
    with pytest.raises(StructuredOutputError, match=r"user-7/step-3.*Review.*3 attempt"):
        backend.generate([_req("user-7/step-3")], Review)
    assert len(backend.calls) == 3


def test_recorded_fallback_instead_of_error():
    cfg = LLMConfig(cache=False, max_repairs=1, on_invalid="record")
    backend = Scripted({"a": ["not json", "{truncated"], "b": [GOOD]}, cfg)
    out = backend.generate([_req("a"), _req("b")], Review)
    assert out[0].parsed is None and out[0].error and out[0].attempts == 2
    assert out[1].ok
    assert backend.stats["failed"] == 1


def test_cache_makes_replays_exact_and_free(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    backend = Scripted({"a": [GOOD]}, LLMConfig(), cache)
    first = backend.generate([_req("a")], Review)
    again = Scripted({"a": []}, LLMConfig(), ResponseCache(tmp_path / "c.sqlite"))
    second = again.generate([_req("a")], Review)
    assert again.calls == [] and second[0].cached and second[0].text == first[0].text
    # the seed is part of the key
    other = Scripted({"a": [GOOD]}, LLMConfig(), ResponseCache(tmp_path / "c.sqlite"))
    other.generate([_req("a", seed=99)], Review)
    assert other.calls == [["a"]]
    assert len(ResponseCache(tmp_path / "c.sqlite")) == 2


def test_failed_answers_are_not_cached(tmp_path):
    cfg = LLMConfig(max_repairs=0, on_invalid="record")
    backend = Scripted({"a": ["nope"]}, cfg, ResponseCache(tmp_path / "c.sqlite"))
    backend.generate([_req("a")], Review)
    assert len(backend.cache) == 0

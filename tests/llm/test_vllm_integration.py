"""The real vLLM engine (CPU build) with the embedded SmolLM2-135M-Instruct."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from recoworld.llm import ChatRequest, prepare_embedded_model

pytestmark = pytest.mark.slow


class Review(BaseModel):
    click: bool
    watch_fraction: float = Field(ge=0.0, le=1.0)
    reason: str = Field(max_length=60)


@pytest.fixture()
def backend(vllm_backend):
    return vllm_backend


def _requests(n: int) -> list[ChatRequest]:
    system = "You are a user of a video app. You love cooking and travel. Answer in JSON."
    return [
        ChatRequest.of(
            system,
            f"Item {i}: 'A 10-minute pasta recipe, part {i}'. Do you click?",
            request_id=f"user-{i}/step-0",
        )
        for i in range(8)
    ]


def test_batched_guided_json_is_valid(backend):
    # The 135M model sometimes rambles inside a string until the token limit, whatever the
    # grammar (about 5 % of answers, README); which request does depends on the engine's
    # prefix cache and batch, so the test asks for "almost all", not "all".
    before = dict(backend.stats)
    out = backend.generate(_requests(8), Review, on_invalid="record")
    ok = [c for c in out if c.ok]
    assert len(out) == 8 and len(ok) >= 7, [c.text for c in out if not c.ok]
    assert [c.request_id for c in out] == [f"user-{i}/step-0" for i in range(8)]
    assert all(c.prompt_tokens > 20 and c.completion_tokens > 3 for c in out)
    assert all(0.0 <= c.parsed.watch_fraction <= 1.0 for c in ok)
    # guided decoding: (almost) everything valid at the first try
    assert backend.stats["first_try_valid"] - before.get("first_try_valid", 0) >= 6


def test_cache_replays_exactly(backend):
    first = backend.generate(_requests(4), Review)
    again = backend.generate(_requests(4), Review)
    assert all(c.cached for c in again)
    assert [c.text for c in again] == [c.text for c in first]


def test_model_preparation_is_idempotent_and_complete():
    path = prepare_embedded_model()
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()
    assert prepare_embedded_model() == path

"""Requests, completions and errors shared by every LLM backend.

A ``ChatRequest`` is one chat (a list of messages) plus sampling settings and an id that
names it in errors and logs (e.g. ``"user-17/step-4"``). A ``Completion`` is the validated
answer: the raw text, the parsed pydantic object, token counts, latency, how many attempts it
took, whether it came from the cache, and — when the caller allowed it — a recorded fallback
(``parsed is None`` and ``error`` set) instead of an exception. Nothing here ever substitutes
a default answer silently.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from recoworld.core.errors import RecoWorldError

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class ChatRequest:
    """One chat to complete. ``temperature``/``max_tokens``/``seed`` override the backend's."""

    messages: tuple[ChatMessage, ...]
    request_id: str = ""
    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None

    @classmethod
    def of(cls, system: str | None, user: str, request_id: str = "", **kw: Any) -> ChatRequest:
        msgs = ([ChatMessage("system", system)] if system else []) + [ChatMessage("user", user)]
        return cls(messages=tuple(msgs), request_id=request_id, **kw)

    def with_messages(self, extra: list[ChatMessage]) -> ChatRequest:
        return dataclasses.replace(self, messages=(*self.messages, *extra))

    def message_dicts(self) -> list[dict[str, str]]:
        return [m.as_dict() for m in self.messages]


@dataclass
class RawCompletion:
    """What a backend's transport returns for one request, before validation."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    finish_reason: str | None = None


@dataclass
class Completion:
    """A validated completion (or a recorded fallback when ``parsed`` is None)."""

    request_id: str
    text: str
    parsed: BaseModel | None
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    attempts: int = 1
    cached: bool = False
    backend: str = ""
    model: str = ""
    error: str | None = None
    history: list[str] = field(default_factory=list)  # raw texts of failed attempts

    @property
    def ok(self) -> bool:
        return self.parsed is not None


class LLMError(RecoWorldError, RuntimeError):
    """Base class of every LLM-side failure; the message names the request."""

    hint = "check the `llm:` section of the world config; rerun with --debug for the traceback"


class BackendError(LLMError):
    """The transport failed (HTTP error, timeout, engine failure) after all retries."""

    hint = (
        "check that the LLM server at `llm.base_url` is running and serves `llm.model` "
        "(e.g. `vllm serve MODEL --port 8000`), or set `llm.backend: vllm` for the "
        "in-process engine"
    )

    def __init__(self, request_id: str, message: str) -> None:
        super().__init__(f"request {request_id!r}: {message}")
        self.request_id = request_id


class StructuredOutputError(LLMError):
    """The model's output did not validate against the schema after every repair attempt."""

    hint = (
        "the model's answers did not fit the schema: use a larger model (`llm.model`), raise "
        "`llm.max_repairs`, or set `llm.on_invalid: record` to keep going with recorded "
        "fallbacks"
    )

    def __init__(self, request_id: str, schema: str, errors: list[str], texts: list[str]):
        detail = "; ".join(e.splitlines()[0] for e in errors[-3:])
        super().__init__(
            f"request {request_id!r}: no valid {schema} after {len(texts)} attempt(s): {detail}"
        )
        self.request_id = request_id
        self.errors = errors
        self.texts = texts


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


def request_key(
    model: str, request: ChatRequest, schema: dict[str, Any] | None, sampling: dict[str, Any]
) -> str:
    """Cache key: sha256 over model, messages, schema and sampling params (seed included)."""
    payload = {
        "model": model,
        "messages": request.message_dicts(),
        "schema": schema,
        "sampling": sampling,
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()

"""The batched, structured-output LLM interface every backend implements.

``LLMBackend.generate(requests, schema)`` sends all requests of a step in one call to the
transport (``_complete``: one vLLM batch, or concurrent HTTP requests), validates every
answer against the pydantic ``schema``, and for the answers that fail, re-asks — showing the
model its invalid output and the validation error — at most ``max_repairs`` times, again
batched. What still fails raises ``StructuredOutputError`` naming the request, or, with
``on_invalid="record"``, comes back as a ``Completion`` with ``parsed=None`` and the error
recorded, for the caller to count and report. Validated answers go to the response cache.

``continuation_logprobs(prefixes, continuations)`` is the scoring interface: the log-prob
of every token of each continuation given its prefix (plain text, no chat template), all
in one batch — what the LLM user's ``score`` mode and the fidelity benchmark build on.

Backends differ only in ``_complete`` and ``_continuation_logprobs``. Constrained (guided)
decoding from the schema is used where the backend has it; validation happens regardless.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ValidationError

from recoworld.llm.cache import ResponseCache
from recoworld.llm.config import LLMConfig
from recoworld.llm.types import (
    ChatMessage,
    ChatRequest,
    Completion,
    RawCompletion,
    StructuredOutputError,
    request_key,
    schema_of,
)

REPAIR_PROMPT = (
    "Your previous reply was not valid JSON for the required schema.\n"
    "Error: {error}\n"
    "Reply again with only a JSON object that matches this schema:\n{schema}"
)


class LLMBackend(ABC):
    """Batched chat completions with validation, repair and caching (see module docstring)."""

    name = "abstract"

    def __init__(self, config: LLMConfig, cache: ResponseCache | None = None) -> None:
        self.config = config
        self.cache = cache
        self.stats = {"requests": 0, "cached": 0, "first_try_valid": 0, "repaired": 0,
                      "failed": 0, "prompt_tokens": 0, "completion_tokens": 0,
                      "scored": 0}  # fmt: skip

    @property
    @abstractmethod
    def model_id(self) -> str:
        """The model's identity for cache keys and reports."""

    def sampling(self, request: ChatRequest) -> dict[str, Any]:
        cfg = self.config
        return {
            "temperature": cfg.temperature if request.temperature is None else request.temperature,
            "max_tokens": cfg.max_tokens if request.max_tokens is None else request.max_tokens,
            "top_p": cfg.top_p,
            "seed": cfg.seed if request.seed is None else request.seed,
        }

    @abstractmethod
    def _complete(
        self, requests: list[ChatRequest], schema: dict[str, Any] | None
    ) -> list[RawCompletion]:
        """Transport: one raw completion per request, in order. Raise ``BackendError`` when
        the transport fails after its own retries."""

    def continuation_logprobs(
        self, prefixes: Sequence[str], continuations: Sequence[str]
    ) -> list[np.ndarray]:
        """Per-token log-probs (float32 arrays) of each ``continuations[i]`` after
        ``prefixes[i]``, in one batch. End a prefix with a newline so that the token boundary
        falls between prefix and continuation for every tokenizer."""
        if len(prefixes) != len(continuations):
            raise ValueError(
                f"continuation_logprobs: {len(prefixes)} prefixes but "
                f"{len(continuations)} continuations"
            )
        for i, (p, c) in enumerate(zip(prefixes, continuations, strict=True)):
            if not isinstance(p, str) or not isinstance(c, str) or not c.strip():
                raise ValueError(
                    f"continuation_logprobs: pair {i} needs a str prefix and a non-empty str "
                    f"continuation, got {p!r}, {c!r}"
                )
        if not prefixes:
            return []
        out = self._continuation_logprobs(list(prefixes), list(continuations))
        self.stats["scored"] += len(prefixes)
        return out

    def _continuation_logprobs(
        self, prefixes: list[str], continuations: list[str]
    ) -> list[np.ndarray]:
        raise NotImplementedError(
            f"the {self.name} backend cannot score continuations (prompt log-probs)"
        )

    def generate(
        self,
        requests: list[ChatRequest],
        schema: type[BaseModel],
        on_invalid: Literal["raise", "record"] | None = None,
        max_repairs: int | None = None,
    ) -> list[Completion]:
        """Validated completions for ``requests`` (same order); see the module docstring.
        ``on_invalid`` and ``max_repairs`` override the config for this call (callers with a
        defined fallback pass "record" and count the failures; those whose fallback is as
        good as a repaired answer can skip the repair rounds, each a serial engine call)."""
        on_invalid = on_invalid or self.config.on_invalid
        repairs = self.config.max_repairs if max_repairs is None else max_repairs
        if not requests:
            return []
        json_schema = schema_of(schema)
        keys = [request_key(self.model_id, r, json_schema, self.sampling(r)) for r in requests]
        results: list[Completion | None] = [None] * len(requests)
        cached = self.cache.get_many(keys) if (self.cache and self.config.cache) else {}
        for i, key in enumerate(keys):
            raw = cached.get(key)
            if raw is not None:
                results[i] = Completion(
                    request_id=requests[i].request_id, text=raw.text,
                    parsed=schema.model_validate_json(raw.text),
                    prompt_tokens=raw.prompt_tokens, completion_tokens=raw.completion_tokens,
                    latency_s=0.0, attempts=0, cached=True, backend=self.name,
                    model=self.model_id,
                )  # fmt: skip
        self.stats["requests"] += len(requests)
        self.stats["cached"] += len(cached)

        pending = [i for i in range(len(requests)) if results[i] is None]
        current = {i: requests[i] for i in pending}
        history: dict[int, list[str]] = {i: [] for i in pending}
        errors: dict[int, list[str]] = {i: [] for i in pending}
        tokens: dict[int, list[int]] = {i: [0, 0] for i in pending}
        started = time.perf_counter()
        to_store: list[tuple[str, RawCompletion]] = []
        for attempt in range(repairs + 1):
            if not pending:
                break
            raws = self._complete([current[i] for i in pending], json_schema)
            still: list[int] = []
            for i, raw in zip(pending, raws, strict=True):
                tokens[i][0] += raw.prompt_tokens
                tokens[i][1] += raw.completion_tokens
                try:
                    parsed = schema.model_validate_json(raw.text)
                except ValidationError as err:
                    history[i].append(raw.text)
                    message = _describe(err, raw)
                    errors[i].append(message)
                    # the repair re-asks the original chat (not the previous repair), so the
                    # prompt stays bounded: the last invalid answer (cut to REPAIR_ECHO
                    # characters) and the error, plus the schema when it is short
                    current[i] = requests[i].with_messages([
                        ChatMessage("assistant", raw.text[:REPAIR_ECHO]),
                        ChatMessage("user", REPAIR_PROMPT.format(
                            error=message, schema=_schema_hint(json_schema))),
                    ])  # fmt: skip
                    still.append(i)
                    continue
                results[i] = Completion(
                    request_id=requests[i].request_id, text=raw.text, parsed=parsed,
                    prompt_tokens=tokens[i][0], completion_tokens=tokens[i][1],
                    latency_s=time.perf_counter() - started, attempts=attempt + 1,
                    backend=self.name, model=self.model_id, history=history[i],
                )  # fmt: skip
                self.stats["first_try_valid" if attempt == 0 else "repaired"] += 1
                to_store.append((keys[i], RawCompletion(raw.text, tokens[i][0], tokens[i][1])))
            pending = still
        for _, raw in to_store:
            self.stats["prompt_tokens"] += raw.prompt_tokens
            self.stats["completion_tokens"] += raw.completion_tokens
        if self.cache is not None and self.config.cache:
            self.cache.put_many(self.model_id, to_store)

        for i in pending:  # every attempt failed validation
            self.stats["failed"] += 1
            if on_invalid == "raise":
                raise StructuredOutputError(
                    requests[i].request_id, schema.__name__, errors[i], history[i]
                )
            results[i] = Completion(
                request_id=requests[i].request_id, text=history[i][-1], parsed=None,
                prompt_tokens=tokens[i][0], completion_tokens=tokens[i][1],
                latency_s=time.perf_counter() - started, attempts=len(history[i]),
                backend=self.name, model=self.model_id, error=errors[i][-1],
                history=history[i],
            )  # fmt: skip
        assert all(r is not None for r in results), "every request is answered or raised"
        return results  # type: ignore[return-value]

    def close(self) -> None:
        """Release engines, connections and the cache."""
        if self.cache is not None:
            self.cache.close()

    def __enter__(self) -> LLMBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _describe(err: ValidationError, raw: RawCompletion) -> str:
    first = err.errors()[0] if err.errors() else {"msg": str(err)}
    where = ".".join(str(p) for p in first.get("loc", ())) or "<root>"
    text = f"{where}: {first.get('msg', 'invalid')}"
    if raw.finish_reason == "length":
        text += " (the reply was cut off at the token limit; keep it shorter)"
    return text


REPAIR_ECHO = 600
SCHEMA_IN_REPAIR = 1200


def _schema_hint(schema: dict[str, Any]) -> str:
    """The compact schema, or — when it is long (it would crowd a small model's context on
    every repair) — a pointer to the format asked for in the conversation."""
    text = _compact(schema)
    if len(text) <= SCHEMA_IN_REPAIR:
        return text
    return (
        "(the JSON format described in the first message; schema title "
        + repr(schema.get("title", "response"))
        + ")"
    )


def _compact(schema: dict[str, Any]) -> str:
    import json

    return json.dumps(schema, separators=(",", ":"))

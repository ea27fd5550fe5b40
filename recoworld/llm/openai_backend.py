"""Any OpenAI-compatible chat server (``vllm serve``, llama.cpp server, hosted endpoints).

Requests of a batch go out concurrently (``concurrency`` in flight) to
``{base_url}/chat/completions`` with ``response_format`` set to the schema (``json_schema``,
which vLLM's server turns into guided decoding). Each call has a timeout; connection errors,
timeouts, HTTP 429/5xx and malformed response bodies are retried with exponential backoff
(``backoff_s * 2**attempt``) up to ``max_retries`` times, then raise ``BackendError`` naming
the request. Other HTTP errors (400, 401, 404 ...) fail at once: retrying cannot fix them.
The API key, if any, is read from the environment variable named by ``api_key_env``.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np

from recoworld.llm.base import LLMBackend
from recoworld.llm.cache import ResponseCache
from recoworld.llm.config import LLMConfig
from recoworld.llm.models import EMBEDDED, EMBEDDED_NAME
from recoworld.llm.types import BackendError, ChatRequest, RawCompletion

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class OpenAIBackend(LLMBackend):
    name = "openai"

    def __init__(self, config: LLMConfig, cache: ResponseCache | None = None) -> None:
        super().__init__(config, cache)
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(config.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self.client = httpx.Client(
            base_url=config.base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(config.timeout_s),
            limits=httpx.Limits(max_connections=config.concurrency),
        )
        self.served_model = EMBEDDED_NAME if config.model == EMBEDDED else config.model
        self.retries = 0

    @property
    def model_id(self) -> str:
        return f"openai:{self.config.base_url}:{self.served_model}"

    def _body(self, request: ChatRequest, schema: dict[str, Any] | None) -> dict[str, Any]:
        s = self.sampling(request)
        body: dict[str, Any] = {
            "model": self.served_model,
            "messages": request.message_dicts(),
            "temperature": s["temperature"],
            "top_p": s["top_p"],
            "max_tokens": s["max_tokens"],
            "seed": s["seed"],
        }
        if schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": schema.get("title", "response"), "schema": schema},
            }
        return body

    def _post(self, path: str, body: dict[str, Any], request_id: str, parse: Any) -> Any:
        """POST with retries (see module docstring); ``parse(json, latency)`` turns the body
        into the result and raises KeyError/IndexError/TypeError/ValueError when malformed."""
        last = ""
        for attempt in range(self.config.max_retries + 1):
            if attempt:
                self.retries += 1
                time.sleep(self.config.backoff_s * 2 ** (attempt - 1))
            start = time.perf_counter()
            try:
                resp = self.client.post(path, json=body)
            except (httpx.TimeoutException, httpx.TransportError) as err:
                last = f"{type(err).__name__}: {err}"
                continue
            if resp.status_code in RETRY_STATUS:
                last = f"HTTP {resp.status_code}: {resp.text[:200]}"
                continue
            if resp.status_code >= 400:
                raise BackendError(request_id, f"HTTP {resp.status_code}: {resp.text[:300]}")
            try:
                return parse(resp.json(), time.perf_counter() - start)
            except (json.JSONDecodeError, KeyError, IndexError, TypeError, ValueError) as err:
                last = f"malformed response body ({err}): {resp.text[:200]}"
                continue
        raise BackendError(
            request_id,
            f"{self.config.base_url} failed after {self.config.max_retries + 1} attempts: {last}",
        )

    def _one(self, request: ChatRequest, schema: dict[str, Any] | None) -> RawCompletion:
        def parse(data: dict[str, Any], latency: float) -> RawCompletion:
            choice = data["choices"][0]
            text = choice["message"]["content"]
            if not isinstance(text, str):
                raise TypeError("message.content is not a string")
            usage = data.get("usage") or {}
            return RawCompletion(
                text=text,
                prompt_tokens=int(usage.get("prompt_tokens", 0)),
                completion_tokens=int(usage.get("completion_tokens", 0)),
                latency_s=latency,
                finish_reason=choice.get("finish_reason"),
            )

        return self._post("/chat/completions", self._body(request, schema), request.request_id,
                          parse)  # fmt: skip

    def _score_one(self, prefix: str, continuation: str) -> np.ndarray:
        """Prompt log-probs through ``/completions`` with ``echo`` and ``max_tokens=0`` (vLLM's
        server supports it; many hosted chat-only APIs do not, and answer with HTTP 4xx)."""
        body = {"model": self.served_model, "prompt": prefix + continuation, "echo": True,
                "max_tokens": 0, "logprobs": 0, "temperature": 0.0}  # fmt: skip
        cut = len(prefix)

        def parse(data: dict[str, Any], latency: float) -> np.ndarray:
            lp = data["choices"][0]["logprobs"]
            values = [
                v for v, off in zip(lp["token_logprobs"], lp["text_offset"], strict=True)
                if off >= cut
            ]  # fmt: skip
            if not values or any(v is None for v in values):
                raise ValueError("no log-probs for the continuation")
            return np.asarray(values, dtype=np.float32)

        return self._post("/completions", body, f"score:{prefix[:40]!r}", parse)

    def _continuation_logprobs(
        self, prefixes: list[str], continuations: list[str]
    ) -> list[np.ndarray]:
        pairs = list(zip(prefixes, continuations, strict=True))
        return self._map(lambda pc: self._score_one(*pc), pairs)

    def _map(self, fn: Any, items: list[Any]) -> list[Any]:
        if len(items) == 1 or self.config.concurrency == 1:
            return [fn(x) for x in items]
        with ThreadPoolExecutor(max_workers=min(self.config.concurrency, len(items))) as ex:
            return list(ex.map(fn, items))

    def _complete(
        self, requests: list[ChatRequest], schema: dict[str, Any] | None
    ) -> list[RawCompletion]:
        return self._map(lambda r: self._one(r, schema), requests)

    def close(self) -> None:
        self.client.close()
        super().close()

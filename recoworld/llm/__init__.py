"""LLM backends behind one batched, structured-output interface.

``make_backend(LLMConfig)`` returns the ``vllm`` (in-process engine, default), ``openai``
(any OpenAI-compatible server) or ``ray_vllm`` (a pool of vLLM engines as Ray actors)
backend, with the SQLite response cache attached when enabled. ``generate(requests,
schema)`` returns validated ``Completion``s (see ``base``)."""

from __future__ import annotations

from recoworld.core.errors import require
from recoworld.core.paths import cache_dir
from recoworld.llm.base import LLMBackend
from recoworld.llm.cache import ResponseCache
from recoworld.llm.config import LLMConfig
from recoworld.llm.models import prepare_embedded_model, resolve_model
from recoworld.llm.types import (
    BackendError,
    ChatMessage,
    ChatRequest,
    Completion,
    LLMError,
    RawCompletion,
    StructuredOutputError,
)

__all__ = [
    "BackendError",
    "ChatMessage",
    "ChatRequest",
    "Completion",
    "LLMBackend",
    "LLMConfig",
    "LLMError",
    "RawCompletion",
    "ResponseCache",
    "StructuredOutputError",
    "cache_dir",
    "make_backend",
    "prepare_embedded_model",
    "resolve_model",
]


def make_backend(config: LLMConfig | None = None) -> LLMBackend:
    cfg = config or LLMConfig()
    cache = None
    if cfg.cache:
        cache = ResponseCache(cfg.cache_path or cache_dir() / "llm_responses.sqlite")
    if cfg.backend == "vllm":
        from recoworld.llm.vllm_backend import VLLMBackend

        return VLLMBackend(cfg, cache)
    if cfg.backend == "ray_vllm":
        require("ray", "rllib", "the ray_vllm LLM backend")
        from recoworld.llm.ray_pool import RayVLLMBackend

        return RayVLLMBackend(cfg, cache)
    require("httpx", "llm", "the openai LLM backend")
    from recoworld.llm.openai_backend import OpenAIBackend

    return OpenAIBackend(cfg, cache)

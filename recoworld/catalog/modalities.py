"""Extra per-item vectors from any modality (image, audio, metadata, ...) and how they are
fused with the text embedding.

A modality is a matrix [N, d] aligned with the catalog's rows. ``load_modality`` reads one
that a user supplies (``ModalitySpec``): a ``.npy`` array in catalog row order, or a Parquet
column (a list or fixed-size-list column of vectors, or a numeric scalar column), in row
order or aligned through an item-id column. ``metadata_modality`` builds one from the catalog
itself (release time, duration, popularity, the creator's catalogue size, and the people
behind the item, feature-hashed: the director and cast, which for the built-in MovieLens data
come from bokeh-sampledata's CC0 movies.db). Item
quality and latent vectors are simulator ground truth and never part of a modality.

Fusion (``fuse_modalities``) is concatenation of the standardised parts, in a fixed order,
with the slice each part occupies; the projection to a joint space is learned inside the
policy (its first layer over the concatenated candidate features), so no fusion weights are
fitted here.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from recoworld.catalog.catalog import Catalog
from recoworld.catalog.config import ModalitySpec


def _standardize(x: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=0, keepdims=True)
    std = x.std(axis=0, keepdims=True)
    return np.where(std > 0, (x - mean) / np.where(std > 0, std, 1.0), 0.0).astype(np.float32)


def _parquet_vectors(spec: ModalitySpec, catalog: Catalog) -> np.ndarray:
    table = pq.read_table(spec.path)
    if spec.column is None or spec.column not in table.column_names:
        raise ValueError(
            f"modality {spec.name!r}: column {spec.column!r} not in {spec.path} "
            f"(columns: {table.column_names})"
        )
    col = table.column(spec.column).combine_chunks()
    if pa.types.is_fixed_size_list(col.type) or pa.types.is_list(col.type):
        lengths = np.asarray(col.value_lengths() if hasattr(col, "value_lengths") else [])
        if pa.types.is_list(col.type) and len(set(lengths.tolist())) > 1:
            raise ValueError(f"modality {spec.name!r}: vectors of different lengths")
        width = col.type.list_size if pa.types.is_fixed_size_list(col.type) else int(lengths[0])
        values = col.flatten().to_numpy(zero_copy_only=False).astype(np.float64)
        vectors = values.reshape(len(col), width)
    elif pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
        vectors = col.to_numpy(zero_copy_only=False).astype(np.float64)[:, None]
    else:
        raise ValueError(f"modality {spec.name!r}: column {spec.column!r} is {col.type}")
    if spec.id_column is None:
        return vectors
    if spec.id_column not in table.column_names:
        raise ValueError(f"modality {spec.name!r}: id column {spec.id_column!r} not in the file")
    ids = table.column(spec.id_column).to_numpy()
    order = {int(i): r for r, i in enumerate(ids.tolist())}
    missing = [int(i) for i in catalog.item_ids if int(i) not in order]
    if missing:
        raise ValueError(
            f"modality {spec.name!r}: {len(missing)} catalog items have no row "
            f"(first ids: {missing[:5]})"
        )
    return vectors[[order[int(i)] for i in catalog.item_ids]]


def load_modality(spec: ModalitySpec, catalog: Catalog) -> np.ndarray:
    """[N, d] float32 vectors of ``spec`` aligned with the catalog's rows (z-scored unless
    ``standardize`` is off); non-finite values are an error."""
    path = Path(spec.path)
    if not path.is_file():
        raise FileNotFoundError(f"modality {spec.name!r}: file not found: {path}")
    if path.suffix == ".npy":
        vectors = np.load(path, allow_pickle=False).astype(np.float64)
        if vectors.ndim == 1:
            vectors = vectors[:, None]
    elif path.suffix == ".parquet":
        vectors = _parquet_vectors(spec, catalog)
    else:
        raise ValueError(f"modality {spec.name!r}: expected a .npy or .parquet file, got {path}")
    if vectors.ndim != 2 or vectors.shape[0] != catalog.n_items:
        raise ValueError(
            f"modality {spec.name!r}: expected [{catalog.n_items}, d] (one row per catalog "
            f"item), got {list(vectors.shape)}"
        )
    if not np.isfinite(vectors).all():
        raise ValueError(f"modality {spec.name!r}: non-finite values")
    return _standardize(vectors) if spec.standardize else vectors.astype(np.float32)


METADATA_FIELDS = ("release_percentile", "log_duration", "log_popularity", "creator_log_items")
PEOPLE_DIM = 8
_STARRING = re.compile(r"Starring ([^.]+)\.")


def _bucket(name: str, dim: int) -> tuple[int, float]:
    digest = hashlib.sha1(name.strip().lower().encode()).digest()
    return digest[0] % dim, 1.0 if digest[1] % 2 else -1.0


def people_modality(catalog: Catalog, dim: int = PEOPLE_DIM) -> np.ndarray:
    """[N, dim] the people behind each item, feature-hashed (signed, sha1 buckets): the
    creator (for MovieLens films, the director from bokeh-sampledata's movies.db) and the
    cast named in the description ("Starring A, B."); items that share people share
    buckets. Standardised."""
    out = np.zeros((catalog.n_items, dim))
    for i in range(catalog.n_items):  # once per catalog, at world construction
        names = [catalog.creator_names[catalog.creator[i]]]
        match = _STARRING.search(catalog.descriptions[i])
        if match:
            names += match.group(1).split(",")
        for name in names:
            j, sign = _bucket(name, dim)
            out[i, j] += sign
    return _standardize(out)


def metadata_modality(catalog: Catalog) -> np.ndarray:
    """[N, 4 + PEOPLE_DIM] standardised metadata: release-time percentile, log duration,
    log(1 + popularity), log of the creator's number of items (``METADATA_FIELDS``), then
    the hashed director/creator and cast (``people_modality``)."""
    release = np.argsort(np.argsort(catalog.release_time, kind="stable"), kind="stable")
    per_creator = np.bincount(catalog.creator, minlength=catalog.n_creators)
    raw = np.column_stack(
        [
            release / max(catalog.n_items - 1, 1),
            np.log(np.maximum(catalog.duration, 1e-3)),
            np.log1p(catalog.popularity),
            np.log(per_creator[catalog.creator]),
        ]
    ).astype(np.float64)
    return np.concatenate([_standardize(raw), people_modality(catalog)], axis=1)


def fuse_modalities(parts: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, slice]]:
    """Concatenate [N, d_i] parts (in the dict's order) into [N, sum d_i] float32 and return
    the slice of each part."""
    if not parts:
        raise ValueError("fuse_modalities: no parts")
    n = {p.shape[0] for p in parts.values()}
    if len(n) != 1:
        raise ValueError(f"fuse_modalities: parts have different item counts {sorted(n)}")
    slices: dict[str, slice] = {}
    start = 0
    for name, part in parts.items():
        if part.ndim != 2:
            raise ValueError(f"fuse_modalities: part {name!r} is not [N, d]")
        slices[name] = slice(start, start + part.shape[1])
        start += part.shape[1]
    fused = np.concatenate([p.astype(np.float32) for p in parts.values()], axis=1)
    return fused, slices

"""Batched array helpers for the hot paths: row-wise gathers on [B, N] arrays and on
per-user bitsets (``seen`` / ``consumed`` items are stored 8 per byte: at N items and B
users that is B·N/8 bytes, small enough to stay in cache where a bool matrix would not).

``gather_rows(a, idx)`` is ``np.take_along_axis(a, idx, axis=1)`` for a 2-D ``a`` and
integer ``idx`` of shape [B, m], computed as one flat ``np.take`` (several times faster than
the generic fancy-index path for large B); ``rows`` restricts it to a subset of rows without
copying them.
"""

from __future__ import annotations

import numpy as np


def row_offsets(a: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """[B, 1] flat offsets of rows ``rows`` (default: all) of a 2-D array."""
    r = np.arange(a.shape[0], dtype=np.int64) if rows is None else np.asarray(rows, np.int64)
    return (r * a.shape[1])[:, None]


def gather_rows(a: np.ndarray, idx: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """out[j, c] = a[rows[j], idx[j, c]] for a 2-D ``a`` (``rows`` default: all rows)."""
    if not a.flags.c_contiguous:
        a = np.ascontiguousarray(a)
    return np.take(a.reshape(-1), row_offsets(a, rows) + idx)


def bitset_width(n_bits: int) -> int:
    """Bytes per row of a bitset over ``n_bits`` items."""
    return (n_bits + 7) // 8


def gather_bits(bits: np.ndarray, idx: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """out[j, c] = bit idx[j, c] of row rows[j] of a [B, ceil(N / 8)] uint8 bitset (bit i of
    a row is bit (i & 7) of byte i >> 3)."""
    byte = gather_rows(bits, idx >> 3, rows)
    return ((byte >> (idx & 7).astype(np.uint8)) & 1).astype(bool)

"""Per-item modality vectors: loading (npy, Parquet, id alignment), metadata, fusion."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recoworld.catalog.modalities import (
    METADATA_FIELDS,
    PEOPLE_DIM,
    ModalitySpec,
    fuse_modalities,
    load_modality,
    metadata_modality,
    people_modality,
)


def test_npy_modality_is_standardised(small_catalog, tmp_path):
    rng = np.random.default_rng(0)
    raw = rng.normal(3.0, 2.0, size=(small_catalog.n_items, 5))
    np.save(tmp_path / "img.npy", raw)
    x = load_modality(ModalitySpec(name="image", path=str(tmp_path / "img.npy")), small_catalog)
    assert x.shape == (small_catalog.n_items, 5) and x.dtype == np.float32
    np.testing.assert_allclose(x.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(x.std(0), 1.0, atol=1e-4)
    kept = load_modality(
        ModalitySpec(name="image", path=str(tmp_path / "img.npy"), standardize=False),
        small_catalog,
    )
    np.testing.assert_allclose(kept, raw.astype(np.float32))


def test_parquet_modality_aligned_by_item_id(small_catalog, tmp_path):
    n = small_catalog.n_items
    order = np.random.default_rng(1).permutation(n)  # rows in another order
    ids = small_catalog.item_ids[order]
    vectors = np.stack([order * 1.0, order * 2.0], axis=1)  # row r describes item order[r]
    table = pa.table(
        {
            "item_id": ids,
            "vec": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), 2),
            "score": order.astype(np.float64),
        }
    )
    pq.write_table(table, tmp_path / "m.parquet")
    spec = ModalitySpec(name="m", path=str(tmp_path / "m.parquet"), column="vec",
                        id_column="item_id", standardize=False)  # fmt: skip
    x = load_modality(spec, small_catalog)
    np.testing.assert_allclose(x[:, 0], np.arange(n))  # aligned back to catalog rows
    np.testing.assert_allclose(x[:, 1], 2 * np.arange(n))
    scalar = load_modality(spec.model_copy(update={"column": "score"}), small_catalog)
    assert scalar.shape == (n, 1)
    with pytest.raises(ValueError, match="column 'nope' not in"):
        load_modality(spec.model_copy(update={"column": "nope"}), small_catalog)
    pq.write_table(table.slice(0, n - 3), tmp_path / "short.parquet")
    with pytest.raises(ValueError, match="3 catalog items have no row"):
        load_modality(spec.model_copy(update={"path": str(tmp_path / "short.parquet")}),
                      small_catalog)  # fmt: skip


def test_modality_errors(small_catalog, tmp_path):
    np.save(tmp_path / "wrong.npy", np.zeros((7, 3)))
    with pytest.raises(ValueError, match=r"expected \[300, d\]"):
        load_modality(ModalitySpec(name="w", path=str(tmp_path / "wrong.npy")), small_catalog)
    bad = np.zeros((small_catalog.n_items, 2))
    bad[0, 0] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(ValueError, match="non-finite"):
        load_modality(ModalitySpec(name="n", path=str(tmp_path / "nan.npy")), small_catalog)
    with pytest.raises(FileNotFoundError, match="file not found"):
        load_modality(ModalitySpec(name="x", path=str(tmp_path / "none.npy")), small_catalog)


def test_metadata_modality_and_fusion(movielens):
    cat = movielens.catalog
    meta = metadata_modality(cat)
    assert meta.shape == (cat.n_items, len(METADATA_FIELDS) + PEOPLE_DIM)
    assert np.isfinite(meta).all()
    # popularity column follows the rating counts
    assert np.corrcoef(meta[:, 2], np.log1p(cat.popularity))[0, 1] > 0.99
    text = np.random.default_rng(0).normal(size=(cat.n_items, 16)).astype(np.float32)
    fused, slices = fuse_modalities({"text": text, "metadata": meta})
    assert fused.shape == (cat.n_items, 16 + len(METADATA_FIELDS) + PEOPLE_DIM)
    np.testing.assert_array_equal(fused[:, slices["metadata"]], meta)
    # films by the same director share their people buckets
    people = people_modality(cat)
    same = np.flatnonzero(cat.creator == np.bincount(cat.creator).argmax())[:2]
    other = np.flatnonzero(cat.creator != cat.creator[same[0]])[0]
    d_same = np.abs(people[same[0]] - people[same[1]]).sum()
    assert d_same < np.abs(people[same[0]] - people[other]).sum()
    with pytest.raises(ValueError, match="different item counts"):
        fuse_modalities({"a": text, "b": meta[:10]})

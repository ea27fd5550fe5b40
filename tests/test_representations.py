"""Item representations: text embeddings (real MiniLM encoder, disk cache) and semantic IDs
(residual k-means, RQ-VAE) with their tokens, legend, groups, features and quality report."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from recoworld.catalog import embeddings as emb_mod
from recoworld.catalog import semantic_ids as sid_mod
from recoworld.catalog.catalog import Catalog
from recoworld.catalog.embeddings import (
    EMBEDDING_DIM,
    catalog_content_hash,
    default_cache_dir,
    embed_texts,
    embeddings_cache_path,
    item_embeddings,
    item_text,
    item_texts,
)
from recoworld.catalog.semantic_ids import (
    SemanticIDConfig,
    SemanticIDs,
    code_features,
    code_legend,
    code_tokens,
    disambiguate,
    kmeans,
    parse_code_tokens,
    prefix_groups,
    quality_report,
    semantic_ids,
    semantic_ids_cache_path,
)

torch.set_num_threads(1)


def _head(catalog: Catalog, n: int) -> Catalog:
    """The first ``n`` items of ``catalog`` (same topic and creator vocabularies)."""
    return dataclasses.replace(
        catalog,
        item_ids=catalog.item_ids[:n],
        titles=catalog.titles[:n],
        descriptions=catalog.descriptions[:n],
        topics=catalog.topics[:n],
        creator=catalog.creator[:n],
        quality=catalog.quality[:n],
        duration=catalog.duration[:n],
        popularity=catalog.popularity[:n],
        release_time=catalog.release_time[:n],
        latent=catalog.latent[:n],
    )


@pytest.fixture(scope="module")
def emb_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("embeddings")


@pytest.fixture(scope="module")
def emb(small_catalog, emb_dir) -> np.ndarray:
    return item_embeddings(small_catalog, cache_dir=emb_dir)


@pytest.fixture(scope="module")
def tiny(small_catalog) -> Catalog:
    return _head(small_catalog, 12)


@pytest.fixture(scope="module")
def ids(emb) -> SemanticIDs:
    return semantic_ids(emb, SemanticIDConfig(), cache=False)


# -- embeddings -------------------------------------------------------------------------------


def test_item_text_names_title_topics_creator_and_description(small_catalog):
    text = item_text(small_catalog, 5)
    assert text.startswith(small_catalog.titles[5].strip())
    for topic in small_catalog.topic_list(5):
        assert topic in text
    assert small_catalog.creator_names[small_catalog.creator[5]] in text
    assert " ".join(small_catalog.descriptions[5].split()) in text
    assert item_text(small_catalog, -1) == item_text(small_catalog, small_catalog.n_items - 1)
    with pytest.raises(ValueError, match="out of range"):
        item_text(small_catalog, small_catalog.n_items)


def test_item_embeddings_shape_norm_and_cache_file(small_catalog, emb, emb_dir):
    assert emb.shape == (small_catalog.n_items, EMBEDDING_DIM)
    assert emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    path = embeddings_cache_path(small_catalog, emb_dir)
    h = catalog_content_hash(small_catalog)
    assert path.name == f"item_emb_{h[:16]}.npy" and path.is_file()
    np.testing.assert_array_equal(np.load(path), emb)
    # distinct items are not collapsed to one vector
    assert (emb @ emb.T)[np.triu_indices(len(emb), 1)].mean() < 0.9


def test_embeddings_deterministic_across_calls_and_batch_sizes(small_catalog, emb):
    texts = item_texts(small_catalog)[:10]
    a = embed_texts(texts, batch_size=3)
    b = embed_texts(texts, batch_size=3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, emb[:10], atol=1e-5)
    assert embed_texts([]).shape == (0, EMBEDDING_DIM)
    with pytest.raises(TypeError, match="texts"):
        embed_texts("one string")
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        embed_texts(["ok", 3])  # type: ignore[list-item]


def test_cache_hit_does_not_encode(small_catalog, emb, emb_dir, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("the encoder ran although the cache was valid")

    monkeypatch.setattr(emb_mod, "embed_texts", boom)
    np.testing.assert_array_equal(item_embeddings(small_catalog, cache_dir=emb_dir), emb)


def test_corrupt_or_wrong_cache_is_recomputed(tiny, emb, tmp_path):
    first = item_embeddings(tiny, cache_dir=tmp_path)
    np.testing.assert_allclose(first, emb[: tiny.n_items], atol=1e-5)
    path = embeddings_cache_path(tiny, tmp_path)
    bad_files = {
        "unreadable": lambda: path.write_bytes(b"not an npy file"),
        "shape": lambda: np.save(path, np.ones((3, EMBEDDING_DIM), np.float32)),
        "norm": lambda: np.save(path, np.full((tiny.n_items, EMBEDDING_DIM), 2.0, np.float32)),
        "dtype": lambda: np.save(path, first.astype(np.float64)),
    }
    for name, write_bad in bad_files.items():
        write_bad()
        with pytest.warns(UserWarning, match="recomputing"):
            again = item_embeddings(tiny, cache_dir=tmp_path)
        np.testing.assert_allclose(again, first, atol=1e-6, err_msg=name)
        np.testing.assert_array_equal(np.load(path), again)  # the cache was rewritten


def test_content_hash_stable_and_sensitive(small_catalog):
    h = catalog_content_hash(small_catalog)
    assert re.fullmatch(r"[0-9a-f]{64}", h)
    assert catalog_content_hash(_head(small_catalog, small_catalog.n_items)) == h
    titles = list(small_catalog.titles)
    titles[7] = titles[7] + " (remastered)"
    assert catalog_content_hash(dataclasses.replace(small_catalog, titles=titles)) != h
    renamed = [*small_catalog.topic_names[:-1], "something else"]
    assert catalog_content_hash(dataclasses.replace(small_catalog, topic_names=renamed)) != h


def test_default_cache_dir_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("RECOWORLD_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "embeddings"
    assert sid_mod.default_cache_dir() == tmp_path / "semantic_ids"


# -- k-means ----------------------------------------------------------------------------------


def test_kmeans_finds_separated_blobs_deterministically():
    rng = np.random.default_rng(0)
    centres = np.eye(4, 8) * 10
    x = np.repeat(centres, 25, axis=0) + rng.normal(0, 0.1, (100, 8))
    c1, a1 = kmeans(x, 4, seed=1, n_init=2)
    c2, a2 = kmeans(x, 4, seed=1, n_init=2)
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(c1, c2)
    truth = np.repeat(np.arange(4), 25)
    assert len({(t, a) for t, a in zip(truth, a1, strict=True)}) == 4  # a relabelling
    with pytest.raises(ValueError, match="k=101"):
        kmeans(x, 101)


# -- semantic IDs -----------------------------------------------------------------------------


def _check_valid(ids: SemanticIDs, n: int, cfg: SemanticIDConfig) -> None:
    assert ids.codes.shape == (n, cfg.levels) and ids.codes.dtype == np.int64
    assert ids.codes.min() >= 0 and ids.codes.max() < cfg.codebook_size
    assert ids.disambiguator.shape == (n,) and ids.disambiguator.min() == 0
    assert len(np.unique(ids.full_codes, axis=0)) == n
    assert len(set(ids.tokens())) == n


def test_codes_in_range_and_collisions_resolved(ids, emb):
    cfg = SemanticIDConfig()
    _check_valid(ids, len(emb), cfg)
    assert ids.codebooks.shape == (cfg.levels, cfg.codebook_size, EMBEDDING_DIM)
    assert ids.reconstruction.shape == emb.shape
    # the disambiguator is the rank among items with the same tuple, by item index
    seen: dict[tuple[int, ...], int] = {}
    for i, row in enumerate(map(tuple, ids.codes.tolist())):
        assert ids.disambiguator[i] == seen.get(row, 0)
        seen[row] = seen.get(row, 0) + 1
    np.testing.assert_array_equal(disambiguate(ids.codes), ids.disambiguator)


def test_semantic_ids_deterministic_for_a_seed(ids, emb):
    again = semantic_ids(emb, SemanticIDConfig(), cache=False)
    np.testing.assert_array_equal(again.codes, ids.codes)
    np.testing.assert_array_equal(again.reconstruction, ids.reconstruction)


def test_quality_report_in_range_and_prefixes_coherent(ids, emb):
    q = quality_report(emb, ids)
    k = ids.codebook_size
    assert 0 <= q["reconstruction_mse"] < 1.0 / EMBEDDING_DIM  # better than predicting zero
    assert 0.5 < q["reconstruction_cosine"] <= 1.0
    assert 0 < q["explained_variance"] <= 1.0
    assert len(q["entropy"]) == len(q["codes_used"]) == ids.levels
    assert all(0 < e <= 1 + 1e-9 for e in q["entropy"])
    assert all(1 <= u <= k for u in q["codes_used"])
    assert 0 <= q["collision_rate"] <= 1 and q["max_collision"] >= 1
    assert q["unique_ids"] == len(np.unique(ids.codes, axis=0))
    p1, p2 = q["prefix_similarity"]
    assert p1 > q["random_similarity"] + 0.1
    assert p2 > q["random_similarity"] + 0.1
    assert quality_report(emb, ids) == q  # seeded pair sample
    with pytest.raises(ValueError, match="do not match"):
        quality_report(emb[:10], ids)


def test_code_tokens_format_and_round_trip(ids):
    assert code_tokens(np.array([[12, 7, 3], [12, 7, 3]]), np.array([0, 1])) == [
        "<a12><b7><c3>",
        "<a12><b7><c3><d1>",
    ]
    assert code_tokens(np.array([[1, 2, 3, 4]]), np.array([2])) == ["<a1><b2><c3><d4><e2>"]
    tokens = ids.tokens()
    pattern = re.compile(r"<a\d+><b\d+><c\d+>(<d[1-9]\d*>)?")
    assert all(pattern.fullmatch(t) for t in tokens)
    for i in range(0, ids.n_items, 37):
        codes, d = parse_code_tokens(tokens[i], ids.levels)
        assert codes == tuple(ids.codes[i]) and d == ids.disambiguator[i]
    assert ids.item_of()[tokens[42]] == 42
    with pytest.raises(ValueError, match="in order"):
        parse_code_tokens("<b1><a2><c3>", 3)
    with pytest.raises(ValueError, match="tokens"):
        parse_code_tokens("<a1> b2 <c3>", 3)
    with pytest.raises(ValueError, match="disambiguator"):
        code_tokens(ids.codes, ids.disambiguator[:5])
    with pytest.raises(ValueError, match=">= 0"):
        code_tokens(np.array([[1, -2, 3]]))


def test_code_legend(ids, small_catalog):
    legend = code_legend(ids, small_catalog)
    used = np.unique(ids.codes[:, 0])
    assert list(legend) == [f"<a{c}>" for c in used]
    for key, text in legend.items():
        names = text.split(", ")
        assert 1 <= len(names) <= 3 and set(names) <= set(small_catalog.topic_names)
        members = np.flatnonzero(ids.codes[:, 0] == int(key[2:-1]))
        counts = (small_catalog.topics[members] > 0).sum(axis=0)
        assert counts[small_catalog.topic_names.index(names[0])] == counts.max()
    legend2 = code_legend(ids, small_catalog, level=2)
    assert all(re.fullmatch(r"<a\d+><b\d+>", k) for k in legend2)
    assert len(legend2) == len(np.unique(ids.codes[:, :2], axis=0))
    with pytest.raises(ValueError, match="level"):
        code_legend(ids, small_catalog, level=4)
    with pytest.raises(ValueError, match="items"):
        code_legend(ids, _head(small_catalog, 10))


def test_prefix_groups_and_code_features(ids):
    n, levels, k = ids.n_items, ids.levels, ids.codebook_size
    for depth in range(levels + 1):
        g = prefix_groups(ids.codes, depth)
        assert g.shape == (n,) and g.min() == 0
        n_prefixes = len(np.unique(ids.codes[:, :depth], axis=0)) if depth else 1
        assert g.max() == n_prefixes - 1
        same_group = g[:, None] == g[None, :]
        same_prefix = (ids.codes[:, None, :depth] == ids.codes[None, :, :depth]).all(-1)
        np.testing.assert_array_equal(same_group, same_prefix)
    with pytest.raises(ValueError, match="depth"):
        prefix_groups(ids.codes, levels + 1)
    f = code_features(ids.codes, k)
    assert f.shape == (n, levels * k) and f.dtype == np.float32
    np.testing.assert_array_equal(f.sum(axis=1), levels)
    np.testing.assert_array_equal(f.reshape(n, levels, k).argmax(-1), ids.codes)
    with pytest.raises(ValueError, match="codebook_size"):
        code_features(ids.codes, int(ids.codes.max()))


def test_semantic_ids_cache_hit_and_corrupt_file(emb, ids, tmp_path, monkeypatch):
    cfg = SemanticIDConfig()
    first = semantic_ids(emb, cfg, cache_dir=tmp_path)
    path = semantic_ids_cache_path(emb, cfg, tmp_path)
    assert path.is_file()
    np.testing.assert_array_equal(first.codes, ids.codes)

    real_compute = sid_mod._compute

    def boom(*args, **kwargs):
        raise AssertionError("recomputed although the cache was valid")

    monkeypatch.setattr(sid_mod, "_compute", boom)
    hit = semantic_ids(emb, cfg, cache_dir=tmp_path)
    np.testing.assert_array_equal(hit.codes, ids.codes)
    np.testing.assert_array_equal(hit.codebooks, ids.codebooks)
    assert hit.config == cfg and hit.embedding_hash == ids.embedding_hash

    monkeypatch.setattr(sid_mod, "_compute", real_compute)
    path.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="recomputing"):
        again = semantic_ids(emb, cfg, cache_dir=tmp_path)
    np.testing.assert_array_equal(again.codes, ids.codes)
    # another config is another file
    other = SemanticIDConfig(codebook_size=8)
    assert semantic_ids_cache_path(emb, other, tmp_path) != path


def test_semantic_ids_reject_bad_input(emb):
    bad = emb[:20].copy()
    bad[3, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        semantic_ids(bad, cache=False)
    with pytest.raises(ValueError, match="fewer than codebook_size"):
        semantic_ids(emb[:10], cache=False)
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        semantic_ids(emb[0], cache=False)
    with pytest.raises(ValidationError):
        SemanticIDConfig(codebook_size=1)
    with pytest.raises(ValidationError):
        SemanticIDConfig(method="pq")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        SemanticIDConfig(levelz=3)  # type: ignore[call-arg]


def test_rqvae_trains_and_gives_valid_codes(emb):
    cfg = SemanticIDConfig(method="rqvae", epochs=12, batch_size=128, seed=5, kmeans_init=2)
    a = semantic_ids(emb, cfg, cache=False)
    _check_valid(a, len(emb), cfg)
    assert a.loss_history.shape == (cfg.epochs,)
    assert a.loss_history[-1] < 0.5 * a.loss_history[0]
    assert a.codebooks.shape == (cfg.levels, cfg.codebook_size, cfg.latent_dim)
    assert a.reconstruction.shape == emb.shape
    q = quality_report(emb, a)
    assert q["reconstruction_cosine"] > 0.5 and min(q["codes_used"]) > cfg.codebook_size // 2
    assert q["prefix_similarity"][0] > q["random_similarity"]
    b = semantic_ids(emb, cfg, cache=False)
    np.testing.assert_array_equal(a.codes, b.codes)
    np.testing.assert_array_equal(a.loss_history, b.loss_history)

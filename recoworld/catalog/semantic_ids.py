"""Semantic IDs: short discrete codes for items, by residual quantisation of their embeddings.

This module owns turning [N, D] item embeddings (``recoworld.catalog.embeddings``) into
semantic IDs, their on-disk cache, their quality report, and the views the rest of RecoWorld
takes of them (prompt tokens, a legend of first-level codes, prefix groups, one-hot features).

An item's semantic ID is a tuple of ``levels`` codes in ``[0, codebook_size)``, coarse to
fine: level 1 quantises the embedding, level l quantises what levels 1..l-1 left over (the
residual), so items sharing a prefix are close in embedding space. Two methods:

- ``rkmeans`` (residual k-means): k-means (numpy, greedy k-means++ initialisation from a
  seeded generator, Lloyd iterations) on the embeddings, then on the residuals, and so on;
  codebooks are [L, K, D] in the embedding space and the reconstruction is the sum of an
  item's codewords;
- ``rqvae`` (residual-quantised VAE, torch): an MLP encoder maps an embedding to a
  ``latent_dim`` latent, which is quantised by L residual codebooks (initialised by residual
  k-means on the initial latents) with the straight-through estimator; an MLP decoder maps the
  quantised latent back. Loss per item: ``||x - decoder(q)||^2`` (the reconstruction MSE
  summed over the embedding dimensions, so that it is on the scale of unit vectors) plus, per
  level, the codebook loss ``||sg(r_l) - e_l||^2`` and ``beta`` times the commitment loss
  ``||r_l - sg(e_l)||^2``. A codeword unused for a whole epoch is re-seeded on the residual
  its level quantises worst (so codes do not die). Codebooks are [L, K, latent_dim] in the
  latent space; the reconstruction is the decoded quantised latent.

Both are deterministic for a given ``seed`` (and thread count: BLAS reductions may order sums
differently with more threads).

Collisions: items whose full code tuples are equal get a disambiguator, their rank among the
items sharing that tuple ordered by item index (0 for the first, so 0 for every item without
a collision); ``(codes, disambiguator)`` is unique per item. ``codes`` never includes it.

Tokens: level l is written with the l-th letter (``<a12><b7><c3>``) and the disambiguator
with the next letter after the last level (``<d1>`` for three levels), only when non-zero.

``semantic_ids(embeddings, config)`` caches its result at
``<cache>/semantic_ids_<key[:16]>.npz`` (default ``$RECOWORLD_CACHE/semantic_ids``, else
``~/.cache/recoworld/semantic_ids``), keyed by a sha256 of the embedding array and the config;
a file that cannot be read or does not match is recomputed.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import string
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recoworld.catalog.catalog import Catalog
from recoworld.catalog.config import SemanticIDConfig
from recoworld.core.atomic import atomic_write

# Level letters: a, b, c, ...; one more letter is needed for the disambiguator.
LETTERS = string.ascii_lowercase
MAX_LEVELS = len(LETTERS) - 1  # (config.SEMANTIC_ID_MAX_LEVELS: one letter left over)
CACHE_FORMAT_VERSION = 1
_TOKEN = re.compile(r"<([a-z])(\d+)>")


@dataclass(frozen=True, eq=False)
class SemanticIDs:
    """Semantic IDs of N items (row i = item i)."""

    codes: np.ndarray  # [N, L] int64 in [0, K)
    disambiguator: np.ndarray  # [N] int64 >= 0 (0 unless the full code tuple collides)
    codebooks: np.ndarray  # [L, K, D'] float32 (D' = D for rkmeans, latent_dim for rqvae)
    reconstruction: np.ndarray  # [N, D] float32, the quantised approximation of each embedding
    config: SemanticIDConfig
    embedding_hash: str = ""
    loss_history: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # rqvae

    @property
    def n_items(self) -> int:
        return int(self.codes.shape[0])

    @property
    def levels(self) -> int:
        return int(self.codes.shape[1])

    @property
    def codebook_size(self) -> int:
        return self.config.codebook_size

    @property
    def full_codes(self) -> np.ndarray:
        """[N, L + 1] the codes with the disambiguator appended (unique rows)."""
        return np.concatenate([self.codes, self.disambiguator[:, None]], axis=1)

    def tokens(self) -> list[str]:
        """``code_tokens(codes, disambiguator)``: one string per item."""
        return code_tokens(self.codes, self.disambiguator)

    def item_of(self) -> dict[str, int]:
        """Token string -> item index (the inverse of ``tokens``)."""
        return {t: i for i, t in enumerate(self.tokens())}


# -- validation and hashing -------------------------------------------------------------------


def _check_embeddings(embeddings: Any, name: str = "embeddings") -> np.ndarray:
    x = np.asarray(embeddings)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty [N, D] array, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise ValueError(f"{name} must be real numbers, got dtype {x.dtype}")
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def _check_codes(codes: Any, name: str = "codes") -> np.ndarray:
    c = np.asarray(codes)
    if c.ndim != 2 or c.shape[1] == 0:
        raise ValueError(f"{name} must be an [N, L] integer array, got shape {c.shape}")
    if c.size and not np.issubdtype(c.dtype, np.integer):
        raise ValueError(f"{name} must be integers, got dtype {c.dtype}")
    if c.size and c.min() < 0:
        raise ValueError(f"{name} must be >= 0, got {c.min()}")
    if c.shape[1] > MAX_LEVELS:
        raise ValueError(f"{name} has {c.shape[1]} levels; at most {MAX_LEVELS} are supported")
    return c.astype(np.int64, copy=False)


def embedding_hash(embeddings: np.ndarray) -> str:
    """sha256 (hex) of a float32 [N, D] array's shape and bytes."""
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    h = hashlib.sha256(f"{x.shape}|float32|".encode())
    h.update(x.tobytes())
    return h.hexdigest()


def cache_key(embeddings: np.ndarray, config: SemanticIDConfig) -> str:
    """sha256 (hex) over the embedding hash, the config (JSON) and the cache format."""
    blob = json.dumps(
        {
            "embeddings": embedding_hash(embeddings),
            "config": config.model_dump(mode="json"),
            "format": CACHE_FORMAT_VERSION,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


# -- k-means ----------------------------------------------------------------------------------


def _sq_dists(x: np.ndarray, c: np.ndarray, x_sq: np.ndarray) -> np.ndarray:
    """[N, K] squared distances (clipped at 0)."""
    d = x_sq[:, None] - 2.0 * (x @ c.T) + (c * c).sum(axis=1)[None, :]
    return np.maximum(d, 0.0)


def _kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator, x_sq: np.ndarray) -> np.ndarray:
    """Greedy k-means++ (2 + log k candidates per centre, the one lowering the potential most)."""
    n = x.shape[0]
    trials = 2 + int(math.log(k))
    centers = np.empty((k, x.shape[1]), dtype=x.dtype)
    centers[0] = x[rng.integers(n)]
    closest = _sq_dists(x, centers[:1], x_sq)[:, 0]
    for j in range(1, k):
        pot = closest.sum()
        if pot <= 0.0:  # every point already sits on a centre
            cand = rng.integers(n, size=trials)
        else:
            cum = np.cumsum(closest)
            cand = np.searchsorted(cum, rng.random(trials) * cum[-1], side="right")
            cand = np.minimum(cand, n - 1)
        d = np.minimum(closest[None, :], _sq_dists(x, x[cand], x_sq).T)  # [trials, N]
        best = int(np.argmin(d.sum(axis=1)))
        centers[j] = x[cand[best]]
        closest = d[best]
    return centers


def kmeans(
    x: np.ndarray,
    k: int,
    iters: int = 50,
    seed: int | np.random.Generator = 0,
    n_init: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """(centres [k, D], assignment [N]) of ``x`` [N, D]: ``n_init`` runs of greedy k-means++
    then at most ``iters`` Lloyd iterations (a run stops when no assignment changes), the run
    with the lowest squared error kept (the first on ties). An empty cluster is re-seeded on
    the point farthest from its centre. Computed in float64; centres returned as float32."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0 or not np.isfinite(x).all():
        raise ValueError(f"kmeans: input must be a finite non-empty [N, D] array, got {x.shape}")
    n = x.shape[0]
    if k < 1 or k > n:
        raise ValueError(f"kmeans: k={k} must lie in [1, N={n}]")
    if n_init < 1:
        raise ValueError(f"kmeans: n_init must be >= 1, got {n_init}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    x_sq = (x * x).sum(axis=1)
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for _ in range(n_init):
        centers, assign = _lloyd(x, k, iters, rng, x_sq)
        sse = float(((x - centers[assign]) ** 2).sum())
        if best is None or sse < best[0]:
            best = (sse, centers, assign)
    assert best is not None
    return best[1].astype(np.float32), best[2]


def _lloyd(
    x: np.ndarray, k: int, iters: int, rng: np.random.Generator, x_sq: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    n = x.shape[0]
    centers = _kmeans_pp(x, k, rng, x_sq)
    assign = np.full(n, -1, dtype=np.int64)
    for _ in range(max(iters, 1)):
        d = _sq_dists(x, centers, x_sq)
        new = d.argmin(axis=1)
        if np.array_equal(new, assign):
            break
        assign = new
        counts = np.bincount(assign, minlength=k)
        onehot = np.zeros((k, n))
        onehot[assign, np.arange(n)] = 1.0
        sums = onehot @ x
        empty = np.flatnonzero(counts == 0)
        nonempty = counts > 0
        centers[nonempty] = sums[nonempty] / counts[nonempty, None]
        if empty.size:
            far = np.argsort(-d[np.arange(n), assign], kind="stable")[: empty.size]
            centers[empty] = x[far]
            assign[far] = empty
    return centers, assign


def residual_kmeans(
    x: np.ndarray, levels: int, k: int, iters: int = 50, seed: int = 0, n_init: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(codes [N, L], codebooks [L, K, D], reconstruction [N, D]) by residual k-means."""
    x = _check_embeddings(x).astype(np.float64)
    rng = np.random.default_rng(seed)
    residual = x.copy()
    codes = np.zeros((x.shape[0], levels), dtype=np.int64)
    books = np.zeros((levels, k, x.shape[1]), dtype=np.float32)
    for level in range(levels):
        books[level], codes[:, level] = kmeans(residual, k, iters, rng, n_init)
        residual -= books[level][codes[:, level]]
    return codes, books, (x - residual).astype(np.float32)


def disambiguate(codes: np.ndarray) -> np.ndarray:
    """[N] rank of each item among the items with its exact code tuple, by item index."""
    codes = _check_codes(codes)
    _, inverse = np.unique(codes, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")  # groups, item index ascending within
    sorted_groups = inverse[order]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    rank = np.arange(len(order)) - np.repeat(starts, sizes)
    out = np.empty(len(order), dtype=np.int64)
    out[order] = rank
    return out


# -- RQ-VAE -----------------------------------------------------------------------------------


def _train_rqvae(
    x: np.ndarray, cfg: SemanticIDConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(codes [N, L], codebooks [L, K, latent], reconstruction [N, D], loss per epoch)."""
    import torch
    from torch import nn

    n, dim = x.shape
    k, levels = cfg.codebook_size, cfg.levels
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        encoder = nn.Sequential(
            nn.Linear(dim, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, cfg.latent_dim)
        )
        decoder = nn.Sequential(
            nn.Linear(cfg.latent_dim, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, dim)
        )
    gen = torch.Generator().manual_seed(cfg.seed)
    data = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    with torch.no_grad():
        z0 = encoder(data).numpy()
    _, books0, _ = residual_kmeans(z0, levels, k, cfg.kmeans_iters, cfg.seed, cfg.kmeans_init)
    books = nn.Parameter(torch.from_numpy(books0.copy()))  # [L, K, latent]
    params = [*encoder.parameters(), *decoder.parameters(), books]
    opt = torch.optim.Adam(params, lr=cfg.lr)

    def quantise(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list]:
        """(quantised latent, codes [B, L], codebook+commitment loss, residuals per level)."""
        residual = z
        quantised = torch.zeros_like(z)
        codes, residuals = [], []
        vq = z.new_zeros(())
        for level in range(levels):
            book = books[level]
            d = (
                residual.pow(2).sum(1, keepdim=True)
                - 2 * residual @ book.T
                + book.pow(2).sum(1)[None, :]
            )
            idx = d.argmin(dim=1)
            e = book[idx]
            vq = vq + (residual.detach() - e).pow(2).sum(1).mean()
            vq = vq + cfg.beta * (residual - e.detach()).pow(2).sum(1).mean()
            residuals.append(residual.detach())
            quantised = quantised + e
            residual = residual - e
            codes.append(idx)
        return quantised, torch.stack(codes, dim=1), vq, residuals

    history = np.zeros(cfg.epochs, dtype=np.float32)
    for epoch in range(cfg.epochs):
        perm = torch.randperm(n, generator=gen)
        total, used = 0.0, torch.zeros(levels, k, dtype=torch.bool)
        first_residuals: list[torch.Tensor] = []
        for start in range(0, n, cfg.batch_size):
            xb = data[perm[start : start + cfg.batch_size]]
            z = encoder(xb)
            q, codes, vq, residuals = quantise(z)
            z_st = z + (q - z).detach()  # straight-through: decoder sees q, grads reach z
            recon = (decoder(z_st) - xb).pow(2).sum(1).mean()
            loss = recon + vq
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(xb)
            used[torch.arange(levels)[:, None], codes.T] = True
            first_residuals = first_residuals or residuals
        history[epoch] = total / n
        # re-seed codewords no item used this epoch on the residuals of the epoch's first
        # batch that their level quantises worst
        if epoch < cfg.epochs - 1 and not bool(used.all()):
            with torch.no_grad():
                for level in range(levels):
                    dead = torch.nonzero(~used[level]).flatten()
                    if dead.numel() == 0:
                        continue
                    r = first_residuals[level]
                    err = (r[:, None, :] - books[level][None]).pow(2).sum(-1).min(1).values
                    pick = torch.argsort(-err, stable=True)[: dead.numel()]
                    books.data[level, dead[: pick.numel()]] = r[pick]

    with torch.no_grad():
        z = encoder(data)
        q, codes, _, _ = quantise(z)
        recon = decoder(q)
    return (
        codes.numpy().astype(np.int64),
        books.detach().numpy().astype(np.float32).copy(),
        recon.numpy().astype(np.float32),
        history,
    )


# -- the entry point and its cache ------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$RECOWORLD_CACHE/semantic_ids``, else ``~/.cache/recoworld/semantic_ids``."""
    from recoworld.core.paths import cache_dir

    return cache_dir() / "semantic_ids"


def _compute(x: np.ndarray, cfg: SemanticIDConfig, key_hash: str) -> SemanticIDs:
    if cfg.method == "rkmeans":
        codes, books, recon = residual_kmeans(
            x, cfg.levels, cfg.codebook_size, cfg.kmeans_iters, cfg.seed, cfg.kmeans_init
        )
        history = np.zeros(0, dtype=np.float32)
    else:
        codes, books, recon, history = _train_rqvae(x, cfg)
    return SemanticIDs(
        codes=codes,
        disambiguator=disambiguate(codes),
        codebooks=books,
        reconstruction=recon,
        config=cfg.model_copy(),
        embedding_hash=key_hash,
        loss_history=history,
    )


def _save(ids: SemanticIDs, path: Path) -> None:
    meta = json.dumps(
        {
            "format": CACHE_FORMAT_VERSION,
            "config": ids.config.model_dump(mode="json"),
            "embedding_hash": ids.embedding_hash,
        }
    )
    buf = io.BytesIO()
    np.savez(
        buf,
        codes=ids.codes,
        disambiguator=ids.disambiguator,
        codebooks=ids.codebooks,
        reconstruction=ids.reconstruction,
        loss_history=ids.loss_history,
        meta=np.array(meta),
    )
    try:
        atomic_write(path, lambda tmp: Path(tmp).write_bytes(buf.getvalue()))
    except OSError as exc:
        warnings.warn(f"could not write the cache file {path}: {exc}", stacklevel=3)


def _load(path: Path, x: np.ndarray, cfg: SemanticIDConfig, emb_hash: str) -> SemanticIDs | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {name: f[name] for name in f.files}
        meta = json.loads(str(arrays.pop("meta")))
        n, dim = x.shape
        books_dim = dim if cfg.method == "rkmeans" else cfg.latent_dim
        codes, dis = arrays["codes"], arrays["disambiguator"]
        ok = (
            meta.get("format") == CACHE_FORMAT_VERSION
            and meta.get("embedding_hash") == emb_hash
            and SemanticIDConfig.model_validate(meta["config"]) == cfg
            and codes.shape == (n, cfg.levels)
            and np.issubdtype(codes.dtype, np.integer)
            and codes.min() >= 0
            and codes.max() < cfg.codebook_size
            and dis.shape == (n,)
            and np.array_equal(dis, disambiguate(codes))
            and arrays["codebooks"].shape == (cfg.levels, cfg.codebook_size, books_dim)
            and arrays["reconstruction"].shape == (n, dim)
            and np.isfinite(arrays["reconstruction"]).all()
        )
    except Exception as exc:  # unreadable or incomplete: recompute
        warnings.warn(f"{path}: unreadable semantic-ID cache ({exc}); recomputing", stacklevel=3)
        return None
    if not ok:
        warnings.warn(f"{path}: semantic-ID cache does not match; recomputing", stacklevel=3)
        return None
    return SemanticIDs(
        codes=codes.astype(np.int64),
        disambiguator=dis.astype(np.int64),
        codebooks=arrays["codebooks"].astype(np.float32),
        reconstruction=arrays["reconstruction"].astype(np.float32),
        config=cfg.model_copy(),
        embedding_hash=emb_hash,
        loss_history=arrays["loss_history"].astype(np.float32),
    )


def semantic_ids_cache_path(
    embeddings: np.ndarray, config: SemanticIDConfig, cache_dir: str | Path | None = None
) -> Path:
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return root / f"semantic_ids_{cache_key(embeddings, config)[:16]}.npz"


def semantic_ids(
    embeddings: np.ndarray,
    config: SemanticIDConfig | None = None,
    cache_dir: str | Path | None = None,
    *,
    cache: bool = True,
) -> SemanticIDs:
    """Semantic IDs of the N rows of ``embeddings`` [N, D] (see the module docstring).

    Loaded from ``semantic_ids_cache_path(embeddings, config, cache_dir)`` when a matching
    file is there, else computed and written there atomically; ``cache=False`` neither reads
    nor writes it."""
    cfg = config if config is not None else SemanticIDConfig()
    if not isinstance(cfg, SemanticIDConfig):
        raise TypeError(f"semantic_ids: config must be a SemanticIDConfig, got {type(cfg)}")
    x = _check_embeddings(embeddings)
    if x.shape[0] < cfg.codebook_size:
        raise ValueError(
            f"semantic_ids: {x.shape[0]} items are fewer than codebook_size="
            f"{cfg.codebook_size}; lower codebook_size"
        )
    emb_hash = embedding_hash(x)
    path = semantic_ids_cache_path(x, cfg, cache_dir) if cache else None
    if path is not None:
        loaded = _load(path, x, cfg, emb_hash)
        if loaded is not None:
            return loaded
    ids = _compute(x, cfg, emb_hash)
    if path is not None:
        _save(ids, path)
    return ids


# -- uses -------------------------------------------------------------------------------------


def _prefix_token(code_row: np.ndarray) -> str:
    return "".join(f"<{LETTERS[level]}{int(c)}>" for level, c in enumerate(code_row))


def code_tokens(codes: np.ndarray, disambiguator: np.ndarray | None = None) -> list[str]:
    """One string per item, e.g. ``"<a12><b7><c3>"``; a non-zero disambiguator is appended
    with the letter after the last level (``"<a12><b7><c3><d1>"``)."""
    c = _check_codes(codes)
    if disambiguator is None:
        dis = np.zeros(c.shape[0], dtype=np.int64)
    else:
        dis = np.asarray(disambiguator)
        if dis.shape != (c.shape[0],) or (dis.size and not np.issubdtype(dis.dtype, np.integer)):
            raise ValueError(
                f"disambiguator must be [N={c.shape[0]}] integers, got shape {dis.shape}"
            )
        if dis.size and dis.min() < 0:
            raise ValueError("disambiguator must be >= 0")
    d_letter = LETTERS[c.shape[1]]
    out = []
    for row, d in zip(c.tolist(), dis.tolist(), strict=True):
        s = "".join(f"<{LETTERS[level]}{v}>" for level, v in enumerate(row))
        out.append(f"{s}<{d_letter}{d}>" if d else s)
    return out


def parse_code_tokens(text: str, levels: int) -> tuple[tuple[int, ...], int]:
    """(codes, disambiguator) of a token string such as ``"<a12><b7><c3><d1>"`` (the inverse
    of ``code_tokens`` for one item); ValueError when it is not ``levels`` codes in order."""
    if not isinstance(text, str):
        raise TypeError(f"parse_code_tokens: expected a str, got {type(text).__name__}")
    if not 1 <= levels <= MAX_LEVELS:
        raise ValueError(f"parse_code_tokens: levels must lie in [1, {MAX_LEVELS}]")
    compact = "".join(text.split())
    found = _TOKEN.findall(compact)
    if "".join(f"<{a}{b}>" for a, b in found) != compact:
        raise ValueError(f"parse_code_tokens: {text!r} is not a sequence of <letterN> tokens")
    letters = "".join(a for a, _ in found)
    if letters not in (LETTERS[:levels], LETTERS[: levels + 1]):
        raise ValueError(
            f"parse_code_tokens: {text!r} must have levels {LETTERS[:levels]!r} in order "
            f"(and optionally {LETTERS[levels]!r})"
        )
    values = [int(b) for _, b in found]
    return tuple(values[:levels]), (values[levels] if len(values) > levels else 0)


def code_legend(
    ids: SemanticIDs, catalog: Catalog, level: int = 1, n_topics: int = 3
) -> dict[str, str]:
    """A short description of each code prefix of length ``level`` that some item has: its
    items' ``n_topics`` most common topics, most common first (ties: vocabulary order), e.g.
    ``{"<a12>": "Comedy, Romance", ...}``; keys sorted by code, for a prompt's legend."""
    if catalog.n_items != ids.n_items:
        raise ValueError(
            f"code_legend: catalog has {catalog.n_items} items, semantic IDs {ids.n_items}"
        )
    if not 1 <= level <= ids.levels:
        raise ValueError(f"code_legend: level must lie in [1, {ids.levels}], got {level}")
    if n_topics < 1:
        raise ValueError(f"code_legend: n_topics must be >= 1, got {n_topics}")
    groups, prefixes = _groups(ids.codes, level)
    counts = np.zeros((len(prefixes), catalog.n_topics), dtype=np.float64)
    np.add.at(counts, groups, (catalog.topics > 0).astype(np.float64))
    order = np.argsort(-counts, axis=1, kind="stable")[:, :n_topics]
    legend = {}
    for g, prefix in enumerate(prefixes):
        names = [catalog.topic_names[t] for t in order[g] if counts[g, t] > 0]
        legend[_prefix_token(prefix)] = ", ".join(names)
    return legend


def _groups(codes: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """(group id [N], distinct prefixes [G, depth] sorted) of the first ``depth`` levels."""
    c = _check_codes(codes)
    if not 0 <= depth <= c.shape[1]:
        raise ValueError(f"depth must lie in [0, {c.shape[1]}], got {depth}")
    if depth == 0:
        return np.zeros(c.shape[0], dtype=np.int64), np.zeros((1, 0), dtype=np.int64)
    prefixes, inverse = np.unique(c[:, :depth], axis=0, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64), prefixes


def prefix_groups(codes: np.ndarray, depth: int) -> np.ndarray:
    """[N] group id of each item's first ``depth`` codes: 0..G-1 in lexicographic prefix
    order (depth 0: one group)."""
    return _groups(codes, depth)[0]


def code_features(codes: np.ndarray, codebook_size: int) -> np.ndarray:
    """[N, L * K] float32 one-hot of each level's code (level l in columns l*K..(l+1)*K-1)."""
    c = _check_codes(codes)
    if codebook_size < 1:
        raise ValueError(f"codebook_size must be >= 1, got {codebook_size}")
    if c.size and c.max() >= codebook_size:
        raise ValueError(f"codes must be < codebook_size={codebook_size}, got {c.max()}")
    n, levels = c.shape
    out = np.zeros((n, levels * codebook_size), dtype=np.float32)
    cols = c + np.arange(levels)[None, :] * codebook_size
    out[np.arange(n)[:, None], cols] = 1.0
    return out


# -- quality ----------------------------------------------------------------------------------


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _pair_similarity(
    unit: np.ndarray, groups: np.ndarray | None, n_pairs: int, rng: np.random.Generator
) -> float:
    """Mean cosine of sampled pairs: a random item and a random *other* item of its group
    (``groups`` None: of the whole catalog); NaN when no group has two items."""
    n = unit.shape[0]
    if groups is None:
        groups = np.zeros(n, dtype=np.int64)
    sizes = np.bincount(groups)
    eligible = np.flatnonzero(sizes[groups] >= 2)
    if eligible.size == 0:
        return float("nan")
    order = np.argsort(groups, kind="stable")
    pos = np.empty(n, dtype=np.int64)
    pos[order] = np.arange(n)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    i = eligible[rng.integers(eligible.size, size=n_pairs)]
    g = groups[i]
    offset = 1 + rng.integers(0, np.iinfo(np.int64).max, size=n_pairs) % (sizes[g] - 1)
    j = order[starts[g] + (pos[i] - starts[g] + offset) % sizes[g]]
    return float(np.einsum("ij,ij->i", unit[i], unit[j]).mean())


def quality_report(
    embeddings: np.ndarray, ids: SemanticIDs, n_pairs: int = 20000, seed: int = 0
) -> dict[str, Any]:
    """How well the semantic IDs represent the embeddings (floats and lists, JSON-ready):

    - ``reconstruction_mse``: mean over items and dimensions of (x - reconstruction)^2;
    - ``reconstruction_cosine``: mean cosine between an embedding and its reconstruction;
    - ``explained_variance``: 1 - sum ||x - r||^2 / sum ||x - mean(x)||^2;
    - ``entropy``: per level, the entropy of code usage divided by log K (1 = uniform);
    - ``codes_used``: per level, how many of the K codes some item has;
    - ``collision_rate``: share of items whose full code tuple another item shares (before
      the disambiguator); ``max_collision``: the largest such group; ``unique_ids``;
    - ``prefix_similarity``: per prefix depth 1..min(2, L), the mean cosine of pairs sharing
      that prefix (a random item and a random other item of its group, ``n_pairs`` pairs
      from a generator seeded with ``seed``); ``random_similarity``: the same for random
      pairs of distinct items.
    """
    x = _check_embeddings(embeddings)
    if x.shape != ids.reconstruction.shape:
        raise ValueError(
            f"quality_report: embeddings {x.shape} do not match the reconstruction "
            f"{ids.reconstruction.shape}"
        )
    if n_pairs < 1:
        raise ValueError(f"quality_report: n_pairs must be >= 1, got {n_pairs}")
    k = ids.codebook_size
    x64 = x.astype(np.float64)
    r64 = ids.reconstruction.astype(np.float64)
    err = ((x64 - r64) ** 2).sum(axis=1)
    spread = ((x64 - x64.mean(axis=0)) ** 2).sum()
    unit = _unit(x64)
    cos = np.einsum("ij,ij->i", unit, _unit(r64))
    entropy, used = [], []
    for level in range(ids.levels):
        p = np.bincount(ids.codes[:, level], minlength=k) / ids.n_items
        nz = p[p > 0]
        entropy.append(float(-(nz * np.log(nz)).sum() / math.log(k)))
        used.append(int((p > 0).sum()))
    _, inverse, counts = np.unique(ids.codes, axis=0, return_inverse=True, return_counts=True)
    shared = counts[inverse.reshape(-1)] >= 2
    rng = np.random.default_rng(seed)
    prefix = [
        _pair_similarity(unit, prefix_groups(ids.codes, depth), n_pairs, rng)
        for depth in range(1, min(2, ids.levels) + 1)
    ]
    return {
        "method": ids.config.method,
        "items": ids.n_items,
        "levels": ids.levels,
        "codebook_size": k,
        "reconstruction_mse": float(err.sum() / x.size),
        "reconstruction_cosine": float(cos.mean()),
        "explained_variance": float(1.0 - err.sum() / spread) if spread > 0 else float("nan"),
        "entropy": entropy,
        "codes_used": used,
        "collision_rate": float(shared.mean()),
        "max_collision": int(counts.max()),
        "unique_ids": len(counts),
        "prefix_similarity": prefix,
        "random_similarity": _pair_similarity(unit, None, n_pairs, rng),
    }

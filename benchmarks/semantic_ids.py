"""Semantic IDs compared: residual k-means vs RQ-VAE, on the synthetic catalog and MovieLens.

For each catalog the item embeddings (all-MiniLM-L6-v2 over ``item_text``) are computed once
(or read from the embedding cache; the table says which and how long it took); then, for each
method and each codebook size / level count asked for, semantic IDs are built without their
cache (so the time is the build time) and ``quality_report`` is printed as one row:

- MSE, cos, EV: reconstruction error of the quantised approximation (mean squared error per
  dimension, mean cosine to the embedding, explained variance);
- entropy: per level, code-usage entropy / log K (1 = every code used equally);
- coll., max: share of items whose full code tuple another item shares (before the
  disambiguator), and the largest such group;
- pre1, pre2, rand: mean cosine of item pairs sharing the level-1 / level-2 prefix, and of
  random pairs (prefix coherence: pre > rand).

    python benchmarks/semantic_ids.py [--json out.json] [--catalogs synthetic movielens]
        [--methods rkmeans rqvae] [--codebook-size 16 32] [--levels 3] [--epochs 200]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def load(name: str) -> Any:
    from recoworld.catalog import generate_synthetic_catalog, load_movielens

    if name == "synthetic":
        return generate_synthetic_catalog()
    if name == "movielens":
        return load_movielens().catalog
    raise ValueError(f"unknown catalog {name!r} (synthetic or movielens)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from recoworld.catalog.embeddings import embeddings_cache_path, item_embeddings
    from recoworld.catalog.semantic_ids import SemanticIDConfig, quality_report, semantic_ids

    result: dict[str, Any] = {
        "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "embeddings": {},
        "results": [],
    }
    for name in args.catalogs:
        catalog = load(name)
        cached = not args.fresh_embeddings
        hit = cached and embeddings_cache_path(catalog, args.cache_dir).is_file()
        t0 = time.perf_counter()
        emb = item_embeddings(catalog, cache_dir=args.cache_dir, cache=cached)
        result["embeddings"][name] = {
            "items": catalog.n_items,
            "seconds": round(time.perf_counter() - t0, 2),
            "from_cache": bool(hit),
        }
        for size in args.codebook_size:
            for levels in args.levels:
                for method in args.methods:
                    cfg = SemanticIDConfig(
                        method=method,
                        codebook_size=size,
                        levels=levels,
                        epochs=args.epochs,
                        seed=args.seed,
                    )
                    t0 = time.perf_counter()
                    ids = semantic_ids(emb, cfg, cache=False)
                    seconds = time.perf_counter() - t0
                    report = quality_report(emb, ids)
                    result["results"].append(
                        {"catalog": name, "seconds": round(seconds, 2), **report}
                    )
    return result


def table(result: dict[str, Any]) -> Table:
    t = Table(title="Semantic IDs: quality and build time")
    for col in [
        "catalog", "method", "K^L", "s", "MSE", "cos", "EV", "entropy", "coll.", "max",
        "unique", "pre1", "pre2", "rand",
    ]:  # fmt: skip
        t.add_column(col, justify="left" if col in ("catalog", "method") else "right")
    for r in result["results"]:
        prefix = [*r["prefix_similarity"], float("nan")]
        t.add_row(
            r["catalog"],
            r["method"],
            f"{r['codebook_size']}^{r['levels']}",
            f"{r['seconds']:.2f}",
            f"{r['reconstruction_mse']:.2e}",
            f"{r['reconstruction_cosine']:.3f}",
            f"{r['explained_variance']:.3f}",
            "/".join(f"{e:.2f}" for e in r["entropy"]),
            f"{r['collision_rate']:.3f}",
            str(r["max_collision"]),
            str(r["unique_ids"]),
            f"{prefix[0]:.3f}",
            f"{prefix[1]:.3f}",
            f"{r['random_similarity']:.3f}",
        )
    return t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--catalogs", nargs="+", default=["synthetic", "movielens"])
    parser.add_argument("--methods", nargs="+", default=["rkmeans", "rqvae"])
    parser.add_argument("--codebook-size", nargs="+", type=int, default=[16])
    parser.add_argument("--levels", nargs="+", type=int, default=[3])
    parser.add_argument("--epochs", type=int, default=200, help="RQ-VAE epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path, help="embedding cache (default: RecoWorld's)")
    parser.add_argument(
        "--fresh-embeddings", action="store_true", help="recompute embeddings (no cache)"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    result = run(args)
    console = Console(width=max(Console().width, 150))  # the table needs ~150 columns
    for name, e in result["embeddings"].items():
        source = "cache" if e["from_cache"] else "encoded"
        console.print(f"{name}: {e['items']} item embeddings in {e['seconds']:.1f} s ({source})")
    console.print(table(result))
    omp = os.environ.get("OMP_NUM_THREADS", "unset")
    console.print(f"torch threads: {result['torch_threads']}, OMP_NUM_THREADS={omp}")
    if args.json:
        from recoworld.core.atomic import atomic_write_json

        atomic_write_json(result, args.json)


if __name__ == "__main__":
    main()

"""Item representations: what a policy observes and what an LLM user reads of each item.

``ItemRepresentation(catalog, kind, settings)`` follows ``WorldConfig.representation`` (the
kind) and ``WorldConfig.representations`` (the settings):

- ``text``: the policy gets ``representations.text_dim`` principal components of the item
  text embeddings as extra candidate features (none by default); the LLM user reads title,
  topics, creator and description.
- ``semantic_id``: the policy gets the semantic-ID codes one-hot per level (L x K); the LLM
  user reads the code tokens (``<a12><b7><c3>``) with the main topics of the level-1 code as
  a legend, and no title, creator or description.
- ``multimodal``: the policy gets text-embedding components (``max(text_dim, 16)``)
  concatenated with the metadata modality and any user modalities; the LLM user reads the
  text plus a metadata line (release year, runtime).

Features are appended to the observation's per-candidate features, which lie in [0, 1]:
one-hot codes as they are, real-valued components squashed by 0.5 + 0.5 tanh(x / 2) after
standardisation. Fusion is concatenation; the projection to a joint space is the policy's
first layer (learned). Embeddings and semantic IDs are cached on disk
(``recoworld.catalog.embeddings``, ``recoworld.catalog.semantic_ids``).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from recoworld.catalog.catalog import Catalog
from recoworld.catalog.config import RepresentationConfig

MULTIMODAL_TEXT_DIM = 16


def principal_components(x: np.ndarray, dim: int) -> np.ndarray:
    """[N, dim] standardised projections of ``x`` on its top principal components (signs
    fixed so that each component's largest loading is positive: deterministic)."""
    centred = x - x.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
    comps = vt[:dim]
    flip = np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(axis=1)])
    proj = centred @ (comps * flip[:, None]).T
    std = proj.std(axis=0, keepdims=True)
    return (proj / np.where(std > 0, std, 1.0)).astype(np.float32)


def squash(x: np.ndarray) -> np.ndarray:
    """Standardised real features into (0, 1): 0.5 + 0.5 tanh(x / 2)."""
    return (0.5 + 0.5 * np.tanh(x / 2.0)).astype(np.float32)


class ItemRepresentation:
    """See the module docstring. ``features`` [N, E] (None: nothing extra), ``feature_names``,
    ``view(item)`` (the dict an LLM prompt renders) and ``info`` (what was built)."""

    def __init__(
        self,
        catalog: Catalog,
        kind: Literal["text", "semantic_id", "multimodal"],
        rep: RepresentationConfig,
    ) -> None:
        self.catalog = catalog
        self.kind = kind
        self.features: np.ndarray | None = None
        self.feature_names: list[str] = []
        self.info: dict[str, Any] = {"representation": self.kind}
        self._tokens: list[str] | None = None
        self._legend: dict[str, str] = {}
        if self.kind == "text" and rep.text_dim > 0:
            self._set(squash(self._text_components(rep.text_dim)), "text")
        elif self.kind == "semantic_id":
            from recoworld.catalog.embeddings import item_embeddings
            from recoworld.catalog.semantic_ids import (
                code_features,
                code_legend,
                code_tokens,
                semantic_ids,
            )

            ids = semantic_ids(item_embeddings(catalog), rep.semantic_id)
            k = rep.semantic_id.codebook_size
            self._set(code_features(ids.codes, k), "sid")
            self._tokens = code_tokens(ids.codes, ids.disambiguator)
            self._legend = code_legend(ids, catalog, level=1)
            self._prefix = [t.split(">")[0] + ">" for t in self._tokens]
            self.info.update(levels=int(ids.codes.shape[1]), codebook_size=k)
        elif self.kind == "multimodal":
            from recoworld.catalog.modalities import fuse_modalities, load_modality
            from recoworld.catalog.modalities import metadata_modality as metadata

            parts = {"text": self._text_components(max(rep.text_dim, MULTIMODAL_TEXT_DIM))}
            if rep.metadata:
                parts["metadata"] = metadata(catalog)
            for spec in rep.modalities:
                parts[spec.name] = load_modality(spec, catalog)
            fused, slices = fuse_modalities(parts)
            self.features = squash(fused)
            self.feature_names = [
                f"{name}:{i}" for name, sl in slices.items() for i in range(sl.stop - sl.start)
            ]
            self.info["modalities"] = {name: sl.stop - sl.start for name, sl in slices.items()}

    def _set(self, features: np.ndarray, prefix: str) -> None:
        self.features = features.astype(np.float32)
        self.feature_names = [f"{prefix}:{i}" for i in range(features.shape[1])]

    def _text_components(self, dim: int) -> np.ndarray:
        from recoworld.catalog.embeddings import item_embeddings

        return principal_components(item_embeddings(self.catalog), dim)

    def view(self, item: int, description_chars: int | None = None) -> dict[str, str]:
        """What an LLM user reads of ``item`` (keys: title, topics, creator, description)."""
        cat = self.catalog
        if self.kind == "semantic_id" and self._tokens is not None:
            return {
                "title": self._tokens[item],
                "topics": self._legend.get(self._prefix[item], ""),
                "creator": "",
                "description": "",
                "trusted": "1",  # generated by us: the prompt shows it unfenced
            }
        description = cat.descriptions[item]
        if description_chars is not None:
            description = description[:description_chars] if description_chars else ""
        view = {
            "title": cat.titles[item],
            "topics": ", ".join(cat.topic_list(item)),
            "creator": cat.creator_names[cat.creator[item]],
            "description": description,
        }
        if self.kind == "multimodal":
            year = 1970 + int(cat.release_time[item] // 365.25)
            meta = f"released {year}, {cat.duration[item]:.0f} min"
            view["description"] = f"{meta}. {view['description']}".strip()
        return view

    @property
    def trusted_names(self) -> bool:
        """Item names are generated code tokens (no need to fence them as foreign text)."""
        return self.kind == "semantic_id"

    def names(self) -> list[str]:
        """What an LLM user calls each item: its code tokens, or its title."""
        if self.kind == "semantic_id" and self._tokens is not None:
            return self._tokens
        return self.catalog.titles

    def short_text(self, item: int) -> str:
        """One line naming the item (contrastive scoring's continuation)."""
        v = self.view(item, description_chars=0)
        return f"{v['title']} ({v['topics']})" if v["topics"] else v["title"]

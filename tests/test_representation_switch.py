"""`representation: text | semantic_id | multimodal`: what the policy observes and what the
LLM user reads, on the small synthetic world."""

from __future__ import annotations

import os

import numpy as np
import pytest

from recoworld.catalog.representation import ItemRepresentation, principal_components, squash
from recoworld.envs.config import WorldConfig
from recoworld.envs.vector_env import RecoWorldVectorEnv
from recoworld.llm.prompts import chat_request
from recoworld.simulators.scoring import ContrastiveScorer


@pytest.fixture(scope="module", autouse=True)
def _cache(tmp_path_factory):
    """Embeddings and semantic IDs cached in a temporary directory for this module."""
    old = os.environ.get("RECOWORLD_CACHE")
    os.environ["RECOWORLD_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("RECOWORLD_CACHE", None)
    else:
        os.environ["RECOWORLD_CACHE"] = old


def _config(small_config: WorldConfig, representation: str, **rep) -> WorldConfig:
    raw = small_config.model_dump()
    raw["representation"] = representation
    raw["representations"].update(rep)
    return WorldConfig.model_validate(raw)


def _obs_dim(cfg: WorldConfig) -> tuple[int, RecoWorldVectorEnv]:
    env = RecoWorldVectorEnv(num_envs=3, config=cfg)
    obs, _ = env.reset(seed=0)
    assert env.single_observation_space["candidates"].contains(obs["candidates"][0])
    c = obs["candidates"]
    assert c.min() >= 0.0 and c.max() <= 1.0
    env.step(np.tile(np.arange(cfg.episode.slate_size), (3, 1)))
    return c.shape[-1], env


def test_policy_features_per_representation(small_config):
    base, env = _obs_dim(_config(small_config, "text"))
    env.close()
    with_text, env = _obs_dim(_config(small_config, "text", text_dim=8))
    assert with_text == base + 8
    assert env.world.encoder.candidate_feature_names.count("text:0") == 1
    env.close()
    sid_cfg = _config(small_config, "semantic_id")
    sid, env = _obs_dim(sid_cfg)
    s = sid_cfg.representations.semantic_id
    assert sid == base + s.levels * s.codebook_size
    feats = env.world.representation.features
    assert feats is not None and np.all(feats.sum(axis=1) == s.levels)  # one-hot per level
    env.close()
    multi, env = _obs_dim(_config(small_config, "multimodal"))
    assert multi == base + 16 + 12  # text components + the metadata modality
    assert env.world.representation.info["modalities"] == {"text": 16, "metadata": 12}
    env.close()


def test_llm_user_reads_semantic_ids_with_a_legend(small_config, small_catalog):
    rep = ItemRepresentation(
        small_catalog, "semantic_id", _config(small_config, "semantic_id").representations
    )
    view = rep.view(5)
    assert view["title"].startswith("<a") and view["creator"] == "" and view["description"] == ""
    assert view["topics"]  # the legend: main topics of the item's level-1 code
    request = chat_request(
        "llm_user_turn", request_id="r", persona="a viewer", summaries=[], memory=[],
        mindset="fine", instruction="", items=[{**rep.view(i), "note": ""} for i in (5, 6)],
    )  # fmt: skip
    text = request.messages[1].content
    assert view["title"] in text and small_catalog.titles[5] not in text  # unfenced tokens
    scorer = ContrastiveScorer(backend=None, catalog=small_catalog)  # type: ignore[arg-type]
    scorer.set_representation(rep)
    assert scorer.item_text(5).startswith(view["title"])


def test_multimodal_view_adds_metadata_and_user_modalities(small_config, small_catalog, tmp_path):
    vectors = np.random.default_rng(0).normal(size=(small_catalog.n_items, 3))
    np.save(tmp_path / "image.npy", vectors)
    cfg = _config(
        small_config, "multimodal",
        modalities=[{"name": "image", "path": str(tmp_path / "image.npy")}],
    )  # fmt: skip
    rep = ItemRepresentation(small_catalog, cfg.representation, cfg.representations)
    assert rep.info["modalities"] == {"text": 16, "metadata": 12, "image": 3}
    assert rep.features is not None and rep.features.shape == (small_catalog.n_items, 31)
    assert rep.view(0)["description"].startswith("released ")
    assert rep.view(0)["title"] == small_catalog.titles[0]


def test_principal_components_and_squash():
    x = np.random.default_rng(1).normal(size=(50, 6)) @ np.diag([5, 3, 1, 1, 1, 1])
    pcs = principal_components(x, 2)
    np.testing.assert_allclose(pcs.std(axis=0), 1.0, rtol=1e-5)
    np.testing.assert_allclose(principal_components(x, 2), pcs)  # deterministic signs
    assert abs(np.corrcoef(pcs[:, 0], x[:, 0])[0, 1]) > 0.9
    s = squash(np.array([-100.0, 0.0, 100.0]))
    np.testing.assert_allclose(s, [0.0, 0.5, 1.0], atol=1e-6)

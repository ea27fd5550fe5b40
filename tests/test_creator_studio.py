"""Creator studio on the parametric MovieLens world (fast); the LLM run is in tests/llm."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydantic import ValidationError

from recoworld.cli import main
from recoworld.envs.config import WorldConfig
from recoworld.evaluation.creator_studio import (
    NewItem,
    StudioConfig,
    add_item,
    comparable_items,
    evaluate_item,
    format_report,
)

ITEM = {
    "title": "Midnight Circuit",
    "description": "A hacker and a detective race through a neon city to stop a rogue AI.",
    "topics": ["Sci-Fi", "Thriller", "Action"],
    "creator": "Nova Pictures",
    "quality": 0.75,
}


def _world(**update) -> WorldConfig:
    raw = {
        "catalog": {"source": "movielens"},
        "users": {"source": "movielens", "fitted_weights": False},
        "segments": "movielens",
        "candidates": {"n_candidates": 12},
    }
    raw.update(update)
    return WorldConfig.model_validate(raw)


def test_add_item_and_comparables(movielens):
    cat = movielens.catalog
    item = NewItem.model_validate(ITEM)
    comps = comparable_items(cat, item.topics, 3)
    assert len(comps) == 3
    assert all(set(item.topics) <= set(cat.topic_list(int(c))) for c in comps)
    assert np.all(cat.popularity[comps] >= np.median(cat.popularity))
    new = add_item(cat, item, popularity=123.0)
    assert new.n_items == cat.n_items + 1
    assert new.titles[-1] == "Midnight Circuit" and new.topic_list(new.n_items - 1) == sorted(
        item.topics, key=cat.topic_names.index
    )
    assert new.creator_names[new.creator[-1]] == "Nova Pictures"
    assert new.popularity[-1] == 123.0 and new.release_time[-1] == cat.release_time.max()
    cold = add_item(cat, item.model_copy(update={"popularity": 0.0}), popularity=123.0)
    assert cold.popularity[-1] == 0.0
    with pytest.raises(ValueError, match="not in the catalog"):
        add_item(cat, item.model_copy(update={"topics": ["Cooking"]}))


def test_evaluate_item_parametric_is_paired_and_deterministic():
    cfg = StudioConfig(world=_world(), segment="students", users=40, comparables=2)
    a = evaluate_item(NewItem.model_validate(ITEM), cfg)
    b = evaluate_item(NewItem.model_validate(ITEM), cfg)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    for name in ("click", "watch", "like", "follow"):
        r = a["rates"][name]
        assert 0.0 <= r["new"]["mean"] <= 1.0
        assert r["difference"]["mean"] == pytest.approx(r["new"]["mean"] - r["comparables"]["mean"])
    text = format_report(a)
    assert "segment **students**" in text.lower() or "Segment **students**" in text
    assert "| click rate |" in text and len(a["samples"]) == 5


def test_studio_errors():
    with pytest.raises(ValueError, match="not among the world's segments"):
        evaluate_item(
            NewItem.model_validate(ITEM), StudioConfig(world=_world(), segment="astronauts")
        )
    with pytest.raises(ValueError, match="has no segments"):
        evaluate_item(
            NewItem.model_validate(ITEM),
            StudioConfig(world=_world(segments=None), segment="students"),
        )
    with pytest.raises(ValidationError, match="repeated"):
        NewItem.model_validate({**ITEM, "topics": ["Action", "Action"]})
    with pytest.raises(ValidationError, match="policy"):
        StudioConfig(world=_world(), segment="students", policy="oracle")


def test_cli_test_item_parametric(tmp_path, capsys):
    item = tmp_path / "item.yaml"
    item.write_text(json.dumps(ITEM))
    world = tmp_path / "world.yaml"
    world.write_text(json.dumps({"world": _world().model_dump(mode="json")}))
    out = tmp_path / "studio"
    code = main(["population", "test-item", "--item", str(item), "--segment", "students",
                 "--users", "20", "--comparables", "1", "--config", str(world),
                 "--simulator", "parametric", "--out", str(out)])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "Creator studio" in printed and "click rate" in printed
    assert (out / "studio.md").is_file() and (out / "studio.json").is_file()
    bad = tmp_path / "bad.yaml"
    bad.write_text(json.dumps({**ITEM, "topics": ["Cooking"]}))
    code = main(["population", "test-item", "--item", str(bad), "--segment", "students",
                 "--config", str(world), "--simulator", "parametric"])  # fmt: skip
    assert code == 2 and "not in the catalog" in capsys.readouterr().err

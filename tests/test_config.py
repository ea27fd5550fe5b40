from __future__ import annotations

import pytest
from pydantic import ValidationError

from recoworld.envs.config import WorldConfig, load_world_config, resolve_world_config


def test_defaults_validate_and_roundtrip_yaml(tmp_path):
    cfg = WorldConfig()
    path = tmp_path / "world.yaml"
    path.write_text(cfg.to_yaml())
    assert load_world_config(path) == cfg


def test_partial_yaml_keeps_defaults(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text("world:\n  episode:\n    slate_size: 5\n")
    cfg = load_world_config(path)
    assert cfg.episode.slate_size == 5
    assert cfg.candidates.n_candidates == WorldConfig().candidates.n_candidates


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"episode": {"slate_size": 0}}, "slate_size"),
        ({"candidates": {"n_candidates": "many"}}, "n_candidates"),
        ({"users": {"satisfaction_init": 1.5}}, "satisfaction_init"),
        ({"users": {"colour": "blue"}}, "colour"),
        ({"reward": {"click": "x"}}, "click"),
        ({"simulator": "telepathic"}, "simulator"),
        ({"candidates": {"mix": {"popular": -1}}}, "popular"),
    ],
)
def test_bad_config_names_the_field(data, field):
    with pytest.raises(ValidationError) as err:
        WorldConfig.model_validate(data)
    assert field in str(err.value)


def test_cross_field_errors_are_explained():
    with pytest.raises(ValidationError, match=r"slate_size=9 exceeds"):
        WorldConfig.model_validate(
            {"episode": {"slate_size": 9}, "candidates": {"n_candidates": 5}}
        )
    with pytest.raises(ValidationError, match="needs a MovieLens catalog"):
        WorldConfig.model_validate({"users": {"source": "movielens"}})
    with pytest.raises(ValidationError, match=r"catalog\.source"):
        WorldConfig.model_validate({"catalog": {"source": "/no/such/place"}})


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="config file not found"):
        load_world_config(tmp_path / "nope.yaml")
    bad = tmp_path / "list.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="expected a mapping"):
        load_world_config(bad)


def test_overrides_are_merged_before_validation():
    cfg = resolve_world_config(
        {"users": {"source": "movielens"}}, {"catalog": {"source": "movielens"}}
    )
    assert cfg.catalog.source == "movielens" and cfg.users.source == "movielens"

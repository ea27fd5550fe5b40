"""The algorithm registry is the one extension point: an algorithm defined in this test
module (its settings model, its RLlib config, its reload) trains through `train` after one
`register_algorithm` call, with no edit to RecoWorld's files."""

from __future__ import annotations

import json

import pytest
from pydantic import Field, ValidationError

from recoworld.core.config import StrictModel
from recoworld.envs.config import WorldConfig
from recoworld.rl.common.recommender import module_from_checkpoint, module_recommender
from recoworld.rl.config import TrainConfig
from recoworld.rl.ppo.algorithm import build_algorithm_config
from recoworld.rl.registry import (
    ALGORITHMS,
    AlgorithmSpec,
    algorithm_spec,
    load_recommender,
    register_algorithm,
)
from recoworld.rl.trainer import train


class ToySettings(StrictModel):
    """The toy algorithm's own section: a smaller slate module and a lower learning rate."""

    hidden: int = Field(8, ge=1)
    lr_scale: float = Field(0.5, gt=0.0)


def build_toy_config(world: WorldConfig, cfg: TrainConfig) -> object:
    toy: ToySettings = cfg.algo_settings
    base = build_algorithm_config(world, cfg)
    base.training(lr=cfg.ppo.lr * toy.lr_scale)
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    module_class = base.rl_module_spec.module_class
    widths = {"hidden": [toy.hidden], "value_hidden": [toy.hidden]}
    base.rl_module(rl_module_spec=RLModuleSpec(module_class=module_class, model_config=widths))
    return base


TOY_SPEC = AlgorithmSpec(
    build_config=build_toy_config,
    recommender=module_recommender,
    from_checkpoint=module_from_checkpoint,
    settings=ToySettings,
)


@pytest.fixture
def toy_registered():
    register_algorithm("toy", TOY_SPEC)
    yield
    ALGORITHMS.pop("toy", None)


def test_register_validates_names_and_duplicates(toy_registered):
    assert algorithm_spec("toy") is TOY_SPEC
    with pytest.raises(ValueError, match="already registered"):
        register_algorithm("toy", TOY_SPEC)
    register_algorithm("toy", TOY_SPEC, replace=True)
    with pytest.raises(ValueError, match="identifier"):
        register_algorithm("not a name", TOY_SPEC)
    with pytest.raises(ValueError, match="unknown algorithm 'nope'"):
        algorithm_spec("nope")


def test_train_config_sections_come_from_the_registry(toy_registered):
    cfg = TrainConfig.model_validate({"algo": "toy", "toy": {"hidden": 4}})
    assert isinstance(cfg.algo_settings, ToySettings) and cfg.algo_settings.hidden == 4
    # the chosen algorithm's section defaults; a built-in algorithm's section validates too
    assert TrainConfig(algo="toy").algo_settings == ToySettings()
    hrl = TrainConfig.model_validate({"algo": "hrl", "hrl": {"goal_levels": 3}})
    assert hrl.algo_settings.goal_levels == 3 and hrl.hrl is hrl.algo_settings
    assert TrainConfig().algo_settings is None  # ppo's settings are the common `ppo:` field
    with pytest.raises(ValidationError, match="unknown algorithm 'toyy'"):
        TrainConfig(algo="toyy")
    with pytest.raises(ValidationError, match="unknown field 'tyo'"):
        TrainConfig.model_validate({"algo": "toy", "tyo": {}})
    with pytest.raises(ValidationError, match="hidden"):
        TrainConfig.model_validate({"algo": "toy", "toy": {"hidden": 0}})
    # the config round-trips through its JSON dump (what the run manifest records)
    dumped = json.loads(json.dumps(cfg.model_dump(mode="json")))
    assert dumped["toy"] == {"hidden": 4, "lr_scale": 0.5}
    assert TrainConfig.model_validate(dumped) == cfg


@pytest.mark.slow
def test_a_toy_algorithm_trains_through_the_registry_alone(
    toy_registered, ray_session, small_config, tmp_path
):
    world = small_config.model_copy(
        update={"episode": small_config.episode.model_copy(update={"text_info": "none"})}
    )
    cfg = TrainConfig.model_validate(
        {
            "algo": "toy",
            "toy": {"hidden": 8},
            "iterations": 1,
            "num_envs": 8,
            "eval_every": 1,
            "eval_episodes": 4,
            "eval_users": 4,
            "ppo": {"train_batch_size": 64, "minibatch_size": 32, "num_epochs": 1},
        }
    )
    out = tmp_path / "toy"
    summary = train(world, cfg, out, show_progress=False)
    assert summary["episodes"] == 4
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["train"]["algo"] == "toy"
    assert manifest["config"]["train"]["toy"]["hidden"] == 8
    rec = load_recommender(out / "checkpoint", "toy")  # algo read from the manifest
    module = rec.module if hasattr(rec, "module") else None
    assert module is not None
    # the toy's settings reached the module: its hidden layer has 8 units
    widths = {p.shape[0] for p in module.parameters() if p.ndim == 2}
    assert 8 in widths

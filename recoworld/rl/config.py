"""What ``recoworld train`` runs: ``TrainConfig`` (the ``train:`` section of a run YAML).

The common settings (iterations, env runners, evaluation, checkpoints, PPO and the slate
module) are fields; each algorithm's own section (``hrl:``, ``slate_ts:``, ...) is validated
by the ``settings`` model of the algorithm registered under that name
(``recoworld.rl.registry``), so a new algorithm brings its section with it.
``load_train_run`` reads a run YAML with ``world:`` and ``train:`` sections.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from recoworld.core.config import StrictModel, read_yaml_mapping
from recoworld.envs.config import WorldConfig, resolve_world_config
from recoworld.rl.common.config import ModelSettings
from recoworld.rl.ppo.config import PPOSettings
from recoworld.rl.registry import ALGORITHMS, algorithm_spec


class TrainConfig(StrictModel):
    """What ``recoworld train`` runs (the ``train:`` section of a run YAML)."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    algo: str = Field(
        "ppo",
        description="The algorithm, a name registered in ``recoworld.rl.registry`` (built in: "
        "ppo, hrl, slate_ts, rliv_ua).",
    )
    iterations: int = Field(30, ge=1)
    seed: int = 0
    num_envs: int = Field(64, ge=1, description="Users stepped together per env runner.")
    vectorize: Literal["vector_entry_point", "sync"] = Field(
        "vector_entry_point",
        description="'vector_entry_point': RecoWorld's batched vector env (B users in one "
        "call); 'sync': gymnasium's SyncVectorEnv over single RecoWorld-v0 envs (slower; "
        "the generic path any Gymnasium env takes).",
    )
    num_env_runners: int = Field(0, ge=0, description="0 = sample in the driver process.")
    num_cpus: int = Field(2, ge=1, description="CPUs given to ray.init (when it starts Ray).")
    torch_threads: int = Field(1, ge=1)
    ppo: PPOSettings = Field(default_factory=PPOSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    eval_every: int = Field(5, ge=0, description="Evaluate every N iterations (0: at the end).")
    eval_episodes: int = Field(200, ge=1, description="User lives per evaluation.")
    eval_users: int = Field(64, ge=1)
    eval_seed: int = Field(10_000, description="Evaluation seed (same users every time).")
    checkpoint_every: int = Field(10, ge=0, description="0: only the final checkpoint.")

    @field_validator("algo")
    @classmethod
    def _registered(cls, algo: str) -> str:
        if algo not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {algo!r}; registered: {sorted(ALGORITHMS)}")
        return algo

    @model_validator(mode="after")
    def _algorithm_sections(self) -> TrainConfig:
        """Validate every algorithm section (``hrl:``, ...) with its registered settings
        model; the chosen algorithm's section defaults to that model's defaults."""
        extra = self.__pydantic_extra__ if self.__pydantic_extra__ is not None else {}
        for name, value in list(extra.items()):
            if name not in ALGORITHMS:
                raise ValueError(
                    f"unknown field {name!r}: neither a TrainConfig field nor the section of a "
                    f"registered algorithm ({sorted(ALGORITHMS)})"
                )
            settings = algorithm_spec(name).settings
            if settings is None:
                raise ValueError(f"{name}: algorithm {name!r} takes no settings section")
            if not isinstance(value, settings):
                extra[name] = settings.model_validate(value)
        settings = algorithm_spec(self.algo).settings
        if settings is not None and self.algo not in extra:
            extra[self.algo] = settings()
        return self

    @property
    def algo_settings(self) -> Any:
        """The chosen algorithm's settings (its section), or None when it has none."""
        return (self.__pydantic_extra__ or {}).get(self.algo)


def load_train_run(
    path: str | Path | None, overrides: dict[str, Any] | None = None
) -> tuple[WorldConfig, TrainConfig]:
    """(world, train) configs from a run YAML with ``world:`` and ``train:`` sections."""
    raw = read_yaml_mapping(path) if path else {}
    unknown = set(raw) - {"world", "train"}
    if unknown:
        raise ValueError(f"{path}: unknown top-level sections {sorted(unknown)}")
    train = dict(raw.get("train") or {})
    train.update(overrides or {})
    return resolve_world_config(raw.get("world") or {}), TrainConfig.model_validate(train)

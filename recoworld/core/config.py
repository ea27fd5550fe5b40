"""The base of every config model and YAML reading.

``StrictModel`` forbids unknown fields (a typo in a YAML file fails with an error that names
the field) and validates assignments. ``read_yaml_mapping`` reads a YAML file whose top
level must be a mapping; ``deep_merge`` merges nested override dicts. Each package keeps its
own config models beside the code they configure; ``recoworld.envs.config.WorldConfig``
composes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Base for all configs: unknown fields are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """A YAML file whose top level must be a mapping (clear errors otherwise)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    data: Any = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def deep_merge(into: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            deep_merge(into[key], value)
        else:
            into[key] = value

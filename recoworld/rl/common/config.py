"""Settings of the slate scoring module shared by every algorithm that uses it."""

from __future__ import annotations

from pydantic import Field

from recoworld.core.config import StrictModel


class ModelSettings(StrictModel):
    """The slate RLModule's network sizes."""

    hidden: list[int] = Field(default_factory=lambda: [128, 128], min_length=1)
    value_hidden: list[int] = Field(default_factory=lambda: [128, 128], min_length=1)

"""Settings of the slate scoring module shared by every algorithm that uses it."""

from __future__ import annotations

from pydantic import Field

from recoworld.core.config import StrictModel


class ModelSettings(StrictModel):
    """The slate RLModule's network sizes and input/output options
    (``recoworld.rl.common.slate_module``)."""

    hidden: list[int] = Field(default_factory=lambda: [128, 128], min_length=1)
    value_hidden: list[int] = Field(default_factory=lambda: [128, 128], min_length=1)
    relative_features: bool = Field(
        True,
        description="Also give the scorer each candidate feature minus its mean over the "
        "slate's candidates (e.g. how much more popular than the other candidates).",
    )
    linear_path: bool = Field(
        True,
        description="Add a linear score on the candidate's own features to the MLP's "
        "(zero-initialised): ranking by one feature is then a single weight.",
    )
    value_scale: float | None = Field(
        None,
        gt=0,
        description="The value head predicts V / value_scale; None: 1 / (1 - gamma), so it "
        "predicts returns in units of one step's reward (the head need not grow to "
        "returns of tens).",
    )

    def module_config(self, gamma: float) -> dict:
        """The slate module's ``model_config`` (``value_scale`` resolved with ``gamma``)."""
        scale = self.value_scale if self.value_scale is not None else 1.0 / max(1.0 - gamma, 1e-3)
        return {"hidden": self.hidden, "value_hidden": self.value_hidden,
                "relative_features": self.relative_features, "linear_path": self.linear_path,
                "value_scale": scale}  # fmt: skip

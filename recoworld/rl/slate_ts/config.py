"""Settings of slate Thompson sampling (``recoworld train --algo slate_ts``)."""

from __future__ import annotations

from pydantic import Field

from recoworld.core.config import StrictModel


class SlateTSSettings(StrictModel):
    """Slate Thompson sampling (``recoworld.rl.slate_ts.algorithm``): a variational Bayesian GRU
    slate model (``recoworld.rl.slate_ts.model``) whose posterior is refitted on every
    slate collected so far, acting by Thompson sampling."""

    item_dim: int = Field(16, ge=1, description="Item vector size (the paper: 25).")
    hidden: int = Field(16, ge=1, description="GRU state size (the paper: 25).")
    lr: float = Field(0.01, gt=0, description="Adam learning rate of the variational params.")
    exploration: str = Field(
        "in_slate", pattern="^(in_slate|plain|greedy)$",
        description="'in_slate': one posterior draw per slot (interleaved rankings); "
        "'plain': one draw per slate; 'greedy': the posterior mean.",
    )  # fmt: skip
    samples: int = Field(
        0, ge=0, description="Posterior draws per slate for in_slate (0: the slate size)."
    )
    score: str = Field("distance", pattern="^(distance|dot)$")
    likelihood: str = Field(
        "slate", pattern="^(slate|all_items)$",
        description="'slate': categorical over no-click + the items shown; 'all_items': "
        "over no-click + the whole catalog.",
    )  # fmt: skip
    grouping: str = Field(
        "topic", pattern="^(topic|semantic_id|none)$",
        description="Item groups of the hierarchical prior: the item's first topic, its "
        "semantic-ID prefix (first code), or one group.",
    )  # fmt: skip
    steps_per_iteration: int = Field(512, ge=1, description="Env steps collected per iteration.")
    updates_per_iteration: int = Field(50, ge=1, description="Gradient steps per iteration.")
    minibatch_size: int = Field(256, ge=1)
    buffer_size: int = Field(
        200_000, ge=1, description="Most recent rows kept to fit the posterior on."
    )
    prior_item_scale: float = Field(0.2, gt=0, description="Prior within-group item spread.")
    prior_group_mean_scale: float = Field(0.5, gt=0)
    prior_weight_scale: float = Field(1.0, gt=0, description="Prior scale of GRU weights.")
    prior_bias_scale: float = Field(2.0, gt=0, description="Prior scale of no-click biases.")

"""Evaluation metrics over logged steps: pure numpy functions, no simulator state.

This package owns the metric definitions the evaluation runner reports. One row of the inputs is
one logged user-step (N rows, time ordered within an episode); a slate has k slots, a request M
candidates; items are integer catalog indices in ``[0, n_items)``. It covers

* ranking quality against ground-truth relevance: ``dcg``, ``ndcg_at_k``, ``reciprocal_rank``,
  ``hit_at_k``, ``reward_weighted_ndcg``;
* beyond accuracy: ``intra_list_diversity``, ``self_information``/``novelty``,
  ``profile_distance``/``unfamiliarity`` (novelty for one user: distance from what it
  consumed), ``most_popular_items``/``serendipity``, ``catalog_coverage``;
* exposure fairness: ``exposure_counts``, ``gini``, ``exposure_entropy``, ``lorenz_curve``;
* joint fairness/relevance (DPFR, Rampisela et al., WWW 2025): ``pareto_front``,
  ``frontier_reference_point``, ``dpfr``, ``estimate_frontier``;
* engagement, retention and instruction following per episode: ``per_episode``,
  ``engagement_per_session``, ``retention``, ``survival_by_session``,
  ``instruction_following``.

``shown`` (optional, [N, k] bool) marks the slots that actually showed an item (a duplicate slot
shows nothing). Item ids of slots that are not shown are ignored, so they may hold padding such
as -1. Everything is vectorised; invalid input raises ``ValueError`` naming the argument.
"""

from __future__ import annotations

from recoworld.metrics.beyond_accuracy import (
    catalog_coverage,
    intra_list_diversity,
    most_popular_items,
    novelty,
    profile_distance,
    self_information,
    serendipity,
    unfamiliarity,
)
from recoworld.metrics.engagement import (
    engagement_per_session,
    instruction_following,
    per_episode,
    retention,
    survival_by_session,
)
from recoworld.metrics.fairness import (
    dpfr,
    estimate_frontier,
    exposure_counts,
    exposure_entropy,
    frontier_reference_point,
    gini,
    lorenz_curve,
    pareto_front,
)
from recoworld.metrics.ranking import (
    dcg,
    hit_at_k,
    ndcg_at_k,
    reciprocal_rank,
    reward_weighted_ndcg,
    top1_auc,
)

__all__ = [
    "catalog_coverage",
    "dcg",
    "dpfr",
    "engagement_per_session",
    "estimate_frontier",
    "exposure_counts",
    "exposure_entropy",
    "frontier_reference_point",
    "gini",
    "hit_at_k",
    "instruction_following",
    "intra_list_diversity",
    "lorenz_curve",
    "most_popular_items",
    "ndcg_at_k",
    "novelty",
    "pareto_front",
    "per_episode",
    "profile_distance",
    "reciprocal_rank",
    "retention",
    "reward_weighted_ndcg",
    "self_information",
    "serendipity",
    "survival_by_session",
    "top1_auc",
    "unfamiliarity",
]

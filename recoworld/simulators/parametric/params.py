"""The parametric user model's parameters as one packed float64 vector for the kernels.

Kept apart from the kernels so that it can be imported without numba.
"""

from __future__ import annotations

import numpy as np

from recoworld.simulators.parametric.config import ParametricUserConfig

# Model parameters handed to the compiled kernels as one float64 vector, in this order.
PARAM_NAMES = (
    "interest_scale", "latent_weight", "quality_weight", "creator_weight", "novelty_weight",
    "novelty_pivot", "novelty_exposure_scale", "fatigue_weight", "instruction_weight",
    "instruction_memory", "choice_temperature", "no_click_utility", "position_bias",
    "watch_slope", "watch_offset", "watch_noise", "like_bias", "like_watch_weight",
    "follow_bias", "follow_affinity_weight", "gift_bias", "gift_affinity_weight",
    "affinity_lr", "fatigue_decay", "fatigue_show_rate", "fatigue_click_rate",
    "interest_consumption_lr", "satisfaction_rate", "leave_bias", "leave_boredom_weight",
    "leave_novelty_weight", "leave_depth_weight", "instruction_prob",
    "max_instructions_per_session", "popularity_weight", "era_weight", "era_scale",
)  # fmt: skip
(P_INTEREST, P_LATENT, P_QUALITY, P_CREATOR, P_NOVELTY, P_PIVOT, P_EXPOSURE_SCALE, P_FATIGUE,
 P_INSTRUCTION, P_INSTR_MEMORY, P_TEMPERATURE, P_NO_CLICK, P_POSITION, P_WATCH_SLOPE,
 P_WATCH_OFFSET, P_WATCH_NOISE, P_LIKE_BIAS, P_LIKE_WATCH, P_FOLLOW_BIAS, P_FOLLOW_AFF,
 P_GIFT_BIAS, P_GIFT_AFF, P_AFF_LR, P_FATIGUE_DECAY, P_FATIGUE_SHOW, P_FATIGUE_CLICK,
 P_INTEREST_LR, P_SAT_RATE, P_LEAVE_BIAS, P_LEAVE_BORED, P_LEAVE_NOVELTY, P_LEAVE_DEPTH,
 P_INSTR_PROB, P_MAX_INSTR, P_POPULARITY, P_ERA, P_ERA_SCALE) = range(len(PARAM_NAMES))  # fmt: skip


def pack_params(config: ParametricUserConfig) -> np.ndarray:
    return np.array([float(getattr(config, n)) for n in PARAM_NAMES], dtype=np.float64)

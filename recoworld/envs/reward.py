"""Reward composition: a configured weighted sum of responses and retention events.

reward_b = Σ_j [click·c_bj + watch·w_bj + like·l_bj + follow·f_bj + gift·g_bj]
           + leave·[user left the session by choice] + return_bonus·[user came back]

The per-term breakdown is returned too so logs and reports can show where reward came from.
"""

from __future__ import annotations

import numpy as np

from recoworld.envs.config import RewardConfig
from recoworld.simulators.base import Responses

REWARD_TERMS = ("click", "watch", "like", "follow", "gift", "leave", "return_bonus")


def compose_reward(
    responses: Responses, left: np.ndarray, returned: np.ndarray, config: RewardConfig
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(reward [B] float32, {term: [B] weighted contribution})."""
    terms = {
        "click": config.click * responses.click.sum(1),
        "watch": config.watch * responses.watch.sum(1),
        "like": config.like * responses.like.sum(1),
        "follow": config.follow * responses.follow.sum(1),
        "gift": config.gift * responses.gift.sum(1),
        "leave": config.leave * left,
        "return_bonus": config.return_bonus * returned,
    }
    terms = {k: np.asarray(v, dtype=np.float32) for k, v in terms.items()}
    total = np.sum(np.stack(list(terms.values())), axis=0).astype(np.float32)
    return total, terms

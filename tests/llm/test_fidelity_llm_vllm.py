"""The card's LLM row on the real vLLM engine (embedded SmolLM2): a handful of users at 1:1,
uniform negatives, through the LLM user's own respond()."""

from __future__ import annotations

import numpy as np
import pytest

from recoworld.catalog.splits import training_view
from recoworld.evaluation.fidelity_card import SIMULATOR, simulated_users
from recoworld.evaluation.fidelity_llm import HYBRID, CardLLMConfig, CardLLMRow, llm_section
from recoworld.evaluation.fidelity_protocol import agent4rec_split, popularity_bin_of
from recoworld.simulators.parametric.movielens_fit import fresh_state

pytestmark = pytest.mark.slow


def test_llm_row_on_vllm(vllm_backend, movielens):
    data = movielens
    s = agent4rec_split(data.user_index, data.item_index, data.rating, data.catalog.n_items,
                        max_users=40, seed=0)  # fmt: skip
    view = training_view(data, s.train)
    model = simulated_users(view)
    counts = view.catalog.popularity.astype(np.float64)
    bins = popularity_bin_of(counts, s.known_items)

    def sim(lists):
        return model.relevance(fresh_state(model, lists.users), lists.items).astype(np.float64)

    nonllm = {"all-yes": None, "all-no": None, SIMULATOR: sim,
              "popularity": lambda lists: counts[lists.items]}  # fmt: skip
    cfg = CardLLMConfig(rows=[CardLLMRow(label="smollm2")], users=4, calibration_users=3,
                        negatives=["uniform"])  # fmt: skip
    scored = vllm_backend.stats["scored"]
    sec = llm_section(cfg, data, s, view, model.population, nonllm, SIMULATOR, bins, seed=0,
                      n_boot=100, backends={"smollm2": vllm_backend})  # fmt: skip
    info = sec["models"]["smollm2"]
    assert info["valid_share"] == 1.0
    assert info["pairs_sent_to_model"] == vllm_backend.stats["scored"] - scored > 0
    assert info["films_decided"] == 7 * 20 and info["pairs_per_s"] > 0
    entry = sec["results"]["uniform"]["1:1"]
    assert entry["hybrid_equals_reference"] is True
    acc = entry["scorers"]["smollm2"]["accuracy"]["mean"]
    assert 0.0 <= acc <= 1.0 and HYBRID in entry["scorers"]
    print(f"\ncard LLM row on SmolLM2: accuracy {acc:.3f}, {info['pairs_per_s']:.1f} pairs/s")

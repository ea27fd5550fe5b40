"""The card's LLM rows without an engine: subsets, marginal-gain arithmetic on hand-built
per-user metrics, the simulator's consume probability (= relevance for the parametric user),
the whole section on a scripted backend, and the CLI switch."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from pydantic import ValidationError

from recoworld.catalog.splits import training_view
from recoworld.evaluation.fidelity_card import (
    SIMULATOR,
    collaborative_scores,
    llm_markdown,
    simulated_users,
)
from recoworld.evaluation.fidelity_llm import (
    HYBRID,
    CardLLMConfig,
    CardLLMRow,
    consume_probability,
    llm_section,
    marginal_gains,
    subset,
)
from recoworld.evaluation.fidelity_protocol import (
    agent4rec_split,
    discrimination_lists,
    paired,
    popularity_bin_of,
)
from recoworld.llm.base import LLMBackend
from recoworld.llm.config import LLMConfig
from recoworld.simulators.parametric.movielens_fit import fresh_state


class ScriptedScorer(LLMBackend):
    """Log-probs from a rule: a continuation mentioning a genre the prefix loves scores
    higher. Counts what it is asked."""

    name = "scripted"

    @property
    def model_id(self) -> str:
        return "scripted"

    def _complete(self, requests, schema):  # pragma: no cover - never asked to generate
        raise AssertionError("the card's LLM rows must not generate")

    def _continuation_logprobs(self, prefixes, continuations):
        out = []
        for p, c in zip(prefixes, continuations, strict=True):
            loved = p.removeprefix("You love ").rstrip(".\n").replace(" and ", ", ").split(", ")
            hits = sum(g in c for g in loved if g)
            out.append(np.full(3, -2.0 + 0.5 * hits, dtype=np.float32))
        return out


def test_subset_is_seeded_sorted_and_complete_when_small():
    users = np.arange(100, 160)
    a, b = subset(users, 10, 0, 1), subset(users, 10, 0, 1)
    assert np.array_equal(a, b) and len(a) == 10 and np.all(np.diff(a) > 0)
    assert set(a) <= set(users)
    assert not np.array_equal(a, subset(users, 10, 1, 1))
    assert not np.array_equal(a, subset(users, 10, 0, 2))
    assert np.array_equal(subset(users, 99, 0, 1), users)


def test_marginal_gain_against_the_best_nonllm_decider():
    """Hand-built per-user metrics: the best non-LLM decider is chosen per metric by its
    mean, and the gain is the paired mean difference over users."""
    acc = {"a": [0.5, 0.5, 0.5, 0.5], "b": [0.9, 0.7, 0.8, 0.6], "c": [0.6, 0.6, 0.7, 0.7],
           "llm": [0.8, 0.8, 0.8, 0.8]}  # fmt: skip
    f1 = {"a": [0.7, 0.7, 0.7, 0.7], "b": [0.2, 0.3, 0.2, 0.3], "c": [0.6, 0.6, 0.6, 0.6],
          "llm": [0.5, 0.6, 0.7, 0.8]}  # fmt: skip
    metrics = {n: {"accuracy": np.array(acc[n]), "f1": np.array(f1[n])} for n in acc}
    g = marginal_gains(metrics, ["llm"], ["a", "b", "c"], "c", 200, 0)["llm"]
    assert g["best_nonllm"] == {"accuracy": "b", "f1": "a"}
    assert g["minus_best"]["accuracy"]["mean"] == pytest.approx(0.8 - 0.75)
    assert g["minus_best"]["f1"]["mean"] == pytest.approx(0.65 - 0.7)
    assert g["minus_reference"]["accuracy"]["mean"] == pytest.approx(0.8 - 0.65)
    # the same CI as the card's paired bootstrap
    ref = paired(metrics["llm"]["f1"], metrics["a"]["f1"], 200, 0)
    assert g["minus_best"]["f1"] == ref


def test_llm_rows_need_score_mode():
    with pytest.raises(ValidationError, match="score mode"):
        CardLLMRow(llm_user={"mode": "generate"})
    cfg = CardLLMConfig.for_models(["smollm2", "gemma3-270m"], users=5)
    assert [r.llm.model for r in cfg.rows] == ["embedded", "gemma3-270m"]
    assert cfg.users == 5 and not cfg.rows[0].llm.cache and not cfg.rows[0].llm_user.narrate


@pytest.fixture(scope="module")
def fitted(movielens):
    data = movielens
    s = agent4rec_split(data.user_index, data.item_index, data.rating, data.catalog.n_items,
                        max_users=60, seed=0)  # fmt: skip
    view = training_view(data, s.train)
    return data, s, view, simulated_users(view)


def test_consume_probability_is_relevance_for_the_parametric_user(fitted):
    data, s, _, model = fitted
    lists = discrimination_lists(data.user_index, data.item_index, s, 1, seed=0)
    ev = lists.take(s.evaluation[:6])
    got = consume_probability(model, ev.users, ev.items)
    want = model.relevance(fresh_state(model, ev.users), ev.items)
    assert got.shape == ev.items.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_llm_section_on_a_scripted_backend(fitted):
    data, s, view, model = fitted
    counts = view.catalog.popularity.astype(np.float64)
    bins = popularity_bin_of(counts, s.known_items)
    cf = collaborative_scores(view)

    def sim(lists):
        return model.relevance(fresh_state(model, lists.users), lists.items).astype(np.float64)

    nonllm = {"all-yes": None, "all-no": None, SIMULATOR: sim,
              "popularity": lambda lists: counts[lists.items],
              "MF (implicit ALS)": lambda lists: cf["MF (implicit ALS)"][lists.users[:, None],
                                                                         lists.items]}  # fmt: skip
    cfg = CardLLMConfig(rows=[CardLLMRow(label="scripted row")], users=6, calibration_users=4)
    backend = ScriptedScorer(LLMConfig(cache=False))
    sec = llm_section(cfg, data, s, view, model.population, nonllm, SIMULATOR, bins, seed=0,
                      n_boot=100, backends={"scripted row": backend})  # fmt: skip
    assert sec["users"] == 6 and sec["calibration_users"] == 4
    assert set(sec["results"]) == {"uniform", "popularity"}
    info = sec["models"]["scripted row"]
    assert info["valid_share"] == 1.0 and info["engine_start_s"] is None
    # every (user, film) pair of both kinds, both prompts, minus repeats, went to the model
    assert 0 < info["pairs_sent_to_model"] == backend.stats["scored"] <= 2 * 2 * 10 * 20
    assert info["films_decided"] == 2 * 10 * 20
    for kind in ("uniform", "popularity"):
        entry = sec["results"][kind]["1:1"]
        assert (entry["positives"], entry["negatives"]) == (10, 10)
        assert entry["hybrid_equals_reference"] is True
        names = set(entry["scorers"])
        assert {"scripted row", HYBRID, SIMULATOR, "all-yes"} <= names
        g = entry["gains"]["scripted row"]
        best = g["best_nonllm"]["accuracy"]
        assert best in nonllm
        assert g["minus_best"]["accuracy"]["mean"] == pytest.approx(
            entry["scorers"]["scripted row"]["accuracy"]["mean"]
            - entry["scorers"][best]["accuracy"]["mean"]
        )
        assert entry["thresholds"]["all-yes"] is None
        assert np.isfinite(entry["thresholds"]["scripted row"])
    # rendering: the LLM section says what these rows are
    sec.pop("_per_user")
    text = "\n".join(llm_markdown({"llm": sec}))
    assert "not the fidelity of an LLM user simulator" in text and "scripted row" in text
    assert "## LLM rows" in text and "pairs/s" in text


def test_score_scale_is_chosen_on_calibration_users_without_new_model_calls(fitted):
    data, s, view, model = fitted
    bins = popularity_bin_of(view.catalog.popularity.astype(np.float64), s.known_items)

    def sim(lists):
        return model.relevance(fresh_state(model, lists.users), lists.items).astype(np.float64)

    nonllm = {"all-yes": None, "all-no": None, SIMULATOR: sim}

    def run(scales, own_scale=4.0):
        row = CardLLMRow(label="r", score_scales=scales,
                         llm_user={"narrate": False, "score_scale": own_scale})  # fmt: skip
        cfg = CardLLMConfig(rows=[row], users=6, calibration_users=4, negatives=["uniform"],
                            hybrid=False)  # fmt: skip
        backend = ScriptedScorer(LLMConfig(cache=False))
        sec = llm_section(cfg, data, s, view, model.population, nonllm, SIMULATOR, bins,
                          seed=0, n_boot=100, backends={"r": backend})  # fmt: skip
        return sec, backend.stats["scored"]

    sec, sent = run([0.0, 1.0, 16.0])
    info = sec["models"]["r"]["score_scale"]
    tried = info["calibration_objective"]
    assert set(tried) == {"0", "1", "16"} and "calibration" in info["how"]
    assert tried[f"{info['chosen']:g}"] == max(tried.values())
    assert sec["models"]["r"]["llm_user"]["score_scale"] == info["chosen"]
    # trying scales asks the model nothing more: the contrasts are cached in the scorer
    fixed, sent_fixed = run(None, own_scale=info["chosen"])
    assert sent == sent_fixed
    assert fixed["models"]["r"]["score_scale"]["how"].startswith("the llm_user's own")
    # and the chosen scale decides exactly as a row configured with it
    a, b = sec["results"]["uniform"]["1:1"], fixed["results"]["uniform"]["1:1"]
    assert a["thresholds"]["r"] == b["thresholds"]["r"]
    assert a["scorers"]["r"]["accuracy"] == b["scorers"]["r"]["accuracy"]
    with pytest.raises(ValidationError, match="score_scales"):
        CardLLMRow(score_scales=[1.0, -2.0])


def test_a_blend_row_at_scale_zero_is_the_fitted_user(fitted):
    """parametric_weight 1 keeps the fitted interest and latent terms; with score_scale 0
    the LLM adds nothing, so the row must decide exactly as the fitted user."""
    data, s, view, model = fitted
    bins = popularity_bin_of(view.catalog.popularity.astype(np.float64), s.known_items)

    def sim(lists):
        return model.relevance(fresh_state(model, lists.users), lists.items).astype(np.float64)

    alone = CardLLMRow(label="alone", llm_user={"narrate": False})
    row = CardLLMRow(label="blend", score_scales=[0.0],
                     llm_user={"narrate": False, "parametric_weight": 1.0})  # fmt: skip
    cfg = CardLLMConfig(rows=[alone, row], users=6, calibration_users=4, negatives=["uniform"])
    backend = ScriptedScorer(LLMConfig(cache=False))
    sec = llm_section(cfg, data, s, view, model.population,
                      {"all-yes": None, "all-no": None, SIMULATOR: sim}, SIMULATOR, bins,
                      seed=0, n_boot=100, backends={"alone": backend})  # fmt: skip
    got = sec["results"]["uniform"]["1:1"]
    assert got["scorers"]["blend"]["accuracy"] == got["scorers"][SIMULATOR]["accuracy"]
    assert got["thresholds"]["blend"] == pytest.approx(got["thresholds"][SIMULATOR], rel=1e-5)
    # the second row (same LLM config) shared the first row's engine and its scores
    assert sec["models"]["blend"]["engine_shared_with"] == "alone"
    assert sec["models"]["blend"]["pairs_sent_to_model"] == 0
    assert sec["models"]["alone"]["pairs_sent_to_model"] == backend.stats["scored"] > 0
    assert "shared with alone" in "\n".join(llm_markdown({"llm": sec | {"_per_user": 0}}))


def _card_args(**kw):
    base = {"llm": None, "llm_config": None, "llm_users": None, "llm_calibration_users": None,
            "llm_ratios": None, "llm_score_scales": None}  # fmt: skip
    return argparse.Namespace(**(base | kw))


def test_cli_llm_switch(tmp_path, capsys):
    from recoworld.cli import _card_llm_config, main

    assert _card_llm_config(_card_args()) is None
    got = _card_llm_config(_card_args(llm=["smollm2", "gemma3-270m"], llm_users=7,
                                      llm_ratios=[1, 3]))  # fmt: skip
    assert [r["llm"]["model"] for r in got["rows"]] == ["embedded", "gemma3-270m"]
    assert got["users"] == 7 and got["ratios"] == [1, 3] and got["calibration_users"] == 24
    assert got["rows"][0]["score_scales"] is None
    got = _card_llm_config(_card_args(llm=["gemma3-270m"], llm_score_scales=[0.5, 2.0]))
    assert got["rows"][0]["score_scales"] == [0.5, 2.0]
    yml = tmp_path / "rows.yaml"
    yml.write_text("rows:\n  - label: served\n    llm: {backend: openai, model: m}\n"
                   "users: 9\nhybrid: false\n")  # fmt: skip
    got = _card_llm_config(_card_args(llm_config=str(yml), llm=["embedded"]))
    assert [r["label"] for r in got["rows"]] == ["served", None] and got["users"] == 9
    assert got["rows"][0]["llm"]["backend"] == "openai" and not got["hybrid"]
    # off by default: an --llm-* size without --llm is a usage error, before any work
    code = main(["fidelity", "card", "--quick", "--llm-users", "3",
                 "--out", str(tmp_path / "card")])  # fmt: skip
    assert code == 2 and "--llm-users needs --llm" in capsys.readouterr().err
    with pytest.raises(SystemExit) as err:  # argparse: a bad ratio list
        main(["fidelity", "card", "--quick", "--llm-ratios", "0", "--out", str(tmp_path / "c")])
    assert err.value.code == 2
    assert not (tmp_path / "card" / "fidelity_card.json").exists()

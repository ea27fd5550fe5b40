"""The creator studio with generate-mode LLM users: answers that stay invalid after the
repairs are recorded and counted as parametric fallbacks by default (``llm_user.on_invalid:
record``); ``raise`` still raises; a failed run keeps the slates it finished. The fast tests
use a scripted backend; the slow one runs the embedded model on the vLLM engine."""

from __future__ import annotations

import json

import pytest

import recoworld.evaluation.creator_studio as studio
from recoworld.envs.config import WorldConfig
from recoworld.evaluation.creator_studio import NewItem, StudioConfig, evaluate_item
from recoworld.llm.base import LLMBackend
from recoworld.llm.config import LLMConfig
from recoworld.llm.types import ChatRequest, RawCompletion, StructuredOutputError
from recoworld.simulators.config import LLMUserConfig

ITEM = {
    "title": "Midnight Circuit",
    "description": "A hacker and a detective race through a neon city to stop a rogue AI.",
    "topics": ["Sci-Fi", "Thriller", "Action"],
    "creator": "Nova Pictures",
}
K = 3
CUT_OFF = '{"reviews": [{"decision": "click", "watch": 0.7, "like": tr'  # at the token limit


def valid_turn() -> str:
    review = {"decision": "click", "watch": 0.6, "like": True, "follow": False, "gift": False,
              "reason": "looks fun"}  # fmt: skip
    return json.dumps({"reviews": [review] * K, "mindset": "Curious.", "satisfaction": 6,
                       "instruction": "", "leave": False})  # fmt: skip


class Scripted(LLMBackend):
    """Answers every chat with ``answer(request, call)``; ``call`` counts ``_complete``
    calls (one per batch, repairs included)."""

    name = "scripted"

    def __init__(self, answer) -> None:
        super().__init__(LLMConfig(cache=False, max_repairs=1))
        self.answer = answer
        self.calls = 0
        self.closed = False

    @property
    def model_id(self) -> str:
        return "scripted"

    def _complete(self, requests: list[ChatRequest], schema):
        self.calls += 1
        out = []
        for r in requests:
            text = self.answer(r, self.calls)
            out.append(RawCompletion(text, 10, 10, 0.0, "stop" if text != CUT_OFF else "length"))
        return out

    def close(self) -> None:
        self.closed = True


def _world(**llm_user) -> dict:
    return {
        "simulator": "llm",
        "catalog": {"source": "movielens"},
        "users": {"source": "movielens", "fitted_weights": False},
        "segments": "movielens",
        "candidates": {"n_candidates": 12},
        "episode": {"slate_size": K},
        "instruction_parser": "lexical",
        "llm_user": {"mode": "generate", **llm_user},
    }


def test_generate_mode_records_by_default():
    assert LLMUserConfig().on_invalid == "record"
    assert LLMUserConfig(on_invalid="raise").on_invalid == "raise"


def test_studio_counts_fallbacks():
    """Users 0 and 1 answer valid JSON, the others are cut off at the token limit every
    time: those fall back to the parametric decision and are counted, per slate group."""
    backend = Scripted(lambda r, _: valid_turn() if "/row-0/" in r.request_id
                       or "/row-1/" in r.request_id else CUT_OFF)  # fmt: skip
    cfg = StudioConfig(world=WorldConfig.model_validate(_world()), segment="students", users=6,
                       comparables=2, samples=6)  # fmt: skip
    report = evaluate_item(NewItem.model_validate(ITEM), cfg, llm_backend=backend)
    dec = report["decisions"]
    assert dec["mode"] == "generate" and dec["on_invalid"] == "record"
    assert dec["new_item"] == {"llm": 2, "fallback": 4}
    assert dec["comparables"] == {"llm": 4, "fallback": 8}  # 2 comparable slates
    assert backend.stats["failed"] == 12  # every fallback was a failed answer
    text = studio.format_report(report)
    assert "4 of 6 LLM answers for the new item and 8 of 12 for the comparable items" in text
    assert "after 1 repair(s)" in text and "fell back to the parametric" in text
    json.dumps(report)  # JSON-ready


def test_studio_raise_still_raises():
    backend = Scripted(lambda r, _: CUT_OFF)
    cfg = StudioConfig(world=WorldConfig.model_validate(_world(on_invalid="raise")),
                       segment="students", users=4, comparables=1)  # fmt: skip
    with pytest.raises(StructuredOutputError, match="llm-user/turn/row-"):
        evaluate_item(NewItem.model_validate(ITEM), cfg, llm_backend=backend)


def test_failed_run_keeps_partial_outputs(tmp_path, monkeypatch):
    """on_invalid: raise and the model breaks after the first slate: the manifest and the
    new item's slate are kept, the failure is written down; a later good run into the same
    directory writes the report and clears the failure."""
    item = tmp_path / "item.yaml"
    item.write_text(json.dumps(ITEM))
    world = tmp_path / "world.yaml"
    world.write_text(json.dumps({"world": _world(on_invalid="raise")}))
    backend = Scripted(lambda r, call: valid_turn() if call == 1 else CUT_OFF)
    monkeypatch.setattr(studio, "make_backend", lambda cfg: backend)
    out = tmp_path / "studio"
    with pytest.raises(StructuredOutputError):
        studio.run_studio(item, "students", 4, out_dir=out, world=world, comparables=2)
    assert backend.closed
    assert (out / "manifest.json").is_file()
    kept = json.loads((out / "slates" / "new_item.json").read_text())
    assert kept["title"] == ITEM["title"]
    assert kept["users"]["decision_source"] == ["llm_generate"] * 4
    assert len(kept["users"]["click"]) == 4
    assert not (out / "slates" / "comparable_1.json").exists()
    failed = json.loads((out / "studio.failed.json").read_text())
    assert failed["completed_slates"] == ["new_item"]
    assert failed["error"].startswith("StructuredOutputError")
    assert not (out / "studio.json").exists()

    # the default (record) in the same directory: completes and counts every fallback
    world.write_text(json.dumps({"world": _world()}))
    backend.calls = 0
    report = studio.run_studio(item, "students", 4, out_dir=out, world=world, comparables=2)
    assert report["decisions"]["new_item"] == {"llm": 4, "fallback": 0}
    assert report["decisions"]["comparables"] == {"llm": 0, "fallback": 8}
    assert json.loads((out / "studio.json").read_text())["decisions"] == report["decisions"]
    assert "8 of 8 for the comparable items" in (out / "studio.md").read_text()
    assert not (out / "studio.failed.json").exists()
    assert {p.name for p in (out / "slates").iterdir()} == {
        "new_item.json", "comparable_1.json", "comparable_2.json"}  # fmt: skip


@pytest.mark.slow
def test_generate_mode_studio_on_embedded_llm(vllm_backend, tmp_path, monkeypatch):
    """The studio command with llm_user.mode: generate on SmolLM2-135M (vLLM CPU engine):
    completes with the default on_invalid and reports how many answers fell back."""
    item = tmp_path / "item.yaml"
    item.write_text(json.dumps(ITEM))
    world = dict(_world(), users={"source": "movielens"})
    cfg = tmp_path / "world.yaml"
    cfg.write_text(json.dumps({"world": world}))
    # the session's engine instead of a second one; the studio must not close it
    monkeypatch.setattr(vllm_backend, "close", lambda: None)
    monkeypatch.setattr(studio, "make_backend", lambda llm: vllm_backend)
    failed_before = vllm_backend.stats["failed"]
    out = tmp_path / "studio"
    report = studio.run_studio(item, "young action and sci-fi fans", 3, out_dir=out, world=cfg,
                               comparables=1)  # fmt: skip
    dec = json.loads((out / "studio.json").read_text())["decisions"]
    assert dec["mode"] == "generate" and dec["on_invalid"] == "record"
    assert dec["new_item"]["llm"] + dec["new_item"]["fallback"] == 3
    assert dec["comparables"]["llm"] + dec["comparables"]["fallback"] == 3
    fallbacks = dec["new_item"]["fallback"] + dec["comparables"]["fallback"]
    assert fallbacks == vllm_backend.stats["failed"] - failed_before
    printed = (out / "studio.md").read_text()
    assert f"{dec['new_item']['fallback']} of 3 LLM answers for the new item" in printed
    assert report["decisions"] == dec
    print(f"\ngenerate-mode studio on SmolLM2-135M: {dec}")

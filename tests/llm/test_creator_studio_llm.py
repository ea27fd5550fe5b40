"""The creator-studio command on the embedded LLM (vLLM CPU engine, SmolLM2-135M)."""

from __future__ import annotations

import json

import pytest

from recoworld.cli import main


@pytest.mark.slow
def test_test_item_command_on_embedded_llm(tmp_path):
    item = tmp_path / "item.yaml"
    item.write_text(
        json.dumps(
            {
                "title": "Midnight Circuit",
                "description": "A hacker and a detective race through a neon city at night.",
                "topics": ["Sci-Fi", "Thriller", "Action"],
                "creator": "Nova Pictures",
            }
        )
    )
    out = tmp_path / "studio"
    code = main(["population", "test-item", "--item", str(item), "--segment",
                 "young action and sci-fi fans", "--users", "6", "--comparables", "1",
                 "--out", str(out)])  # fmt: skip
    # (no capsys: the engine's worker processes outlive a replaced sys.stdout)
    assert code == 0
    report = json.loads((out / "studio.json").read_text())
    assert report["simulator"] == "llm" and report["users"] == 6
    printed = (out / "studio.md").read_text()  # what the command printed
    assert "Creator studio" in printed and "click rate" in printed
    assert "not a fidelity claim" in printed
    nar = report["narration"]
    assert nar["llm"] + nar["template"] == 6  # every user's words accounted for

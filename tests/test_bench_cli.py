"""``recoworld bench``: one table of ratios, also without RecSim's venv (no network)."""

from __future__ import annotations

import json
import types

from recoworld import cli
from recoworld.evaluation import throughput


def test_bench_quick_without_recsim_prints_our_own_ratios(tmp_path, monkeypatch, capsys):
    fake = types.SimpleNamespace(DEFAULT_VENV=tmp_path / "no-venv")
    monkeypatch.setattr(throughput, "recsim_module", lambda: fake)
    out = tmp_path / "bench.json"
    code = cli.main(
        ["bench", "--quick", "--batches", "16", "--seconds", "0.02", "--json", str(out)]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "RecSim not measured" in text and "does not exist" in text
    assert "vector env B = 16" in text and "x own baseline" in text
    assert "PopulationEnv.step (PettingZoo)" in text
    data = json.loads(out.read_text())
    assert data["recsim_steps_per_s"] is None
    assert all(row["rate"] > 0 for row in data["rows"])


def test_bench_notes_a_missing_baseline_module(monkeypatch, tmp_path):
    monkeypatch.setattr(throughput, "REPO_ROOT", tmp_path)
    rate, note = throughput.measure_recsim(10, build=True)
    assert rate is None and "not found" in note

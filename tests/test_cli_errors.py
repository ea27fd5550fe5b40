"""The CLI's error boundary: each typed error becomes one or two readable lines on stderr
(``error: ...`` / ``hint: ...``), a non-zero exit code and no traceback — unless ``--debug``,
which lets the exception (and its traceback) through."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from recoworld import cli
from recoworld.cli import describe_error, main
from recoworld.core.errors import (
    CheckpointError,
    MissingExtraError,
    RecoWorldError,
    require,
)
from recoworld.llm.types import BackendError, LLMError, StructuredOutputError

SMALL_WORLD = {
    "catalog": {"synthetic": {"n_items": 200, "n_creators": 20, "seed": 3}},
    "candidates": {"n_candidates": 10},
    "episode": {"slate_size": 3, "max_sessions": 2, "max_session_steps": 5},
    "instruction_parser": "lexical",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dead_server_config(tmp_path: Path) -> tuple[Path, str]:
    """A hybrid world whose LLM is an OpenAI-compatible server nobody listens on."""
    url = f"http://127.0.0.1:{_free_port()}/v1"
    world = {
        **SMALL_WORLD,
        "simulator": "hybrid",
        "llm": {"backend": "openai", "base_url": url, "max_retries": 0, "timeout_s": 5,
                "backoff_s": 0.0, "cache": False},
    }  # fmt: skip
    path = tmp_path / "dead.yaml"
    path.write_text(yaml.safe_dump({"world": world, "simulate": {"users": 2, "episodes": 2}}))
    return path, url


def _run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed entry point (``recoworld = "recoworld.cli:main"``) in a fresh process."""
    code = "import sys; from recoworld.cli import main; sys.exit(main())"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


# ----------------------------------------------------------------- a dead LLM server
def test_dead_llm_server_is_one_error_and_a_hint_in_a_real_process(tmp_path):
    config, url = _dead_server_config(tmp_path)
    out = tmp_path / "out"
    proc = _run_cli("simulate", "--config", str(config), "--out", str(out), "--quiet",
                    cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = _error_lines(proc.stderr)
    assert lines[0].startswith("error: ") and url in lines[0], proc.stderr
    assert "Connection refused" in lines[0] or "ConnectError" in lines[0]
    assert lines[1].startswith("hint: ") and f"server at {url} is running" in lines[1]
    # the episodes logged before the failure are kept, and the message says where
    assert lines[2] == f"partial outputs kept in {out}"
    assert (out / "manifest.json").is_file()
    assert len(lines) == 3

    debug = _run_cli("--debug", "simulate", "--config", str(config), "--out", str(out),
                     "--quiet", cwd=tmp_path)  # fmt: skip
    assert debug.returncode != 0
    assert "Traceback (most recent call last)" in debug.stderr
    assert "recoworld.llm.types.BackendError" in debug.stderr and url in debug.stderr


def test_dead_llm_server_in_process(tmp_path, capsys):
    config, url = _dead_server_config(tmp_path)
    out = tmp_path / "out"
    argv = ["simulate", "--config", str(config), "--out", str(out), "--quiet"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith("error: request ") and url in err.splitlines()[0]
    # --debug after the subcommand lets the typed error through
    with pytest.raises(BackendError) as info:
        main([*argv, "--debug"])
    assert url in str(info.value)


# ------------------------------------------------------------------ malformed configs
def test_bad_field_value_names_file_and_field(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("world:\n  episode:\n    slate_size: 0\n")
    assert main(["simulate", "--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    captured = capsys.readouterr()
    lines = _error_lines(captured.err)
    assert lines[0] == (
        f"error: {cfg}: world.episode.slate_size: "
        "Input should be greater than or equal to 1 (got 0)"
    )
    assert lines[1].startswith("hint: ") and len(lines) == 2
    assert "Traceback" not in captured.err + captured.out
    assert not (tmp_path / "o").exists()  # nothing ran, so nothing was written


def test_unknown_field_names_it(tmp_path, capsys):
    cfg = tmp_path / "typo.yaml"
    cfg.write_text("world:\n  episode:\n    slate_sise: 3\n")
    assert main(["simulate", "--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    lines = _error_lines(capsys.readouterr().err)
    assert lines[0] == f"error: {cfg}: world.episode.slate_sise: Extra inputs are not permitted"
    assert lines[1].startswith("hint: 'slate_sise' is not a field of WorldConfig")


def test_malformed_config_in_a_real_process_and_with_debug(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("world:\n  candidates:\n    n_candidates: many\n")
    proc = _run_cli("config", "--config", str(cfg), cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"error: {cfg}: world.candidates.n_candidates: ")
    assert "'many'" in proc.stderr
    debug = _run_cli("config", "--config", str(cfg), "--debug", cwd=tmp_path)
    assert debug.returncode != 0 and "Traceback" in debug.stderr
    assert "ValidationError" in debug.stderr


def test_eval_world_override_error_names_its_path(tmp_path, capsys):
    cfg = tmp_path / "eval.yaml"
    world = {**SMALL_WORLD, "episode": {"slate_size": 0}}
    evaluate = {"policies": ["popular"], "worlds": [{"name": "w", "overrides": world}]}
    cfg.write_text(yaml.safe_dump({"evaluate": evaluate}))
    assert main(["evaluate", "--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {cfg}: evaluate.worlds[0].overrides.episode.slate_size: ")
    assert not (tmp_path / "o").exists()


def test_bad_item_file_of_the_creator_studio_names_it(tmp_path, capsys):
    item = tmp_path / "item.yaml"
    item.write_text("title: Midnight Circuit\ntopics: [Sci-Fi]\nquality: 2\n")
    code = main(["population", "test-item", "--item", str(item), "--segment", "students"])
    assert code == 2
    lines = _error_lines(capsys.readouterr().err)
    assert lines[0] == f"error: {item}: quality: Input should be less than or equal to 1 (got 2)"


def test_yaml_syntax_error_names_file_and_line(tmp_path, capsys):
    cfg = tmp_path / "broken.yaml"
    cfg.write_text("world:\n  episode: [1, 2\n")
    assert main(["simulate", "--config", str(cfg)]) == 2
    lines = _error_lines(capsys.readouterr().err)
    assert lines[0].startswith(f"error: {cfg}: invalid YAML: ") and "line " in lines[0]
    assert len(lines) == 2 and lines[1].startswith("hint: ")


def test_missing_config_file_is_one_line(tmp_path, capsys):
    assert main(["simulate", "--config", str(tmp_path / "none.yaml")]) == 2
    lines = _error_lines(capsys.readouterr().err)
    assert lines == [f"error: config file not found: {tmp_path / 'none.yaml'}"]


# ------------------------------------------------------------------ missing checkpoints
def test_train_resume_from_a_missing_checkpoint_names_it(tmp_path, capsys):
    missing = tmp_path / "runs" / "ppo" / "checkpoint"
    code = main(["train", "--resume", str(missing), "--out", str(tmp_path / "o"), "--quiet"])
    assert code == 2
    captured = capsys.readouterr()
    lines = _error_lines(captured.err)
    assert lines[0] == f"error: --resume: checkpoint {missing} not found"
    assert lines[1] == f"hint: {CheckpointError.hint}"
    assert "Traceback" not in captured.err and not (tmp_path / "o").exists()
    with pytest.raises(CheckpointError, match="not found"):
        main(["--debug", "train", "--resume", str(missing), "--out", str(tmp_path / "o")])


def test_evaluate_with_a_missing_checkpoint_names_it(tmp_path, capsys):
    cfg = tmp_path / "eval.yaml"
    cfg.write_text(yaml.safe_dump({"evaluate": {
        "policies": ["popular", {"name": "ppo", "checkpoint": "no/such/ckpt"}],
        "worlds": [{"name": "w", "overrides": SMALL_WORLD}],
    }}))  # fmt: skip
    assert main(["evaluate", "--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    lines = _error_lines(capsys.readouterr().err)
    assert lines[0].startswith(f"error: {cfg}: policy 'ppo': checkpoint no/such/ckpt not found")
    assert lines[1].startswith("hint: pass the directory `recoworld train` wrote")
    assert not (tmp_path / "o").exists()


def test_checkpoint_file_not_found_from_library_code_gets_the_checkpoint_hint():
    # what recoworld.rl.registry.load_recommender raised before it raised CheckpointError
    lines, code = describe_error(FileNotFoundError("checkpoint not found: /x/checkpoint"))
    assert lines == ["error: checkpoint not found: /x/checkpoint", f"hint: {CheckpointError.hint}"]
    assert code == 2


# ------------------------------------------------------------------ a missing extra
def test_missing_extra_names_the_extra(tmp_path, capsys, monkeypatch):
    find_spec = importlib.util.find_spec

    def no_torch(name, *args, **kw):
        return None if name == "torch" else find_spec(name, *args, **kw)

    def needs_torch(args):
        require("torch", "rllib", "training")
        return 0

    monkeypatch.setattr(importlib.util, "find_spec", no_torch)
    monkeypatch.setattr(cli, "cmd_catalog", needs_torch)
    assert main(["catalog"]) == 2
    captured = capsys.readouterr()
    lines = _error_lines(captured.err)
    assert lines[0] == "error: the Python package 'torch' is not installed (needed for training)"
    assert lines[1].startswith("hint: install the extra: pip install 'recoworld[rllib]'")
    assert "Traceback" not in captured.err + captured.out
    with pytest.raises(MissingExtraError) as info:
        main(["catalog", "--debug"])
    assert info.value.extra == "rllib" and isinstance(info.value, ImportError)


# ------------------------------------------------------------------ the rest of the boundary
def test_interrupt_keeps_and_names_partial_outputs(tmp_path, capsys, monkeypatch):
    out = tmp_path / "o"

    def interrupted(args):
        Path(args.out).mkdir(parents=True)
        (Path(args.out) / "trajectories_random.parquet").write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_simulate", interrupted)
    assert main(["simulate", "--out", str(out)]) == 130
    assert _error_lines(capsys.readouterr().err) == [
        "interrupted",
        f"partial outputs kept in {out}",
    ]


def test_outputs_of_an_earlier_run_are_not_called_partial(tmp_path, capsys, monkeypatch):
    out = tmp_path / "o"
    out.mkdir()
    old = out / "summary.json"
    old.write_text("{}")
    os.utime(old, (1_000_000_000, 1_000_000_000))

    def fails(args):
        raise ValueError("--policy: bad")

    monkeypatch.setattr(cli, "cmd_simulate", fails)
    assert main(["simulate", "--out", str(out)]) == 2
    assert _error_lines(capsys.readouterr().err) == ["error: --policy: bad"]


def test_unexpected_error_is_one_line_pointing_at_debug(capsys, monkeypatch):
    def boom(args):
        raise KeyError("missing_key")

    monkeypatch.setattr(cli, "cmd_catalog", boom)
    assert main(["catalog"]) == 1
    lines = _error_lines(capsys.readouterr().err)
    assert lines[0] == "error: unexpected KeyError: 'missing_key'"
    assert "--debug" in lines[1]
    with pytest.raises(KeyError):
        main(["--debug", "catalog"])


def test_llm_errors_are_typed_errors_with_hints():
    backend = BackendError("user-1/step-2", "HTTP 404: model not found")
    assert isinstance(backend, LLMError) and isinstance(backend, RecoWorldError)
    assert isinstance(backend, RuntimeError)  # callers' `except RuntimeError` still works
    lines, code = describe_error(backend)
    assert lines[0] == "error: request 'user-1/step-2': HTTP 404: model not found"
    assert lines[1].startswith("hint: check that the LLM server") and code == 1
    invalid = StructuredOutputError("u-3", "SlateReview", ["bad json\nmore"], ["{", "{"])
    assert isinstance(invalid, RecoWorldError) and isinstance(invalid, RuntimeError)
    lines, code = describe_error(invalid)
    assert lines[0] == "error: request 'u-3': no valid SlateReview after 2 attempt(s): bad json"
    assert "llm.on_invalid: record" in lines[1] and code == 1

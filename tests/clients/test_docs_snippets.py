"""Every ```python block of every docs/clients/*.md page runs.

Each block is written to its own file and run with the project's Python from the repository
root, so a page's snippets must be self-contained (imports included). Blocks that are not
meant to run are fenced as ```text, ```bash or ```console instead.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "clients"
TIMEOUT_S = 300  # per block: RLlib snippets start Ray
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """(line number, code) of each ```python block of ``path``."""
    text = path.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in FENCE.finditer(text)]


def _cases() -> list:
    cases = []
    for path in sorted(DOCS.glob("*.md")):
        for index, (line, code) in enumerate(python_blocks(path)):
            name = f"{path.name}-{index}"
            cases.append(pytest.param(path, index, line, code, id=name))
    return cases


def test_block_extraction():
    text = "a\n```python\nprint(1)\n```\n```text\nno\n```\n\n```python\nx = 2\n```\n"
    assert [m.group(1) for m in FENCE.finditer(text)] == ["print(1)\n", "x = 2\n"]


def test_pages_have_snippets():
    assert (DOCS / "README.md").exists()
    for page in ("sb3.md", "cleanrl.md"):
        assert python_blocks(DOCS / page), f"{page} has no ```python block"


@pytest.mark.slow
@pytest.mark.parametrize(("page", "index", "line", "code"), _cases())
def test_snippet_runs(page: Path, index: int, line: int, code: str, tmp_path: Path):
    script = tmp_path / f"{page.stem}_{index}.py"
    script.write_text(code, encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    try:
        proc = subprocess.run(
            [sys.executable, str(script)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail(f"{page.name}:{line} (block {index}) ran past {TIMEOUT_S} s")
    assert proc.returncode == 0, (
        f"{page.name}:{line} (block {index}) exited {proc.returncode}\n"
        f"--- stdout\n{proc.stdout[-2000:]}\n--- stderr\n{proc.stderr[-4000:]}"
    )

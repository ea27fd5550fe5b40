"""Run manifests: every run records its config, seed, package versions and git commit next
to its outputs (``manifest.json``, written atomically)."""

from __future__ import annotations

import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from recoworld.core.atomic import atomic_write_json

TRACKED_PACKAGES = (
    "recoworld", "numpy", "pydantic", "gymnasium", "pettingzoo", "torch", "ray", "pyarrow",
    "recbole", "bokeh-sampledata",
)  # fmt: skip


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_state(cwd: Path | None = None) -> dict[str, Any]:
    """Commit and dirty flag of the repository holding ``cwd`` (or of this package)."""
    where = cwd or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, check=True,
            timeout=10,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=where,
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip() != ""  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty}


def write_manifest(
    out_dir: str | Path, config: dict[str, Any], seed: int | None, **extra: Any
) -> Path:
    manifest = {
        "created": datetime.now(UTC).isoformat(),
        "command": sys.argv,
        "seed": seed,
        "config": config,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "git": git_state(),
        **extra,
    }
    return atomic_write_json(manifest, Path(out_dir) / "manifest.json")

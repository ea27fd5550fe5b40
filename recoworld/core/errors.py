"""The project's typed errors. Each says what failed, where, and what to do; the CLI prints
them as one or two lines (tracebacks only with ``--debug``).

Every error the project raises on purpose derives from ``RecoWorldError``. Subclasses also
derive from the built-in class callers already catch (``RuntimeError``, ``ImportError``,
``FileNotFoundError``), so ``except ImportError`` keeps working.
"""

from __future__ import annotations


class RecoWorldError(Exception):
    """Base of RecoWorld's typed errors: ``str(err)`` says what failed and where;
    ``hint`` (may be empty) says what to do."""

    hint: str = ""


class MissingDataPackageError(RecoWorldError, RuntimeError):
    """A data package is not installed; the message says how to install it."""


class MissingExtraError(RecoWorldError, ImportError):
    """An optional dependency is missing: names the module and the extra that brings it."""

    def __init__(self, module: str, extra: str, what: str = "") -> None:
        self.module, self.extra = module, extra
        need = f" (needed for {what})" if what else ""
        super().__init__(f"the Python package {module!r} is not installed{need}")
        self.hint = f"install the extra: pip install 'recoworld[{extra}]' (or run `make install`)"


class CheckpointError(RecoWorldError, FileNotFoundError):
    """A checkpoint is missing or is not one RecoWorld can read."""

    hint = "pass the directory `recoworld train` wrote (its `checkpoint` or `checkpoints/iter_N`)"


def require(module: str, extra: str, what: str = "") -> None:
    """Raise ``MissingExtraError`` unless ``module`` can be imported (checked without
    importing it)."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise MissingExtraError(module, extra, what)


class ConfigError(RecoWorldError, ValueError):
    """A config file or command-line flag is invalid: the message names the file (or flag)
    and the field; ``hint`` says how to fix it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        if hint:
            self.hint = hint

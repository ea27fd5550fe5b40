"""The progress bar every long job shows (simulation, evaluation, training): rich, with a
description, a bar, done/total and the elapsed time; off when ``show`` is False."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn


def progress_bar(show: bool = True) -> Progress:
    """A ``rich.progress.Progress`` (use it as a context manager)."""
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not show,
    )

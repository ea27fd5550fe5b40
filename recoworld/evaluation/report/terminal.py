"""The leaderboard on the terminal: one rich table per world (policies x leaderboard
metrics, best first), each cell "mean [95% CI]" plus the paired difference against the
baseline with its significance marker, and the legend of the markers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from recoworld.evaluation.report.index import build_index
from recoworld.evaluation.report.tables import BETTER, WORSE, arrow, board_rows, filled_columns

if TYPE_CHECKING:
    from rich.console import Console


def print_leaderboard(results: dict[str, Any], console: Console | None = None) -> None:
    """Print one rich table per world (policies x leaderboard metrics, best first), each
    cell "mean [95% CI]" plus, for non-baseline policies, the paired difference vs the
    baseline with its marker; the marker legend follows."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = console or Console()
    idx = build_index(results)
    printed = False
    for world in idx.worlds:
        rows = board_rows(idx, world)
        if not rows:
            continue
        metrics = filled_columns(idx, rows)
        table = Table(title=world, title_style="bold", show_lines=True)
        table.add_column("policy", no_wrap=True)
        for metric in metrics:
            info = idx.info(metric)
            label = f"{info['label']} {arrow(info['higher_is_better'])}"
            table.add_column(label, justify="right", overflow="fold")
        for row in rows:
            name = Text(row["policy"], style="bold")
            if row["baseline"]:
                name.append(" (baseline)", style="dim")
            cells: list[Text] = [name]
            for metric in metrics:
                cell = row["cells"][metric]
                text = Text(cell["text"])
                if cell["diff_text"]:
                    text.append("\n")
                    if cell["marker"]:
                        style = "green" if cell["marker"] == BETTER else "red"
                        text.append(f"{cell['marker']} ", style=style)
                    text.append(f"Δ {cell['diff_text']}", style="dim")
                cells.append(text)
            table.add_row(*cells)
        console.print(table)
        printed = True
    if not printed:
        console.print("No results to show.")
        return
    baseline = idx.baseline or "the baseline"
    console.print(
        Text(
            f"Cells: mean [95% CI]; Δ: paired difference vs {baseline} [95% CI]. "
            f"{BETTER} significantly better, {WORSE} significantly worse than {baseline} "
            "(the CI of the difference excludes 0); ↑/↓: higher/lower is better.",
            style="dim",
        )
    )

"""Tables for people and text for pipes: a Rich table in a terminal, aligned plain text when
the output is piped or redirected, and JSON or CSV on request."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text

LEVEL_STYLES = {"ok": "green", "warning": "yellow", "critical": "bold red", "failed": "bold red"}

Cell = str | None


def console() -> Console:
    return Console(file=sys.stdout, highlight=False, soft_wrap=False)


def table(columns: Sequence[str], rows: Sequence[Sequence[Cell]], title: str | None = None) -> None:
    """Rows under their column names; None shows as "-"."""
    out = console()
    cells = [["-" if cell is None else _visible(cell) for cell in row] for row in rows]
    if out.is_terminal:
        shown = Table(title=title, title_justify="left", header_style="bold")
        for column in columns:
            shown.add_column(column, no_wrap=column not in ("note", "alerts", "silenced", "reason", "shared"))
        for row in cells:
            shown.add_row(*(_styled(column, cell) for column, cell in zip(columns, row, strict=True)))
        out.print(shown)
        return
    if title:
        print(title)
    widths = [max(len(str(row[i])) for row in [list(columns), *cells]) for i in range(len(columns))]
    for row in [list(columns), *cells]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _visible(cell: str) -> str:
    """The cell on one line with nothing for a terminal to act on: a control character read from
    the table (a line break, an escape sequence) is shown escaped."""
    return cell if cell.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in cell)


def _styled(column: str, cell: str) -> Text:
    """The cell as literal text (a bracket is never markup), a level in its colour."""
    return Text(cell, style=LEVEL_STYLES.get(cell, "") if column == "level" else "")


def as_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def as_csv(columns: Sequence[str], rows: Sequence[Sequence[Cell]]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(["" if cell is None else cell for cell in row] for row in rows)


@contextmanager
def progress(total: int, what: str) -> Iterator[Any]:
    """A progress bar on stderr in a terminal (nothing otherwise); yields the step to call."""
    bar = Progress(
        TextColumn(what),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    if not bar.console.is_terminal:
        yield lambda: None
        return
    task = bar.add_task(what, total=total)
    with bar:
        yield lambda: bar.advance(task)

"""The command's output: a Rich table in a terminal, plain aligned text when piped."""

import io

import pytest
from rich.console import Console

from creditwatch_cli import output

COLUMNS = ["provider", "account", "level", "note"]
ROWS = [["clado", "[bold]x", "critical", None], ["cleanlist", "ops", "ok", "a [red]note"]]


def test_piped_output_is_plain_aligned_text(capsys):
    output.table(COLUMNS, ROWS, title="stack (us-east-1)")
    assert capsys.readouterr().out.splitlines() == [
        "stack (us-east-1)",
        "provider   account  level     note",
        "clado      [bold]x  critical  -",
        "cleanlist  ops      ok        a [red]note",
    ]


def test_a_terminal_gets_a_rich_table_with_the_cells_as_written(monkeypatch):
    screen = io.StringIO()
    monkeypatch.setattr(output, "console", lambda: Console(file=screen, force_terminal=True, width=100))
    output.table(COLUMNS, ROWS, title="stack (us-east-1)")
    text = screen.getvalue()
    assert "\x1b[" in text  # styled: the levels in colour
    assert "[bold]x" in text  # a provider's text is never taken as markup
    assert "a [red]note" in text
    assert "┏━━━" in text  # a box, not the plain text
    assert "provider" in text


HOSTILE = ["clodura", "a", "ok", "\x1b[2J wiped\r\nclodura  b  ok  forged row\u202e"]


def test_piped_output_shows_control_characters_escaped_one_row_per_line(capsys):
    output.table(COLUMNS, [HOSTILE])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[1].endswith("\\x1b[2J wiped\\r\\nclodura  b  ok  forged row\\u202e")


def test_a_terminal_shows_control_characters_escaped_too(monkeypatch):
    screen = io.StringIO()
    monkeypatch.setattr(output, "console", lambda: Console(file=screen, force_terminal=True, width=200))
    output.table(COLUMNS, [HOSTILE])
    text = screen.getvalue()
    for control in ("\x1b[2J", "\r", "\u202e"):
        assert control not in text
    assert "\\x1b[2J wiped\\r\\n" in text


@pytest.mark.parametrize("terminal", [True, False])
def test_the_progress_bar_shows_only_in_a_terminal_and_always_counts(monkeypatch, terminal):
    monkeypatch.setattr(Console, "is_terminal", property(lambda _: terminal))
    with output.progress(3, "checking") as step:
        for _ in range(3):
            step()

"""Runs the `creditwatch` command in-process, as its console script does, and puts back the
logging set-up it changes (a real run of the command is a process of its own)."""

import logging

from click.testing import CliRunner, Result

from creditwatch.observability import LIBRARY_LOGGERS, logger
from creditwatch_cli.app import cli


def run(*args: str, env: dict[str, str | None] | None = None) -> Result:
    """stdout and stderr apart; the exit status as the shell would see it."""
    names = (logger.name, *LIBRARY_LOGGERS)
    levels = {name: logging.getLogger(name).level for name in names}
    stream = logger.registered_handler.stream  # type: ignore[attr-defined]
    try:
        result = CliRunner().invoke(cli, list(args), env=env or {}, prog_name="creditwatch", catch_exceptions=False)
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        logger.registered_handler.setStream(stream)  # type: ignore[attr-defined]
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result

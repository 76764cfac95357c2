"""The `creditwatch` command: balances, pre-flight checks, history and silences, from a terminal,
a cron job or a CI step. Built on the same provider registry and engine as the functions; its
own dependencies (click, Rich, matplotlib) are extras and never reach the Lambda layer.
"""

from __future__ import annotations

import os
import sys

# Powertools reads its service name when the package's Logger is created.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "creditwatch")

EXIT_UNUSABLE = 4  # the command could not do what was asked (see the README's exit statuses)


def main() -> None:
    """The console script: the command, or one sentence when its extra is not installed."""
    try:
        from creditwatch_cli.app import cli
    except ModuleNotFoundError as error:
        if error.name not in ("click", "rich"):
            raise
        print(f"creditwatch: the command needs {error.name}: pip install 'creditwatch[cli]'", file=sys.stderr)
        sys.exit(EXIT_UNUSABLE)
    cli()

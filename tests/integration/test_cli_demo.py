"""The console script as a user runs it: installed by `pip install -e .[cli,plot,demo]` (which
`make test` and `make demo` do), in a process of its own."""

import os
import re
import subprocess
import sys
from pathlib import Path

from PIL import Image

COMMAND = Path(sys.executable).parent / "creditwatch"


def test_the_demo_runs_from_the_installed_command_with_no_aws_account(tmp_path):
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    plot = tmp_path / "history.png"
    done = subprocess.run(  # noqa: S603 (the project's own console script)
        [COMMAND, "demo", "--plot", plot], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "creditwatch demo: 8 providers, 13 accounts" in done.stdout
    assert "Alerts published to SNS (10):" in done.stdout
    assert "Second run of every handler: 0 new alert(s) and 0 new event(s)" in done.stdout
    assert "demo-clado" not in done.stdout + done.stderr  # the demo's keys, like any, stay out of the output
    # 240 seeded hourly, and the demo's two runs (one snapshot if both fall in the same second)
    assert re.fullmatch(
        rf"plotted 24[12] balances of clado/enrichment credits to {re.escape(str(plot))}\n", done.stderr
    )
    with Image.open(plot) as image:
        assert (image.format, image.size) == ("PNG", (1000, 500))


def test_the_command_says_what_it_is():
    done = subprocess.run(  # noqa: S603
        [COMMAND, "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout.split()[-1]) == (0, "0.1.0")

"""A pool's history as a PNG: the balance, the threshold lines, top-ups marked, and the
forecast carried on as a dashed line to the day it runs out. matplotlib is the `plot` extra,
imported only here, and used without pyplot: no window, no global state."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from creditwatch.forecast import Forecast
from creditwatch.notifier import credits
from creditwatch_cli.deployed import Snapshot, TopUp
from creditwatch_cli.errors import UserError

SIZE = (10, 5)  # inches, at DPI: a 1000 x 500 pixel image
DPI = 100
LONGEST_FORECAST = timedelta(days=365)  # beyond this the line stops, labelled with the date


def draw(
    path: Path,
    title: str,
    snapshots: list[Snapshot],
    topups: list[TopUp],
    lines: dict[str, Decimal],
    prediction: Forecast | None,
) -> None:
    try:
        from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
        from matplotlib.figure import Figure
    except ModuleNotFoundError:
        raise UserError("--plot needs matplotlib: pip install 'creditwatch[plot]'") from None
    figure = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    axes = figure.subplots()
    times = date2num([snapshot.at for snapshot in snapshots])
    axes.plot(times, [float(s.remaining) for s in snapshots], color="tab:blue", label="remaining")
    for (name, value), colour in zip(lines.items(), ("tab:orange", "tab:red"), strict=False):
        axes.axhline(float(value), color=colour, linestyle=":", label=f"{name} ({credits(value)})")
    if topups:
        axes.scatter(
            date2num([t.at for t in topups]),
            [float(t.balance) for t in topups],
            marker="^",
            s=80,
            color="tab:green",
            zorder=3,
            label="top-up",
        )
    if prediction is not None and prediction.empty_at is not None and snapshots:
        last = snapshots[-1]
        end = min(prediction.empty_at, last.at + LONGEST_FORECAST)
        burn = float(prediction.burn_per_day or 0)
        left = max(0.0, float(last.remaining) - burn * (end - last.at) / timedelta(days=1))
        label = f"forecast: empty {_day(prediction.empty_at)}"
        axes.plot(
            date2num([last.at, end]), [float(last.remaining), left], color="tab:blue", linestyle="--", label=label
        )
    locator = AutoDateLocator()
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    axes.set_ylim(bottom=0)
    axes.set_ylabel("credits")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(loc="best")
    try:
        figure.savefig(path, format="png")
    except OSError as error:
        raise UserError(
            f"--plot: cannot write {str(path)[:200]!r} ({error.strerror or type(error).__name__})"
        ) from None


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")

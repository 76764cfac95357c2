"""Burn rate, depletion forecast and top-up detection over a pool's recent balances. No I/O.

A pool's *window* holds the observations of the last BURN_WINDOW_HOURS. A rise in the balance,
or a changed provider-reported top-up time, is a top-up: it starts a new *segment*, so a top-up
never counts as negative burn. The burn rate is the credits consumed in the segments that
consumed any, over those segments' duration.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from itertools import groupby
from typing import NamedTuple

MIN_OBSERVATIONS = 2
MIN_SPAN = timedelta(hours=1)
SECONDS_PER_DAY = Decimal(86400)
MAX_DAYS = 36500  # beyond a century an exhaustion date means nothing


class Point(NamedTuple):
    at: datetime
    remaining: Decimal
    segment: int = 0


class PoolWindow(NamedTuple):
    points: tuple[Point, ...] = ()
    full_tank: Decimal | None = None  # the largest balance seen since the last top-up
    topped_up_at: str | None = None  # the provider's own last top-up time, where it reports one
    last_topup_at: datetime | None = None  # when a top-up was last seen (kept after its point leaves)
    renews_at: datetime | None = None  # the renewal the provider last announced


class TopUp(NamedTuple):
    previous: Decimal
    remaining: Decimal
    previous_at: datetime  # the last observation before it: names the top-up, whichever run saw it
    renewal: bool = False  # the rise came at or after the renewal the provider had announced

    @property
    def added(self) -> Decimal | None:
        """Credits added, as far as the balances show (None when usage hid the top-up's size)."""
        return self.remaining - self.previous if self.remaining > self.previous else None


class Forecast(NamedTuple):
    observations: int
    hours: Decimal
    burn_per_day: Decimal | None = None  # None: insufficient history
    days_left: Decimal | None = None  # None: not burning, or insufficient history
    empty_at: datetime | None = None

    @property
    def sufficient(self) -> bool:
        return self.burn_per_day is not None

    def describe(self) -> str:
        if not self.sufficient:
            return "insufficient history"
        if self.days_left is None:
            return "not burning"
        return f"{self.days_left:.1f} days"


def advance(
    window: PoolWindow,
    remaining: Decimal,
    topped_up_at: str | None,
    now: datetime,
    span: timedelta,
    renews_at: datetime | None = None,
) -> tuple[PoolWindow, TopUp | None]:
    """Add an observation, drop those older than `span`, and say whether it was a top-up: a
    renewal when the rise comes once the renewal announced before it is due."""
    last = window.points[-1] if window.points else None
    topup = None
    if last is not None:
        provider_says = topped_up_at is not None and topped_up_at != window.topped_up_at
        if remaining > last.remaining or provider_says:
            renewal = window.renews_at is not None and window.renews_at <= now
            topup = TopUp(previous=last.remaining, remaining=remaining, previous_at=last.at, renewal=renewal)
    segment = 0 if last is None else last.segment + (topup is not None)
    kept = tuple(point for point in window.points if point.at > now - span)
    fresh = topup is not None or window.full_tank is None
    full_tank = remaining if fresh else max(window.full_tank or remaining, remaining)
    points = (*kept, Point(now, remaining, segment))
    last_topup_at = now if topup is not None else window.last_topup_at
    announced = renews_at or (window.renews_at if topup is None else None)
    return PoolWindow(points, full_tank, topped_up_at or window.topped_up_at, last_topup_at, announced), topup


class Spike(NamedTuple):
    """Burn over the recent part of the window against burn over all of it."""

    recent_per_day: Decimal
    baseline_per_day: Decimal
    consumed: Decimal  # credits consumed in the recent part

    @property
    def ratio(self) -> Decimal | None:
        return self.recent_per_day / self.baseline_per_day if self.baseline_per_day else None


def _burn(points: tuple[Point, ...]) -> tuple[Decimal, Decimal]:
    """Credits consumed in the segments that consumed any, and those segments' seconds."""
    consumed, seconds = Decimal(0), Decimal(0)
    for _, group in groupby(points, key=lambda point: point.segment):
        segment = list(group)
        used = segment[0].remaining - segment[-1].remaining
        duration = Decimal((segment[-1].at - segment[0].at).total_seconds())
        if used > 0 and duration > 0:
            consumed += used
            seconds += duration
    return consumed, seconds


def spike(window: PoolWindow, recent: timedelta, baseline_per_day: Decimal | None) -> Spike | None:
    """The burn of the last `recent` against `baseline_per_day`, the whole window's (the
    forecast's burn rate), or None when the history is too short to tell: the recent part needs
    MIN_OBSERVATIONS points spanning at least half of `recent`, and the window must reach back
    at least twice `recent` before its last point."""
    points = window.points
    if baseline_per_day is None or len(points) < MIN_OBSERVATIONS or points[-1].at - points[0].at < 2 * recent:
        return None
    tail = tuple(point for point in points if point.at >= points[-1].at - recent)
    if len(tail) < MIN_OBSERVATIONS or tail[-1].at - tail[0].at < recent / 2:
        return None
    consumed, seconds = _burn(tail)
    recent_rate = consumed * SECONDS_PER_DAY / seconds if seconds else Decimal(0)
    return Spike(recent_rate, baseline_per_day, consumed)


def forecast(window: PoolWindow, remaining: Decimal) -> Forecast:
    points = window.points
    hours = Decimal((points[-1].at - points[0].at).total_seconds()) / 3600 if points else Decimal(0)
    if len(points) < MIN_OBSERVATIONS or hours * 3600 < Decimal(MIN_SPAN.total_seconds()):
        return Forecast(len(points), hours)
    consumed, seconds = _burn(points)
    if not consumed:
        return Forecast(len(points), hours, burn_per_day=Decimal(0))
    burn = consumed * SECONDS_PER_DAY / seconds
    days = remaining / burn
    empty_at = points[-1].at + timedelta(days=float(days)) if days < MAX_DAYS else None
    return Forecast(len(points), hours, burn_per_day=burn, days_left=days, empty_at=empty_at)

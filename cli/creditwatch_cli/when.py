"""When a silence ends: a duration from now, a weekday, a date or a time. No I/O."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, tzinfo

from creditwatch_cli.errors import UserError

DURATION = re.compile(r"(?:([0-9]{1,4})([mhdw]))+")
PART = re.compile(r"([0-9]{1,4})([mhdw])")
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
LONGEST = timedelta(days=366)


def until(text: str, now: datetime, local: tzinfo) -> datetime:
    """The end of a silence, as an aware time, from what a person types:
    - a duration from now: `90m`, `2h`, `3d`, `1w`, `1d12h`;
    - a weekday: `friday`, the start of the next one (a week on, if today is Friday);
    - a date or a time in ISO form: `2026-11-27` (its start), `2026-11-27T17:00`,
      `2026-11-27T17:00Z`; without an offset, in the local time zone.
    It must be in the future and at most a year away."""
    raw = text.strip().lower()
    if DURATION.fullmatch(raw):
        moment = now + sum((timedelta(**{UNITS[unit]: int(count)}) for count, unit in PART.findall(raw)), timedelta())
    elif raw in WEEKDAYS:
        today = now.astimezone(local)
        days = (WEEKDAYS.index(raw) - today.weekday() - 1) % 7 + 1
        moment = (today + timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        try:
            moment = datetime.fromisoformat(text.strip()[:40])
        except ValueError:
            raise UserError(
                f"--until: {text[:40]!r} is not a duration (2h, 3d, 1w), a weekday, or an ISO date or time"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=local)
    if moment <= now:
        raise UserError(f"--until: {text[:40]!r} is not in the future")
    if moment - now > LONGEST:
        raise UserError(f"--until: {text[:40]!r} is more than a year away; a silence that long is an unsubscribe")
    return moment

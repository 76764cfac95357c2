"""Pure domain logic: balances, thresholds, levels and alert transitions. No I/O here."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import IntEnum, StrEnum
from functools import partial
from types import MappingProxyType
from typing import Any, NamedTuple

from creditwatch.forecast import Forecast, PoolWindow, Spike, TopUp, advance, forecast, spike

EMPTY: Mapping[str, Any] = MappingProxyType({})  # the default of a mapping field: shared, so read-only

DEFAULT_POOL = "credits"
ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def iso(moment: datetime) -> str:
    """ISO-8601 UTC to the second; sorts as text in time order."""
    return moment.astimezone(UTC).strftime(ISO_FORMAT)


def parse_iso(text: str) -> datetime:
    return datetime.strptime(text, ISO_FORMAT).replace(tzinfo=UTC)


STALE_PERIODS = Decimal("2.5")  # checks are overdue after this many periods of the schedule without one that worked


def period_start(now: datetime, seconds: int) -> str:
    """The start of the schedule's period that holds `now`: periods of `seconds` from the epoch,
    so every run of one period names it alike."""
    moment = int(now.timestamp())
    return iso(datetime.fromtimestamp(moment - moment % seconds, UTC))


def stale(last: str | None, now: datetime, seconds: int) -> bool:
    """No check has worked for STALE_PERIODS periods since `last` (the last that did, or the
    first run). Nothing is overdue before the first run."""
    return last is not None and Decimal((now - parse_iso(last)).total_seconds()) > STALE_PERIODS * seconds


class Level(IntEnum):
    OK = 0
    WARNING = 1
    CRITICAL = 2

    def __str__(self) -> str:
        return self.name.lower()


class AlertKind(StrEnum):
    LOW_CREDITS = "low_credits"
    RECOVERED = "recovered"
    CHECK_FAILED = "check_failed"
    DEPLETION_FORECAST = "depletion_forecast"
    BURN_SPIKE = "burn_spike"


class Balance(NamedTuple):
    """One pool of credits as a provider reported it."""

    pool: str
    remaining: Decimal
    limit: Decimal | None = None
    used: Decimal | None = None
    topped_up_at: str | None = None  # the provider's own last top-up time (Clado)
    renews_at: str | None = None  # when the provider says the quota next renews, ISO UTC

    @property
    def percent_remaining(self) -> Decimal | None:
        if not self.limit:
            return None
        return self.remaining * 100 / self.limit


class Threshold(NamedTuple):
    """A line in credits, or a percentage of the pool's capacity."""

    amount: Decimal
    percent: bool = False

    def credits(self, capacity: Decimal | None) -> Decimal | None:
        """The line in credits, or None when a percentage has no capacity to apply to."""
        if not self.percent:
            return self.amount
        if not capacity:
            return None
        return capacity * self.amount / 100

    def __str__(self) -> str:
        return f"{self.amount}%" if self.percent else str(self.amount)


class Thresholds(NamedTuple):
    warning: Threshold
    critical: Threshold


class Judgement(NamedTuple):
    """The level of one pool, the line it crossed, and the thresholds that could not be applied."""

    level: Level
    line: Decimal | None = None
    unjudged: tuple[str, ...] = ()


def judge(remaining: Decimal, thresholds: Thresholds, capacity: Decimal | None) -> Judgement:
    """critical if remaining <= critical line, else warning if <= warning line, else ok.

    Percentages apply to `capacity`: the plan limit, or else the fullest balance since the last
    top-up. An empty pool is critical whatever the thresholds say: nothing more can be spent.
    """
    critical = thresholds.critical.credits(capacity)
    warning = thresholds.warning.credits(capacity)
    unjudged = tuple(name for name, line in (("critical", critical), ("warning", warning)) if line is None)
    if remaining <= 0 or (critical is not None and remaining <= critical):
        return Judgement(Level.CRITICAL, critical if critical is not None else Decimal(0), unjudged)
    if warning is not None and remaining <= warning:
        return Judgement(Level.WARNING, warning, unjudged)
    return Judgement(Level.OK, None, unjudged)


# What a check of one account produced.
@dataclass(frozen=True)
class Checked:
    balances: tuple[Balance, ...]
    unlimited: tuple[str, ...] = ()  # pools the provider says have no limit: nothing to watch
    owner: str | None = None  # whose balance it is, where several keys share one (Cleanlist's organisation)


@dataclass(frozen=True)
class Rejected:
    """The provider refused the key: 401/403, or a 200 whose body says so (status 200)."""

    status: int


@dataclass(frozen=True)
class Exhausted:
    """The provider answered 402: the balance is spent."""


@dataclass(frozen=True)
class Unavailable:
    """A transient failure: timeout, 429/5xx after retries, or a body we cannot use."""

    reason: str


@dataclass(frozen=True)
class Misconfigured:
    """The account's entry in the secret is invalid; `problem` names the field."""

    problem: str


Outcome = Checked | Rejected | Exhausted | Unavailable | Misconfigured


class PoolState(NamedTuple):
    level: Level = Level.OK
    alerted_at: str | None = None  # when the current low level was last alerted or reminded
    forecast: Level = Level.OK
    spike: Level = Level.OK  # warning while the recent burn is a spike
    spike_alerted_at: str | None = None


class AccountState(NamedTuple):
    """What was last alerted for one account. `version` guards concurrent writers."""

    version: int = 0
    check: Level = Level.OK
    check_alerted_at: str | None = None
    failures: int = 0
    pools: Mapping[str, PoolState] = EMPTY
    silenced: tuple[str, ...] = ()  # what a silence kept quiet ("<pool>:<aspect>", ":check"), owed a catch-up
    retired_at: str | None = None  # when the account left every secret of the fleet
    shares: str | None = None  # a key's: the shared balance its last answer drew on ("@<owner>")
    members: tuple[str, ...] = ()  # a shared balance's: the accounts whose keys draw on it, by name


class Policy(NamedTuple):
    thresholds: Thresholds
    failures_before_alert: int = 3
    burn_window: timedelta = timedelta(hours=72)
    forecast_warning_days: Decimal = Decimal(7)
    forecast_critical_days: Decimal = Decimal(2)
    remind_after: timedelta | None = timedelta(hours=24)  # None: no reminders
    spike_window: timedelta = timedelta(hours=6)
    spike_factor: Decimal = Decimal(3)
    spike_minimum: Decimal = Decimal(100)  # credits the recent part must have consumed


class Alert(NamedTuple):
    kind: AlertKind
    level: Level
    provider: str
    account: str
    observed_at: str
    pool: str | None = None  # None: the alert is about the check itself
    aspect: str = "level"  # the part of the pool's state it settles: "level" or "forecast"
    previous: Level = Level.OK
    balance: Balance | None = None
    line: Decimal | None = None
    reason: str | None = None
    reminder: bool = False
    topup: TopUp | None = None
    forecast: Forecast | None = None
    folded_forecast: Level | None = None  # a depletion_forecast of this level, told in this alert instead
    spike: Spike | None = None
    catch_up: bool = False  # sent when a silence ended and the state is still bad
    shared_by: tuple[str, ...] = ()  # a shared balance's: the accounts that draw on it, named in the text

    @property
    def severity(self) -> str:
        return "info" if self.kind is AlertKind.RECOVERED else str(self.level)

    @property
    def id(self) -> str:
        """Stable for this alert and no other: consumers can de-duplicate on it."""
        parts = (self.provider, self.account, self.pool or "", self.aspect, self.kind, self.level, self.observed_at)
        digest = hashlib.sha256("\x1f".join(map(str, (*parts, self.reminder))).encode()).hexdigest()
        return digest[:32]


class PoolReport(NamedTuple):
    """What one run learned about one pool."""

    balance: Balance
    judgement: Judgement
    forecast: Forecast
    topup: TopUp | None = None
    spike: Spike | None = None  # None: too little history to tell


class Evaluation(NamedTuple):
    state: AccountState
    observed_at: str
    windows: Mapping[str, PoolWindow] = EMPTY
    alerts: tuple[Alert, ...] = ()
    pools: tuple[PoolReport, ...] = ()  # empty when the check failed


def shift(before: Level, after: Level, worse: AlertKind) -> AlertKind | None:
    """The alert a level change deserves: worse levels alert, a return to ok recovers.

    Easing from critical to warning sends nothing; the new level is just recorded.
    """
    if after > before:
        return worse
    if after is Level.OK and before > Level.OK:
        return AlertKind.RECOVERED
    return None


def follow_up(
    before: Level, after: Level, alerted_at: str | None, now: datetime, remind_after: timedelta | None, worse: AlertKind
) -> tuple[AlertKind | None, bool, str | None]:
    """The alert for a level: a change, or a reminder of a problem that stays.

    Returns the alert kind (or None), whether it is a reminder, and the new `alerted_at`.
    """
    kind = shift(before, after, worse)
    if kind is worse:
        return kind, False, iso(now)
    if after is Level.OK:
        return kind, False, None
    if alerted_at is None:  # a state written before reminders existed: start the clock now
        return None, False, iso(now)
    if remind_after is not None and now - parse_iso(alerted_at) >= remind_after:
        return worse, True, iso(now)
    return None, False, alerted_at


def forecast_level(prediction: Forecast, policy: Policy) -> Level:
    if prediction.days_left is None:
        return Level.OK
    if prediction.days_left < policy.forecast_critical_days:
        return Level.CRITICAL
    if prediction.days_left < policy.forecast_warning_days:
        return Level.WARNING
    return Level.OK


def failure_reason(outcome: Rejected | Unavailable | Misconfigured) -> str:
    """Why a check failed, in words for people: alert texts and the command's output."""
    if isinstance(outcome, Rejected):
        said = f"HTTP {outcome.status}" if outcome.status != 200 else "the answer says the key is invalid"
        return f"the API key was rejected ({said})"
    if isinstance(outcome, Misconfigured):
        return f"its entry in the secret is invalid: {outcome.problem}"
    return outcome.reason


def exhausted_balances(previous: AccountState) -> tuple[Balance, ...]:
    """A 402 empties every pool we know of for the account (or the single default pool)."""
    pools = sorted(previous.pools) or [DEFAULT_POOL]
    return tuple(Balance(pool=pool, remaining=Decimal(0)) for pool in pools)


def evaluate(
    provider: str,
    account: str,
    now: datetime,
    previous: AccountState,
    windows: Mapping[str, PoolWindow],
    outcome: Outcome,
    policy: Policy,
) -> Evaluation:
    """Fold one check's outcome into the account's state and say which alerts it earns."""
    observed_at = iso(now)
    alert = partial(Alert, provider=provider, account=account, observed_at=observed_at)
    if isinstance(outcome, Exhausted):
        outcome = Checked(exhausted_balances(previous))

    if isinstance(outcome, Checked):
        alerts: list[Alert] = []
        if previous.check > Level.OK:
            alerts.append(alert(kind=AlertKind.RECOVERED, level=Level.OK, previous=previous.check))
        pools, reports = dict(previous.pools), []
        advanced: dict[str, PoolWindow] = {}  # only pools seen now: a pool a plan no longer has drops out
        for name in outcome.unlimited:  # nothing to watch: whatever was low is over
            before = pools.pop(name, PoolState())
            if before.level > Level.OK:
                alerts.append(alert(kind=AlertKind.RECOVERED, level=Level.OK, previous=before.level, pool=name))
        for balance in outcome.balances:
            if balance.renews_at is not None and balance.renews_at <= observed_at:
                balance = balance._replace(renews_at=None)  # a renewal already past tells nothing
            window, topup = advance(
                windows.get(balance.pool, PoolWindow()),
                balance.remaining,
                balance.topped_up_at,
                now,
                policy.burn_window,
                parse_iso(balance.renews_at) if balance.renews_at else None,
            )
            capacity = balance.limit or window.full_tank
            prediction = forecast(window, balance.remaining)
            report = PoolReport(
                balance,
                judge(balance.remaining, policy.thresholds, capacity),
                prediction,
                topup,
                spike(window, policy.spike_window, prediction.burn_per_day),
            )
            pools[balance.pool], pool_alerts = _pool(pools.get(balance.pool, PoolState()), report, policy, now, alert)
            advanced[balance.pool] = window
            alerts += pool_alerts
            reports.append(report)
        state = previous._replace(check=Level.OK, check_alerted_at=None, failures=0, pools=pools, shares=None)
        return Evaluation(state, observed_at, advanced, tuple(alerts), tuple(reports))

    failures = previous.failures + 1
    reason = failure_reason(outcome)
    if isinstance(outcome, Rejected | Misconfigured):
        level = Level.CRITICAL
    else:
        level = Level.WARNING if failures >= policy.failures_before_alert else Level.OK
        reason = f"{reason} ({failures} failed check(s) in a row)"
    # A transient failure proves nothing about an earlier one, so it never lowers the level.
    level = max(level, previous.check)
    kind, reminder, alerted_at = follow_up(
        previous.check, level, previous.check_alerted_at, now, policy.remind_after, AlertKind.CHECK_FAILED
    )
    alerts = [alert(kind=kind, level=level, previous=previous.check, reason=reason, reminder=reminder)] if kind else []
    state = previous._replace(check=level, check_alerted_at=alerted_at, failures=failures)
    return Evaluation(state, observed_at, windows, tuple(alerts))


def _pool(
    before: PoolState, report: PoolReport, policy: Policy, now: datetime, alert: partial[Alert]
) -> tuple[PoolState, list[Alert]]:
    alerts = []
    balance, level = report.balance, report.judgement.level
    kind, reminder, alerted_at = follow_up(
        before.level, level, before.alerted_at, now, policy.remind_after, AlertKind.LOW_CREDITS
    )
    details = {"pool": balance.pool, "balance": balance, "topup": report.topup, "forecast": report.forecast}
    if kind:
        alerts.append(
            alert(
                kind=kind, level=level, previous=before.level, line=report.judgement.line, reminder=reminder, **details
            )
        )
    # An empty pool needs no forecast; its level is kept so that no "recovered" follows. A pool
    # that renews before it would run out gets none either.
    if balance.remaining <= 0:
        predicted = before.forecast
    elif renews_first(balance, report.forecast):
        predicted = Level.OK
    else:
        predicted = forecast_level(report.forecast, policy)
    if kind := shift(before.forecast, predicted, AlertKind.DEPLETION_FORECAST):
        low = alerts[0] if alerts and alerts[0].kind is AlertKind.LOW_CREDITS else None
        if kind is AlertKind.DEPLETION_FORECAST and low is not None and low.level >= predicted:
            # Adds nothing to the low_credits alert going out now: told in its text instead.
            alerts[0] = low._replace(folded_forecast=predicted)
        else:
            alerts.append(alert(kind=kind, level=predicted, previous=before.forecast, aspect="forecast", **details))
    spiking = spike_level(report.spike, policy, before.spike)
    kind, reminder, spike_alerted_at = follow_up(
        before.spike, spiking, before.spike_alerted_at, now, policy.remind_after, AlertKind.BURN_SPIKE
    )
    if kind:
        alerts.append(
            alert(
                kind=kind,
                level=spiking,
                previous=before.spike,
                aspect="spike",
                reminder=reminder,
                spike=report.spike,
                **details,
            )
        )
    return PoolState(level, alerted_at, predicted, spiking, spike_alerted_at), alerts


RETIRED = "no longer monitored"
SHARED = "watched as a shared balance"


def balance_name(owner: str) -> str:
    """The name a shared balance is kept under: no account can have it (account names start
    with a letter or digit)."""
    return f"@{owner}"


def share(provider: str, account: str, now: datetime, previous: AccountState, balance: str) -> Evaluation:
    """A key whose answer names a shared balance (several keys draw on it): its check worked,
    and the balance is judged on its own, as `balance`. Whatever the account had alerted for its
    pools on its own closes with one info `recovered` each (it is now the balance's), and a
    failing check that works again recovers."""
    observed_at = iso(now)
    alert = partial(Alert, AlertKind.RECOVERED, Level.OK, provider, account, observed_at)
    alerts = [alert(previous=previous.check)] if previous.check > Level.OK else []
    for name, pool in sorted(previous.pools.items()):
        for aspect, level in (("level", pool.level), ("forecast", pool.forecast), ("spike", pool.spike)):
            if level > Level.OK:
                alerts.append(alert(pool=name, aspect=aspect, previous=level, reason=SHARED))
    state = previous._replace(check=Level.OK, check_alerted_at=None, failures=0, pools=EMPTY, shares=balance)
    return Evaluation(state, observed_at, alerts=tuple(alerts))


def retire(provider: str, account: str, now: datetime, previous: AccountState) -> Evaluation:
    """An account no longer in any of the fleet's secrets. Each alert still open (a pool's
    level, forecast or spike, or the check) closes with an info `recovered` saying it is no
    longer monitored: the same aspect, so the same dedup_key, and its incident resolves. The
    state is kept, marked retired; a state already retired closes nothing again."""
    if previous.retired_at is not None:
        return Evaluation(previous, previous.retired_at)
    observed_at = iso(now)
    close = partial(Alert, AlertKind.RECOVERED, Level.OK, provider, account, observed_at, reason=RETIRED)
    alerts = [close(previous=previous.check)] if previous.check > Level.OK else []
    for name, pool in sorted(previous.pools.items()):
        for aspect, level in (("level", pool.level), ("forecast", pool.forecast), ("spike", pool.spike)):
            if level > Level.OK:
                alerts.append(close(pool=name, aspect=aspect, previous=level))
    return Evaluation(AccountState(version=previous.version, retired_at=observed_at), observed_at, alerts=tuple(alerts))


def renews_first(balance: Balance, prediction: Forecast) -> bool:
    """The provider's announced renewal comes before the forecast says the pool runs out."""
    if balance.renews_at is None or prediction.days_left is None:
        return False
    return prediction.empty_at is None or parse_iso(balance.renews_at) <= prediction.empty_at


def spike_level(measured: Spike | None, policy: Policy, before: Level) -> Level:
    """warning when the recent burn is at least spike_factor times the window's and consumed at
    least spike_minimum credits; with too little history nothing is claimed either way."""
    if measured is None:
        return before
    ratio = measured.ratio
    if measured.consumed >= policy.spike_minimum and ratio is not None and ratio >= policy.spike_factor:
        return Level.WARNING
    return Level.OK


class Silence(NamedTuple):
    """Nothing is published for `account` (or every account, "*") and `pool` (or every pool,
    "*") until `until`. A rejected key is still alerted unless `keys` says so."""

    account: str
    pool: str
    until: str
    reason: str = ""
    who: str = ""
    keys: bool = False

    def holds(self, account: str, at: str) -> bool:
        """In force at `at` for some or all of `account`'s alerts."""
        return at < self.until and self.account in ("*", account)

    def covers(self, alert: Alert, at: str) -> bool:
        if not self.holds(alert.account, at) or self.pool not in ("*", alert.pool):
            return False
        rejected = alert.kind is AlertKind.CHECK_FAILED and alert.level is Level.CRITICAL
        return self.keys or not rejected


def aspect_of(alert: Alert) -> str:
    return f"{alert.pool}:{alert.aspect}" if alert.pool else ":check"


def catch_up(
    state: AccountState, reports: tuple[PoolReport, ...], alert: partial[Alert]
) -> tuple[Alert | None, tuple[str, ...]]:
    """After a silence: the one alert for the worst of what it kept quiet that is still bad, and
    what cannot be told yet (a pool this run could not check stays owed)."""
    by_pool = {report.balance.pool: report for report in reports}
    candidates: list[Alert] = []
    owed = []
    for entry in state.silenced:
        pool, _, aspect = entry.partition(":")
        if not pool:
            if state.check > Level.OK:
                reason = "checks were still failing when the silence ended"
                candidates.append(alert(kind=AlertKind.CHECK_FAILED, level=state.check, reason=reason, catch_up=True))
            continue
        report, pool_state = by_pool.get(pool), state.pools.get(pool)
        if report is None or pool_state is None:
            owed.append(entry)
            continue
        kind, level = {
            "level": (AlertKind.LOW_CREDITS, pool_state.level),
            "forecast": (AlertKind.DEPLETION_FORECAST, pool_state.forecast),
            "spike": (AlertKind.BURN_SPIKE, pool_state.spike),
        }[aspect]
        if level > Level.OK:
            details = {"balance": report.balance, "forecast": report.forecast, "spike": report.spike}
            line = report.judgement.line if aspect == "level" else None
            candidates.append(
                alert(kind=kind, level=level, pool=pool, aspect=aspect, line=line, catch_up=True, **details)
            )
    worst = max(candidates, key=lambda candidate: candidate.level, default=None)
    return worst, tuple(owed)

"""Pure domain logic: balances, thresholds, levels and alert transitions. No I/O here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from enum import IntEnum, StrEnum

DEFAULT_POOL = "credits"
ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def iso(moment: datetime) -> str:
    """ISO-8601 UTC to the second; sorts as text in time order."""
    return moment.astimezone(UTC).strftime(ISO_FORMAT)


def parse_iso(text: str) -> datetime:
    return datetime.strptime(text, ISO_FORMAT).replace(tzinfo=UTC)


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


@dataclass(frozen=True)
class Balance:
    """One pool of credits as a provider reported it."""

    pool: str
    remaining: Decimal
    limit: Decimal | None = None
    used: Decimal | None = None

    @property
    def percent_remaining(self) -> Decimal | None:
        if not self.limit:
            return None
        return self.remaining * 100 / self.limit


@dataclass(frozen=True)
class Threshold:
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


@dataclass(frozen=True)
class Thresholds:
    warning: Threshold
    critical: Threshold


@dataclass(frozen=True)
class Judgement:
    """The level of one pool, the line it crossed, and the thresholds that could not be applied."""

    level: Level
    line: Decimal | None = None
    unjudged: tuple[str, ...] = ()


def judge(remaining: Decimal, thresholds: Thresholds, capacity: Decimal | None) -> Judgement:
    """critical if remaining <= critical line, else warning if <= warning line, else ok.

    An empty pool is critical whatever the thresholds say: nothing more can be spent.
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


@dataclass(frozen=True)
class Rejected:
    """The provider refused the key (401/403)."""

    status: int


@dataclass(frozen=True)
class Exhausted:
    """The provider answered 402: the balance is spent."""


@dataclass(frozen=True)
class Unavailable:
    """A transient failure: timeout, 429/5xx after retries, or a body we cannot use."""

    reason: str


Outcome = Checked | Rejected | Exhausted | Unavailable


@dataclass(frozen=True)
class PoolState:
    level: Level = Level.OK


@dataclass(frozen=True)
class AccountState:
    """What was last alerted for one account. `version` guards concurrent writers."""

    version: int = 0
    check: Level = Level.OK
    failures: int = 0
    pools: Mapping[str, PoolState] = field(default_factory=dict)


@dataclass(frozen=True)
class Alert:
    kind: AlertKind
    level: Level
    provider: str
    account: str
    observed_at: str
    pool: str | None = None  # None: the alert is about the check itself
    previous: Level = Level.OK
    balance: Balance | None = None
    line: Decimal | None = None
    reason: str | None = None

    @property
    def severity(self) -> str:
        return "info" if self.kind is AlertKind.RECOVERED else str(self.level)


@dataclass(frozen=True)
class Evaluation:
    state: AccountState
    observed_at: str
    alerts: tuple[Alert, ...] = ()
    balances: tuple[Balance, ...] = ()
    judgements: Mapping[str, Judgement] = field(default_factory=dict)


def shift(before: Level, after: Level, worse: AlertKind) -> AlertKind | None:
    """The alert a level change deserves: worse levels alert, a return to ok recovers.

    Easing from critical to warning sends nothing; the new level is just recorded.
    """
    if after > before:
        return worse
    if after is Level.OK and before > Level.OK:
        return AlertKind.RECOVERED
    return None


def exhausted_balances(previous: AccountState) -> tuple[Balance, ...]:
    """A 402 empties every pool we know of for the account (or the single default pool)."""
    pools = sorted(previous.pools) or [DEFAULT_POOL]
    return tuple(Balance(pool=pool, remaining=Decimal(0)) for pool in pools)


def evaluate(
    provider: str,
    account: str,
    observed_at: str,
    previous: AccountState,
    outcome: Outcome,
    thresholds: Thresholds,
    failures_before_alert: int,
) -> Evaluation:
    """Fold one check's outcome into the account's state and say which alerts it earns."""
    if isinstance(outcome, Exhausted):
        outcome = Checked(exhausted_balances(previous))

    def alert(kind: AlertKind, level: Level, **details: object) -> Alert:
        return Alert(kind, level, provider, account, observed_at, **details)  # type: ignore[arg-type]

    alerts: list[Alert] = []
    if isinstance(outcome, Checked):
        if kind := shift(previous.check, Level.OK, AlertKind.CHECK_FAILED):
            alerts.append(alert(kind, Level.OK, previous=previous.check))
        pools = dict(previous.pools)
        judgements: dict[str, Judgement] = {}
        for balance in outcome.balances:
            judgement = judgements[balance.pool] = judge(balance.remaining, thresholds, balance.limit)
            before = pools.get(balance.pool, PoolState())
            if kind := shift(before.level, judgement.level, AlertKind.LOW_CREDITS):
                alerts.append(
                    alert(
                        kind,
                        judgement.level,
                        pool=balance.pool,
                        previous=before.level,
                        balance=balance,
                        line=judgement.line,
                    )
                )
            pools[balance.pool] = replace(before, level=judgement.level)
        state = replace(previous, check=Level.OK, failures=0, pools=pools)
        return Evaluation(state, observed_at, tuple(alerts), outcome.balances, judgements)

    failures = previous.failures + 1
    if isinstance(outcome, Rejected):
        level, reason = Level.CRITICAL, f"the API key was rejected (HTTP {outcome.status})"
    else:
        level = Level.WARNING if failures >= failures_before_alert else Level.OK
        reason = f"{outcome.reason} ({failures} failed check(s) in a row)"
    # A transient failure proves nothing about an earlier one, so it never lowers the level.
    level = max(level, previous.check)
    if kind := shift(previous.check, level, AlertKind.CHECK_FAILED):
        alerts.append(alert(kind, level, previous=previous.check, reason=reason))
    return Evaluation(replace(previous, check=level, failures=failures), observed_at, tuple(alerts))


def revert(state: AccountState, previous: AccountState, unsent: Iterable[Alert]) -> AccountState:
    """Undo the parts of `state` whose alerts could not be sent, so the next run sends them."""
    for alert in unsent:
        if alert.pool is None:
            state = replace(state, check=previous.check)
        else:
            before = previous.pools.get(alert.pool, PoolState())
            pool = replace(state.pools[alert.pool], level=before.level)
            state = replace(state, pools={**state.pools, alert.pool: pool})
    return state

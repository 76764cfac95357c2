"""One run's accounts read as a fleet. Pure: no I/O.

CloudWatch bills every distinct set of dimension values as a metric of its own, by the hour,
so a series per account makes a fleet's bill grow with the fleet. A run therefore publishes:
- the fleet's series, whose number does not depend on its size: accounts by level, and each
  pool's lowest days until empty and lowest percent remaining;
- series of an account's own only within a budget, given to the accounts that need attention
  first (an allotment);
- a record of every account, in the journal, where Logs Insights finds any of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, NamedTuple

from creditwatch.domain import Evaluation, Level, PoolReport

FAILED, UNCHECKED = "failed", "unchecked"
RANKS = {UNCHECKED: 4, FAILED: 4, str(Level.CRITICAL): 3, str(Level.WARNING): 2}
WATCHED = 1  # ok, but forecast to run out soon or burning in a spike
LEVEL_METRICS = {
    str(Level.OK): "AccountsOk",
    str(Level.WARNING): "AccountsWarning",
    str(Level.CRITICAL): "AccountsCritical",
    FAILED: "AccountsFailed",
}
CHECK_SERIES = 2  # CheckSucceeded and CheckFailed of the account


class Standing(NamedTuple):
    """An account's place in the fleet this run; a higher rank needs attention first."""

    account: str
    level: str  # ok, warning, critical (its worst pool), failed (the check), unchecked (not this run)
    rank: int
    days_left: Decimal | None = None  # the lowest of its pools'
    percent: Decimal | None = None  # the lowest share of a plan limit left, where one is reported
    reason: str | None = None  # why it failed or was not checked

    def order(self) -> tuple[Any, ...]:
        """Worst level first, then fewest days left, then least of its plan left, then by name."""
        days = (self.days_left is None, self.days_left or 0)
        return -self.rank, *days, self.percent is None, self.percent or 0, self.account


def standing(account: str, evaluation: Evaluation, failure: str | None = None) -> Standing:
    """Where a checked account stands: its worst pool's level, or failed when the check failed
    (`failure` says why)."""
    reports = evaluation.pools
    if not reports:
        reason = f"{failure or 'the check failed'} ({evaluation.state.failures} in a row)"
        return Standing(account, FAILED, RANKS[FAILED], reason=reason)
    level = str(max(report.judgement.level for report in reports))
    pools = evaluation.state.pools
    watched = any(
        max(pools[report.balance.pool].forecast, pools[report.balance.pool].spike) > Level.OK
        for report in reports
        if report.balance.pool in pools
    )
    days = [report.forecast.days_left for report in reports if report.forecast.days_left is not None]
    percents = [p for p in (report.balance.percent_remaining for report in reports) if p is not None]
    return Standing(
        account,
        level,
        RANKS.get(level, WATCHED if watched else 0),
        min(days, default=None),
        min(percents, default=None),
    )


def succeeded(evaluation: Evaluation) -> bool:
    """The check worked: it read balances, or the shared balance the key draws on."""
    return bool(evaluation.pools) or (evaluation.state.shares is not None and not evaluation.state.failures)


def unchecked(account: str, reason: str) -> Standing:
    return Standing(account, UNCHECKED, RANKS[UNCHECKED], reason=reason)


def pool_values(report: PoolReport) -> dict[str, Decimal]:
    """The values of one pool's series: balance, share of the plan limit, burn, days left, and
    the recent burn against the window's."""
    balance, prediction = report.balance, report.forecast
    candidates = {
        "CreditsRemaining": balance.remaining,
        "PercentRemaining": balance.percent_remaining,
        "BurnRatePerDay": prediction.burn_per_day,
        "DaysUntilEmpty": prediction.days_left,
        "BurnSpikeRatio": report.spike.ratio if report.spike else None,
    }
    return {name: value for name, value in candidates.items() if value is not None}


class Allotment(NamedTuple):
    """Which accounts publish series of their own this run."""

    headline: frozenset[str] = frozenset()  # their CreditsRemaining, per pool
    detail: frozenset[str] = frozenset()  # every series of theirs: checks, burn, forecasts, top-ups


def allot(standings: Iterable[Standing], evaluations: Mapping[str, Evaluation], budget: int) -> Allotment:
    """At most `budget` series of accounts' own, whatever the fleet's size. In attention order,
    first each account's CreditsRemaining line (one per pool), then, with what is left, each
    account's other series. A small fleet keeps every account's own line; a large one, those of
    the accounts that need attention."""
    order = [s.account for s in sorted(standings, key=Standing.order) if s.account in evaluations]
    left = budget
    headline, detail = set(), set()
    for account in order:
        cost = len(evaluations[account].pools)
        if cost and cost <= left:
            headline.add(account)
            left -= cost
    for account in order:
        evaluation = evaluations[account]
        if evaluation.pools and account not in headline:
            continue
        cost = CHECK_SERIES + sum(
            len(pool_values(report)) - 1 + (report.topup is not None and report.topup.added is not None)
            for report in evaluation.pools
        )
        if cost <= left:
            detail.add(account)
            left -= cost
    return Allotment(frozenset(headline), frozenset(detail))


def share(budget: int, accounts: int, fleet: int) -> int:
    """A shard's part of the provider's budget: shards of one run never exceed it together."""
    return budget if accounts >= fleet else budget * accounts // max(fleet, 1)


def tally(standings: Iterable[Standing]) -> dict[str, int]:
    """The fleet by level, and how many were checked and not."""
    counts = dict.fromkeys([*LEVEL_METRICS.values(), "AccountsChecked", "AccountsUnchecked"], 0)
    for s in standings:
        if s.level == UNCHECKED:
            counts["AccountsUnchecked"] += 1
        else:
            counts["AccountsChecked"] += 1
            counts[LEVEL_METRICS[s.level]] += 1
    return counts


def lowest(evaluations: Iterable[Evaluation]) -> dict[str, dict[str, Decimal]]:
    """Per pool, the fleet's fewest days until empty and least share of its plan left, where
    any account reports one."""
    found: dict[str, dict[str, Decimal]] = {}
    for evaluation in evaluations:
        for report in evaluation.pools:
            pool = found.setdefault(report.balance.pool, {})
            for name, value in (
                ("LowestDaysUntilEmpty", report.forecast.days_left),
                ("LowestPercentRemaining", report.balance.percent_remaining),
            ):
                if value is not None:
                    pool[name] = min(pool.get(name, value), value)
    return {pool: values for pool, values in found.items() if values}


def record(provider: str, entry: Standing, evaluation: Evaluation | None, observed_at: str) -> dict[str, Any]:
    """The journal's line for one account: what a Logs Insights query needs to find and rank it,
    and each pool's balance, level, burn and days left. Balances are exact decimal text."""
    line: dict[str, Any] = {
        "provider": provider,
        "account": entry.account,
        "level": entry.level,
        "rank": entry.rank,
        "days_left": _rounded(entry.days_left, "0.01"),
        "percent": _rounded(entry.percent, "0.1"),
        "observed_at": observed_at,
    }
    if entry.reason:
        line["reason"] = entry.reason
    if evaluation is not None and evaluation.pools:
        line["pools"] = {report.balance.pool: _pool(report) for report in evaluation.pools}
    if evaluation is not None and evaluation.state.members:
        line["members"] = list(evaluation.state.members)
    return line


def _pool(report: PoolReport) -> dict[str, Any]:
    balance, prediction = report.balance, report.forecast
    pool: dict[str, Any] = {
        "remaining": str(balance.remaining),
        "level": str(report.judgement.level),
        "burn_per_day": None if prediction.burn_per_day is None else f"{prediction.burn_per_day:.2f}",
        "days_left": _rounded(prediction.days_left, "0.01"),
    }
    if balance.limit is not None:
        pool["limit"] = str(balance.limit)
    if report.topup is not None:
        added = None if report.topup.added is None else str(report.topup.added)
        pool["renewed" if report.topup.renewal else "topped_up"] = added
    if balance.renews_at is not None:
        pool["renews_at"] = balance.renews_at
    return pool


def _rounded(value: Decimal | None, places: str) -> float | None:
    """A number Logs Insights can sort; formatting rounds, so no storable value can raise."""
    return None if value is None else float(f"{value:.{len(places) - 2}f}")

"""Checks from the command: every account at once, judged by the functions' own engine and
stored nowhere. A check from a laptop has no history, so a percentage threshold needs the
provider to report a plan limit; levels, failures and 402s mean what they mean in alerts."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from typing import NamedTuple

from creditwatch import providers
from creditwatch.config import Account
from creditwatch.domain import (
    AccountState,
    Balance,
    Checked,
    Exhausted,
    Level,
    Outcome,
    Policy,
    PoolReport,
    evaluate,
    failure_reason,
)
from creditwatch.http import Pacer, new_session
from creditwatch.monitor import check_account
from creditwatch.notifier import credits
from creditwatch_cli.errors import UserError
from creditwatch_cli.keys import base_url

MAX_CONCURRENCY = 16
EXIT_OK, EXIT_WARNING, EXIT_CRITICAL, EXIT_FAILED = 0, 1, 2, 3


class Result(NamedTuple):
    """What one account's check found."""

    provider: providers.Provider
    account: Account
    pools: tuple[PoolReport, ...]  # empty when the check failed
    error: str | None = None  # why the check failed
    note: str | None = None  # what else the answer said (a 402)

    @property
    def level(self) -> Level:
        return max((report.judgement.level for report in self.pools), default=Level.OK)


def judge(provider: providers.Provider, account: Account, outcome: Outcome) -> Result:
    """The account's levels, by the same rules as the functions', from no history."""
    policy = Policy(thresholds=account.thresholds)
    now = datetime.now(UTC).replace(microsecond=0)
    evaluation = evaluate(provider.name, account.name, now, AccountState(), {}, outcome, policy)
    if isinstance(outcome, Checked | Exhausted):
        note = "the provider answered HTTP 402: no credits left" if isinstance(outcome, Exhausted) else None
        return Result(provider, account, evaluation.pools, note=note)
    return Result(provider, account, (), error=failure_reason(outcome))


def check(
    fleet: Mapping[str, list[Account]], env: Mapping[str, str], done: Callable[[], None] = lambda: None
) -> list[Result]:
    """Check every account of every provider concurrently; results in provider, account order."""
    jobs = []
    sessions, pacers = {}, {}
    for name, accounts in sorted(fleet.items()):
        definition = providers.load(name)
        url = base_url(definition, env)
        sessions[name] = new_session(pool_size=MAX_CONCURRENCY, min_interval=definition.key_interval)
        if definition.provider_interval:
            pacers[name] = Pacer(definition.provider_interval)
        jobs += [(definition, url, account) for account in sorted(accounts, key=lambda account: account.name)]

    def one(job: tuple[providers.Provider, str, Account]) -> Result:
        definition, url, account = job
        if pacer := pacers.get(definition.name):
            time.sleep(max(0.0, pacer.slot() - time.monotonic()))
        result = judge(definition, account, check_account(sessions[definition.name], definition, url, account))
        done()
        return result

    with ThreadPoolExecutor(max_workers=max(1, min(MAX_CONCURRENCY, len(jobs)))) as pool:
        return list(pool.map(one, jobs))


def exit_status(results: list[Result]) -> int:
    """3 if any check failed, else 2 for some critical pool, 1 for some warning, 0 when all are ok."""
    if any(result.error for result in results):
        return EXIT_FAILED
    return int(max((result.level for result in results), default=Level.OK))


def records(results: list[Result]) -> list[dict[str, str | None]]:
    """One record per pool (one per failed account), numbers as exact decimal text."""
    rows: list[dict[str, str | None]] = []
    for result in results:
        where = {"provider": result.provider.name, "account": result.account.name}
        if result.error:
            rows.append({**where, **dict.fromkeys(("pool", "remaining", "limit", "percent")), "level": "failed"})
            rows[-1]["note"] = result.error
        for report in result.pools:
            balance = report.balance
            percent = balance.percent_remaining
            rows.append(
                {
                    **where,
                    "pool": balance.pool,
                    "remaining": str(balance.remaining),
                    "limit": None if balance.limit is None else str(balance.limit),
                    "percent": None if percent is None else f"{percent:.1f}",
                    "level": str(report.judgement.level),
                    "note": result.note,
                }
            )
    return rows


class CheckFailed(Exception):
    """The pre-flight check could not read the balance."""


class Verdict(NamedTuple):
    """A pre-flight answer: whether the batch fits, and the sentence that says so."""

    fits: bool
    sentence: str
    balance: Balance
    need: Decimal
    reserve: Decimal  # the critical threshold, in credits, that must be left after the batch


def preflight(result: Result, need: Decimal, what: str, pool: str | None) -> Verdict:
    """Whether `need` credits (described by `what`) can be spent from the account and still
    leave its critical threshold; raises UserError when the check failed or the pool is unclear."""
    where = f"{result.provider.name}/{result.account.name}"
    if result.error:
        raise CheckFailed(f"{where} could not be checked: {result.error}")
    reports = {report.balance.pool: report for report in result.pools}
    if pool is None:
        pool = next(iter(reports)) if len(reports) == 1 else "credits" if "credits" in reports else None
    if pool not in reports:
        known = ", ".join(reports)
        raise UserError(f"{where} reports the pools {known}: pass --pool with one of them")
    balance = reports[pool].balance
    critical = result.account.thresholds.critical
    line = critical.credits(balance.limit)
    reserve = line if line is not None else Decimal(0)
    caveat = (
        "" if line is not None else f" (the {critical} critical threshold needs a plan limit, and none is reported)"
    )
    have = f"{where} has {credits(balance.remaining)} credits" + (f" in {pool}" if len(reports) > 1 else "")
    left = balance.remaining - need
    if left >= reserve:
        sentence = (
            f"ok: {have}; {what}, which leaves {credits(left)}, at or above the critical threshold of"
            f" {credits(reserve)}{caveat}."
        )
        return Verdict(True, sentence, balance, need, reserve)
    short = need + reserve - balance.remaining
    sentence = (
        f"not enough: {have}; {what}, and {credits(reserve)} must stay for the critical threshold{caveat}."
        f" Top up at least {credits(short)} credits first, at {result.provider.top_up}."
    )
    return Verdict(False, sentence, balance, need, reserve)


def planned(provider: providers.Provider, records_count: int, operation: str) -> tuple[Decimal, str]:
    """The credits `records_count` records of `operation` may cost at most, and those words."""
    cost = provider.costs.get(operation)
    if cost is None:
        if not provider.costs:
            raise UserError(f"{provider.name}'s definition documents no per-operation costs: use --need CREDITS")
        raise UserError(f"--operation: {operation[:40]!r} is not one of {provider.name}'s: {', '.join(provider.costs)}")
    need = cost.most * records_count
    each = f"{credits(cost.most)} each" if cost.least == cost.most else f"up to {credits(cost.most)} each"
    return need, f"{records_count:,} records of {operation} need up to {credits(need)} credits ({each})"

"""One scheduled run for one provider: read keys, check every account, record, alert.

The run owns all risk. Whatever goes wrong with one account (the provider's answer, the
adapter, the domain, a write, a send) is that account's failure: it is logged, counted and
reported at the end, and the other accounts go on.

Alerts go out through an outbox kept in the account's STATE item:
1. claim: the new state and its rendered alerts are written together, conditionally on the
   version read, so of two racing runs exactly one owns the alerts;
2. send: each alert is published to SNS;
3. confirm: each alert SNS took is removed from the outbox; one it refused is released.
An alert whose send or confirm fails stays in the outbox, and a later run sends it once its
lease (the claiming run's deadline) has passed. Nothing claimed is lost, even on a double fault.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cache, partial
from typing import Any

import boto3
import requests
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from creditwatch import providers
from creditwatch.config import Account, Settings
from creditwatch.domain import Evaluation, Exhausted, Misconfigured, Outcome, PoolReport, Unavailable, evaluate, iso
from creditwatch.http import REQUEST_BUDGET, fetch, new_session
from creditwatch.notifier import Notifier
from creditwatch.observability import emit, logger, metrics
from creditwatch.repository import Pending, Repository, Snapshot, StateConflict, Stored, TopUpRecord
from creditwatch.secret_store import load_accounts

AWS_ERRORS = (BotoCoreError, ClientError)
TIME_MARGIN = 5.0  # seconds kept free at the end of the invocation
MAX_OUTBOX = 20  # alerts kept per account while SNS refuses them; older ones are dropped loudly


class RunIncomplete(RuntimeError):
    """Some accounts, writes or alerts failed. Raised after every account was handled, so
    Lambda records an error and retries; unsent alerts wait in their outbox."""


@cache
def aws() -> tuple[Any, Any]:
    """Clients made once per execution environment and reused by warm invocations."""
    return boto3.resource("dynamodb"), boto3.client("sns")


def now() -> datetime:
    """Wall-clock time as stored: UTC, to the second."""
    return datetime.now(UTC).replace(microsecond=0)


def check_provider(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    """One scheduled run for the provider the function's PROVIDER variable names."""
    settings = Settings.from_env(os.environ)
    provider = settings.provider
    metrics.namespace = settings.metrics_namespace
    logger.append_keys(provider=provider.name)
    logger.info("run started", extra={"scheduled_time": event.get("time")})
    accounts = load_accounts(settings.secret_id, settings.thresholds)
    if not accounts:
        logger.warning("not configured: the secret holds the placeholder", extra={"secret_id": settings.secret_id})
        return {"provider": provider.name, "configured": False}
    dynamodb, sns = aws()
    remaining = context.get_remaining_time_in_millis() / 1000 - TIME_MARGIN
    deadline = time.monotonic() + remaining
    clock = now
    run = Run(
        provider=provider,
        settings=settings,
        repository=Repository(dynamodb.Table(settings.table_name), provider.name, settings.retention_days, deadline),
        notifier=Notifier(sns, settings.topic_arn, provider),
        session=new_session(deadline),
        deadline=deadline,
        clock=clock,
        lease_until=iso(clock() + timedelta(seconds=remaining + TIME_MARGIN)),
    )
    return run.check(accounts)


@dataclass
class Run:
    provider: providers.Provider
    settings: Settings
    repository: Repository
    notifier: Notifier
    session: requests.Session
    lease_until: str  # the invocation's end: until then no other run sends what this one claims
    deadline: float = float("inf")  # time.monotonic() by which the run must be done
    clock: Callable[[], datetime] = now
    problems: list[str] = field(default_factory=list)
    alerts_sent: int = 0

    def check(self, accounts: list[Account]) -> dict[str, Any]:
        stored, unread = self.repository.load([account.name for account in accounts])
        if unread:
            self._problem(f"state of {len(unread)} account(s) not read", accounts=unread)
        # Least recently checked first, so that a run short of time never skips the same ones.
        queue = sorted(
            (a for a in accounts if a.name in stored), key=lambda a: (stored[a.name].checked_at or "", a.name)
        )
        evaluations: dict[str, Evaluation] = {}
        for index, account in enumerate(queue):
            if time.monotonic() + REQUEST_BUDGET > self.deadline:
                # Better to record what was checked than to be cut off with nothing saved.
                left = [a.name for a in queue[index:]]
                logger.warning("out of time: accounts left for the next run", extra={"accounts": left})
                break
            evaluation = self._isolated(account.name, "check", partial(self._check, account, stored[account.name]))
            if evaluation is not None:
                evaluations[account.name] = evaluation
        self._save_run(evaluations)
        for name, evaluation in evaluations.items():
            previous = stored[name]
            if evaluation.state != previous.state or previous.outbox:
                self._isolated(name, "alert", partial(self._settle, name, previous, evaluation))
        summary = {
            "provider": self.provider.name,
            "accounts": len(accounts),
            "unchecked": len(accounts) - len(evaluations),
            "failed_checks": sum(not evaluation.pools for evaluation in evaluations.values()),
            "alerts_sent": self.alerts_sent,
        }
        logger.info("run finished", extra=summary)
        # One run-level document, flushed by the handler's log_metrics decorator.
        metrics.add_dimension(name="Provider", value=self.provider.name)
        metrics.add_metric(name="AlertsPublished", unit=MetricUnit.Count, value=self.alerts_sent)
        metrics.add_metric(name="AccountErrors", unit=MetricUnit.Count, value=len(self.problems))
        if self.problems:
            raise RunIncomplete("; ".join(self.problems))
        return summary

    def _isolated(self, account: str, stage: str, work: Callable[[], Any]) -> Any:
        """Run one account's work; whatever it raises is that account's failure alone."""
        try:
            return work()
        except Exception as error:  # noqa: BLE001 (isolation: logged with its type, reported by RunIncomplete)
            failure = {"account": account, "stage": stage, "error": type(error).__name__}
            logger.exception("account failed", extra=failure)
            self.problems.append(f"{stage} of {account} failed ({type(error).__name__})")
            return None

    def _problem(self, text: str, **extra: Any) -> None:
        logger.error(text, extra=extra)
        self.problems.append(text)

    def _fetch(self, account: Account) -> Outcome:
        if account.problem:
            return Misconfigured(account.problem)
        try:
            return fetch(self.session, self.provider, self.settings.base_url or self.provider.base_url, account.api_key)
        except Exception as error:  # noqa: BLE001 (an adapter's bug is a failed check, alerted as one)
            logger.exception("adapter failed", extra={"account": account.name, "error": type(error).__name__})
            return Unavailable(f"the {self.provider.title} adapter failed ({type(error).__name__})")

    def _check(self, account: Account, stored: Stored) -> Evaluation:
        outcome = self._fetch(account)
        policy = self.settings.policy(account.thresholds)
        evaluation = evaluate(
            self.provider.name, account.name, self.clock(), stored.state, stored.windows, outcome, policy
        )
        checked = bool(evaluation.pools)
        dimensions = {"Provider": self.provider.name, "Account": account.name}
        emit(
            dimensions,
            {"CheckSucceeded": (MetricUnit.Count, int(checked)), "CheckFailed": (MetricUnit.Count, int(not checked))},
            rollup=("Provider",),
        )
        if not checked:
            logger.warning(
                "check failed",
                extra={
                    "account": account.name,
                    "key": account.key_hint,
                    "outcome": repr(outcome),
                    "failures": evaluation.state.failures,
                },
            )
        for report in evaluation.pools:
            self._report(account.name, report, isinstance(outcome, Exhausted))
            emit({**dimensions, "Pool": report.balance.pool}, pool_metrics(report))
        return evaluation

    def _report(self, account: str, report: PoolReport, exhausted: bool) -> None:
        balance, prediction = report.balance, report.forecast
        logger.info(
            "balance checked",
            extra={
                "account": account,
                "pool": balance.pool,
                "remaining": str(balance.remaining),
                "limit": None if balance.limit is None else str(balance.limit),
                "level": str(report.judgement.level),
                "exhausted": exhausted,
                "forecast": prediction.describe(),
                "burn_per_day": None if prediction.burn_per_day is None else str(prediction.burn_per_day),
            },
        )
        if report.topup:
            logger.info(
                "top-up detected", extra={"account": account, "pool": balance.pool, "added": str(report.topup.added)}
            )
        if report.judgement.unjudged:
            logger.warning(
                "percentage threshold skipped: no plan limit and no balance history for this pool yet",
                extra={"account": account, "pool": balance.pool, "thresholds": report.judgement.unjudged},
            )

    def _save_run(self, evaluations: dict[str, Evaluation]) -> None:
        snapshots, topups = [], []
        for account, evaluation in evaluations.items():
            for report in evaluation.pools:
                snapshots.append(Snapshot(account, report.balance, evaluation.observed_at))
                if report.topup:
                    topups.append(TopUpRecord(account, report.balance.pool, report.topup, evaluation.observed_at))
        # Every checked account's window is written, a failed check's too: it records when the
        # account was last checked, which orders the next run.
        windows = {account: evaluation.windows for account, evaluation in evaluations.items()}
        try:
            failed = self.repository.save_run(snapshots, windows, topups, self.clock())
        except Exception as error:  # noqa: BLE001 (alerts still go out; reported by RunIncomplete)
            logger.exception("balances not saved", extra={"snapshots": len(snapshots), "error": type(error).__name__})
            self.problems.append(f"{len(snapshots)} snapshot(s) not saved")
            return
        if failed:
            self._problem(f"balances of {len(failed)} account(s) not saved", accounts=sorted(failed))

    def _settle(self, account: str, previous: Stored, evaluation: Evaluation) -> None:
        """Claim the new state with its alerts, send them, and confirm each one sent."""
        clock = self.clock()
        at = iso(clock)
        rendered = [self.notifier.render(alert) for alert in evaluation.alerts]  # before anything is claimed
        mine = [p.message for p in previous.outbox if p.lease_until <= at] + rendered
        leased = [p for p in previous.outbox if p.lease_until > at]  # another run may be sending these
        if evaluation.state == previous.state and not mine:
            return
        outbox = leased + [Pending(message, self.lease_until) for message in mine]
        if len(outbox) > MAX_OUTBOX:  # SNS has refused alerts for many runs: the oldest go, loudly
            dropped, outbox = outbox[:-MAX_OUTBOX], outbox[-MAX_OUTBOX:]
            self._problem(f"{len(dropped)} unsent alert(s) of {account} dropped: the outbox is full", account=account)
            kept = {p.message.id for p in outbox}
            mine = [message for message in mine if message.id in kept]
        try:
            version = self.repository.save_state(account, previous.state.version, evaluation.state, outbox, clock)
        except StateConflict:
            logger.info("a concurrent run changed this state first; its alerts are its own", extra={"account": account})
            return
        except AWS_ERRORS:
            logger.exception("state not saved; alerts deferred to the next run", extra={"account": account})
            self.problems.append(f"state of {account} not saved")
            return
        refused = []
        for message in mine:
            extra = {"account": account, "alert": message.attributes["alert"], "alert_id": message.id}
            try:
                self.notifier.publish(message)
            except AWS_ERRORS:
                logger.exception("alert not published; it stays in the outbox", extra=extra)
                refused.append(message.id)
                continue
            self.alerts_sent += 1
            logger.info("alert published", extra=extra)
            outbox = [p for p in outbox if p.message.id != message.id]
            confirmed = self._confirm(account, version, evaluation, outbox, clock)
            if confirmed is None:  # the outbox could not be updated: what is left waits for its lease
                return
            version = confirmed
        if refused:
            self.problems.append(f"{len(refused)} alert(s) for {account} not published")
            # Released at once, so the next run resends them without waiting for the lease.
            released = [replace(p, lease_until=at) if p.message.id in refused else p for p in outbox]
            self._confirm(account, version, evaluation, released, clock)

    def _confirm(
        self, account: str, version: int, evaluation: Evaluation, outbox: list[Pending], clock: datetime
    ) -> int | None:
        try:
            return self.repository.save_state(account, version, evaluation.state, outbox, clock)
        except (StateConflict, *AWS_ERRORS):
            logger.exception("outbox not updated; its alerts wait for their lease", extra={"account": account})
            self.problems.append(f"outbox of {account} not updated")
            return None


def pool_metrics(report: PoolReport) -> dict[str, tuple[MetricUnit, float]]:
    """The metrics of one pool: balance, share of the plan limit, burn, days left, top-up."""
    balance, prediction = report.balance, report.forecast
    candidates = {
        "CreditsRemaining": (MetricUnit.Count, balance.remaining),
        "PercentRemaining": (MetricUnit.Percent, balance.percent_remaining),
        "BurnRatePerDay": (MetricUnit.Count, prediction.burn_per_day),
        "DaysUntilEmpty": (MetricUnit.Count, prediction.days_left),
        "TopUpCredits": (MetricUnit.Count, report.topup.added if report.topup else None),
    }
    return {name: (unit, float(value)) for name, (unit, value) in candidates.items() if value is not None}

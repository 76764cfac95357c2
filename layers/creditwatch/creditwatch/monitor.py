"""One scheduled run for one provider: read keys, check every account, record, alert."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

import boto3
import requests
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from creditwatch import providers
from creditwatch.config import Account, Settings
from creditwatch.domain import AccountState, Evaluation, Exhausted, PoolReport, evaluate, revert
from creditwatch.http import READ_TIMEOUT, fetch, new_session
from creditwatch.notifier import Notifier
from creditwatch.observability import emit, logger, metrics
from creditwatch.repository import Repository, Snapshot, StateConflict, TopUpRecord, Windows
from creditwatch.secret_store import load_accounts

AWS_ERRORS = (BotoCoreError, ClientError)
TIME_MARGIN = 5.0  # seconds kept free at the end of the invocation


class RunIncomplete(RuntimeError):
    """Some writes or alerts failed. Raised after every account was handled, so Lambda
    records an error and retries; nothing is lost because unsent alerts were rolled back."""


@cache
def aws() -> tuple[Any, Any]:
    """Clients made once per execution environment and reused by warm invocations."""
    return boto3.resource("dynamodb"), boto3.client("sns")


def check_provider(name: str, event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    settings = Settings.from_env(os.environ)
    provider = providers.load(name)
    metrics.namespace = settings.metrics_namespace
    logger.append_keys(provider=provider.name)
    logger.info("run started", extra={"scheduled_time": event.get("time")})
    accounts = load_accounts(settings.secret_id, settings.thresholds)
    if not accounts:
        logger.warning("not configured: the secret holds the placeholder", extra={"secret_id": settings.secret_id})
        return {"provider": provider.name, "configured": False}
    dynamodb, sns = aws()
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - TIME_MARGIN
    run = Run(
        provider=provider,
        settings=settings,
        repository=Repository(dynamodb.Table(settings.table_name), provider.name, settings.retention_days),
        notifier=Notifier(sns, settings.topic_arn, provider),
        session=new_session(deadline),
        deadline=deadline,
    )
    return run.check(accounts)


@dataclass
class Run:
    provider: providers.Provider
    settings: Settings
    repository: Repository
    notifier: Notifier
    session: requests.Session
    deadline: float = float("inf")  # time.monotonic() by which the run must be done
    clock: Callable[[], datetime] = lambda: datetime.now(UTC).replace(microsecond=0)  # as stored
    problems: list[str] = field(default_factory=list)
    alerts_sent: int = 0

    def check(self, accounts: list[Account]) -> dict[str, Any]:
        loaded = self.repository.load([account.name for account in accounts])
        evaluations = {}
        for index, account in enumerate(accounts):
            if time.monotonic() + READ_TIMEOUT > self.deadline:
                # Better to record what was checked than to be cut off with nothing saved.
                left = [a.name for a in accounts[index:]]
                logger.warning("out of time: accounts left for the next run", extra={"accounts": left})
                break
            evaluations[account.name] = self._check_account(account, *loaded[account.name])
        self._save_run(evaluations)
        for name, evaluation in evaluations.items():
            previous = loaded[name][0]
            if evaluation.state != previous:
                self._settle(name, previous, evaluation)
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
        if self.problems:
            raise RunIncomplete("; ".join(self.problems))
        return summary

    def _check_account(self, account: Account, previous: AccountState, windows: Windows) -> Evaluation:
        base_url = self.settings.base_url or self.provider.base_url
        outcome = fetch(self.session, self.provider, base_url, account.api_key)
        policy = self.settings.policy(account.thresholds)
        evaluation = evaluate(self.provider.name, account.name, self.clock(), previous, windows, outcome, policy)
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
        windows = {account: evaluation.windows for account, evaluation in evaluations.items() if evaluation.pools}
        try:
            self.repository.save_run(snapshots, windows, topups, self.clock())
        except AWS_ERRORS:
            logger.exception("balances not saved", extra={"snapshots": len(snapshots)})
            self.problems.append(f"{len(snapshots)} snapshot(s) not saved")

    def _settle(self, account: str, previous: AccountState, evaluation: Evaluation) -> None:
        """Claim the state change with a conditional write, then send its alerts.

        Of two runs racing on the same change only the one whose write lands sends. An alert
        that cannot be sent has its part of the state rolled back, so the next run resends it.
        """
        now = self.clock()
        try:
            written = self.repository.save_state(account, previous, evaluation.state, now)
        except StateConflict:
            logger.info("a concurrent run changed this state first; its alerts are its own", extra={"account": account})
            return
        except AWS_ERRORS:
            logger.exception("state not saved; alerts deferred to the next run", extra={"account": account})
            self.problems.append(f"state of {account} not saved")
            return
        unsent = []
        for alert in evaluation.alerts:
            extra = {"account": account, "pool": alert.pool, "alert": str(alert.kind), "severity": alert.severity}
            try:
                self.notifier.publish(alert)
            except AWS_ERRORS:
                logger.exception("alert not published; rolling its state back", extra=extra)
                unsent.append(alert)
            else:
                self.alerts_sent += 1
                logger.info("alert published", extra=extra)
        if not unsent:
            return
        self.problems.append(f"{len(unsent)} alert(s) for {account} not published")
        try:
            self.repository.save_state(account, written, revert(written, previous, unsent), now)
        except (StateConflict, *AWS_ERRORS):
            logger.exception("rollback failed: these alerts will not be resent", extra={"account": account})


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

"""One run for one provider: read keys, check every account, record, alert.

The run owns all risk. Whatever goes wrong with one account (the provider's answer, the
adapter, the domain, a write, a send) is that account's failure: it is logged, counted and
reported at the end, and the other accounts go on.

Checks run concurrently, up to MAX_CONCURRENCY at once: each thread only waits on its
provider, and everything else (judging, metrics, DynamoDB, alerts) happens on the run's own
thread, in batches. A fleet larger than ACCOUNTS_PER_SHARD is not checked by the scheduled
invocation itself: it sends shards of account names to the provider's SQS queue, and the
same function checks each shard as its own invocation.

Alerts go out through an outbox kept in the account's STATE item:
1. claim: the new state and its rendered alerts are written together, conditionally on the
   version read, so of two racing runs (or shards delivered twice) exactly one owns the alerts;
2. send: each alert is published to SNS and put on the EventBridge bus;
3. confirm: each channel that took an alert is struck from its entry, and an entry no channel
   still owes is removed; one a channel refused is released, owed to that channel only.
An alert whose send or confirm fails stays in the outbox, and a later run sends it once its
lease (the claiming run's deadline) has passed. Nothing claimed is lost, even on a double fault.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache, partial
from typing import Any, TypedDict, cast

import boto3
import urllib3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from creditwatch import fleet, providers
from creditwatch.config import Account, Settings
from creditwatch.domain import (
    AccountState,
    Alert,
    Checked,
    Evaluation,
    Exhausted,
    Misconfigured,
    Outcome,
    PoolReport,
    Rejected,
    Silence,
    Unavailable,
    aspect_of,
    balance_name,
    catch_up,
    evaluate,
    failure_reason,
    iso,
    period_start,
    retire,
    share,
    stale,
)
from creditwatch.fleet import Allotment, Standing, pool_values
from creditwatch.http import REQUEST_BUDGET, Pacer, fetch, new_session
from creditwatch.journal import Journal, line
from creditwatch.notifier import CHANNELS, EventRefused, Notifier
from creditwatch.observability import emit, logger, metrics
from creditwatch.repository import Pending, Repository, Snapshot, StateConflict, Stored, TopUpRecord
from creditwatch.secret_store import load_accounts

AWS_ERRORS = (BotoCoreError, ClientError)
TIME_MARGIN = 5.0  # seconds kept free at the end of the invocation
MAX_OUTBOX = 20  # alerts kept per account while SNS refuses them; older ones are dropped loudly
MAX_SHARD_MESSAGE = 200_000  # bytes of shard messages per SendMessageBatch (SQS takes 256 KiB)


# The two events the function receives. Powertools' event data classes would cost a third of
# the handler's own cold import: importing one imports all of its 40 event types.
class ScheduledEvent(TypedDict, total=False):
    """What the template's schedule sends (an EventBridge scheduled-event shape). Its detail
    says `tick` (the stack's clock, every 15 minutes): the provider is then checked only when
    its schedule is due. Any other event (an invocation by hand) checks at once."""

    id: str
    time: str
    detail: dict[str, Any]


class ShardRecord(TypedDict):
    """One message of the provider's shard queue, as the SQS event source delivers it."""

    messageId: str
    body: str


class RunIncomplete(RuntimeError):
    """Some accounts, writes or alerts failed. Raised after every account was handled, so
    Lambda records an error and retries; unsent alerts wait in their outbox."""


UNITS = {
    "CreditsRemaining": MetricUnit.Count,
    "PercentRemaining": MetricUnit.Percent,
    "BurnRatePerDay": MetricUnit.Count,
    "DaysUntilEmpty": MetricUnit.Count,
    "BurnSpikeRatio": MetricUnit.Count,
    "LowestDaysUntilEmpty": MetricUnit.Count,
    "LowestPercentRemaining": MetricUnit.Percent,
}


@cache
def aws() -> tuple[Any, Any, Any, Any]:
    """Clients made once per execution environment and reused by warm invocations. DynamoDB's
    is low-level and skips botocore's parameter validation: the repository builds every
    request itself, in DynamoDB's typed form."""
    dynamodb = boto3.client("dynamodb", config=Config(parameter_validation=False))
    return dynamodb, boto3.client("sns"), boto3.client("sqs"), boto3.client("events")


@cache
def logs() -> Any:
    """The journal's client, made only where a journal is configured."""
    return boto3.client("logs")


def now() -> datetime:
    """Wall-clock time as stored: UTC, to the second."""
    return datetime.now(UTC).replace(microsecond=0)


def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The function's one entry: a scheduled run, or shards of one from the provider's queue."""
    settings = Settings.from_env(os.environ)
    metrics.namespace = settings.metrics_namespace
    logger.append_keys(provider=settings.provider.name)
    if "Records" in event:
        return check_shards(cast(list[ShardRecord], event["Records"]), context, settings)
    return check_provider(cast(ScheduledEvent, event), context, settings)


def check_provider(event: ScheduledEvent, context: LambdaContext, settings: Settings) -> dict[str, Any]:
    """A scheduled run: every account, checked here or, for a large fleet, sent out in shards.
    On a tick, only when the provider's schedule is due: once per period of it."""
    provider = settings.provider
    logger.set_correlation_id(event.get("id"))
    run = new_run(settings, context, settings.account_series)
    record, now = run.repository.run_record(), run.clock()
    period = period_start(now, settings.period)
    # Every tick says whether the provider's checks are overdue: the stale alarm's metric, in
    # step with each provider's own schedule.
    overdue = stale(record.succeeded_at or record.since, now, settings.period)
    emit({"Provider": provider.name}, {"CheckOverdue": (MetricUnit.Count, float(overdue))})
    if event.get("detail", {}).get("tick") and record.done is not None and record.done >= period:
        logger.debug("not due", extra={"schedule": settings.schedule, "period": period})
        return {"provider": provider.name, "due": False}
    logger.info("run started", extra={"scheduled_time": event.get("time"), "schedule": settings.schedule})
    accounts = load_accounts(settings.secret_name, settings.thresholds)
    if not accounts:
        logger.warning("not configured: the secret holds the placeholder", extra={"secret": settings.secret_name})
        if record.since is None:  # checked at every tick until a key is in; overdue all the same
            run.save_schedule({"since": iso(now)})
        return {"provider": provider.name, "configured": False}
    try:
        if any(account.problem for account in accounts):  # a secret or an entry not read: its accounts are unknown
            logger.warning("the fleet's secrets were not all read: no account is retired this run")
        else:
            run.retire({account.name for account in accounts})
        if settings.shard_queue_url and len(accounts) > settings.accounts_per_shard:
            summary = send_shards(settings, [account.name for account in accounts], event)
            if run.problems:  # a retired account's delivery failed: it is retried by the next run
                logger.warning("retirement incomplete", extra={"problems": run.problems})
            return summary
        return run.check(accounts)
    finally:  # the period is covered, whatever failed in it: what failed waits for the next period's run
        covered = {"done": period, "since": record.since or iso(now)}
        run.save_schedule(covered | ({"succeeded_at": iso(now)} if run.checked_ok else {}))


def check_shards(records: list[ShardRecord], context: LambdaContext, settings: Settings) -> dict[str, Any]:
    """Check the accounts each shard names (the queue delivers one at a time). Accounts
    removed from the secrets since the shard was sent are skipped."""
    everyone = load_accounts(settings.secret_name, settings.thresholds)
    results = []
    for record in records:
        shard = json.loads(record["body"])
        logger.set_correlation_id(shard.get("run"))
        wanted = set(shard["accounts"])
        budget = fleet.share(settings.account_series, len(wanted), len(everyone))
        run = new_run(settings, context, budget)
        # A redelivered shard (its invocation failed) checks only what the earlier ones did not
        # finish: each account is checked once, its requests spent once.
        done = run.repository.shard_progress(record["messageId"])
        accounts = [account for account in everyone if account.name in wanted - done]
        logger.info(
            "shard started", extra={"shard": shard.get("shard"), "accounts": len(accounts), "finished": len(done)}
        )
        try:
            results.append(run.check(accounts))
        finally:
            try:
                run.repository.save_shard_progress(record["messageId"], run.finished, run.clock())
            except AWS_ERRORS as error:  # a redelivery then checks the shard whole
                logger.warning("shard progress not saved", extra={"error": type(error).__name__})
            if run.checked_ok:
                run.save_schedule({"succeeded_at": iso(run.clock())})
    return {"provider": settings.provider.name, "shards": results}


def send_shards(settings: Settings, names: list[str], event: ScheduledEvent) -> dict[str, Any]:
    """Fan a large fleet out: one queue message per ACCOUNTS_PER_SHARD account names (never a
    key), sent in batches. Each shard's invocation reads the keys from the cached secrets."""
    size = settings.accounts_per_shard
    bodies = [
        json.dumps({"run": event.get("id"), "shard": number, "accounts": names[start : start + size]})
        for number, start in enumerate(range(0, len(names), size))
    ]
    sqs = aws()[2]
    for batch in _batches(bodies):
        entries = [{"Id": str(index), "MessageBody": body} for index, body in enumerate(batch)]
        response = sqs.send_message_batch(QueueUrl=settings.shard_queue_url, Entries=entries)
        if response.get("Failed"):  # the scheduled run fails and is retried, shards and all
            raise RunIncomplete(f"{len(response['Failed'])} shard(s) not queued")
    summary = {"provider": settings.provider.name, "accounts": len(names), "shards": len(bodies)}
    logger.info("run sharded", extra=summary)
    metrics.add_dimension(name="Provider", value=settings.provider.name)
    metrics.add_metric(name="ShardsQueued", unit=MetricUnit.Count, value=len(bodies))
    return summary


def _batches(bodies: list[str]) -> Iterator[list[str]]:
    """At most 10 messages and MAX_SHARD_MESSAGE bytes a batch, as SendMessageBatch allows."""
    batch: list[str] = []
    for body in bodies:
        if batch and (len(batch) == 10 or sum(map(len, batch)) + len(body) > MAX_SHARD_MESSAGE):
            yield batch
            batch = []
        batch.append(body)
    if batch:
        yield batch


def new_run(settings: Settings, context: LambdaContext, series_budget: int) -> Run:
    """A run over some of the provider's accounts; `series_budget` is its share of the series
    of accounts' own (ACCOUNT_SERIES, divided among a fleet's shards)."""
    dynamodb, sns, _, events = aws()
    provider = settings.provider
    remaining = context.get_remaining_time_in_millis() / 1000 - TIME_MARGIN
    deadline = time.monotonic() + remaining
    clock = now  # looked up per run, so that tests can set the time
    return Run(
        provider=provider,
        settings=settings,
        repository=Repository(dynamodb, settings.table_name, provider.name, settings.retention_days, deadline),
        notifier=Notifier(sns, settings.topic_arn, provider, events, settings.event_bus),
        session=new_session(deadline, settings.max_concurrency, provider.key_interval),
        deadline=deadline,
        clock=clock,
        lease_until=iso(clock() + timedelta(seconds=remaining + TIME_MARGIN)),
        series_budget=series_budget,
        journal=Journal(logs(), settings.accounts_log_group, provider.name) if settings.accounts_log_group else None,
    )


@dataclass
class Run:
    provider: providers.Provider
    settings: Settings
    repository: Repository
    notifier: Notifier
    session: urllib3.PoolManager
    lease_until: str  # the invocation's end: until then no other run sends what this one claims
    deadline: float = float("inf")  # time.monotonic() by which the run must be done
    clock: Callable[[], datetime] = now
    series_budget: int = 0  # series of accounts' own this run may publish
    journal: Journal | None = None  # where every account's line goes; the function's log without one
    problems: list[str] = field(default_factory=list)
    unfinished: set[str] = field(default_factory=set)  # accounts whose work a problem cut short
    finished: set[str] = field(default_factory=set)  # checked, saved and alerted, problem-free
    alerts_sent: int = 0
    events_sent: int = 0
    alerts_silenced: int = 0
    silences: list[Silence] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)  # why each failed check failed, in words
    shared: dict[str, tuple[str, ...]] = field(default_factory=dict)  # each shared balance's accounts
    checked_ok: bool = False  # some account's check worked

    def __post_init__(self) -> None:
        interval = self.provider.provider_interval
        self.pacer = Pacer(interval) if interval else None

    def check(self, accounts: list[Account]) -> dict[str, Any]:
        # Name order, rotated to start where the last run over these accounts ran out of time:
        # a run short of time never skips the same accounts twice. The order is known before
        # any state is read, so the checks start at once and the state loads while they wait.
        by_name = sorted(accounts, key=lambda account: account.name)
        cursor_key = by_name[0].name if by_name else ""
        start = self.repository.cursor(cursor_key)
        split = next((i for i, account in enumerate(by_name) if start is not None and account.name >= start), 0)
        queue = by_name[split:] + by_name[:split]
        evaluations: dict[str, Evaluation] = {}
        owned: list[tuple[Account, Outcome]] = []  # answers that name their balance's owner
        left: list[str] = []
        # Threads wait on providers; this thread judges each answer as it comes, in queue order.
        workers = max(1, min(self.settings.max_concurrency, len(queue)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="check") as pool:
            outcomes = pool.map(self._fetch_in_time, queue)
            stored, unread = self.repository.load([account.name for account in queue])
            stored = {name: _returned(found) if found.state.retired_at else found for name, found in stored.items()}
            if unread:
                self._problem(f"state of {len(unread)} account(s) not read", accounts=unread)
            for account, outcome in zip(queue, outcomes, strict=True):
                if outcome is None:
                    left.append(account.name)
                elif account.name in stored:  # an answer without its state waits for the next run
                    if _balance_of(outcome, stored[account.name].state):  # judged once every answer is in
                        owned.append((account, outcome))
                        continue
                    judge = partial(self._judge, account, stored[account.name], outcome)
                    evaluation = self._isolated(account.name, "check", judge)
                    if evaluation is not None:
                        evaluations[account.name] = evaluation
        members = self._judge_owned(owned, stored, evaluations)
        if left:
            logger.warning("out of time: accounts left for the next run", extra={"accounts": left})
        missed = {*left, *unread}
        behind = [account.name for account in queue if account.name in missed]
        if behind and behind[0] != start:  # the next run starts with those this one could not check
            self._isolated(behind[0], "cursor", partial(self.repository.save_cursor, cursor_key, behind[0]))
        standings = [self._standing(account.name, evaluations, set(left), set(unread), members) for account in queue]
        balances = [fleet.standing(name, evaluations[name]) for name in self.shared]
        allotment = fleet.allot(standings + balances, evaluations, self.series_budget)
        self._save_run(evaluations, allotment)
        counts = self._publish(standings, balances, evaluations, allotment)
        self.silences = self._silences()
        for name, evaluation in evaluations.items():
            previous = stored[name]
            if evaluation.state != previous.state or previous.outbox or previous.state.silenced or not previous.indexed:
                self._isolated(name, "alert", partial(self._settle, name, previous, evaluation))
        unchecked = len(unread) + len(left)
        summary = {
            "provider": self.provider.name,
            "accounts": len(accounts),
            "unchecked": unchecked,
            "failed_checks": sum(not fleet.succeeded(e) for name, e in evaluations.items() if name not in self.shared),
            "alerts_sent": self.alerts_sent,
            "events_sent": self.events_sent,
            "alerts_silenced": self.alerts_silenced,
        }
        logger.info("run finished", extra=summary)
        # One run-level document, flushed by the handler's log_metrics decorator: the fleet by
        # level, and what the run published.
        metrics.add_dimension(name="Provider", value=self.provider.name)
        run = {
            "AlertsPublished": self.alerts_sent,
            "EventsPublished": self.events_sent,
            "AlertsSilenced": self.alerts_silenced,
            "AccountErrors": len(self.problems),
            **counts,
        }
        for name, value in run.items():
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        # A key is finished once the balance it draws on is too.
        cut_short = {key for key, drawn in members.items() if drawn in self.unfinished or drawn not in evaluations}
        self.finished = set(evaluations) - set(self.shared) - self.unfinished - cut_short
        self.checked_ok = any(fleet.succeeded(e) for name, e in evaluations.items() if name not in self.shared)
        if self.problems:
            raise RunIncomplete("; ".join(self.problems))
        return summary

    def _standing(
        self,
        account: str,
        evaluations: dict[str, Evaluation],
        left: set[str],
        unread: set[str],
        members: dict[str, str],
    ) -> Standing:
        if account in members and account in evaluations:  # where the balance it draws on stands
            balance = members[account]
            if balance not in evaluations:
                return fleet.unchecked(account, f"the shared balance {balance} could not be judged")
            shared = fleet.standing(balance, evaluations[balance])
            return shared._replace(account=account, reason=f"draws on the shared balance {balance}")
        if account in evaluations:
            return fleet.standing(account, evaluations[account], self.failures.get(account))
        if account in left:
            return fleet.unchecked(account, "out of time")
        if account in unread:
            return fleet.unchecked(account, "state not read")
        return Standing(account, "failed", 4, reason="the check could not be judged (see the run's errors)")

    def _publish(
        self,
        standings: list[Standing],
        balances: list[Standing],
        evaluations: dict[str, Evaluation],
        allotment: Allotment,
    ) -> dict[str, int]:
        """Every account's and shared balance's journal line; series of its own for each in the
        allotment; each pool's lowest forecast across the fleet. Returns the run's counts for
        its document: accounts (the keys in the secrets), never shared balances."""
        provider = self.provider.name
        for name in sorted(allotment.headline | allotment.detail):
            self._isolated(name, "metrics", partial(self._own_series, name, evaluations[name], allotment))
        for pool, values in fleet.lowest(evaluations.values()).items():
            emit({"Provider": provider, "Pool": pool}, {m: (UNITS[m], float(v)) for m, v in values.items()})
        observed_at = iso(self.clock())
        self._write_journal(
            [
                fleet.record(provider, s, evaluations[s.account], evaluations[s.account].observed_at)
                if s.account in evaluations
                else fleet.record(provider, s, None, observed_at)
                for s in standings + balances
            ]
        )
        counts = fleet.tally(standings)
        # Accounts without series of their own are counted here, so that CheckSucceeded and
        # CheckFailed per provider (the stale-data alarm's) still count every check.
        rest = [e for name, e in evaluations.items() if name not in allotment.detail and name not in self.shared]
        if rest:
            counts["CheckSucceeded"] = sum(map(fleet.succeeded, rest))
            counts["CheckFailed"] = len(rest) - counts["CheckSucceeded"]
        return counts

    def _own_series(self, account: str, evaluation: Evaluation, allotment: Allotment) -> None:
        dimensions = {"Provider": self.provider.name, "Account": account}
        detail = account in allotment.detail
        if detail and account not in self.shared:  # a shared balance is no check of its own
            checked = fleet.succeeded(evaluation)
            checks = {"CheckSucceeded": int(checked), "CheckFailed": int(not checked)}
            emit(dimensions, {name: (MetricUnit.Count, value) for name, value in checks.items()}, rollup=("Provider",))
        for report in evaluation.pools:
            values = pool_metrics(report)
            headline = {"CreditsRemaining": values["CreditsRemaining"]}
            emit({**dimensions, "Pool": report.balance.pool}, values if detail else headline)
            if detail:
                self._report(account, report)

    def _write_journal(self, records: list[dict[str, Any]]) -> None:
        """Each account's line into the journal; lines it does not take go to this log instead."""
        lines = [line(entry) for entry in records]
        refused = lines
        if self.journal is not None:
            try:
                refused = self.journal.write(lines)
            except AWS_ERRORS:
                logger.exception("journal not written; its lines follow in this log", extra={"lines": len(lines)})
            if refused:
                logger.warning("journal refused lines; they follow in this log", extra={"lines": len(refused)})
        kept = set(refused)
        for entry, text in zip(records, lines, strict=True):
            if text in kept:
                logger.info("account checked", extra=entry)

    def _isolated(self, account: str, stage: str, work: Callable[[], Any]) -> Any:
        """Run one account's work; whatever it raises is that account's failure alone."""
        try:
            return work()
        except Exception as error:  # noqa: BLE001 (isolation: logged with its type, reported by RunIncomplete)
            failure = {"account": account, "stage": stage, "error": type(error).__name__}
            logger.exception("account failed", extra=failure)
            self._account_problem(account, f"{stage} of {account} failed ({type(error).__name__})")
            return None

    def _problem(self, text: str, **extra: Any) -> None:
        logger.error(text, extra=extra)
        self.problems.append(text)

    def _account_problem(self, account: str, text: str) -> None:
        self.problems.append(text)
        self.unfinished.add(account)

    def _fetch_in_time(self, account: Account) -> Outcome | None:
        """On a worker thread: the account's check, or None when the run has no time left for it."""
        start = self.pacer.slot() if self.pacer else time.monotonic()
        if start + REQUEST_BUDGET > self.deadline:
            return None
        time.sleep(max(0.0, start - time.monotonic()))
        return check_account(self.session, self.provider, self.settings.base_url or self.provider.base_url, account)

    def _judge_owned(
        self, owned: list[tuple[Account, Outcome]], stored: dict[str, Stored], evaluations: dict[str, Evaluation]
    ) -> dict[str, str]:
        """The answers that name their balance's owner. Keys whose answers name one owner in this
        run, or an owner whose shared balance is already watched, draw on one shared balance:
        it is judged once, from the answer of the first of them (by name) that read it, with
        that account's thresholds, and its alerts name every account drawing on it. A key
        alone with its owner is watched as itself. Returns each sharing key's balance."""
        if not owned:
            return {}
        drawn = [
            (account, outcome, _balance_of(outcome, stored[account.name].state) or "") for account, outcome in owned
        ]
        found, unread = self.repository.load(sorted({balance for _, _, balance in drawn}))
        if unread:
            self._problem(f"state of {len(unread)} shared balance(s) not read", accounts=unread)
        watched = {name for name, balance in found.items() if balance.state.members and not balance.state.retired_at}
        counts = Counter(balance for _, _, balance in drawn)
        drawing: dict[str, list[tuple[Account, Outcome]]] = {}
        for account, outcome, balance in drawn:
            if balance in unread:  # which balance it is cannot be told: the account waits for the next run
                self.unfinished.add(account.name)
                continue
            if counts[balance] > 1 or balance in watched:
                drawing.setdefault(balance, []).append((account, outcome))
                state = stored[account.name].state
                judge = partial(share, self.provider.name, account.name, self.clock(), state, balance)
            else:
                judge = partial(self._judge, account, stored[account.name], outcome)
            evaluation = self._isolated(account.name, "check", judge)
            if evaluation is not None:
                evaluations[account.name] = evaluation
        for name, keys in sorted(drawing.items()):
            keys.sort(key=lambda key: key[0].name)
            previous = _returned(found[name]) if found[name].state.retired_at else found[name]
            stored[name] = previous
            account, outcome = next((key for key in keys if isinstance(key[1], Checked)), keys[0])
            self.shared[name] = tuple(key.name for key, _ in keys)
            judge = partial(self._judge, account, previous, outcome, name, self.shared[name])
            evaluation = self._isolated(name, "check", judge)
            if evaluation is not None:
                evaluations[name] = evaluation
        return {account.name: name for name, keys in drawing.items() for account, _ in keys}

    def _judge(
        self, account: Account, stored: Stored, outcome: Outcome, name: str | None = None, members: tuple[str, ...] = ()
    ) -> Evaluation:
        """An account's evaluation; with `name`, that of the shared balance its key reads, which
        `members` draw on."""
        policy = self.settings.policy(account.thresholds)
        evaluation = evaluate(
            self.provider.name, name or account.name, self.clock(), stored.state, stored.windows, outcome, policy
        )
        if members:
            alerts = tuple(alert._replace(shared_by=members) for alert in evaluation.alerts)
            evaluation = evaluation._replace(state=evaluation.state._replace(members=members), alerts=alerts)
        if not evaluation.pools:
            self.failures[account.name] = failure_reason(cast(Rejected | Unavailable | Misconfigured, outcome))
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
            pool = report.balance.pool
            if report.topup:
                added = str(report.topup.added)
                what = "renewal detected" if report.topup.renewal else "top-up detected"
                logger.info(what, extra={"account": account.name, "pool": pool, "added": added})
            if report.judgement.unjudged:
                logger.warning(
                    "percentage threshold skipped: no plan limit and no balance history for this pool yet",
                    extra={"account": account.name, "pool": pool, "thresholds": report.judgement.unjudged},
                )
        return evaluation

    def _report(self, account: str, report: PoolReport) -> None:
        """A pool's line in the function's log, for the accounts with series of their own; every
        account's is in the journal."""
        balance, prediction = report.balance, report.forecast
        logger.info(
            "balance checked",
            extra={
                "account": account,
                "pool": balance.pool,
                "remaining": str(balance.remaining),
                "limit": None if balance.limit is None else str(balance.limit),
                "level": str(report.judgement.level),
                "forecast": prediction.describe(),
                "burn_per_day": None if prediction.burn_per_day is None else str(prediction.burn_per_day),
            },
        )

    def _save_run(self, evaluations: dict[str, Evaluation], allotment: Allotment) -> None:
        snapshots, topups = [], []
        for account, evaluation in evaluations.items():
            for report in evaluation.pools:
                snapshots.append(Snapshot(account, report.balance, evaluation.observed_at))
                if report.topup:
                    topups.append(TopUpRecord(account, report.balance.pool, report.topup, evaluation.observed_at))
        # Every checked account's window is written, a failed check's too: it records when the
        # account was last checked.
        windows = {account: evaluation.windows for account, evaluation in evaluations.items()}
        for topup in topups:  # rare: one conditional write each, so duplicate runs record it once
            self._isolated(topup.account, "top-up", partial(self._record_topup, topup, allotment))
        try:
            failed = self.repository.save_run(snapshots, windows, self.clock())
        except Exception as error:  # noqa: BLE001 (alerts still go out; reported by RunIncomplete)
            logger.exception("balances not saved", extra={"snapshots": len(snapshots), "error": type(error).__name__})
            self.problems.append(f"{len(snapshots)} snapshot(s) not saved")
            self.unfinished.update(evaluations)
            return
        if failed:
            self._problem(f"balances of {len(failed)} account(s) not saved", accounts=sorted(failed))
            self.unfinished.update(failed)

    def _record_topup(self, record: TopUpRecord, allotment: Allotment) -> None:
        if not self.repository.save_topup(record):
            logger.info("top-up already recorded by a duplicate run", extra={"account": record.account})
            return
        if record.topup.added is not None and record.account in allotment.detail:
            dimensions = {"Provider": self.provider.name, "Account": record.account, "Pool": record.pool}
            metric = "RenewalCredits" if record.topup.renewal else "TopUpCredits"
            emit(dimensions, {metric: (MetricUnit.Count, float(record.topup.added))})

    def _settle(self, account: str, previous: Stored, evaluation: Evaluation) -> None:
        """Claim the new state with its alerts, send them, and confirm each one sent."""
        clock = self.clock()
        at = iso(clock)
        evaluation = self._silence(account, previous, evaluation, at)
        rendered = [self.notifier.render(alert) for alert in evaluation.alerts]  # before anything is claimed
        due = [p for p in previous.outbox if p.lease_until <= at]
        leased = [p for p in previous.outbox if p.lease_until > at]  # another run may be sending these
        if evaluation.state == previous.state and not due and previous.indexed:
            return
        mine = [p._replace(lease_until=self.lease_until) for p in due]
        mine += [Pending(message, self.lease_until, CHANNELS) for message in rendered]
        outbox = leased + mine
        if len(outbox) > MAX_OUTBOX:  # the channels have refused alerts for many runs: the oldest go, loudly
            dropped, outbox = outbox[:-MAX_OUTBOX], outbox[-MAX_OUTBOX:]
            self._problem(f"{len(dropped)} unsent alert(s) of {account} dropped: the outbox is full", account=account)
            self.unfinished.add(account)
            kept = {p.message.id for p in outbox}
            mine = [pending for pending in mine if pending.message.id in kept]
        try:
            version = self.repository.save_state(account, previous.state.version, evaluation.state, outbox, clock)
        except StateConflict:
            logger.info("a concurrent run changed this state first; its alerts are its own", extra={"account": account})
            return
        except AWS_ERRORS:
            logger.exception("state not saved; alerts deferred to the next run", extra={"account": account})
            self._account_problem(account, f"state of {account} not saved")
            return
        refused = set()
        for pending in mine:
            message = pending.message
            left = self._deliver(account, pending)
            if left == pending.channels:  # nothing went out: nothing to confirm
                refused.add(message.id)
                continue
            if left:
                refused.add(message.id)
            rest = [p for p in outbox if p.message.id != message.id]
            outbox = [*rest, pending._replace(channels=left)] if left else rest
            confirmed = self._confirm(account, version, evaluation, outbox, clock)
            if confirmed is None:  # the outbox could not be updated: what is left waits for its lease
                return
            version = confirmed
        if refused:
            self._account_problem(account, f"{len(refused)} alert(s) for {account} not published to every channel")
            # Released at once, so the next run resends them (to the channels that refused them
            # only) without waiting for the lease.
            released = [p._replace(lease_until=at) if p.message.id in refused else p for p in outbox]
            self._confirm(account, version, evaluation, released, clock)

    def retire(self, present: set[str]) -> None:
        """Retire the accounts with a state that no secret of the fleet holds any more: what
        each was owed is delivered, its open alerts close with one `recovered` each ("no
        longer monitored"), and its state is kept, marked retired."""
        try:
            gone = sorted(set(self.repository.accounts()) - present)
        except AWS_ERRORS:
            logger.exception("accounts index not read; no account retired this run")
            return
        if not gone:
            return
        stored, unread = self.repository.load(gone)
        if unread:
            self._problem(f"state of {len(unread)} removed account(s) not read", accounts=unread)
        # A shared balance is no account of the secrets: it leaves once no account draws on it.
        stored = {name: found for name, found in stored.items() if not present & set(found.state.members)}
        self.silences = self._silences()
        for name, previous in stored.items():
            evaluation = retire(self.provider.name, name, self.clock(), previous.state)
            if previous.state.members:  # a shared balance: its closing alerts name who drew on it
                shared_by = previous.state.members
                evaluation = evaluation._replace(
                    alerts=tuple(a._replace(shared_by=shared_by) for a in evaluation.alerts)
                )
            if previous.state.retired_at is None:
                logger.info("account retired", extra={"account": name, "closed": len(evaluation.alerts)})
            self._isolated(name, "retire", partial(self._settle, name, previous, evaluation))

    def save_schedule(self, fields: dict[str, str]) -> None:
        try:
            self.repository.save_run_record(**fields)
        except AWS_ERRORS as error:  # the next tick runs again: louder, never skipped
            logger.warning("schedule not saved", extra={"error": type(error).__name__})

    def _silences(self) -> list[Silence]:
        try:
            return self.repository.silences()
        except AWS_ERRORS:  # without them every alert goes out: louder, never lost
            logger.exception("silences not read; nothing is silenced this run")
            return []

    def _silence(self, account: str, previous: Stored, evaluation: Evaluation, at: str) -> Evaluation:
        """Keep quiet what an active silence covers, and remember it; once no silence covers the
        account, send one catch-up alert for the worst of it that is still bad."""
        quiet = [alert for alert in evaluation.alerts if any(s.covers(alert, at) for s in self.silences)]
        loud = [alert for alert in evaluation.alerts if alert not in quiet]
        silenced = tuple(dict.fromkeys([*previous.state.silenced, *map(aspect_of, quiet)]))
        for alert in quiet:
            self.alerts_silenced += 1
            logger.info("alert silenced", extra={"account": account, "alert": str(alert.kind), "alert_id": alert.id})
        if silenced and not any(silence.holds(account, at) for silence in self.silences):
            make = partial(Alert, provider=self.provider.name, account=account, observed_at=evaluation.observed_at)
            caught, silenced = catch_up(evaluation.state._replace(silenced=silenced), evaluation.pools, make)
            loud += [caught] if caught else []
        return evaluation._replace(state=evaluation.state._replace(silenced=silenced), alerts=tuple(loud))

    def _deliver(self, account: str, pending: Pending) -> tuple[str, ...]:
        """Send to each channel still owed the alert; the channels that refused it."""
        message, left = pending.message, []
        for channel in pending.channels:
            extra = {
                "account": account,
                "alert": message.attributes["alert"],
                "alert_id": message.id,
                "channel": channel,
            }
            try:
                self.notifier.send(message, channel)
            except (*AWS_ERRORS, EventRefused):
                logger.exception("alert not delivered; it stays in the outbox", extra=extra)
                left.append(channel)
                continue
            if channel == "sns":
                self.alerts_sent += 1
            else:
                self.events_sent += 1
            logger.info("alert published", extra=extra)
        return tuple(left)

    def _confirm(
        self, account: str, version: int, evaluation: Evaluation, outbox: list[Pending], clock: datetime
    ) -> int | None:
        try:
            return self.repository.save_state(account, version, evaluation.state, outbox, clock)
        except (StateConflict, *AWS_ERRORS):
            logger.exception("outbox not updated; its alerts wait for their lease", extra={"account": account})
            self._account_problem(account, f"outbox of {account} not updated")
            return None


def _balance_of(outcome: Outcome, previous: AccountState) -> str | None:
    """The shared balance a key's answer draws on: the owner its answer names, or for a 402
    (which names none) the balance its last answer drew on."""
    if isinstance(outcome, Checked) and outcome.owner is not None:
        return balance_name(outcome.owner)
    return previous.shares if isinstance(outcome, Exhausted) else None


def _returned(retired: Stored) -> Stored:
    """A retired account back in a secret starts afresh: no levels, no history; only the
    state's version (for the conditional write) and anything still owed carry over."""
    return Stored(AccountState(version=retired.state.version), outbox=retired.outbox, indexed=retired.indexed)


def check_account(
    session: urllib3.PoolManager, provider: providers.Provider, base_url: str, account: Account
) -> Outcome:
    """One account's check: its entry's problem, or the provider's answer; an adapter's bug is
    a failed check like any other."""
    if account.problem:
        return Misconfigured(account.problem)
    try:
        return fetch(session, provider, base_url, account.api_key)
    except Exception as error:  # noqa: BLE001 (an adapter's bug is a failed check, alerted as one)
        logger.exception("adapter failed", extra={"account": account.name, "error": type(error).__name__})
        return Unavailable(f"the {provider.title} adapter failed ({type(error).__name__})")


def pool_metrics(report: PoolReport) -> dict[str, tuple[MetricUnit, float]]:
    """The series of one pool as CloudWatch takes them: a unit and a float each."""
    return {name: (UNITS[name], float(value)) for name, value in pool_values(report).items()}

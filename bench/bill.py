"""A month's bill from what one steady run emits, at the list prices of bench.prices.

bench.fleet measures a run (the series its EMF documents declare, the bytes it logs, the
DynamoDB units its items cost, its invocations and duration); `monthly` multiplies that by
the runs of a month. Nothing here is an estimate of what a run would do: only the prices, and
the few fixed things a run cannot show (secrets, alarms, the dashboard, idle queue polls),
which are counted from the template and named as such.
"""

from __future__ import annotations

import base64
import math
from decimal import Decimal
from typing import Any, NamedTuple

from bench import prices

ITEM_OVERHEAD = 100  # bytes DynamoDB adds to each stored item for its indexes
PLATFORM_LOG_BYTES = 300  # Lambda's START, END and REPORT lines of one invocation (with X-Ray's trace id)
SECRET_BYTES = 65_536  # the most a secret holds
SECRETS_PER_CALL = 20  # BatchGetSecretValue with a filter
TICKS_PER_HOUR = 4  # the template's tick, rate(15 minutes)
ESM_IDLE_POLLS = 5 * 3 * 60 * prices.HOURS_PER_MONTH  # an SQS event source: 5 pollers, a 20 s long poll each


def item_size(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB counts it, from its typed form: attribute names plus values;
    a number is one byte per two significant digits plus one; a list or map 3 bytes plus its
    elements plus a byte each (DynamoDB Developer Guide, "Item sizes and formats")."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(typed: dict[str, Any]) -> int:
    ((kind, value),) = typed.items()
    if kind == "S":
        return len(value.encode())
    if kind == "N":
        digits = value.lstrip("-").replace(".", "").split("e")[0].split("E")[0].strip("0") or "0"
        return math.ceil(len(digits) / 2) + 1
    if kind == "B":
        return len(base64.b64decode(value))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(_value_size(element) + 1 for element in value)
    if kind == "M":
        return 3 + sum(len(name.encode()) + _value_size(element) + 1 for name, element in value.items())
    if kind in ("SS", "NS", "BS"):
        return sum(_value_size({kind[0]: element}) for element in value)
    raise ValueError(f"unknown attribute type {kind}")


def write_units(item: dict[str, Any]) -> int:
    return max(1, math.ceil(item_size(item) / 1024))


def read_units(size: int) -> int:
    """Strongly consistent: 4 KB a unit, and a key that is not there costs one too."""
    return max(1, math.ceil(size / 4096))


class Emissions(NamedTuple):
    """What one steady run over a fleet emits, as bench.fleet measured it."""

    accounts: int
    series: int  # distinct metric series its EMF documents declare
    own_series: int  # of which, series of accounts' own
    log_bytes: int  # the functions' log lines and EMF documents
    journal_bytes: int  # the journal's messages, with CloudWatch's 26 bytes an event
    invocations: int  # the scheduled one and its shards'
    seconds: float  # billed duration, summed over the invocations
    memory_mb: int
    write_units: int
    read_units: int
    snapshot_bytes: int  # what the run's snapshots add to the table, overhead included
    resident_bytes: int  # state, windows and the Accounts index, overhead included
    secrets: int  # secrets the fleet's keys need, at 64 KB a secret
    shard_messages: int
    queues: int  # shard queues polled by an event source
    alarms: int
    dashboards: int
    tick_log_bytes: int = 0  # a tick between runs (the period covered): what it logs
    tick_read_units: int = 0  # ... reads (the RUN item)
    tick_seconds: float = 0.0  # ... and takes


def metric_cost(series: int) -> Decimal:
    cost, left = Decimal(0), series
    for size, price in prices.METRIC_TIERS:
        take = left if size is None else min(left, size)
        cost += take * price
        left -= take
    return cost


def monthly(e: Emissions, retention_days: int = 90, log_retention_days: int = 30) -> dict[str, Decimal]:
    """Each part of a month's bill for a fleet checked hourly, in dollars: its runs, and the
    three ticks an hour between them (every function is ticked every 15 minutes)."""
    runs = prices.HOURS_PER_MONTH
    ticks = (TICKS_PER_HOUR - 1) * runs
    gb = Decimal(prices.GB)
    logged = Decimal((e.log_bytes + e.journal_bytes + PLATFORM_LOG_BYTES * e.invocations) * runs) / gb
    logged += Decimal((e.tick_log_bytes + PLATFORM_LOG_BYTES) * ticks) / gb
    stored = Decimal(e.snapshot_bytes * 24 * retention_days + e.resident_bytes) / gb
    invocations = e.invocations * runs
    million = Decimal(1_000_000)
    return {
        "CloudWatch metrics": metric_cost(e.series),
        "CloudWatch Logs": logged * prices.LOGS_INGESTED_GB
        + logged * log_retention_days / 30 * prices.LOGS_STORED_GB_MONTH,
        "CloudWatch alarms and dashboard": e.alarms * prices.ALARM_MONTH + e.dashboards * prices.DASHBOARD_MONTH,
        "DynamoDB": Decimal(e.write_units * runs) / million * prices.DYNAMODB_WRITE_UNITS_MILLION
        + Decimal(e.read_units * runs + e.tick_read_units * ticks) / million * prices.DYNAMODB_READ_UNITS_MILLION
        + stored * (prices.DYNAMODB_STORED_GB_MONTH + prices.DYNAMODB_PITR_GB_MONTH),
        "Lambda": (Decimal(str(e.seconds)) * runs + Decimal(str(e.tick_seconds)) * ticks)
        * e.memory_mb
        / 1024
        * prices.LAMBDA_GB_SECOND
        + (invocations + ticks) / million * prices.LAMBDA_REQUESTS_MILLION,
        "Secrets Manager": e.secrets * prices.SECRET_MONTH
        + Decimal(e.invocations * math.ceil(e.secrets / SECRETS_PER_CALL) * runs) / 10_000 * prices.SECRETS_CALLS_10K,
        "KMS key": prices.KMS_KEY_MONTH,
        # a shard is sent in batches of 10, then received and deleted by the event source
        "SQS": Decimal(e.queues * ESM_IDLE_POLLS + (2 * e.shard_messages + math.ceil(e.shard_messages / 10)) * runs)
        / million
        * prices.SQS_REQUESTS_MILLION,
        "Scheduler and X-Ray": Decimal(runs + ticks) / million * prices.SCHEDULER_INVOCATIONS_MILLION
        + (invocations + ticks) / million * prices.XRAY_TRACES_MILLION,
    }

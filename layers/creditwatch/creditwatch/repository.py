"""DynamoDB access: alert state per account and balance snapshots per pool.

Keys (one table):
    pk = "<provider>#<account>"
    sk = "STATE"                          the account's alert state (no `remaining`)
    sk = "SNAP#<pool>#<observed_at>"      one balance snapshot; expires by TTL

A pool's history over a window is one Query: sk BETWEEN "SNAP#<pool>#<from>" AND "SNAP#<pool>#<to>".
A run costs one BatchGetItem per 100 accounts, one BatchWriteItem per 25 snapshots, and a
conditional PutItem only for accounts whose state changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from boto3.dynamodb.conditions import Attr
from botocore.exceptions import ClientError

from creditwatch.domain import AccountState, Balance, Level, PoolState, iso, parse_iso

STATE = "STATE"
BATCH_GET_LIMIT = 100
UNPROCESSED_ROUNDS = 5


class StateConflict(Exception):
    """Another run changed the account's state first; that run owns the alert."""


@dataclass(frozen=True)
class Snapshot:
    account: str
    balance: Balance
    observed_at: str


def partition(provider: str, account: str) -> str:
    return f"{provider}#{account}"


def snapshot_key(pool: str, observed_at: str) -> str:
    return f"SNAP#{pool}#{observed_at}"


class Repository:
    def __init__(self, table: Any, provider: str, retention_days: int) -> None:
        self.table = table
        self.provider = provider
        self.retention = timedelta(days=retention_days)

    def load_states(self, accounts: Sequence[str]) -> dict[str, AccountState]:
        """Every account's state in batched, strongly consistent reads."""
        items: list[dict[str, Any]] = []
        for start in range(0, len(accounts), BATCH_GET_LIMIT):
            keys = [{"pk": partition(self.provider, a), "sk": STATE} for a in accounts[start : start + BATCH_GET_LIMIT]]
            request: dict[str, Any] = {self.table.name: {"Keys": keys, "ConsistentRead": True}}
            for _ in range(UNPROCESSED_ROUNDS):
                response = self.table.meta.client.batch_get_item(RequestItems=request)
                items += response["Responses"].get(self.table.name, [])
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                raise RuntimeError("DynamoDB left state reads unprocessed; the run will be retried")
        states = {item["account"]: _state_from_item(item) for item in items}
        return {account: states.get(account, AccountState()) for account in accounts}

    def save_snapshots(self, snapshots: Iterable[Snapshot]) -> None:
        with self.table.batch_writer() as batch:
            for snapshot in snapshots:
                batch.put_item(Item=self._snapshot_item(snapshot))

    def save_state(self, account: str, expected: AccountState, new: AccountState, now: datetime) -> AccountState:
        """Write `new` only if the stored state is still `expected`; raise StateConflict if not."""
        written = AccountState(expected.version + 1, new.check, new.failures, new.pools)
        condition = Attr("pk").not_exists() if expected.version == 0 else Attr("version").eq(expected.version)
        try:
            self.table.put_item(Item=self._state_item(account, written, now), ConditionExpression=condition)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise StateConflict(account) from None
            raise
        return written

    def _state_item(self, account: str, state: AccountState, now: datetime) -> dict[str, Any]:
        return {
            "pk": partition(self.provider, account),
            "sk": STATE,
            "provider": self.provider,
            "account": account,
            "version": state.version,
            "check": str(state.check),
            "failures": state.failures,
            "pools": {name: {"level": str(pool.level)} for name, pool in state.pools.items()},
            "updated_at": iso(now),
        }

    def _snapshot_item(self, snapshot: Snapshot) -> dict[str, Any]:
        balance = snapshot.balance
        observed = parse_iso(snapshot.observed_at)
        item: dict[str, Any] = {
            "pk": partition(self.provider, snapshot.account),
            "sk": snapshot_key(balance.pool, snapshot.observed_at),
            "provider": self.provider,
            "account": snapshot.account,
            "pool": balance.pool,
            "remaining": balance.remaining,
            "observed_at": snapshot.observed_at,
            "expires_at": int((observed + self.retention).timestamp()),
        }
        if balance.limit is not None:
            item["limit"] = balance.limit
        if balance.used is not None:
            item["used"] = balance.used
        return item


def _level(name: object) -> Level:
    return Level[str(name).upper()]


def _state_from_item(item: dict[str, Any]) -> AccountState:
    return AccountState(
        version=int(item["version"]),
        check=_level(item["check"]),
        failures=int(item["failures"]),
        pools={name: PoolState(level=_level(pool["level"])) for name, pool in item.get("pools", {}).items()},
    )

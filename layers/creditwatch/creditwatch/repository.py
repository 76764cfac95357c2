"""DynamoDB access: alert state and recent balances per account, and history per pool.

Keys (one table):
    pk = "<provider>#<account>"
    sk = "STATE"                        the account's alert state, versioned (no `remaining`)
    sk = "WINDOW"                       the last BURN_WINDOW_HOURS of balances per pool, for forecasts
    sk = "SNAP#<pool>#<observed_at>"    one balance snapshot
    sk = "TOPUP#<pool>#<observed_at>"   one detected top-up

A pool's history over a window is one Query: sk BETWEEN "SNAP#<pool>#<from>" AND "SNAP#<pool>#<to>".
A run costs one BatchGetItem per 50 accounts, one BatchWriteItem per 25 items written, and a
conditional PutItem only for accounts whose alert state changed. Every item but STATE expires
by TTL (`expires_at`) after RETENTION_DAYS.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Attr
from botocore.exceptions import ClientError

from creditwatch.domain import AccountState, Balance, Level, PoolState, iso, parse_iso
from creditwatch.forecast import Point, PoolWindow, TopUp

STATE, WINDOW = "STATE", "WINDOW"
BATCH_GET_LIMIT = 100  # keys per BatchGetItem: two per account
UNPROCESSED_ROUNDS = 5

Windows = Mapping[str, PoolWindow]


class StateConflict(Exception):
    """Another run changed the account's state first; that run owns the alert."""


@dataclass(frozen=True)
class Snapshot:
    account: str
    balance: Balance
    observed_at: str


@dataclass(frozen=True)
class TopUpRecord:
    account: str
    pool: str
    topup: TopUp
    observed_at: str


def partition(provider: str, account: str) -> str:
    return f"{provider}#{account}"


class Repository:
    def __init__(self, table: Any, provider: str, retention_days: int) -> None:
        self.table = table
        self.provider = provider
        self.retention = timedelta(days=retention_days)

    def load(self, accounts: Sequence[str]) -> dict[str, tuple[AccountState, Windows]]:
        """Every account's alert state and recent balances, in batched, strongly consistent reads."""
        keys = [{"pk": partition(self.provider, a), "sk": sk} for a in accounts for sk in (STATE, WINDOW)]
        items: dict[tuple[str, str], dict[str, Any]] = {}
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                self.table.name: {"Keys": keys[start : start + BATCH_GET_LIMIT], "ConsistentRead": True}
            }
            for _ in range(UNPROCESSED_ROUNDS):
                response = self.table.meta.client.batch_get_item(RequestItems=request)
                for item in response["Responses"].get(self.table.name, []):
                    items[(item["account"], item["sk"])] = item
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                raise RuntimeError("DynamoDB left reads unprocessed; the run will be retried")
        return {
            account: (_state(items.get((account, STATE))), _windows(items.get((account, WINDOW))))
            for account in accounts
        }

    def save_run(
        self,
        snapshots: Iterable[Snapshot],
        windows: Mapping[str, Windows],
        topups: Iterable[TopUpRecord],
        now: datetime,
    ) -> None:
        """Snapshots, recent-balance windows and top-ups of a run, in batched writes."""
        expires_at = int((now + self.retention).timestamp())
        with self.table.batch_writer() as batch:
            for snapshot in snapshots:
                batch.put_item(Item=self._snapshot_item(snapshot))
            for account, pools in windows.items():
                batch.put_item(Item=self._window_item(account, pools, expires_at))
            for record in topups:
                batch.put_item(Item=self._topup_item(record))

    def save_state(self, account: str, expected: AccountState, new: AccountState, now: datetime) -> AccountState:
        """Write `new` only if the stored state is still `expected`; raise StateConflict if not."""
        written = replace(new, version=expected.version + 1)
        condition = Attr("pk").not_exists() if expected.version == 0 else Attr("version").eq(expected.version)
        try:
            self.table.put_item(Item=self._state_item(account, written, now), ConditionExpression=condition)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise StateConflict(account) from None
            raise
        return written

    def _key(self, account: str, sk: str) -> dict[str, Any]:
        return {"pk": partition(self.provider, account), "sk": sk, "provider": self.provider, "account": account}

    def _state_item(self, account: str, state: AccountState, now: datetime) -> dict[str, Any]:
        return {
            **self._key(account, STATE),
            "version": state.version,
            "check": str(state.check),
            "check_alerted_at": state.check_alerted_at,
            "failures": state.failures,
            "pools": {
                name: {"level": str(pool.level), "alerted_at": pool.alerted_at, "forecast": str(pool.forecast)}
                for name, pool in state.pools.items()
            },
            "updated_at": iso(now),
        }

    def _window_item(self, account: str, pools: Windows, expires_at: int) -> dict[str, Any]:
        return {
            **self._key(account, WINDOW),
            "pools": {
                name: {
                    "points": [[iso(p.at), p.remaining, p.segment] for p in window.points],
                    "full_tank": window.full_tank,
                    "topped_up_at": window.topped_up_at,
                }
                for name, window in pools.items()
            },
            "expires_at": expires_at,
        }

    def _expiry(self, observed_at: str) -> int:
        return int((parse_iso(observed_at) + self.retention).timestamp())

    def _snapshot_item(self, snapshot: Snapshot) -> dict[str, Any]:
        balance = snapshot.balance
        item = {
            **self._key(snapshot.account, f"SNAP#{balance.pool}#{snapshot.observed_at}"),
            "pool": balance.pool,
            "remaining": balance.remaining,
            "observed_at": snapshot.observed_at,
            "expires_at": self._expiry(snapshot.observed_at),
        }
        optional = {"limit": balance.limit, "used": balance.used, "topped_up_at": balance.topped_up_at}
        return item | {name: value for name, value in optional.items() if value is not None}

    def _topup_item(self, record: TopUpRecord) -> dict[str, Any]:
        item = {
            **self._key(record.account, f"TOPUP#{record.pool}#{record.observed_at}"),
            "pool": record.pool,
            "previous": record.topup.previous,
            "balance": record.topup.remaining,
            "observed_at": record.observed_at,
            "expires_at": self._expiry(record.observed_at),
        }
        return item if record.topup.added is None else item | {"added": record.topup.added}


def _level(name: object) -> Level:
    return Level[str(name).upper()]


def _state(item: dict[str, Any] | None) -> AccountState:
    if item is None:
        return AccountState()
    return AccountState(
        version=int(item["version"]),
        check=_level(item["check"]),
        check_alerted_at=item.get("check_alerted_at"),
        failures=int(item["failures"]),
        pools={
            name: PoolState(_level(pool["level"]), pool.get("alerted_at"), _level(pool.get("forecast", "ok")))
            for name, pool in item.get("pools", {}).items()
        },
    )


def _windows(item: dict[str, Any] | None) -> dict[str, PoolWindow]:
    if item is None:
        return {}
    return {
        name: PoolWindow(
            points=tuple(
                Point(parse_iso(at), Decimal(remaining), int(segment)) for at, remaining, segment in pool["points"]
            ),
            full_tank=pool.get("full_tank"),
            topped_up_at=pool.get("topped_up_at"),
        )
        for name, pool in item.get("pools", {}).items()
    }

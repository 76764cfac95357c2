"""DynamoDB access: alert state and recent balances per account, and history per pool.

Keys (one table):
    pk = "<provider>#<account>"
    sk = "STATE"                        the account's alert state, versioned, with its outbox:
                                        the alerts claimed but not yet confirmed sent
    sk = "WINDOW"                       the last BURN_WINDOW_HOURS of balances per pool, for
                                        forecasts, and when the account was last checked
    sk = "SNAP#<pool>#<observed_at>"    one balance snapshot
    sk = "TOPUP#<pool>#<previous_at>"   one detected top-up, named by the observation before it,
                                        written once (conditionally) whichever run saw it
    pk = "<provider>#", sk = "SILENCE#<account or *>#<pool or *>"
                                        a silence: nothing is published for it until `until`
    pk = "<provider>#", sk = "CURSOR#<first account>"
                                        where the next run over a set of accounts (a fleet,
                                        or a shard of one) starts: the first it could not check

The sparse index `Accounts` (partition `fleet`, sort `account`) holds the STATE items only: the
accounts of each provider, for `creditwatch status`, without a Scan. A STATE item written before
the index is rewritten, unchanged but for `fleet`, by the account's next run.
A pool's history over a window is one Query: sk BETWEEN "SNAP#<pool>#<from>" AND "SNAP#<pool>#<to>".
A run costs one GetItem (its cursor), one BatchGetItem per 50 accounts, one BatchWriteItem per
25 items written, conditional PutItems only for accounts whose alert state changed or whose
outbox is not empty, and one PutItem of its cursor when it could not check every account.
Items DynamoDB leaves unprocessed are sent again with back-off until the run's deadline; a
batch DynamoDB refuses is written item by item, so one bad item costs only its own account.
Every item but STATE expires by TTL (`expires_at`) after RETENTION_DAYS.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import BotoCoreError, ClientError

from creditwatch.domain import EMPTY, AccountState, Balance, Level, PoolState, Silence, iso, parse_iso
from creditwatch.forecast import Point, PoolWindow, TopUp
from creditwatch.notifier import Message
from creditwatch.observability import logger

STATE, WINDOW = "STATE", "WINDOW"
BATCH_GET_LIMIT = 100  # keys per BatchGetItem: two per account
BATCH_WRITE_LIMIT = 25  # items per BatchWriteItem
UNPROCESSED_ROUNDS = 6  # attempts at what DynamoDB left unprocessed, within the deadline
BACKOFF_BASE = 0.05  # seconds; full jitter, doubling each round
BACKOFF_MAX = 2.0
# What a write of one item can raise: AWS's refusals, and the serializer's for a value it cannot hold.
WRITE_ERRORS = (BotoCoreError, ClientError, ArithmeticError, TypeError, ValueError)

Windows = Mapping[str, PoolWindow]
MESSAGE_FIELDS = Message._fields  # an outbox entry is a Message, its lease and its channels left


class StateConflict(Exception):
    """Another run changed the account's state first; that run owns the alert."""


class Pending(NamedTuple):
    """An alert claimed in the state item and not yet confirmed sent. Until `lease_until` the
    run that claimed it may still be sending it; after that, any run may."""

    message: Message
    lease_until: str
    channels: tuple[str, ...] = ("sns",)  # where it is still to be delivered


class Stored(NamedTuple):
    """What the table holds for one account."""

    state: AccountState = AccountState()
    windows: Windows = EMPTY
    outbox: tuple[Pending, ...] = ()
    indexed: bool = True  # False for a STATE item written before the Accounts index: the run rewrites it


class Snapshot(NamedTuple):
    account: str
    balance: Balance
    observed_at: str


class TopUpRecord(NamedTuple):
    account: str
    pool: str
    topup: TopUp
    observed_at: str


def partition(provider: str, account: str) -> str:
    return f"{provider}#{account}"


def query(table: Any, **request: Any) -> Iterator[dict[str, Any]]:
    """Every item of one Query, page by page (DynamoDB ends a page at 1 MB)."""
    while True:
        page = table.query(**request)
        yield from page["Items"]
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class Repository:
    def __init__(
        self,
        table: Any,
        provider: str,
        retention_days: int,
        deadline: float = float("inf"),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.table = table
        self.client = table.meta.client
        self.provider = provider
        self.retention = timedelta(days=retention_days)
        self.deadline = deadline  # time.monotonic() after which unprocessed items are given up
        self.sleep = sleep

    def load(self, accounts: Sequence[str]) -> tuple[dict[str, Stored], list[str]]:
        """Every account's state, outbox and recent balances, in batched, strongly consistent
        reads. Accounts whose batch could not be read are returned apart, for the next run."""
        keys = [{"pk": partition(self.provider, a), "sk": sk} for a in accounts for sk in (STATE, WINDOW)]
        items: dict[tuple[str, str], dict[str, Any]] = {}
        unread: set[str] = set()
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            chunk = keys[start : start + BATCH_GET_LIMIT]
            request: dict[str, Any] = {self.table.name: {"Keys": chunk, "ConsistentRead": True}}
            try:
                for response in self._rounds(self.client.batch_get_item, request, "UnprocessedKeys"):
                    for item in response["Responses"].get(self.table.name, []):
                        items[(item["account"], item["sk"])] = item
                    request = response.get("UnprocessedKeys") or {}
            except (BotoCoreError, ClientError):
                request = {self.table.name: {"Keys": chunk}}
            for key in request.get(self.table.name, {}).get("Keys", []):
                unread.add(key["pk"].split("#", 1)[1])
        readable = {
            account: _stored(items.get((account, STATE)), items.get((account, WINDOW)))
            for account in accounts
            if account not in unread
        }
        return readable, [account for account in accounts if account in unread]

    def save_run(self, snapshots: Iterable[Snapshot], windows: Mapping[str, Windows], now: datetime) -> set[str]:
        """Snapshots and windows (one per checked account), in batched writes.

        Returns the accounts some of whose items could not be written."""
        expires_at = int((now + self.retention).timestamp())
        items = [
            *((s.account, self._snapshot_item(s)) for s in snapshots),
            *((account, self._window_item(account, pools, iso(now), expires_at)) for account, pools in windows.items()),
        ]
        failed: set[str] = set()
        for start in range(0, len(items), BATCH_WRITE_LIMIT):
            failed |= self._write_batch(items[start : start + BATCH_WRITE_LIMIT])
        return failed

    def save_topup(self, record: TopUpRecord) -> bool:
        """Record a top-up once: False if another run (a duplicate of this one) already did.
        The item is named by the observation before the top-up, which duplicates share."""
        try:
            self.table.put_item(Item=self._topup_item(record), ConditionExpression=Attr("pk").not_exists())
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def silences(self) -> list[Silence]:
        """The provider's silences (`pk = "<provider>#"`, `sk = "SILENCE#..."`), one Query. An
        item that is not a valid silence silences nothing: it is logged and skipped."""
        condition = Key("pk").eq(partition(self.provider, "")) & Key("sk").begins_with("SILENCE#")
        found = []
        for item in query(self.table, KeyConditionExpression=condition, ConsistentRead=True):
            try:
                silence = Silence(
                    account=_text(item["account"]),
                    pool=_text(item.get("pool", "*")),
                    until=iso(parse_iso(_text(item["until"]))),
                    reason=_text(item.get("reason", ""))[:200],
                    who=_text(item.get("who", ""))[:100],
                    keys=item.get("keys", False) is True,
                )
            except (KeyError, TypeError, ValueError):
                logger.warning("invalid silence item skipped", extra={"sk": str(item.get("sk"))[:120]})
                continue
            found.append(silence)
        return found

    def cursor(self, key: str) -> str | None:
        """The account the last run over the set named `key` could not check first, if any.
        Unreadable is the same as none: the run starts at the beginning."""
        try:
            item = self.table.get_item(Key=self._provider_key(f"CURSOR#{key}")).get("Item")
        except (BotoCoreError, ClientError):
            return None
        return str(item["next"]) if item else None

    def save_cursor(self, key: str, account: str) -> None:
        self.table.put_item(Item={**self._provider_key(f"CURSOR#{key}"), "next": account})

    def save_state(
        self, account: str, expected: int, state: AccountState, outbox: Sequence[Pending], now: datetime
    ) -> int:
        """Write state and outbox only if the stored version is still `expected`; raise
        StateConflict if not. Returns the version written."""
        version = expected + 1
        condition = Attr("pk").not_exists() if expected == 0 else Attr("version").eq(expected)
        try:
            self.table.put_item(
                Item=self._state_item(account, version, state, outbox, now), ConditionExpression=condition
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise StateConflict(account) from None
            raise
        return version

    def _rounds(self, call: Callable[..., dict[str, Any]], request: dict[str, Any], leftover: str) -> Iterable[Any]:
        """Call with `request`, then with whatever DynamoDB left unprocessed, backing off between
        rounds, until nothing is left, the rounds run out, or the deadline would pass."""
        for attempt in range(UNPROCESSED_ROUNDS):
            response = call(RequestItems=request)
            yield response
            request = response.get(leftover) or {}
            if not request or attempt == UNPROCESSED_ROUNDS - 1:
                return
            delay = random.uniform(0, min(BACKOFF_MAX, BACKOFF_BASE * 2**attempt))  # noqa: S311 (jitter)
            if time.monotonic() + delay > self.deadline:
                return
            self.sleep(delay)

    def _write_batch(self, batch: list[tuple[str, dict[str, Any]]]) -> set[str]:
        request: dict[str, Any] = {self.table.name: [{"PutRequest": {"Item": item}} for _, item in batch]}
        try:
            for response in self._rounds(self.client.batch_write_item, request, "UnprocessedItems"):
                request = response.get("UnprocessedItems") or {}
        except WRITE_ERRORS:
            return self._write_each(batch)
        return {put["PutRequest"]["Item"]["account"] for put in request.get(self.table.name, [])}

    def _write_each(self, batch: list[tuple[str, dict[str, Any]]]) -> set[str]:
        """A refused batch, item by item: only the accounts whose own item fails are lost."""
        failed = set()
        for account, item in batch:
            try:
                self.table.put_item(Item=item)
            except WRITE_ERRORS:
                failed.add(account)
        return failed

    def _provider_key(self, sk: str) -> dict[str, Any]:
        """An item about the provider as a whole (a cursor, a silence): no account in its pk."""
        return {"pk": partition(self.provider, ""), "sk": sk}

    def _key(self, account: str, sk: str) -> dict[str, Any]:
        return {"pk": partition(self.provider, account), "sk": sk, "provider": self.provider, "account": account}

    def _state_item(
        self, account: str, version: int, state: AccountState, outbox: Sequence[Pending], now: datetime
    ) -> dict[str, Any]:
        return {
            **self._key(account, STATE),
            "fleet": self.provider,  # the Accounts index's key: only STATE items carry it
            "version": version,
            "check": str(state.check),
            "check_alerted_at": state.check_alerted_at,
            "failures": state.failures,
            "pools": {
                name: {
                    "level": str(pool.level),
                    "alerted_at": pool.alerted_at,
                    "forecast": str(pool.forecast),
                    "spike": str(pool.spike),
                    "spike_alerted_at": pool.spike_alerted_at,
                }
                for name, pool in state.pools.items()
            },
            "silenced": list(state.silenced),
            "outbox": [
                {**p.message._asdict(), "lease_until": p.lease_until, "channels": list(p.channels)} for p in outbox
            ],
            "updated_at": iso(now),
        }

    def _window_item(self, account: str, pools: Windows, checked_at: str, expires_at: int) -> dict[str, Any]:
        return {
            **self._key(account, WINDOW),
            "pools": {
                name: {
                    "points": [[iso(p.at), p.remaining, p.segment] for p in window.points],
                    "full_tank": window.full_tank,
                    "topped_up_at": window.topped_up_at,
                    "last_topup_at": iso(window.last_topup_at) if window.last_topup_at else None,
                }
                for name, window in pools.items()
            },
            "checked_at": checked_at,
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
            **self._key(record.account, f"TOPUP#{record.pool}#{iso(record.topup.previous_at)}"),
            "pool": record.pool,
            "previous": record.topup.previous,
            "balance": record.topup.remaining,
            "observed_at": record.observed_at,
            "expires_at": self._expiry(record.observed_at),
        }
        return item if record.topup.added is None else item | {"added": record.topup.added}


def _text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError("not text")
    return value


def _level(name: object) -> Level:
    return Level[str(name).upper()]


def _stored(state: dict[str, Any] | None, window: dict[str, Any] | None) -> Stored:
    return Stored(
        state=_state(state),
        windows=_windows(window),
        outbox=tuple(_pending(entry) for entry in (state or {}).get("outbox", [])),
        indexed=state is None or "fleet" in state,
    )


def _state(item: dict[str, Any] | None) -> AccountState:
    if item is None:
        return AccountState()
    return AccountState(
        version=int(item["version"]),
        check=_level(item["check"]),
        check_alerted_at=item.get("check_alerted_at"),
        failures=int(item["failures"]),
        pools={
            name: PoolState(
                _level(pool["level"]),
                pool.get("alerted_at"),
                _level(pool.get("forecast", "ok")),
                _level(pool.get("spike", "ok")),
                pool.get("spike_alerted_at"),
            )
            for name, pool in item.get("pools", {}).items()
        },
        silenced=tuple(item.get("silenced", ())),
    )


def _pending(entry: dict[str, Any]) -> Pending:
    """An outbox entry; one written before events has no event and is owed to SNS only."""
    message = Message(**{name: entry[name] for name in MESSAGE_FIELDS if name in entry})
    return Pending(message, entry["lease_until"], tuple(entry.get("channels", ("sns",))))


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
            last_topup_at=parse_iso(pool["last_topup_at"]) if pool.get("last_topup_at") else None,
        )
        for name, pool in item.get("pools", {}).items()
    }

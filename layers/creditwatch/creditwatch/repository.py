"""DynamoDB access: alert state and recent balances per account, and history per pool.

Keys (one table):
    pk = "<provider>#<account>"
    sk = "STATE"                        the account's alert state, versioned, with its outbox:
                                        the alerts claimed but not yet confirmed sent
    sk = "WINDOW"                       the last BURN_WINDOW_HOURS of balances per pool, packed
                                        into one text attribute a pool (see `pack`), for
                                        forecasts, and when the account was last checked
    sk = "SNAP#<pool>#<observed_at>"    one balance snapshot
    sk = "TOPUP#<pool>#<previous_at>"   one detected top-up, named by the observation before it,
                                        written once (conditionally) whichever run saw it
    pk = "<provider>#", sk = "SILENCE#<account or *>#<pool or *>"
                                        a silence: nothing is published for it until `until`
    pk = "<provider>#", sk = "RUN"      the provider's schedule: the last period (`done`, its start) a
                                        run covered, the last run with a check that worked
                                        (`succeeded_at`), and the first run (`since`)
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

Requests go through a low-level client without parameter validation, with items in DynamoDB's
own typed form, built and read here: a run's cost is then a few typed values an account, not
boto3's copy and walk of every value through its resource layer. A window is one attribute a
pool; a window item in the earlier form (a list of [time, balance, segment] a point) is read
as well, and rewritten in the packed form by the account's next run.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
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
ACCOUNTS_INDEX = "Accounts"
RETIRED_FLEET = "#retired"  # the Accounts index's partition of a provider's retired accounts
SHARD_PROGRESS_SECONDS = 6 * 3600  # as long as the shard queue keeps a message
SILENCE_GRACE_DAYS = 7  # an ended silence stays listable this long, then expires by TTL
# What a write of one item can raise: AWS's refusals, and the serializer's for a value it cannot hold.
WRITE_ERRORS = (BotoCoreError, ClientError, ArithmeticError, TypeError, ValueError)
# What decoding a stored item can raise when something else wrote it (a packed window cut short, say).
DECODE_ERRORS = (ArithmeticError, AttributeError, IndexError, KeyError, TypeError, ValueError)

# What a run reads of STATE and WINDOW items: every attribute botocore parses costs CPU, so the
# keys, `provider`, `updated_at`, `checked_at` and `expires_at` stay behind.
LOADED_ATTRIBUTES = (
    *("sk", "account", "fleet", "version", "check", "check_alerted_at", "failures", "pools"),
    *("silenced", "outbox", "retired_at", "shares", "members"),
)
LOADED = {
    "ProjectionExpression": ", ".join(f"#a{i}" for i in range(len(LOADED_ATTRIBUTES))),
    "ExpressionAttributeNames": {f"#a{i}": name for i, name in enumerate(LOADED_ATTRIBUTES)},
}

Windows = Mapping[str, PoolWindow]
MESSAGE_FIELDS = Message._fields  # an outbox entry is a Message, its lease and its channels left
typed, plain = TypeSerializer().serialize, TypeDeserializer().deserialize  # rare items: state, silences


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


class RunRecord(NamedTuple):
    """The provider's schedule so far (the RUN item)."""

    done: str | None = None  # the start of the last period a run covered, ISO
    succeeded_at: str | None = None  # the last run in which a check worked
    since: str | None = None  # the first run


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


def query(client: Any, **request: Any) -> Iterator[dict[str, Any]]:
    """Every item of one Query, page by page (DynamoDB ends a page at 1 MB), as Python values."""
    while True:
        page = client.query(**request)
        for item in page["Items"]:
            yield {name: plain(value) for name, value in item.items()}
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def pack(points: Sequence[Point]) -> str:
    """A window's points as text, `;` between points, each `seconds,balance[,segment]`:
    seconds since the point before (the first: since the epoch), left out when the same as the
    last step; the balance as the provider gave it; the segment only where it changes. Needs
    no date parser, and 72 hourly points fit one write unit with the rest of the item."""
    parts, at, step, segment = [], 0, None, 0
    for point in points:
        seconds = int(point.at.timestamp())
        gap = seconds - at
        text = f"{'' if gap == step else gap},{point.remaining}"
        parts.append(text if point.segment == segment else f"{text},{point.segment}")
        at, step, segment = seconds, gap, point.segment
    return ";".join(parts)


def unpack(text: str) -> tuple[Point, ...]:
    points, at, step, segment = [], 0, 0, 0
    for part in text.split(";") if text else ():
        fields = part.split(",")
        if fields[0]:
            step = int(fields[0])
        at += step
        if len(fields) > 2:
            segment = int(fields[2])
        points.append(Point(datetime.fromtimestamp(at, UTC), Decimal(fields[1]), segment))
    return tuple(points)


class Repository:
    def __init__(
        self,
        client: Any,
        table: str,
        provider: str,
        retention_days: int,
        deadline: float = float("inf"),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`client` is a low-level DynamoDB client (creditwatch.monitor.aws makes one without
        parameter validation); `table` the table's name."""
        self.client = client
        self.table = table
        self.provider = provider
        self.retention = timedelta(days=retention_days)
        self.deadline = deadline  # time.monotonic() after which unprocessed items are given up
        self.sleep = sleep

    def load(self, accounts: Sequence[str]) -> tuple[dict[str, Stored], list[str]]:
        """Every account's state, outbox and recent balances, in batched, strongly consistent
        reads. Accounts whose batch could not be read are returned apart, for the next run."""
        keys = [{"pk": {"S": partition(self.provider, a)}, "sk": {"S": sk}} for a in accounts for sk in (STATE, WINDOW)]
        items: dict[tuple[str, str], dict[str, Any]] = {}
        unread: set[str] = set()
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            chunk = keys[start : start + BATCH_GET_LIMIT]
            request: dict[str, Any] = {self.table: {"Keys": chunk, "ConsistentRead": True, **LOADED}}
            try:
                for response in self._rounds(self.client.batch_get_item, request, "UnprocessedKeys"):
                    for item in response["Responses"].get(self.table, []):
                        items[(item["account"]["S"], item["sk"]["S"])] = item
                    request = response.get("UnprocessedKeys") or {}
            except (BotoCoreError, ClientError):
                request = {self.table: {"Keys": chunk}}
            for key in request.get(self.table, {}).get("Keys", []):
                unread.add(key["pk"]["S"].split("#", 1)[1])
        readable = {}
        for account in (a for a in accounts if a not in unread):
            try:
                readable[account] = _stored(items.get((account, STATE)), items.get((account, WINDOW)))
            except DECODE_ERRORS:  # an item no run of ours wrote: that account waits, not the fleet
                logger.error("stored items not readable", extra={"account": account})
                unread.add(account)
        return readable, [account for account in accounts if account in unread]

    def save_run(self, snapshots: Iterable[Snapshot], windows: Mapping[str, Windows], now: datetime) -> set[str]:
        """Snapshots and windows (one per checked account), in batched writes.

        Returns the accounts some of whose items could not be written."""
        expires_at = {"N": str(int((now + self.retention).timestamp()))}
        checked_at = {"S": iso(now)}
        items = [(s.account, self._snapshot_item(s)) for s in snapshots]
        items += [
            (account, self._window_item(account, pools, checked_at, expires_at)) for account, pools in windows.items()
        ]
        failed: set[str] = set()
        for start in range(0, len(items), BATCH_WRITE_LIMIT):
            failed |= self._write_batch(items[start : start + BATCH_WRITE_LIMIT])
        return failed

    def save_topup(self, record: TopUpRecord) -> bool:
        """Record a top-up once: False if another run (a duplicate of this one) already did.
        The item is named by the observation before the top-up, which duplicates share."""
        return self._put(self._topup_item(record), "attribute_not_exists(pk)")

    def silences(self) -> list[Silence]:
        """The provider's silences (`pk = "<provider>#"`, `sk = "SILENCE#..."`), one Query. An
        item that is not a valid silence silences nothing: it is logged and skipped."""
        request = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :silence)",
            "ExpressionAttributeValues": {":pk": {"S": partition(self.provider, "")}, ":silence": {"S": "SILENCE#"}},
            "ConsistentRead": True,
        }
        found = []
        for item in query(self.client, **request):
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

    def save_silence(self, silence: Silence) -> bool:
        """Write a silence (the `creditwatch silence add` command's); True when it replaced one
        for the same account and pool. It expires by TTL a grace period after it ends, so an
        ended silence stays listable a while."""
        expires = parse_iso(silence.until).timestamp() + SILENCE_GRACE_DAYS * 86400
        attributes = {**silence._asdict(), "expires_at": int(expires)}
        item = self._silence_key(silence.account, silence.pool) | {k: typed(v) for k, v in attributes.items()}
        previous = self.client.put_item(TableName=self.table, Item=item, ReturnValues="ALL_OLD")
        return "Attributes" in previous

    def delete_silence(self, account: str, pool: str) -> bool:
        """Remove a silence; False when there is none for that account and pool."""
        try:
            self.client.delete_item(
                TableName=self.table,
                Key=self._silence_key(account, pool),
                ConditionExpression="attribute_exists(pk)",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _silence_key(self, account: str, pool: str) -> dict[str, Any]:
        return self._provider_key(f"SILENCE#{account}#{pool}")

    def accounts(self, retired: bool = False) -> list[str]:
        """The accounts with a state, from the sparse Accounts index: those still monitored (or
        retired but still owed a delivery), or with `retired` those retired."""
        request = {
            "TableName": self.table,
            "IndexName": ACCOUNTS_INDEX,
            "KeyConditionExpression": "fleet = :fleet",
            "ExpressionAttributeValues": {":fleet": {"S": self.provider + (RETIRED_FLEET if retired else "")}},
            "ProjectionExpression": "account",
        }
        return [str(item["account"]) for item in query(self.client, **request)]

    def shard_progress(self, message: str) -> set[str]:
        """The accounts earlier deliveries of one shard message finished (`SHARD#<messageId>`).
        Unreadable is the same as none: the shard is checked whole, which costs requests but
        loses nothing."""
        try:
            item = self.client.get_item(
                TableName=self.table, Key=self._provider_key(f"SHARD#{message}"), ConsistentRead=True
            ).get("Item")
        except (BotoCoreError, ClientError):
            return set()
        return set(item["done"]["SS"]) if item and "SS" in item.get("done", {}) else set()

    def save_shard_progress(self, message: str, finished: Iterable[str], at: datetime) -> None:
        """Add accounts to a shard message's finished set: a union, so that two deliveries of
        one message running at once lose neither's. It expires with the queue's messages."""
        names = sorted(set(finished))
        if not names:
            return
        self.client.update_item(
            TableName=self.table,
            Key=self._provider_key(f"SHARD#{message}"),
            UpdateExpression="ADD done :names SET expires_at = :expires",
            ExpressionAttributeValues={
                ":names": {"SS": names},
                ":expires": {"N": str(int(at.timestamp()) + SHARD_PROGRESS_SECONDS)},
            },
        )

    def run_record(self) -> RunRecord:
        """The provider's RUN item. Unreadable is the same as none: the run goes ahead, which
        costs requests but never skips a check."""
        try:
            item = self.client.get_item(TableName=self.table, Key=self._provider_key("RUN"), ConsistentRead=True)
        except (BotoCoreError, ClientError):
            return RunRecord()
        found = item.get("Item", {})
        return RunRecord(*(found[name]["S"] if "S" in found.get(name, {}) else None for name in RunRecord._fields))

    def save_run_record(self, **fields: str) -> None:
        """Set some of the RUN item's fields (RunRecord's)."""
        names = sorted(fields)
        self.client.update_item(
            TableName=self.table,
            Key=self._provider_key("RUN"),
            UpdateExpression="SET " + ", ".join(f"#{name} = :{name}" for name in names),
            ExpressionAttributeNames={f"#{name}": name for name in names},
            ExpressionAttributeValues={f":{name}": {"S": fields[name]} for name in names},
        )

    def cursor(self, key: str) -> str | None:
        """The account the last run over the set named `key` could not check first, if any.
        Unreadable is the same as none: the run starts at the beginning."""
        try:
            item = self.client.get_item(TableName=self.table, Key=self._provider_key(f"CURSOR#{key}")).get("Item")
        except (BotoCoreError, ClientError):
            return None
        return str(plain(item["next"])) if item and "next" in item else None

    def save_cursor(self, key: str, account: str) -> None:
        self.client.put_item(TableName=self.table, Item={**self._provider_key(f"CURSOR#{key}"), "next": {"S": account}})

    def save_state(
        self, account: str, expected: int, state: AccountState, outbox: Sequence[Pending], now: datetime
    ) -> int:
        """Write state and outbox only if the stored version is still `expected`; raise
        StateConflict if not. Returns the version written."""
        version = expected + 1
        item = self._state_item(account, version, state, outbox, now)
        if expected == 0:
            written = self._put(item, "attribute_not_exists(pk)")
        else:
            written = self._put(item, "version = :expected", {":expected": {"N": str(expected)}})
        if not written:
            raise StateConflict(account)
        return version

    def _put(self, item: dict[str, Any], condition: str, values: dict[str, Any] | None = None) -> bool:
        """A conditional PutItem: False when the condition did not hold."""
        request: dict[str, Any] = {"TableName": self.table, "Item": item, "ConditionExpression": condition}
        if values:
            request["ExpressionAttributeValues"] = values
        try:
            self.client.put_item(**request)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

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
        request: dict[str, Any] = {self.table: [{"PutRequest": {"Item": item}} for _, item in batch]}
        try:
            for response in self._rounds(self.client.batch_write_item, request, "UnprocessedItems"):
                request = response.get("UnprocessedItems") or {}
        except WRITE_ERRORS:
            return self._write_each(batch)
        return {put["PutRequest"]["Item"]["account"]["S"] for put in request.get(self.table, [])}

    def _write_each(self, batch: list[tuple[str, dict[str, Any]]]) -> set[str]:
        """A refused batch, item by item: only the accounts whose own item fails are lost."""
        failed = set()
        for account, item in batch:
            try:
                self.client.put_item(TableName=self.table, Item=item)
            except WRITE_ERRORS:
                failed.add(account)
        return failed

    def _provider_key(self, sk: str) -> dict[str, Any]:
        """An item about the provider as a whole (a cursor, a silence): no account in its pk."""
        return {"pk": {"S": partition(self.provider, "")}, "sk": {"S": sk}}

    def _key(self, account: str, sk: str) -> dict[str, Any]:
        return {
            "pk": {"S": partition(self.provider, account)},
            "sk": {"S": sk},
            "provider": {"S": self.provider},
            "account": {"S": account},
        }

    def _state_item(
        self, account: str, version: int, state: AccountState, outbox: Sequence[Pending], now: datetime
    ) -> dict[str, Any]:
        # The Accounts index's key: only STATE items carry it. A retired account moves to
        # `<provider>#retired` once it owes nothing; until then the next run sees it and delivers.
        fleet = self.provider if state.retired_at is None or outbox else f"{self.provider}{RETIRED_FLEET}"
        attributes = {
            "fleet": fleet,
            "retired_at": state.retired_at,
            "shares": state.shares,
            "members": list(state.members),
            "version": version,
            "check": str(state.check),
            "check_alerted_at": state.check_alerted_at,
            "failures": state.failures,
            "pools": {
                name: _present(
                    level=str(pool.level),
                    alerted_at=pool.alerted_at,
                    forecast=str(pool.forecast),
                    spike=str(pool.spike),
                    spike_alerted_at=pool.spike_alerted_at,
                )
                for name, pool in state.pools.items()
            },
            "silenced": list(state.silenced),
            "outbox": [
                {**p.message._asdict(), "lease_until": p.lease_until, "channels": list(p.channels)} for p in outbox
            ],
            "updated_at": iso(now),
        }
        return {**self._key(account, STATE), **{name: typed(value) for name, value in _present(**attributes).items()}}

    def _window_item(
        self, account: str, pools: Windows, checked_at: dict[str, str], expires_at: dict[str, str]
    ) -> dict[str, Any]:
        packed = {}
        for name, window in pools.items():
            pool: dict[str, Any] = {"p": {"S": pack(window.points)}}
            if window.full_tank is not None:
                pool["full_tank"] = {"N": str(window.full_tank)}
            if window.topped_up_at is not None:
                pool["topped_up_at"] = {"S": window.topped_up_at}
            if window.last_topup_at is not None:
                pool["last_topup_at"] = {"S": iso(window.last_topup_at)}
            if window.renews_at is not None:
                pool["renews_at"] = {"S": iso(window.renews_at)}
            packed[name] = {"M": pool}
        item = self._key(account, WINDOW)
        return item | {"pools": {"M": packed}, "checked_at": checked_at, "expires_at": expires_at}

    def _expiry(self, observed_at: str) -> dict[str, str]:
        return {"N": str(int((parse_iso(observed_at) + self.retention).timestamp()))}

    def _snapshot_item(self, snapshot: Snapshot) -> dict[str, Any]:
        balance = snapshot.balance
        item = {
            **self._key(snapshot.account, f"SNAP#{balance.pool}#{snapshot.observed_at}"),
            "pool": {"S": balance.pool},
            "remaining": {"N": str(balance.remaining)},
            "observed_at": {"S": snapshot.observed_at},
            "expires_at": self._expiry(snapshot.observed_at),
        }
        if balance.limit is not None:
            item["limit"] = {"N": str(balance.limit)}
        if balance.used is not None:
            item["used"] = {"N": str(balance.used)}
        if balance.topped_up_at is not None:
            item["topped_up_at"] = {"S": balance.topped_up_at}
        return item

    def _topup_item(self, record: TopUpRecord) -> dict[str, Any]:
        item = {
            **self._key(record.account, f"TOPUP#{record.pool}#{iso(record.topup.previous_at)}"),
            "pool": {"S": record.pool},
            "previous": {"N": str(record.topup.previous)},
            "balance": {"N": str(record.topup.remaining)},
            "observed_at": {"S": record.observed_at},
            "expires_at": self._expiry(record.observed_at),
        }
        if record.topup.renewal:
            item["renewal"] = {"BOOL": True}
        return item if record.topup.added is None else item | {"added": {"N": str(record.topup.added)}}


def _present(**attributes: Any) -> dict[str, Any]:
    """The attributes that hold something: what is unset or empty is left out of the item, and
    read back as its default. Every value read costs a run CPU (botocore walks each one)."""
    return {name: value for name, value in attributes.items() if value is not None and value != []}


def _text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError("not text")
    return value


def _level(name: object) -> Level:
    return Level[str(name).upper()]


def _stored(state: dict[str, Any] | None, window: dict[str, Any] | None) -> Stored:
    """An account's STATE and WINDOW items, as DynamoDB returned them (typed)."""
    values = None if state is None else {name: plain(value) for name, value in state.items()}
    return Stored(
        state=_state(values),
        windows=_windows(window),
        outbox=tuple(_pending(entry) for entry in (values or {}).get("outbox", [])),
        indexed=values is None or "fleet" in values,
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
        retired_at=item.get("retired_at"),
        shares=item.get("shares"),
        members=tuple(item.get("members", ())),
    )


def _pending(entry: dict[str, Any]) -> Pending:
    """An outbox entry; one written before events has no event and is owed to SNS only."""
    message = Message(**{name: entry[name] for name in MESSAGE_FIELDS if name in entry})
    return Pending(message, entry["lease_until"], tuple(entry.get("channels", ("sns",))))


def _windows(item: dict[str, Any] | None) -> dict[str, PoolWindow]:
    """The pools' windows of a typed WINDOW item, packed (`p`) or in the earlier form (`points`,
    a list of [ISO time, balance, segment]), which the account's next run rewrites packed."""
    if item is None:
        return {}
    windows = {}
    for name, typed_pool in item.get("pools", {}).get("M", {}).items():
        pool = typed_pool["M"]
        if "p" in pool:
            points = unpack(pool["p"]["S"])
        else:
            points = tuple(
                Point(parse_iso(at), Decimal(remaining), int(segment))
                for at, remaining, segment in plain(pool.get("points", {"L": []}))
            )
        windows[name] = PoolWindow(
            points=points,
            full_tank=Decimal(pool["full_tank"]["N"]) if "N" in pool.get("full_tank", {}) else None,
            topped_up_at=pool["topped_up_at"]["S"] if "S" in pool.get("topped_up_at", {}) else None,
            last_topup_at=parse_iso(pool["last_topup_at"]["S"]) if "S" in pool.get("last_topup_at", {}) else None,
            renews_at=parse_iso(pool["renews_at"]["S"]) if "S" in pool.get("renews_at", {}) else None,
        )
    return windows

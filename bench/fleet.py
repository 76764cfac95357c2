"""One fleet size through the real handler, in a process of its own:
`python -m bench.fleet walls N` or `python -m bench.fleet bill N`.

The provider simulator runs in a child process (so its HTTP work does not share this
process's interpreter lock) and answers every check after LATENCY seconds. AWS is moto, in
this process. A fleet larger than ACCOUNTS_PER_SHARD is sent out in shards, and every shard
is delivered to the handler in turn, as the queue would. Prints one JSON line of figures.

- walls: a first run makes every account's state; the second, steady run is timed, and beside
  it, in the same process against the same moto and simulator, the floor (`floor`).
- bill: every account's window is seeded full (72 hourly balances, as 72 earlier runs would
  have left it), a first run makes the state, and what the next run, an hour later, emits is
  measured: metric series, log and journal bytes, DynamoDB units from the items' sizes.
"""

from __future__ import annotations

import collections
import io
import json
import math
import multiprocessing
import os
import resource
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import urllib3
from botocore.config import Config
from moto import mock_aws

from bench.bill import Emissions, item_size, read_units, write_units
from creditwatch import monitor, secret_store
from creditwatch.domain import AccountState, Balance, Checked, Policy, Threshold, Thresholds, evaluate
from creditwatch.forecast import PoolWindow, advance
from creditwatch.observability import logger
from sandbox.harness import FAKE_AWS_ENV, LambdaContext, Stack, template
from sandbox.simulator import ProviderSimulator, Reply

LATENCY = 0.1  # seconds the simulator takes to answer, a provider's round trip from Lambda
MAX_CONCURRENCY = 16
ACCOUNTS_PER_SHARD = 1000
INVOCATION_S = 60  # time a scheduled invocation has in the benchmark
FUNCTION_TIMEOUT_S = 120  # the template's Timeout: what a shard's invocation has


WINDOW_HOURS = 72  # the template's BurnWindowHours: a full window
KEY_LENGTH = 40  # a real key's length, for the secrets the fleet needs (the bench's are shorter)


def key(index: int) -> str:
    return f"bench-key-{index:06d}-xxxxxxxx"


def burn(index: int) -> int:
    """Credits an account burns an hour: 5 to 201."""
    return 5 + (index % 50) * 4


def remaining(index: int, hours_from_now: int = 0) -> Decimal:
    """Most accounts healthy, one in twenty at warning, one in a hundred critical."""
    if index % 100 == 1:
        now = 60
    elif index % 20 == 0:
        now = 900
    else:
        now = 20_000 + index * 7919 % 480_000
    return Decimal(max(0, now - burn(index) * hours_from_now))


def steady_replies(index: int) -> list[Reply]:
    return [Reply(body={"credits": int(remaining(index))}, delay=LATENCY)]


def bill_replies(index: int) -> list[Reply]:
    """The first run's balance, then the next hour's."""
    return [Reply(body={"credits": int(remaining(index, hours))}, delay=LATENCY) for hours in (0, 1)]


def serve(size: int, ready: Any, replies: Callable[[int], list[Reply]]) -> None:
    """The child process: the simulator, every key answered after LATENCY seconds."""
    with ProviderSimulator() as simulator:
        for index in range(size):
            simulator.script("leadmagic", key(index), *replies(index))
        ready.put(simulator.base_url)
        time.sleep(3600)


def floor(size: int, base_url: str, table: str, clock: Callable[[], float] = time.perf_counter) -> float:
    """Seconds, by `clock`, of the least a run of this design must do: a GET per account at
    MAX_CONCURRENCY, two items written and two read back per account, batched, through the
    low-level client. Beside a run, in the same process, it is what the run is measured against."""
    client = boto3.client("dynamodb", config=Config(parameter_validation=False))
    pool = urllib3.PoolManager(maxsize=MAX_CONCURRENCY)
    names = [f"floor{i:06d}" for i in range(size)]

    def get(index: int) -> bytes:
        headers = {"X-API-Key": key(index)}
        return pool.request("GET", f"{base_url}/v1/credits", headers=headers).data

    def item(name: str, sk: str) -> dict[str, Any]:
        return {"pk": {"S": f"leadmagic#{name}"}, "sk": {"S": sk}, "v": {"S": "1764630000 15432.5"}}

    began = clock()
    with ThreadPoolExecutor(max_workers=MAX_CONCURRENCY) as threads:
        bodies = list(threads.map(get, range(size)))
    items = [item(name, sk) for name in names for sk in ("STATE", "WINDOW")]
    for start in range(0, len(items), 25):
        requests = [{"PutRequest": {"Item": i}} for i in items[start : start + 25]]
        client.batch_write_item(RequestItems={table: requests})
    keys = [{"pk": i["pk"], "sk": i["sk"]} for i in items]
    for start in range(0, len(keys), 100):
        client.batch_get_item(RequestItems={table: {"Keys": keys[start : start + 100], "ConsistentRead": True}})
    spent = clock() - began
    assert all(b'"credits"' in body for body in bodies)
    return spent


def evaluation(count: int = 5000, clock: Callable[[], float] = time.process_time) -> float:
    """Seconds, by `clock`, of one pure domain evaluation: an hourly check of one pool with a
    full 72-hour forecast window (the first 72 of `count` fill it and are not counted)."""
    policy = Policy(Thresholds(Threshold(Decimal(1000)), Threshold(Decimal(100))))
    start = datetime(2026, 11, 1, tzinfo=UTC)
    state, windows, began = AccountState(), {}, 0.0
    for hour in range(count):
        if hour == WINDOW_HOURS:
            began = clock()
        outcome = Checked((Balance("credits", Decimal(10**9 - 37 * hour)),))
        result = evaluate("p", "a", start + timedelta(hours=hour), state, windows, outcome, policy)
        state, windows = result.state, result.windows
    return (clock() - began) / (count - WINDOW_HOURS)


def measure(size: int, scenario: str) -> dict[str, Any]:
    replies, measured = {"walls": (steady_replies, run), "bill": (bill_replies, bill)}[scenario]
    ready: Any = multiprocessing.get_context("fork").Queue()
    child = multiprocessing.get_context("fork").Process(target=serve, args=(size, ready, replies), daemon=True)
    child.start()
    try:
        return measured(size, ready.get(timeout=60))
    finally:
        child.terminate()


def run(size: int, base_url: str) -> dict[str, Any]:
    with mock_aws():
        stack = Stack()
        stack.put_secret("leadmagic", {"accounts": [{"name": f"c{i:06d}", "api_key": key(i)} for i in range(size)]})
        queue = stack.shard_queue("leadmagic")
        env = stack.environment(
            "leadmagic",
            base_url,
            MAX_CONCURRENCY=str(MAX_CONCURRENCY),
            ACCOUNTS_PER_SHARD=str(ACCOUNTS_PER_SHARD),
            SHARD_QUEUE_URL=queue,
        )
        calls: collections.Counter[str] = collections.Counter()
        monitor.aws.cache_clear()
        clients = [*monitor.aws(), secret_store.fleet().client]
        for client in clients:
            client.meta.events.register("before-call", lambda model, **_: calls.update([model.name]))

        def one_run() -> tuple[float, list[float], int]:
            """Wall seconds of the scheduled invocation plus its shards', each shard's, accounts checked."""
            began = time.perf_counter()
            result = stack.invoke("leadmagic", env, LambdaContext(remaining_ms=INVOCATION_S * 1000))
            shards = []
            if "shards" in result:
                for _ in range(result["shards"]):
                    shard_began = time.perf_counter()
                    (outcome,) = stack.deliver_shards(
                        "leadmagic", env, queue, 1, remaining_ms=FUNCTION_TIMEOUT_S * 1000
                    )
                    shards.append(time.perf_counter() - shard_began)
                    result.setdefault("checked", 0)
                    result["checked"] += sum(r["accounts"] - r["unchecked"] for r in outcome["shards"])
            else:
                result["checked"] = result["accounts"] - result["unchecked"]
            return time.perf_counter() - began, shards, result["checked"]

        one_run()  # every account's state is made
        calls.clear()
        wall, shards, checked = one_run()
        least = floor(size, base_url, stack.table.name) if size <= ACCOUNTS_PER_SHARD else None
    return {
        "accounts": size,
        "wall_s": wall,
        "shard_s": shards,
        "ideal_s": math.ceil(size / MAX_CONCURRENCY) * LATENCY,
        "floor_s": least,
        "checked": checked,
        "calls": dict(calls),
        "peak_mib": peak_mib(),
    }


def peak_mib() -> float:
    """This process's peak resident memory: VmHWM, which starts afresh at exec (ru_maxrss
    carries over the peak of the process that started this one)."""
    status = Path("/proc/self/status")
    if status.exists():
        line = next(line for line in status.read_text().splitlines() if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Counting(io.TextIOBase):
    """A stream that keeps only the bytes written and the EMF documents among the lines."""

    def __init__(self) -> None:
        self.bytes = 0
        self.documents: list[dict[str, Any]] = []
        self.counting = True

    def write(self, text: str) -> int:
        if self.counting:
            self.bytes += len(text.encode())
            if text.startswith('{"_aws"'):
                self.documents.append(json.loads(text))
        return len(text)


def declared(documents: list[dict[str, Any]]) -> set[tuple[str, str, tuple[tuple[str, str], ...]]]:
    """Each distinct namespace, metric name and set of dimension values the documents declare."""
    found = set()
    for document in documents:
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        for dimensions in directive["Dimensions"]:
            values = tuple((name, str(document[name])) for name in dimensions)
            found |= {(directive["Namespace"], metric["Name"], values) for metric in directive["Metrics"]}
    return found


def seed_windows(stack: Stack, size: int, now: datetime) -> None:
    """Every account's window full, as the hourly runs before `now` would have left it."""
    repository = stack.repository("leadmagic")
    windows = {}
    for index in range(size):
        window = PoolWindow()
        for hours in range(WINDOW_HOURS, 0, -1):
            balance = remaining(index, -hours)
            window, _ = advance(window, balance, None, now - timedelta(hours=hours), timedelta(hours=WINDOW_HOURS))
        windows[f"c{index:06d}"] = {"credits": window}
    repository.save_run([], windows, now - timedelta(hours=1))


def bill(size: int, base_url: str) -> dict[str, Any]:
    """What a steady run emits, with every account's window full."""
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    clock = {"now": start}
    monitor.now = lambda: clock["now"]  # type: ignore[assignment]
    with mock_aws():
        stack = Stack()
        entries = [{"name": f"c{i:06d}", "api_key": key(i)} for i in range(size)]
        stack.put_secret("leadmagic", {"accounts": entries})
        queue = stack.shard_queue("leadmagic")
        env = stack.environment(
            "leadmagic",
            base_url,
            MAX_CONCURRENCY=str(MAX_CONCURRENCY),
            ACCOUNTS_PER_SHARD=str(ACCOUNTS_PER_SHARD),
            SHARD_QUEUE_URL=queue,
        )
        seed_windows(stack, size, start)
        units = collections.Counter[str]()
        snapshot_bytes = []

        def before(model: Any, params: dict[str, Any], **_: Any) -> None:
            body = json.loads(params["body"] or b"{}")
            if model.name == "BatchWriteItem":
                for requests in body["RequestItems"].values():
                    for request in requests:
                        item = request["PutRequest"]["Item"]
                        units["write"] += write_units(item)
                        if item["sk"]["S"].startswith("SNAP#"):
                            snapshot_bytes.append(item_size(item) + 100)
            elif model.name == "PutItem":
                units["write"] += write_units(body["Item"])
                if "fleet" in body["Item"]:  # a write of the Accounts index too
                    index_keys = {name: body["Item"][name] for name in ("fleet", "account", "pk", "sk")}
                    units["write"] += write_units(index_keys)

        def after(model: Any, http_response: Any, **_: Any) -> None:
            body = json.loads(http_response.content or b"{}")
            if model.name == "BatchGetItem":
                found = [item for items in body.get("Responses", {}).values() for item in items]
                units["read"] += sum(read_units(item_size(item)) for item in found)
                units["read"] += units["keys"] - len(found)  # keys not there cost a unit each
                units["keys"] = 0
            elif model.name in ("GetItem", "Query"):
                found = [body["Item"]] if "Item" in body else body.get("Items", [])
                units["read"] += read_units(sum(item_size(item) for item in found))

        def count_keys(model: Any, params: dict[str, Any], **_: Any) -> None:
            if model.name == "BatchGetItem":
                body = json.loads(params["body"])
                units["keys"] += sum(len(request["Keys"]) for request in body["RequestItems"].values())

        journal = []

        def put_log_events(params: dict[str, Any], **_: Any) -> None:
            body = json.loads(params["body"])
            journal.extend(len(event["message"].encode()) + 26 for event in body["logEvents"])

        monitor.aws.cache_clear()
        monitor.logs.cache_clear()
        dynamodb = monitor.aws()[0]
        dynamodb.meta.events.register("before-call.dynamodb", before)
        dynamodb.meta.events.register("before-call.dynamodb", count_keys)
        dynamodb.meta.events.register("after-call.dynamodb", after)
        monitor.logs().meta.events.register("before-call.logs.PutLogEvents", put_log_events)
        output = Counting()
        logger.registered_handler.setStream(output)  # type: ignore[attr-defined]
        stdout, sys.stdout = sys.stdout, output
        try:
            invocations = []
            for _ in range(2):  # the first makes the state; the second, an hour later, is measured
                units.clear()
                snapshot_bytes.clear()
                journal.clear()
                output.bytes, output.documents = 0, []
                invocations = one_invocation_and_its_shards(stack, env, queue)
                clock["now"] += timedelta(hours=1)
            run_units, run_bytes, run_documents = dict(units), output.bytes, list(output.documents)
            # A tick between two hourly runs: it finds the period covered and checks nothing.
            clock["now"] -= timedelta(minutes=45)
            units.clear()
            output.bytes, output.documents = 0, []
            began = time.perf_counter()
            assert stack.invoke("leadmagic", env, tick=True) == {"provider": "leadmagic", "due": False}
            tick = {"seconds": time.perf_counter() - began, "bytes": output.bytes, "read": units["read"]}
        finally:
            sys.stdout = stdout
        typed = boto3.client("dynamodb")  # the resource's client hands back Python values
        resident = sum(
            item_size(item) + 100
            for page in typed.get_paginator("scan").paginate(TableName=stack.table.name)
            for item in page["Items"]
            if not item["sk"]["S"].startswith(("SNAP#", "TOPUP#"))
        )
        index_entries = sum(1 for item in stack.items() if item["sk"] == "STATE")
        series = declared(run_documents + output.documents)
        secret_bytes = len(json.dumps({"accounts": entries})) + size * (KEY_LENGTH - len(key(0)))
        resources = template()["Resources"]
        others = [p for p in str(template()["Parameters"]["Providers"]["Default"]).split(",") if p != "leadmagic"]
        alarms = [
            name
            for name, resource in resources.items()
            if resource["Type"] == "AWS::CloudWatch::Alarm" and not name.startswith(tuple(others))
        ]
        emissions = Emissions(
            accounts=size,
            series=len(series),
            own_series=sum(1 for _, _, values in series if "Account" in dict(values)),
            log_bytes=run_bytes,
            journal_bytes=sum(journal),
            invocations=len(invocations),
            seconds=sum(invocations),
            memory_mb=template()["Globals"]["Function"]["MemorySize"],
            write_units=run_units.get("write", 0),
            read_units=run_units.get("read", 0),
            snapshot_bytes=sum(snapshot_bytes),
            resident_bytes=resident + index_entries * 100,
            secrets=math.ceil(secret_bytes / 65_536),
            shard_messages=len(invocations) - 1,
            queues=1,
            alarms=len(alarms),  # a stack of this provider alone: its own and the stack's
            dashboards=1,
            tick_log_bytes=tick["bytes"],
            tick_read_units=tick["read"],
            tick_seconds=tick["seconds"],
        )
    return emissions._asdict()


def one_invocation_and_its_shards(stack: Stack, env: dict[str, str], queue: str) -> list[float]:
    """The scheduled invocation, then each shard it queued; the seconds each took."""
    began = time.perf_counter()
    result = stack.invoke("leadmagic", env, LambdaContext(remaining_ms=FUNCTION_TIMEOUT_S * 1000))
    seconds = [time.perf_counter() - began]
    for _ in range(result.get("shards", 0)):
        began = time.perf_counter()
        stack.deliver_shards("leadmagic", env, queue, 1, remaining_ms=FUNCTION_TIMEOUT_S * 1000)
        seconds.append(time.perf_counter() - began)
    return seconds


def main() -> int:
    os.environ.update(FAKE_AWS_ENV)
    os.environ["POWERTOOLS_LOG_LEVEL"] = "INFO" if sys.argv[1] == "bill" else "WARNING"
    devnull = open(os.devnull, "w")  # noqa: SIM115 (for the life of the process)
    logger.registered_handler.setStream(devnull)  # type: ignore[attr-defined]
    stdout, sys.stdout = sys.stdout, devnull  # EMF documents
    figures = measure(int(sys.argv[2]), sys.argv[1])
    sys.stdout = stdout
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())

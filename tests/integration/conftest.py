"""The real handlers against moto (AWS) and the provider simulator on 127.0.0.1."""

import io
import json
import re
import threading
import warnings
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from sandbox.harness import Stack


@pytest.fixture
def stack() -> Iterator[Stack]:
    with mock_aws():
        yield Stack()


def emf_documents(output: str) -> list[dict[str, Any]]:
    """The CloudWatch EMF documents among the lines a function printed."""
    documents = []
    for line in output.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict) and "_aws" in document:
            # Powertools writes each metric's values as a list; one value per document here.
            for metric in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                (document[metric["Name"]],) = document[metric["Name"]]
            documents.append(document)
    return documents


def series(documents: list[dict[str, Any]]) -> set[tuple[str, str, tuple[tuple[str, str], ...]]]:
    """The custom metrics the documents declare, as CloudWatch bills them: each distinct
    namespace, metric name and set of dimension values."""
    found = set()
    for document in documents:
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        for dimensions in directive["Dimensions"]:
            values = tuple((name, str(document[name])) for name in dimensions)
            found |= {(directive["Namespace"], metric["Name"], values) for metric in directive["Metrics"]}
    return found


def own(declared: set[tuple[str, str, tuple[tuple[str, str], ...]]]) -> set[str]:
    """The accounts that have series of their own among `declared`."""
    return {value for _, _, values in declared for name, value in values if name == "Account"}


def leaked(text: str, *keys: str) -> list[str]:
    """The 8-character pieces of the keys that are in the text. A key may show its last 4
    characters at most, so a test expects none."""
    return [key[i : i + 8] for key in keys for i in range(len(key) - 7) if key[i : i + 8] in text]


def attributes(alert: dict[str, Any]) -> dict[str, str]:
    """An alert's SNS message attributes as plain strings, less its id (checked here: every
    alert carries one, 32 hex digits)."""
    values = {name: value["Value"] for name, value in alert["MessageAttributes"].items()}
    assert re.fullmatch("[0-9a-f]{32}", values.pop("alert_id"))
    return values


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep urllib3's exponential back-off short; Retry-After waits stay as the provider asks."""
    from creditwatch import http

    monkeypatch.setattr(http, "BACKOFF_FACTOR", 0.01)


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """Everything the Powertools logger writes during the test (its handler keeps the stdout
    it was created with, so capsys does not see it)."""
    from creditwatch.observability import logger

    buffer = io.StringIO()
    previous = logger.registered_handler.setStream(buffer)  # type: ignore[attr-defined]
    yield buffer
    logger.registered_handler.setStream(previous)  # type: ignore[attr-defined]


def aws_failure(operation: str, code: str = "InternalServerError"):
    """A stand-in for a boto3 call that fails the way AWS does."""

    def fail(*_: object, **__: object) -> None:
        raise ClientError({"Error": {"Code": code, "Message": f"{operation} failed"}}, operation)

    return fail


class Clock:
    """The run's wall clock, moved by hand: a later run is one whose leases have passed."""

    def __init__(self) -> None:
        from creditwatch.monitor import now

        self.at = now()

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    from creditwatch import monitor

    fake = Clock()
    monkeypatch.setattr(monitor, "now", fake)
    return fake


class Faults:
    """Fails chosen AWS calls, wherever the run makes them (its own clients and Powertools').

    `plan` holds the 1-based positions, in the order the calls are made, of those to fail;
    `calls` records every operation made while installed.
    """

    def __init__(self) -> None:
        self.plan: set[int] = set()
        self.calls: list[str] = []
        self.start: tuple[str, int, int] | None = None

    def fail(self, *positions: int) -> None:
        self.plan, self.calls, self.start = set(positions), [], None

    def fail_from(self, operation: str, count: int, skip: int = 0) -> None:
        """Fail `count` calls in a row, starting `skip` calls after the first call of `operation`."""
        self.plan, self.calls, self.start = set(), [], (operation, count, skip)

    def wrap(self, make_api_call: Any) -> Any:
        faults = self

        def call(client: Any, operation: str, params: dict[str, Any]) -> Any:
            faults.calls.append(operation)
            if faults.start and operation == faults.start[0]:
                _, count, skip = faults.start
                position = len(faults.calls) + skip
                faults.plan, faults.start = set(range(position, position + count)), None
            if len(faults.calls) in faults.plan:
                raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"}}, operation)
            return make_api_call(client, operation, params)

        return call


@pytest.fixture
def faults(monkeypatch: pytest.MonkeyPatch) -> Faults:
    from botocore.client import BaseClient

    injector = Faults()
    monkeypatch.setattr(BaseClient, "_make_api_call", injector.wrap(BaseClient._make_api_call))
    return injector


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB ends a Query page at 1 MB, which moto never does: here a page is two items, so a
    reader that takes only the first page misses what follows."""
    from moto.dynamodb.models import DynamoDBBackend

    original = DynamoDBBackend.query

    def paged(self: Any, name: str, hash_key: Any, comparison: Any, values: Any, limit: int, *args: Any, **kw: Any):
        return original(self, name, hash_key, comparison, values, min(limit or 2, 2), *args, **kw)

    monkeypatch.setattr(DynamoDBBackend, "query", paged)


Deliver = Callable[[Callable[[int], object], int], list[BaseException]]


@pytest.fixture
def simultaneously(monkeypatch: pytest.MonkeyPatch) -> Deliver:
    """`simultaneously(deliver, copies)` calls deliver(0), deliver(1)... on as many threads,
    released together, as duplicate deliveries of one schedule or message; it returns what
    they raised.

    moto checks a condition and then writes without a lock, so two threads can both pass one
    condition; DynamoDB's conditional write is atomic. moto's writes are serialised to match.
    The threads share one process and with it Powertools' metrics state, which Lambda's
    sandboxes never do, so its "dimension already added" warning is ignored: such a test
    judges the table and the alerts."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        original = getattr(DynamoDBBackend, name)

        def serialised(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return _original(*args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, serialised)

    def deliver_at_once(deliver: Callable[[int], object], copies: int) -> list[BaseException]:
        barrier = threading.Barrier(copies)
        errors: list[BaseException] = []

        def one(copy: int) -> None:
            barrier.wait()
            try:
                deliver(copy)
            except BaseException as error:  # noqa: BLE001 (returned to the test)
                errors.append(error)

        threads = [threading.Thread(target=one, args=(copy,)) for copy in range(copies)]
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Dimension 'Account' has already been added")
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        return errors

    return deliver_at_once

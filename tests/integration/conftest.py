"""The real handlers against moto (AWS) and the provider simulator on 127.0.0.1."""

import io
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from sandbox.harness import Stack
from sandbox.simulator import ProviderSimulator


@pytest.fixture
def stack() -> Iterator[Stack]:
    with mock_aws():
        yield Stack()


@pytest.fixture
def simulator() -> Iterator[ProviderSimulator]:
    with ProviderSimulator() as sim:
        yield sim


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

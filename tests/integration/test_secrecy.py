"""No API key, or any long piece of one, reaches a log line, an item, a metric, an alert or an error."""

import logging
import socket
from urllib.parse import quote, quote_plus

import pytest

from creditwatch.monitor import RunIncomplete
from creditwatch.observability import logger
from sandbox.harness import Stack
from sandbox.simulator import ProviderSimulator, Reply, balance

from .conftest import aws_failure, leaked

KEYS = {
    "healthy": "cw-secret-healthy-7f3a9c1e5b2d",
    "low": "cw-secret-low-8e4b0d2f6a1c",
    "revoked": "cw-secret-revoked-9d5c1e3a7b2f",
    "flaky": "cw-secret-flaky-0a6d2f4b8c3e",
}


def assert_no_key_in(text: str) -> None:
    assert leaked(text, *KEYS.values()) == []


@pytest.mark.parametrize("provider", ["clodura", "clado", "cleanlist", "leadmagic"])
def test_no_key_leaks_anywhere(stack: Stack, simulator: ProviderSimulator, capsys, caplog, logs, provider):
    simulator.script(provider, KEYS["healthy"], balance(provider, 50000))
    simulator.script(provider, KEYS["low"], balance(provider, 3))
    simulator.script(provider, KEYS["revoked"], Reply(401, {"detail": "invalid key"}))
    simulator.script(provider, KEYS["flaky"], Reply(200, "<html>bad gateway</html>"))
    stack.put_secret(provider, {"accounts": [{"name": name, "api_key": key} for name, key in KEYS.items()]})
    env = stack.environment(provider, simulator.base_url, FAILURES_BEFORE_ALERT="1")
    caplog.set_level(logging.INFO)  # every library's INFO logs too
    logger.setLevel(logging.DEBUG)  # and our own DEBUG ones
    try:
        for _ in range(2):
            stack.invoke(provider, env)
        simulator.script(provider, KEYS["low"], balance(provider, 90000))
        stack.invoke(provider, env)
    finally:
        logger.setLevel(logging.INFO)

    alerts = stack.alerts()
    assert len(alerts) >= 4
    assert_no_key_in(repr(alerts))
    assert_no_key_in(repr(stack.items()))
    assert_no_key_in(capsys.readouterr().out)  # EMF metrics
    assert '"message":"check failed"' in logs.getvalue()
    assert_no_key_in(logs.getvalue())
    assert_no_key_in(caplog.text)


def test_no_key_in_errors_or_logs_when_aws_fails(stack: Stack, simulator: ProviderSimulator, logs, monkeypatch):
    from creditwatch import repository

    monkeypatch.setattr(repository.Repository, "save_run", aws_failure("BatchWriteItem"))
    simulator.script("clado", KEYS["low"], balance("clado", 3))
    stack.put_secret("clado", KEYS["low"])

    with pytest.raises(RunIncomplete) as error:
        stack.invoke("clado", stack.environment("clado", simulator.base_url))

    assert_no_key_in(str(error.value))
    assert "balances not saved" in logs.getvalue()
    assert_no_key_in(logs.getvalue())


def test_logs_identify_a_key_by_its_last_four_characters_only(stack, simulator, logs):
    simulator.script("clado", KEYS["revoked"], Reply(401, {"detail": "invalid"}))
    stack.put_secret("clado", KEYS["revoked"])

    stack.invoke("clado", stack.environment("clado", simulator.base_url))

    assert f'"key":"…{KEYS["revoked"][-4:]}"' in logs.getvalue()
    assert_no_key_in(logs.getvalue())


@pytest.fixture
def everything_at_debug(caplog):
    """Our logger and every library's (botocore, boto3, urllib3, requests) at DEBUG, and the root too."""
    from creditwatch.observability import LIBRARY_LOGGERS

    loggers = [logging.getLogger(name) for name in LIBRARY_LOGGERS]
    saved = [each.level for each in loggers]
    caplog.set_level(logging.DEBUG)
    logger.setLevel(logging.DEBUG)
    for each in loggers:
        each.setLevel(logging.DEBUG)
    yield
    logger.setLevel(logging.INFO)
    for each, level in zip(loggers, saved, strict=True):
        each.setLevel(level)


REFLECTED = KEYS["revoked"]


def reflecting(provider: str) -> Reply:
    """A provider that echoes the key back wherever it can: headers, error text, fields."""
    return Reply(
        200,
        {"error": f"invalid key {REFLECTED}", "credits": REFLECTED, "last_topup_at": REFLECTED},
        headers={"Content-Type": f"text/{REFLECTED}", "X-Echo": REFLECTED, "Location": f"/?k={REFLECTED}"},
    )


FAILURE_PATHS = {
    "refused": None,  # BASE_URL points at a port nobody listens on
    "timeout": Reply(body={"credits": 1}, delay=1.0),
    "retry": Reply(503, {"detail": REFLECTED}, headers={"Retry-After": "0", "X-Echo": REFLECTED}),
    "redirect": Reply(302, {"moved": REFLECTED}, headers={"Location": f"https://evil.example/{REFLECTED}"}),
    "reflecting": "reflecting",
    "rejected": Reply(401, {"detail": f"key {REFLECTED} revoked"}, headers={"WWW-Authenticate": REFLECTED}),
}


@pytest.mark.parametrize("path", FAILURE_PATHS)
@pytest.mark.parametrize("provider", ["clodura", "leadmagic"])
def test_no_key_leaks_on_any_failure_path_with_every_logger_at_debug(
    stack: Stack, simulator: ProviderSimulator, capsys, caplog, logs, monkeypatch, everything_at_debug, provider, path
):
    from creditwatch import http

    monkeypatch.setattr(http, "READ_TIMEOUT", 0.3)
    reply = FAILURE_PATHS[path]
    base_url = simulator.base_url
    if reply is None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base_url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    elif reply == "reflecting":
        reply = reflecting(provider)
    if isinstance(reply, Reply):
        simulator.script(provider, REFLECTED, reply)
    stack.put_secret(provider, {"accounts": [{"name": "victim", "api_key": REFLECTED}]})
    env = stack.environment(provider, base_url, FAILURES_BEFORE_ALERT="1")

    errors = []
    for _ in range(2):
        try:
            stack.invoke(provider, env)
        except Exception as exc:  # noqa: BLE001 (its text is checked below)
            errors.append(f"{exc!r} {exc}")

    assert len(stack.alerts()) == 1
    assert "DEBUG" in logs.getvalue()  # the libraries really did log at DEBUG
    for text in (logs.getvalue(), caplog.text, capsys.readouterr().out, repr(stack.alerts()), repr(stack.items())):
        assert_no_key_in(text)
    assert_no_key_in(" ".join(errors))


QUERY_PROVIDER = """
name: querykey
title: Query Key
docs: https://querykey.example
request:
  base_url: https://api.querykey.example
  path: /v1/account
  auth: {query: api_key}
pools:
  credits:
    remaining: credits
example: {credits: 10}
"""


def test_a_key_in_the_query_string_is_masked_in_urllib3s_own_retry_logs(logs, everything_at_debug):
    """urllib3 logs each request's full URL at DEBUG and its retries at WARNING: with the key
    in the query string, those lines would carry it (as it is, or percent-encoded)."""
    from creditwatch.domain import Checked
    from creditwatch.http import fetch, new_session
    from creditwatch.providers import parse_definition
    from creditwatch.redaction import redact

    provider = parse_definition("querykey.yaml", QUERY_PROVIDER)
    key = "qk/live+secret=value-8f2c9d"  # characters a URL encodes
    redact.add([key])
    with ProviderSimulator(extra=(provider,)) as simulator:
        simulator.script("querykey", key, Reply(503, {"detail": "busy"}, headers={"Retry-After": "0"}), balance_of(10))
        outcome = fetch(new_session(), provider, simulator.base_url, key)

    assert isinstance(outcome, Checked)
    text = logs.getvalue()
    assert "Retry" in text  # urllib3 did log the retry ...
    assert "/v1/account?api_key=" in text  # ... and the URL
    for form in (key, quote(key, safe=""), quote_plus(key)):
        assert form not in text


def balance_of(credits: int) -> Reply:
    return Reply(body={"credits": credits})

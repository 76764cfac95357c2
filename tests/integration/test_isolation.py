"""One account's failure is that account's alone; DynamoDB's partial answers are bounded."""

import time
from decimal import Decimal

import pytest
from botocore.exceptions import ClientError

from creditwatch import monitor
from creditwatch.domain import Balance
from creditwatch.monitor import RunIncomplete
from creditwatch.repository import BACKOFF_BASE, BACKOFF_MAX, UNPROCESSED_ROUNDS, Snapshot
from sandbox.harness import Stack
from sandbox.simulator import ProviderSimulator, balance

from .conftest import attributes

NOW = "2026-11-22T10:00:00Z"


def snapshot(account: str) -> Snapshot:
    return Snapshot(account, Balance("credits", Decimal("12.5")), NOW)


class Recorder:
    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def test_unprocessed_writes_back_off_then_name_the_accounts(stack: Stack, monkeypatch):
    repo = stack.repository("leadmagic", sleep=(pauses := Recorder()))
    calls = []

    def nothing_processed(RequestItems):  # noqa: N803 (boto3's name)
        calls.append(RequestItems)
        return {"UnprocessedItems": RequestItems}

    monkeypatch.setattr(repo.client, "batch_write_item", nothing_processed)
    from datetime import UTC, datetime

    failed = repo.save_run([snapshot("a"), snapshot("b")], {}, datetime(2026, 11, 22, 10, tzinfo=UTC))

    assert failed == {"a", "b"}
    assert len(calls) == UNPROCESSED_ROUNDS
    assert len(pauses.sleeps) == UNPROCESSED_ROUNDS - 1
    for attempt, pause in enumerate(pauses.sleeps):
        assert 0 <= pause <= min(BACKOFF_MAX, BACKOFF_BASE * 2**attempt)


def test_unprocessed_items_are_given_up_at_the_deadline(stack: Stack, monkeypatch):
    repo = stack.repository("leadmagic", deadline=time.monotonic(), sleep=(pauses := Recorder()))
    calls = []

    def nothing_read(RequestItems):  # noqa: N803 (boto3's name)
        calls.append(RequestItems)
        return {"Responses": {}, "UnprocessedKeys": RequestItems}

    monkeypatch.setattr(repo.client, "batch_get_item", nothing_read)

    stored, unread = repo.load(["a", "b"])

    assert (stored, unread) == ({}, ["a", "b"])
    assert (len(calls), pauses.sleeps) == (1, [])


def test_a_refused_batch_is_written_item_by_item_and_loses_only_the_bad_item(stack: Stack, monkeypatch):
    repo = stack.repository("leadmagic")
    refusal = ClientError({"Error": {"Code": "ValidationException", "Message": "item too large"}}, "BatchWriteItem")
    real_put = repo.client.put_item

    def put_item(Item, **kwargs):  # noqa: N803 (boto3's name)
        if Item["account"]["S"] == "poison":
            raise refusal
        return real_put(Item=Item, **kwargs)

    monkeypatch.setattr(repo.client, "batch_write_item", lambda **_: (_ for _ in ()).throw(refusal))
    monkeypatch.setattr(repo.client, "put_item", put_item)
    from datetime import UTC, datetime

    accounts = ["a", "poison", "b"]
    failed = repo.save_run([snapshot(a) for a in accounts], {}, datetime(2026, 11, 22, 10, tzinfo=UTC))

    assert failed == {"poison"}
    assert sorted(i["account"] for i in stack.items()) == ["a", "b"]


KEYS = {"first": "lm-key-first-aaaaaaaa", "second": "lm-key-second-bbbbbbb", "third": "lm-key-third-cccccccc"}


@pytest.fixture
def three(stack: Stack, simulator: ProviderSimulator) -> dict[str, str]:
    for key in KEYS.values():
        simulator.script("leadmagic", key, balance("leadmagic", 50))
    stack.put_secret("leadmagic", {"accounts": [{"name": n, "api_key": k} for n, k in KEYS.items()]})
    return stack.environment("leadmagic", simulator.base_url, FAILURES_BEFORE_ALERT="1")


def test_an_adapter_bug_is_a_failed_check_for_that_account_only(stack: Stack, simulator, three, monkeypatch):
    from creditwatch import http

    real = http._classify

    def tripping(provider, content, headers=None):
        if b"13" in content:
            raise TypeError("adapter bug")
        return real(provider, content, headers)

    monkeypatch.setattr(http, "_classify", tripping)
    simulator.script("leadmagic", KEYS["second"], balance("leadmagic", 13))

    result = stack.invoke("leadmagic", three)

    assert (result["failed_checks"], result["unchecked"]) == (1, 0)
    kinds = sorted((attributes(a)["account"], attributes(a)["alert"]) for a in stack.alerts())
    assert kinds == [("first", "low_credits"), ("second", "check_failed"), ("third", "low_credits")]
    assert "adapter failed (TypeError)" in next(a["Message"] for a in stack.alerts() if "second" in a["Subject"])


def test_an_alert_that_cannot_be_rendered_costs_only_its_account_and_is_sent_later(stack: Stack, three, monkeypatch):
    from creditwatch import notifier

    real = notifier.render

    def render(self, alert):
        if alert.account == "second":
            raise ValueError("bad text")
        return real(alert, self.provider)

    monkeypatch.setattr(notifier.Notifier, "render", render)

    with pytest.raises(RunIncomplete, match=r"alert of second failed \(ValueError\)"):
        stack.invoke("leadmagic", three)
    assert sorted(attributes(a)["account"] for a in stack.alerts()) == ["first", "third"]

    monkeypatch.setattr(notifier.Notifier, "render", lambda self, alert: real(alert, self.provider))
    stack.invoke("leadmagic", three)
    stack.invoke("leadmagic", three)
    assert sorted(attributes(a)["account"] for a in stack.alerts()) == ["first", "second", "third"]


def test_an_exception_while_judging_one_account_leaves_the_others_alone(stack: Stack, three, monkeypatch):
    real = monitor.evaluate

    def judging(provider, account, *args):
        if account == "first":
            raise ArithmeticError("domain bug")
        return real(provider, account, *args)

    monkeypatch.setattr(monitor, "evaluate", judging)
    with pytest.raises(RunIncomplete, match=r"check of first failed \(ArithmeticError\)"):
        stack.invoke("leadmagic", three)
    assert sorted(attributes(a)["account"] for a in stack.alerts()) == ["second", "third"]
    assert sorted(i["account"] for i in stack.items() if i["sk"].startswith("SNAP#")) == ["second", "third"]


def test_an_invalid_entry_alerts_naming_its_field_and_the_rest_of_the_secret_runs(stack: Stack, simulator):
    simulator.script("leadmagic", KEYS["first"], balance("leadmagic", 50_000))
    simulator.script("leadmagic", KEYS["third"], balance("leadmagic", 2_000))
    stack.put_secret(
        "leadmagic",
        {
            "accounts": [
                {"name": "first", "api_key": KEYS["first"]},
                {"name": "second", "api_key": "key-with-“curly”-quotes"},
                # a critical line above the stack-wide warning (1000): the inherited warning yields
                {"name": "third", "api_key": KEYS["third"], "critical_threshold": "5000"},
            ]
        },
    )

    stack.invoke("leadmagic", stack.environment("leadmagic", simulator.base_url))

    alerts = {attributes(a)["account"]: a for a in stack.alerts()}
    assert sorted(alerts) == ["second", "third"]
    assert attributes(alerts["second"])["alert"] == "check_failed"
    assert attributes(alerts["second"])["severity"] == "critical"
    assert "accounts[1].api_key" in alerts["second"]["Message"]
    assert (attributes(alerts["third"])["alert"], attributes(alerts["third"])["severity"]) == (
        "low_credits",
        "critical",
    )


def test_state_that_cannot_be_read_leaves_those_accounts_for_the_next_run(stack: Stack, three, monkeypatch):
    refusal = ClientError({"Error": {"Code": "InternalServerError", "Message": "x"}}, "BatchGetItem")
    with monkeypatch.context() as patched:
        patched.setattr(monitor.aws()[0], "batch_get_item", lambda **_: (_ for _ in ()).throw(refusal))
        with pytest.raises(RunIncomplete, match="not read"):
            stack.invoke("leadmagic", three)
    assert stack.alerts() == []

    result = stack.invoke("leadmagic", three)

    assert result["unchecked"] == 0
    assert len(stack.alerts()) == 3


def test_a_stored_item_that_cannot_be_decoded_leaves_only_its_account_unchecked(stack: Stack, three):
    stack.invoke("leadmagic", three)
    assert len(stack.alerts()) == 3
    window = next(i for i in stack.items() if i["sk"] == "WINDOW" and i["account"] == "second")
    stack.table.put_item(Item={**window, "pools": {"credits": {"p": "1764630000"}}})  # a point without a balance

    with pytest.raises(RunIncomplete, match="state of 1 account"):
        stack.invoke("leadmagic", three)

    checked = {i["account"] for i in stack.items() if i["sk"] == "WINDOW" and len(i["pools"]["credits"]["p"]) > 10}
    assert checked == {"first", "third"}  # both checked again, their windows two points long

"""When alerts go out: transitions, duplicates, concurrent runs, and AWS failures."""

import json

import pytest
from botocore.exceptions import ClientError

from creditwatch import monitor, repository
from creditwatch.monitor import RunIncomplete
from sandbox.harness import LambdaContext, Stack, handler, scheduled_event
from sandbox.simulator import ProviderSimulator, Reply, balance

from .conftest import attributes, aws_failure

KEY = "lm_live_abcdefghijklmnop"


@pytest.fixture
def leadmagic(stack: Stack, simulator: ProviderSimulator):
    """Run LeadMagic once per call, with the balance the provider reports this time."""
    stack.put_secret("leadmagic", KEY)
    env = stack.environment("leadmagic", simulator.base_url)

    def check(reply: Reply) -> list[dict]:
        simulator.script("leadmagic", KEY, reply)
        before = len(stack.alerts())
        stack.invoke("leadmagic", env)
        return stack.alerts()[before:]

    return check


def kinds(alerts: list[dict]) -> list[tuple[str, str]]:
    return [(attributes(a)["alert"], attributes(a)["severity"]) for a in alerts]


def sns_client():
    """The SNS client the handler uses (made once per execution environment)."""
    return monitor.aws()[1]


sns_error = aws_failure("Publish")


def test_every_transition_alerts_once(leadmagic):
    assert kinds(leadmagic(balance("leadmagic", 5000))) == []
    assert kinds(leadmagic(balance("leadmagic", 900))) == [("low_credits", "warning")]
    assert kinds(leadmagic(balance("leadmagic", 800))) == []
    assert kinds(leadmagic(balance("leadmagic", 50))) == [("low_credits", "critical")]
    assert kinds(leadmagic(balance("leadmagic", 40))) == []
    assert kinds(leadmagic(balance("leadmagic", 500))) == []  # critical easing to warning
    assert kinds(leadmagic(balance("leadmagic", 20000))) == [("recovered", "info")]
    assert kinds(leadmagic(balance("leadmagic", 20000))) == []


def test_ok_straight_to_critical_sends_only_critical(leadmagic):
    assert kinds(leadmagic(balance("leadmagic", 0))) == [("low_credits", "critical")]


def test_second_run_at_same_level_sends_nothing(leadmagic):
    assert len(leadmagic(balance("leadmagic", 10))) == 1
    assert leadmagic(balance("leadmagic", 10)) == []
    assert leadmagic(balance("leadmagic", 9)) == []


def test_check_recovers_after_a_rejected_key_is_replaced(leadmagic):
    assert kinds(leadmagic(Reply(401, {"detail": "bad key"}))) == [("check_failed", "critical")]
    assert kinds(leadmagic(Reply(401, {"detail": "bad key"}))) == []
    assert kinds(leadmagic(Reply(503, "down"))) == []  # still failing: no new alert
    assert kinds(leadmagic(balance("leadmagic", 5000))) == [("recovered", "info")]


def test_transient_failure_then_rejected_key_escalates(leadmagic, stack, simulator):
    env = stack.environment("leadmagic", simulator.base_url, FAILURES_BEFORE_ALERT="1")
    simulator.script("leadmagic", KEY, Reply(500, "x"))
    stack.invoke("leadmagic", env)
    simulator.script("leadmagic", KEY, Reply(403, {"detail": "revoked"}))
    stack.invoke("leadmagic", env)
    assert kinds(stack.alerts()) == [("check_failed", "warning"), ("check_failed", "critical")]


def test_alert_message_is_actionable(leadmagic):
    (alert,) = leadmagic(balance("leadmagic", 42.5))

    assert len(alert["Subject"]) <= 100
    assert alert["Subject"] == "[creditwatch] CRITICAL LeadMagic/default/credits: 42.5 credits left"
    for fragment in ("Remaining:   42.5 credits", "Threshold:   100", "Observed at: ", "https://leadmagic.io"):
        assert fragment in alert["Message"]
    assert attributes(alert) == {
        "provider": "leadmagic",
        "account": "default",
        "severity": "critical",
        "alert": "low_credits",
    }


def test_sms_gets_a_short_text_and_email_the_full_one(leadmagic, monkeypatch):
    client, calls = sns_client(), []
    real_publish = client.publish
    monkeypatch.setattr(client, "publish", lambda **kwargs: calls.append(kwargs) or real_publish(**kwargs))

    leadmagic(balance("leadmagic", 42))

    (call,) = calls
    assert call["MessageStructure"] == "json"
    bodies = json.loads(call["Message"])
    assert bodies["email"] == bodies["default"]
    assert "Remaining" in bodies["email"]
    assert len(bodies["sms"]) <= 140
    assert bodies["sms"].startswith("creditwatch: CRITICAL LeadMagic/default/credits: 42 credits left")


def test_failed_publish_keeps_state_and_next_run_resends(leadmagic, stack, simulator, monkeypatch):
    env = stack.environment("leadmagic", simulator.base_url)
    simulator.script("leadmagic", KEY, balance("leadmagic", 50))
    with monkeypatch.context() as patched:
        patched.setattr(sns_client(), "publish", sns_error)
        with pytest.raises(RunIncomplete, match="not published"):
            stack.invoke("leadmagic", env)
    assert stack.alerts() == []

    stack.invoke("leadmagic", env)
    stack.invoke("leadmagic", env)

    assert kinds(stack.alerts()) == [("low_credits", "critical")]


def test_one_failed_publish_resends_only_that_alert(stack, simulator, monkeypatch):
    """A rejected-key recovery and a low balance in the same run: only the unsent one comes again."""
    stack.put_secret("leadmagic", KEY)
    env = stack.environment("leadmagic", simulator.base_url)
    simulator.script("leadmagic", KEY, Reply(401, {"detail": "bad"}))
    stack.invoke("leadmagic", env)
    simulator.script("leadmagic", KEY, balance("leadmagic", 50))
    client = sns_client()
    real_publish = client.publish

    def fail_low_credits(**kwargs: dict) -> object:
        if kwargs["MessageAttributes"]["alert"]["StringValue"] == "low_credits":
            sns_error()
        return real_publish(**kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(client, "publish", fail_low_credits)
        with pytest.raises(RunIncomplete):
            stack.invoke("leadmagic", env)
    stack.invoke("leadmagic", env)
    stack.invoke("leadmagic", env)

    assert kinds(stack.alerts()) == [("check_failed", "critical"), ("recovered", "info"), ("low_credits", "critical")]


def test_state_write_failure_defers_the_alert_to_the_next_run(leadmagic, stack, simulator, monkeypatch):
    env = stack.environment("leadmagic", simulator.base_url)
    simulator.script("leadmagic", KEY, balance("leadmagic", 50))

    broken = aws_failure("PutItem", "ProvisionedThroughputExceededException")

    with monkeypatch.context() as patched:
        patched.setattr(repository.Repository, "save_state", broken)
        with pytest.raises(RunIncomplete, match="state of default not saved"):
            stack.invoke("leadmagic", env)
    assert stack.alerts() == []

    stack.invoke("leadmagic", env)
    assert kinds(stack.alerts()) == [("low_credits", "critical")]


def test_snapshot_write_failure_still_alerts_and_reports_the_error(leadmagic, stack, simulator, monkeypatch):
    env = stack.environment("leadmagic", simulator.base_url)
    simulator.script("leadmagic", KEY, balance("leadmagic", 50))

    broken = aws_failure("BatchWriteItem", "InternalServerError")

    monkeypatch.setattr(repository.Repository, "save_run", broken)
    with pytest.raises(RunIncomplete, match="snapshot"):
        stack.invoke("leadmagic", env)
    assert kinds(stack.alerts()) == [("low_credits", "critical")]


def test_state_read_failure_fails_the_run_before_any_alert(leadmagic, stack, simulator, monkeypatch):
    env = stack.environment("leadmagic", simulator.base_url)
    simulator.script("leadmagic", KEY, balance("leadmagic", 50))

    broken = aws_failure("BatchGetItem", "InternalServerError")

    monkeypatch.setattr(repository.Repository, "load", broken)
    with pytest.raises(ClientError):
        stack.invoke("leadmagic", env)
    assert stack.alerts() == []


def test_a_stale_duplicate_run_loses_the_conditional_write_and_sends_nothing(leadmagic, stack, simulator, monkeypatch):
    """The same schedule delivered twice: the second run read the state before the first wrote it."""
    env = stack.environment("leadmagic", simulator.base_url)
    simulator.script("leadmagic", KEY, balance("leadmagic", 50))
    stale = stack.repository("leadmagic").load(["default"])

    stack.invoke("leadmagic", env)
    monkeypatch.setattr(repository.Repository, "load", lambda self, accounts: stale)
    stack.invoke("leadmagic", env)

    assert kinds(stack.alerts()) == [("low_credits", "critical")]


DUPLICATES = 8  # simultaneous deliveries of the same schedule


def test_simultaneous_duplicate_runs_publish_each_change_exactly_once(stack, simulator, monkeypatch, simultaneously):
    keys = {"low": "lm-key-low-aaaaaaaa", "revoked": "lm-key-revoked-bbbbbb", "fine": "lm-key-fine-cccccccc"}
    stack.put_secret("leadmagic", {"accounts": [{"name": name, "api_key": key} for name, key in keys.items()]})
    for name, value in stack.environment("leadmagic", simulator.base_url).items():
        monkeypatch.setenv(name, value)
    lambda_handler = handler().lambda_handler

    rounds = [
        {"low": balance("leadmagic", 50), "revoked": Reply(401, {"detail": "no"}), "fine": balance("leadmagic", 9e4)},
        {"low": balance("leadmagic", 40), "revoked": Reply(401, {"detail": "no"}), "fine": balance("leadmagic", 500)},
        {"low": balance("leadmagic", 9e4), "revoked": balance("leadmagic", 9e4), "fine": balance("leadmagic", 400)},
    ]
    for replies in rounds:
        for name, reply in replies.items():
            simulator.script("leadmagic", keys[name], Reply(reply.status, reply.body, delay=0.2))
        assert simultaneously(lambda _: lambda_handler(scheduled_event(), LambdaContext()), DUPLICATES) == []

    sent = sorted((attributes(a)["account"], attributes(a)["alert"], attributes(a)["severity"]) for a in stack.alerts())
    assert sent == [
        ("fine", "low_credits", "warning"),
        ("low", "low_credits", "critical"),
        ("low", "recovered", "info"),
        ("revoked", "check_failed", "critical"),
        ("revoked", "recovered", "info"),
    ]

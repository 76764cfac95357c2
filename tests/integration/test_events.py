"""Every alert is also an EventBridge event: captured here through a rule to an SQS queue."""

import json

import jsonschema
import pytest

from creditwatch import monitor
from creditwatch.monitor import RunIncomplete
from sandbox.harness import ROOT, Stack
from sandbox.simulator import ProviderSimulator, Reply, balance

from .conftest import attributes

KEY = "lm_live_events_abcdefgh"
SCHEMA = json.loads((ROOT / "schemas" / "alert-event.schema.json").read_text())


def valid(event: dict) -> dict:
    jsonschema.validate(event, SCHEMA)
    return event


@pytest.fixture
def leadmagic(stack: Stack, simulator: ProviderSimulator, clock):
    stack.put_secret("leadmagic", KEY)
    env = stack.environment("leadmagic", simulator.base_url, FAILURES_BEFORE_ALERT="1")

    def check(reply: Reply, hours: float = 1) -> list[dict]:
        simulator.script("leadmagic", KEY, reply)
        before = len(stack.events())
        clock.advance(hours=hours)
        stack.invoke("leadmagic", env)
        return [valid(event) for event in stack.events()[before:]]

    return check


def kinds(events: list[dict]) -> list[tuple[str, str, str]]:
    return [(e["detail-type"], e["detail"]["alert"], e["detail"]["severity"]) for e in events]


def test_every_alert_is_an_event_of_its_kind_valid_against_the_schema(leadmagic, stack: Stack):
    assert leadmagic(balance("leadmagic", 5000)) == []
    # 4,100 credits in an hour: low, and forecast to run out within hours
    assert kinds(leadmagic(balance("leadmagic", 900))) == [
        ("Credit Balance Level Changed", "low_credits", "warning"),
        ("Credit Depletion Forecast", "depletion_forecast", "critical"),
    ]
    assert kinds(leadmagic(balance("leadmagic", 50))) == [("Credit Balance Level Changed", "low_credits", "critical")]
    reminded = kinds(leadmagic(balance("leadmagic", 50), hours=25))
    assert ("Credit Alert Reminder", "low_credits", "critical") in reminded
    assert kinds(leadmagic(Reply(401, {"detail": "revoked"}))) == [("Credit Check Failed", "check_failed", "critical")]
    assert ("Credit Alert Recovered", "recovered", "info") in kinds(leadmagic(balance("leadmagic", 90_000)))
    # one event for each alert SNS sent, with the same id, in the same order
    assert [e["detail"]["alert_id"] for e in stack.events()] == [
        a["MessageAttributes"]["alert_id"]["Value"] for a in stack.alerts()
    ]


def test_the_detail_says_what_a_consumer_needs_and_never_the_key(leadmagic, stack: Stack):
    (event,) = leadmagic(balance("leadmagic", "50.25"))
    detail = event["detail"]
    assert event["source"] == "creditwatch"
    assert {k: detail[k] for k in ("version", "provider", "account", "pool", "level", "previous_level")} == {
        "version": "1",
        "provider": "leadmagic",
        "account": "default",
        "pool": "credits",
        "level": "critical",
        "previous_level": "ok",
    }
    assert (detail["remaining"], detail["threshold"]) == ("50.25", "100")  # exact, as decimal strings
    assert KEY not in json.dumps(stack.events())
    assert KEY[-4:] not in json.dumps(detail)


def test_a_refused_event_is_resent_by_the_next_run_and_the_email_is_not(
    leadmagic, stack: Stack, monkeypatch: pytest.MonkeyPatch
):
    """PutEvents answers 200 with FailedEntryCount: the entry was not put."""
    events_client = monitor.aws()[3]
    real = events_client.put_events
    refusal = {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "x"}]}
    monkeypatch.setattr(events_client, "put_events", lambda **_: refusal)
    with pytest.raises(RunIncomplete, match="not published to every channel"):
        leadmagic(balance("leadmagic", 50))
    assert [attributes(a)["alert"] for a in stack.alerts()] == ["low_credits"]
    assert stack.events() == []
    (state,) = [item for item in stack.items() if item["sk"] == "STATE"]
    assert [entry["channels"] for entry in state["outbox"]] == [["events"]]

    monkeypatch.setattr(events_client, "put_events", real)
    resent = leadmagic(balance("leadmagic", 50))
    assert kinds(resent) == [("Credit Balance Level Changed", "low_credits", "critical")]
    assert len(stack.alerts()) == 1  # the email went out once
    assert leadmagic(balance("leadmagic", 50)) == []


def test_events_go_to_the_configured_bus(stack: Stack, simulator: ProviderSimulator):
    bus = stack.events_client.create_event_bus(Name="team-alerts")["EventBusArn"]
    queue = stack.sqs.create_queue(QueueName="team-alerts")["QueueUrl"]
    arn = stack.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    stack.events_client.put_rule(
        Name="critical", EventBusName=bus, EventPattern=json.dumps({"source": ["creditwatch"]})
    )
    stack.events_client.put_targets(Rule="critical", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    simulator.script("leadmagic", KEY, balance("leadmagic", 50))
    stack.put_secret("leadmagic", KEY)
    stack.invoke("leadmagic", stack.environment("leadmagic", simulator.base_url, EVENT_BUS_NAME="team-alerts"))
    (message,) = stack.sqs.receive_message(QueueUrl=queue).get("Messages", [])
    assert valid(json.loads(message["Body"]))["detail"]["level"] == "critical"
    assert stack.events() == []  # nothing on the default bus


def test_a_forecast_folded_into_a_low_credits_alert_is_one_email_and_one_event(leadmagic, stack: Stack):
    assert leadmagic(balance("leadmagic", 5000)) == []
    # 4,950 credits in an hour: critical, and forecast to run out within the hour (critical too)
    (event,) = leadmagic(balance("leadmagic", 50))
    assert (event["detail"]["alert"], event["detail"]["forecast_level"]) == ("low_credits", "critical")
    (alert,) = stack.alerts()
    assert "At the current rate it runs out in about" in alert["Message"]
    assert leadmagic(balance("leadmagic", 40)) == []  # the forecast was told: not sent later

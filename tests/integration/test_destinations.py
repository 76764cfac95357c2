"""Slack, Teams and PagerDuty: EventBridge rules, API destinations and connections in the
template. Their patterns run under moto against events the real handlers emit, and every
path their input transformers read is a field of the event schema."""

import json

import pytest

from sandbox.harness import ROOT, Stack, template
from sandbox.simulator import ProviderSimulator, balance

RESOURCES = template()["Resources"]
SCHEMA = json.loads((ROOT / "schemas" / "alert-event.schema.json").read_text())
RULES = ["SlackRule", "TeamsRule", "PagerDutyTriggerRule", "PagerDutyResolveRule"]
KEY = "lm_live_destinations_01"


def pattern(rule: str) -> str:
    return json.dumps(RESOURCES[rule]["Properties"]["EventPattern"])


@pytest.fixture
def routed(stack: Stack, simulator: ProviderSimulator, clock) -> dict[str, list[dict]]:
    """Each template rule's pattern, on the bus, routing to a queue of its own; then a pool goes
    warning, critical, and recovers. Returns what each rule received."""
    queues = {}
    for rule in RULES:
        url = stack.sqs.create_queue(QueueName=rule)["QueueUrl"]
        arn = stack.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        stack.events_client.put_rule(Name=rule, EventPattern=pattern(rule))
        stack.events_client.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": arn}])
        queues[rule] = url
    stack.put_secret("leadmagic", KEY)
    env = stack.environment("leadmagic", simulator.base_url)
    for credits in (900, 50, 90_000):
        simulator.script("leadmagic", KEY, balance("leadmagic", credits))
        clock.advance(hours=30)  # far apart: no forecast
        stack.invoke("leadmagic", env)
    received = {}
    for rule, url in queues.items():
        messages = stack.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        received[rule] = [json.loads(m["Body"])["detail"] for m in messages]
    return received


def levels(details: list[dict]) -> list[tuple[str, str]]:
    return sorted((d["alert"], d["level"]) for d in details)


def test_pagerduty_triggers_on_critical_and_resolves_the_same_incident(routed):
    (trigger,) = routed["PagerDutyTriggerRule"]
    assert (trigger["alert"], trigger["level"]) == ("low_credits", "critical")
    # recoveries of the level and of the forecast (folded into the critical alert): each resolves
    # its own incident key, and the level's is the one the trigger opened
    resolves = {d["dedup_key"]: d for d in routed["PagerDutyResolveRule"]}
    assert {d["alert"] for d in resolves.values()} == {"recovered"}
    assert resolves[trigger["dedup_key"]]["aspect"] == "level"
    assert resolves[trigger["dedup_key"]]["alert_id"] != trigger["alert_id"]


def test_chat_rules_take_every_alert(routed):
    expected = [("low_credits", "critical"), ("low_credits", "warning"), ("recovered", "ok"), ("recovered", "ok")]
    assert levels(routed["SlackRule"]) == levels(routed["TeamsRule"]) == expected


@pytest.mark.parametrize("rule", RULES)
def test_every_transformer_path_is_a_field_of_the_schema(rule):
    properties = RESOURCES[rule]["Properties"]
    assert properties["EventBusName"] == "EventBusName"
    (target,) = properties["Targets"]
    assert target["RoleArn"] == "DestinationsRole.Arn"
    transformer = target["InputTransformer"]
    detail = SCHEMA["properties"]["detail"]["properties"]
    for path in transformer["InputPathsMap"].values():
        field = path.removeprefix("$.")
        assert (
            (field.removeprefix("detail.") in detail) if field.startswith("detail.") else field in SCHEMA["properties"]
        )
    for name in transformer["InputPathsMap"]:
        assert f"<{name}>" in transformer["InputTemplate"]


@pytest.mark.parametrize("rule", RULES)
def test_each_rule_pattern_names_only_schema_fields_and_values(rule):
    spec = RESOURCES[rule]["Properties"]["EventPattern"]
    assert spec["source"] == ["creditwatch"]
    detail = SCHEMA["properties"]["detail"]["properties"]
    for field, values in spec.get("detail", {}).items():
        assert set(values) <= set(detail[field]["enum"])


def test_destinations_are_off_by_default_and_hold_no_credential():
    parameters = template()["Parameters"]
    for name in ("SlackTokenSecret", "TeamsWorkflowUrl", "PagerDutyRoutingKeySecret"):
        assert parameters[name]["Default"] == ""
    for name in ("Slack", "Teams", "PagerDuty"):
        assert RESOURCES[f"{name}Connection"]["Condition"] == f"Has{name}"
        assert RESOURCES[f"{name}Destination"]["Condition"] == f"Has{name}"
    # credentials come from Secrets Manager at deploy time, into the connection only
    connections = json.dumps([RESOURCES[f"{n}Connection"] for n in ("Slack", "Teams", "PagerDuty")])
    assert connections.count("{{resolve:secretsmanager:") == 3
    secret = [
        p for n in ("Teams", "PagerDuty") for p in json.dumps(RESOURCES[f"{n}Connection"]).split("IsValueSecret")[1:]
    ]
    assert all(part.startswith('": true') for part in secret)

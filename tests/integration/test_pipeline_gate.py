"""The README's pipeline gate: an EventBridge rule, examples/pipeline-gate.json, that matches
when one provider goes critical (balance or key), and whose target pauses the pipeline. Here
its target is a queue, standing in for the flag or the schedule a pipeline checks."""

import json

import pytest

from sandbox.harness import ROOT, Stack
from sandbox.simulator import ProviderSimulator, Reply, balance

PATTERN = (ROOT / "examples" / "pipeline-gate.json").read_text()
KEY = "lm_live_gate_00000001"
OTHER = "clado-gate-key-000001"


@pytest.fixture
def gate(stack: Stack) -> str:
    queue = stack.sqs.create_queue(QueueName="pause-enrichment")["QueueUrl"]
    arn = stack.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    stack.events_client.put_rule(Name="pause-leadmagic-enrichment", EventPattern=PATTERN)
    stack.events_client.put_targets(Rule="pause-leadmagic-enrichment", Targets=[{"Id": "pause", "Arn": arn}])
    return queue


def paused(stack: Stack, queue: str) -> list[dict]:
    messages = stack.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    for message in messages:
        stack.sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    return [json.loads(message["Body"])["detail"] for message in messages]


def run(stack: Stack, simulator: ProviderSimulator, provider: str, key: str, reply: Reply) -> None:
    simulator.script(provider, key, reply)
    stack.put_secret(provider, key)
    stack.invoke(provider, stack.environment(provider, simulator.base_url))


def test_the_gate_closes_when_leadmagic_goes_critical_and_only_then(stack: Stack, simulator, gate):
    run(stack, simulator, "leadmagic", KEY, balance("leadmagic", 900))  # warning: the pipeline runs on
    assert paused(stack, gate) == []
    run(stack, simulator, "clado", OTHER, balance("clado", 10))  # another provider's critical
    assert paused(stack, gate) == []
    run(stack, simulator, "leadmagic", KEY, balance("leadmagic", 40))
    (detail,) = paused(stack, gate)
    assert (detail["provider"], detail["level"], detail["alert"]) == ("leadmagic", "critical", "low_credits")


def test_a_revoked_key_closes_the_gate_too(stack: Stack, simulator, gate):
    run(stack, simulator, "leadmagic", KEY, Reply(401, {"detail": "revoked"}))
    (detail,) = paused(stack, gate)
    assert (detail["alert"], detail["level"]) == ("check_failed", "critical")

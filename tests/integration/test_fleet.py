"""Fleets: concurrent checks, rate limits, fleets over several secrets, and shards."""

import itertools
import json
from dataclasses import replace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from creditwatch import monitor, providers, secret_store
from creditwatch.providers import RateLimit
from sandbox.harness import ROOT, LambdaContext, Stack, handler
from sandbox.simulator import ProviderSimulator, Reply, balance

from .conftest import attributes, emf_documents


def fleet(simulator: ProviderSimulator, size: int, credits: int = 50_000, delay: float = 0.0) -> list[dict]:
    accounts = []
    for index in range(size):
        key = f"lm-fleet-key-{index:05d}"
        reply = balance("leadmagic", credits)
        simulator.script("leadmagic", key, replace(reply, delay=delay))
        accounts.append({"name": f"client-{index:05d}", "api_key": key})
    return accounts


def snapshots(stack: Stack) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in stack.items():
        if item["sk"].startswith("SNAP#"):
            counts[item["account"]] = counts.get(item["account"], 0) + 1
    return counts


def test_checks_run_concurrently_up_to_max_concurrency(stack: Stack, simulator: ProviderSimulator):
    stack.put_secret("leadmagic", {"accounts": fleet(simulator, 12, delay=0.3)})
    env = stack.environment("leadmagic", simulator.base_url, MAX_CONCURRENCY="4")
    result = stack.invoke("leadmagic", env)
    assert result["unchecked"] == 0
    assert len(snapshots(stack)) == 12
    assert simulator.peak == 4


def test_out_of_time_accounts_are_a_metric(stack: Stack, simulator: ProviderSimulator, monkeypatch, capsys):
    from creditwatch import monitor

    monkeypatch.setattr(monitor, "REQUEST_BUDGET", 1.0)
    stack.put_secret("leadmagic", {"accounts": fleet(simulator, 6, delay=1.0)})
    env = stack.environment("leadmagic", simulator.base_url, MAX_CONCURRENCY="2")
    capsys.readouterr()
    # time for the first two checks only (if they start within 0.5 s): the next two would
    # start 1 s later, and their 1 s budget would pass the deadline
    result = stack.invoke("leadmagic", env, LambdaContext(remaining_ms=int((monitor.TIME_MARGIN + 1.5) * 1000)))
    assert result["unchecked"] == 4
    (document,) = [d for d in emf_documents(capsys.readouterr().out) if "AccountsUnchecked" in d]
    assert document["AccountsUnchecked"] == 4
    assert document["Provider"] == "leadmagic"


def test_a_provider_wide_rate_limit_spaces_every_check(stack: Stack, simulator: ProviderSimulator, monkeypatch):
    leadmagic = providers.load("leadmagic")
    limited = leadmagic._replace(rate_limit=RateLimit("provider", per_second=5))
    monkeypatch.setattr(providers, "load", lambda name: limited if name == "leadmagic" else leadmagic)
    stack.put_secret("leadmagic", {"accounts": fleet(simulator, 6)})
    stack.invoke("leadmagic", stack.environment("leadmagic", simulator.base_url))
    starts = sorted(at for _, _, at in simulator.arrivals)
    assert len(starts) == 6
    assert min(later - earlier for earlier, later in itertools.pairwise(starts)) >= 0.2 - 0.01


def test_retries_of_one_key_keep_to_its_per_key_rate_limit(stack: Stack, simulator: ProviderSimulator):
    """Clodura allows one request a second per key on its lowest plan; urllib3 would retry at once."""
    assert providers.load("clodura").rate_limit == RateLimit("key", per_second=1, per_minute=10, per_day=300)
    key = "clodura-key-000001"
    simulator.script("clodura", key, Reply(503, {"detail": "busy"}), balance("clodura", 5000))
    stack.put_secret("clodura", key)
    result = stack.invoke("clodura", stack.environment("clodura", simulator.base_url))
    assert result["failed_checks"] == 0
    first, second = (at for _, _, at in simulator.arrivals)
    assert second - first >= 1.0 - 0.01


def test_a_fleet_spans_the_provider_secret_and_those_under_it(stack: Stack, simulator: ProviderSimulator):
    accounts = fleet(simulator, 45)
    stack.put_secret("leadmagic", {"accounts": accounts[:5]})
    for index in range(2):  # 20 accounts in each of two more secrets
        part = accounts[5 + 20 * index : 25 + 20 * index]
        stack.put_secret("leadmagic", {"accounts": part}, label=f"part-{index}")
    simulator.script("leadmagic", "lm-bare-key-000001", balance("leadmagic", 7))
    stack.put_secret("leadmagic", "lm-bare-key-000001", label="acme")  # a bare key: account "acme"
    stack.secrets.create_secret(Name=f"{stack.name}/leadmagicplus", SecretString="lm-not-this-fleet-0001")

    calls = []
    secret_store.fleet().client.meta.events.register(
        "before-call.secretsmanager.*", lambda model, **_: calls.append(model.name)
    )
    result = stack.invoke("leadmagic", stack.environment("leadmagic", simulator.base_url))

    assert result["accounts"] == 46
    assert set(snapshots(stack)) == {a["name"] for a in accounts} | {"acme"}
    assert calls == ["BatchGetSecretValue"]  # 4 secrets of this fleet, 20 a call, one call


def test_secrets_are_read_twenty_a_call(stack: Stack, simulator: ProviderSimulator):
    accounts = fleet(simulator, 41)
    stack.put_secret("leadmagic", {"accounts": accounts[:1]})
    for index, account in enumerate(accounts[1:]):
        stack.put_secret("leadmagic", {"accounts": [account]}, label=f"client-{index:02d}")
    calls = []
    secret_store.fleet().client.meta.events.register(
        "before-call.secretsmanager.*", lambda model, **_: calls.append(model.name)
    )
    result = stack.invoke("leadmagic", stack.environment("leadmagic", simulator.base_url))
    assert result["accounts"] == 41
    assert calls == ["BatchGetSecretValue"] * 3  # 41 secrets: 20 + 20 + 1


def test_a_broken_secret_costs_only_its_own_accounts(stack: Stack, simulator: ProviderSimulator):
    accounts = fleet(simulator, 3)
    stack.put_secret("leadmagic", {"accounts": accounts[:2]})
    stack.put_secret("leadmagic", "{not json", label="eu")
    stack.put_secret(
        "leadmagic", {"accounts": [accounts[2], {"name": "client-00000", "api_key": "lm-dup-0000001"}]}, label="us"
    )
    env = stack.environment("leadmagic", simulator.base_url, FAILURES_BEFORE_ALERT="1")
    stack.invoke("leadmagic", env)
    assert set(snapshots(stack)) == {"client-00000", "client-00001", "client-00002"}
    alerts = {attributes(a)["account"]: a["Message"] for a in stack.alerts()}
    assert set(alerts) == {f"{stack.name}/leadmagic/eu", "us/accounts[1]"}
    assert "eu: secret: looks like JSON but does not parse" in alerts[f"{stack.name}/leadmagic/eu"]
    assert "us: accounts[1].name: 'client-00000' appears twice" in alerts["us/accounts[1]"]


@pytest.fixture
def sharded(stack: Stack, simulator: ProviderSimulator):
    """A LeadMagic fleet of 25 accounts in shards of 10, the last five running low."""
    accounts = fleet(simulator, 25)
    for account in accounts[20:]:
        simulator.script("leadmagic", account["api_key"], balance("leadmagic", 50))
    stack.put_secret("leadmagic", {"accounts": accounts})
    queue = stack.shard_queue("leadmagic")
    env = stack.environment("leadmagic", simulator.base_url, ACCOUNTS_PER_SHARD="10", SHARD_QUEUE_URL=queue)
    return env, queue


def test_a_large_fleet_is_checked_in_shards_through_the_queue(stack: Stack, simulator: ProviderSimulator, sharded):
    env, queue = sharded
    assert stack.invoke("leadmagic", env) == {"provider": "leadmagic", "accounts": 25, "shards": 3}
    assert simulator.calls == []  # the scheduled invocation only fans out
    results = stack.deliver_shards("leadmagic", env, queue)
    assert [len(r["shards"]) for r in results] == [1, 1, 1]
    assert sorted(r["shards"][0]["accounts"] for r in results) == [5, 10, 10]
    assert snapshots(stack) == {f"client-{index:05d}": 1 for index in range(25)}
    critical = [attributes(a)["account"] for a in stack.alerts() if attributes(a)["severity"] == "critical"]
    assert sorted(critical) == [f"client-{index:05d}" for index in range(20, 25)]


def test_a_shard_delivered_four_times_at_once_alerts_once(
    stack: Stack, simulator: ProviderSimulator, sharded, simultaneously, monkeypatch
):
    """SQS delivers at least once: the same shard may run more than once, even concurrently."""
    env, queue = sharded
    stack.invoke("leadmagic", env)
    messages = []
    while batch := stack.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        messages += batch
    assert not any(key in m["Body"] for m in messages for key in ("lm-fleet-key", "api_key"))  # names only
    low = next(m for m in messages if "client-00020" in m["Body"])
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    lambda_handler = handler().lambda_handler

    def deliver(copy: int) -> None:
        event = {"Records": [{"messageId": str(copy), "body": low["Body"], "eventSource": "aws:sqs"}]}
        lambda_handler(event, LambdaContext())

    assert simultaneously(deliver, 4) == []
    critical = [attributes(a)["account"] for a in stack.alerts() if attributes(a)["severity"] == "critical"]
    assert sorted(critical) == [f"client-{index:05d}" for index in range(20, 25)]


def test_a_small_fleet_is_checked_inline_even_with_a_queue(stack: Stack, simulator: ProviderSimulator):
    stack.put_secret("leadmagic", {"accounts": fleet(simulator, 10)})
    queue = stack.shard_queue("leadmagic")
    env = stack.environment("leadmagic", simulator.base_url, ACCOUNTS_PER_SHARD="10", SHARD_QUEUE_URL=queue)
    assert stack.invoke("leadmagic", env)["unchecked"] == 0
    assert len(snapshots(stack)) == 10
    assert stack.sqs.receive_message(QueueUrl=queue).get("Messages", []) == []


def test_the_sample_shard_event_checks_the_accounts_it_names(stack: Stack, simulator: ProviderSimulator):
    """events/shard.json, for `sam local invoke`, is a message the handler takes."""
    event = json.loads((ROOT / "events" / "shard.json").read_text())
    accounts = [{"name": name, "api_key": f"lm-sample-{name}-0001"} for name in ("acme", "globex", "initech")]
    for account in accounts:
        simulator.script("leadmagic", account["api_key"], balance("leadmagic", 9000))
    stack.put_secret("leadmagic", {"accounts": accounts})
    result = stack.invoke("leadmagic", stack.environment("leadmagic", simulator.base_url), event=event)
    (shard,) = result["shards"]
    assert (shard["accounts"], shard["unchecked"]) == (2, 0)
    assert set(snapshots(stack)) == {"acme", "globex"}


def test_a_broken_secret_with_the_longest_name_alerts_with_a_valid_event(stack: Stack, simulator: ProviderSimulator):
    """Secrets Manager allows 512-character names; the account named after a broken secret
    must still make an event the schema accepts (the harness validates every event)."""
    label = "x" * (512 - len(stack.secret_name("leadmagic")) - 1)
    stack.put_secret("leadmagic", {"accounts": fleet(simulator, 1)})
    stack.put_secret("leadmagic", "{broken", label=label)
    stack.invoke("leadmagic", stack.environment("leadmagic", simulator.base_url))
    (event,) = stack.events()
    assert event["detail"]["account"] == f"{stack.secret_name('leadmagic')}/{label}"


def test_a_shard_that_fails_halfway_rechecks_only_the_accounts_it_had_not_finished(
    stack: Stack, simulator: ProviderSimulator, sharded, monkeypatch
):
    """SQS delivers a failed shard again. The redelivery checks the one account whose alert
    could not be published, and no other: each key's request is spent once, each alert sent once."""
    env, queue = sharded
    stack.invoke("leadmagic", env)
    messages = []
    while batch := stack.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        messages += batch
    low = next(m for m in messages if "client-00020" in m["Body"])  # client-00020 to -00024, all low
    record = {"messageId": low["MessageId"], "body": low["Body"], "eventSource": "aws:sqs"}
    sns = monitor.aws()[1]
    publish = sns.publish

    def publish_but_one(**kwargs: Any) -> Any:
        if kwargs["MessageAttributes"]["account"]["StringValue"] == "client-00022":
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"}}, "Publish")
        return publish(**kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(sns, "publish", publish_but_one)
        with pytest.raises(monitor.RunIncomplete, match="client-00022"):
            stack.invoke("leadmagic", env, event={"Records": [record]})
    assert simulator.calls_to("leadmagic") == 5
    alerted = [attributes(a)["account"] for a in stack.alerts()]
    assert sorted(alerted) == ["client-00020", "client-00021", "client-00023", "client-00024"]

    (shard,) = stack.invoke("leadmagic", env, event={"Records": [record]})["shards"]  # the redelivery

    assert shard["accounts"] == 1
    assert simulator.calls_to("leadmagic") == 6  # client-00022's key alone, again
    alerted = [attributes(a)["account"] for a in stack.alerts()]
    assert sorted(alerted) == [f"client-{index:05d}" for index in range(20, 25)]  # each once
    (progress,) = [i for i in stack.items() if i["sk"] == f"SHARD#{low['MessageId']}"]
    assert progress["done"] == {f"client-{index:05d}" for index in range(20, 25)}

    stack.invoke("leadmagic", env, event={"Records": [record]})  # a late duplicate: nothing left to do
    assert simulator.calls_to("leadmagic") == 6

"""The stack's AWS side under moto, built from template.yaml, and the real handlers to run in it.

Shared by the integration tests, the demo and the benchmark.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import jsonschema
import yaml
from aws_lambda_powertools.utilities import parameters

from creditwatch import monitor, providers, secret_store
from creditwatch.domain import DEFAULT_POOL, Balance, iso
from creditwatch.forecast import PoolWindow, advance
from creditwatch.observability import metrics
from creditwatch.repository import Repository, Snapshot, TopUpRecord

ROOT = Path(__file__).resolve().parent.parent
PROVIDERS = tuple(providers.names())
REGION = "us-east-1"
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


class _TemplateLoader(yaml.SafeLoader):
    """Reads CloudFormation YAML, keeping short-form intrinsics (!Ref, !Sub, ...) as plain values."""


_TemplateLoader.add_multi_constructor("!", lambda loader, _suffix, node: construct(loader, node))


def construct(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    """A YAML node's value, whatever its kind: what a tag like !Ref or !Sub wraps."""
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]


@cache
def event_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((ROOT / "schemas" / "alert-event.schema.json").read_text())
    return schema


@cache
def raw_template() -> dict[str, Any]:
    """template.yaml as written, Fn::ForEach loops included."""
    with (ROOT / "template.yaml").open() as handle:
        loaded: dict[str, Any] = yaml.load(handle, Loader=_TemplateLoader)  # noqa: S506 (safe loader subclass)
    return loaded


@cache
def template() -> dict[str, Any]:
    """template.yaml with its Fn::ForEach loops expanded for the parameters' defaults, as
    AWS::LanguageExtensions expands them: what CloudFormation would create."""
    return expand_template(raw_template())


def expand_template(raw: dict[str, Any]) -> dict[str, Any]:
    """`raw` with its Fn::ForEach loops expanded over the parameters' default lists."""
    defaults = {name: str(spec.get("Default", "")).split(",") for name, spec in raw["Parameters"].items()}
    expanded: dict[str, Any] = expand(raw, defaults)
    return expanded


def expand(node: Any, lists: dict[str, list[str]]) -> Any:
    """`node` with every Fn::ForEach replaced by one copy of its fragment per item, the item
    written for the identifier in keys and strings (${X} as it is, &{X} alphanumerics only)."""
    if isinstance(node, list):
        return [expand(item, lists) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if isinstance(key, str) and key.startswith("Fn::ForEach::"):
            identifier, collection, fragment = value
            if isinstance(collection, dict):  # {"Ref": "Providers"}
                collection = collection["Ref"]
            # (the tests' loader reads `!Ref Providers` as "Providers": a parameter's list)
            for item in collection if isinstance(collection, list) else lists[collection]:
                out.update(expand(_substitute(fragment, identifier, item), lists))
        else:
            out[key] = expand(value, lists)
    return out


def _substitute(node: Any, identifier: str, item: str) -> Any:
    if isinstance(node, str):
        return node.replace(f"${{{identifier}}}", item).replace(f"&{{{identifier}}}", re.sub("[^A-Za-z0-9]", "", item))
    if isinstance(node, list):
        return [_substitute(value, identifier, item) for value in node]
    if isinstance(node, dict):
        return {_substitute(k, identifier, item): _substitute(v, identifier, item) for k, v in node.items()}
    return node


def reset_powertools() -> None:
    """Forget cached secrets, clients and unflushed metrics between runs."""
    parameters.clear_caches()
    secret_store.fleet.cache_clear()
    metrics.clear_metrics()
    monitor.aws.cache_clear()
    monitor.logs.cache_clear()


@cache
def handler() -> ModuleType:
    """functions/check/app.py: the one handler every provider's function runs."""
    spec = importlib.util.spec_from_file_location("check_app", ROOT / "functions" / "check" / "app.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class LambdaContext:
    function_name: str = "creditwatch-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:creditwatch-test"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    remaining_ms: int = 60_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def scheduled_event(
    event_id: str = "d32c5kddcf5bb8c3", time: str = "2026-11-22T10:00:00Z", tick: bool = False
) -> dict[str, Any]:
    """An EventBridge scheduled-event shape: with `tick`, what the template's ScheduleV2 Input
    sends (the function then checks only when due); without, an invocation by hand."""
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "account": "123456789012",
        "time": time,
        "region": REGION,
        "resources": [f"arn:aws:scheduler:{REGION}:123456789012:schedule/default/creditwatch"],
        "detail": {"tick": True} if tick else {},
    }


class Stack:
    """The table, topic and secrets of template.yaml, created in moto; call inside mock_aws."""

    def __init__(self, name: str = "creditwatch") -> None:
        self.name = name
        self.dynamodb = boto3.resource("dynamodb", region_name=REGION)
        self.client = boto3.client("dynamodb", region_name=REGION)  # low-level, as the functions' repository uses
        self.sns = boto3.client("sns", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.secrets = boto3.client("secretsmanager", region_name=REGION)
        self.table = self._create_table()
        self.topic_arn = self.sns.create_topic(Name=f"{name}-alerts")["TopicArn"]
        # A queue subscribed to the topic receives every alert, as an email inbox would.
        self.inbox_url = self.sqs.create_queue(QueueName=f"{name}-inbox")["QueueUrl"]
        inbox_arn = self.sqs.get_queue_attributes(QueueUrl=self.inbox_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=inbox_arn)
        self.received: list[dict[str, Any]] = []
        # A rule on the default bus sends every creditwatch event to a queue, as a consumer's would.
        self.events_client = boto3.client("events", region_name=REGION)
        self.event_inbox_url = self.sqs.create_queue(QueueName=f"{name}-events")["QueueUrl"]
        event_inbox_arn = self.sqs.get_queue_attributes(QueueUrl=self.event_inbox_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.events_client.put_rule(Name=f"{name}-all", EventPattern=json.dumps({"source": ["creditwatch"]}))
        self.events_client.put_targets(Rule=f"{name}-all", Targets=[{"Id": "inbox", "Arn": event_inbox_arn}])
        self.received_events: list[dict[str, Any]] = []
        # The accounts journal, a stream per provider, as template.yaml makes them.
        self.logs = boto3.client("logs", region_name=REGION)
        self.journal_group = f"/creditwatch/{name}/accounts"
        self.logs.create_log_group(logGroupName=self.journal_group)
        for provider in providers.names():
            self.logs.create_log_stream(logGroupName=self.journal_group, logStreamName=provider)

    def _create_table(self) -> Any:
        properties = template()["Resources"]["BalancesTable"]["Properties"]
        table = self.dynamodb.create_table(
            TableName=f"{self.name}-balances",
            KeySchema=properties["KeySchema"],
            AttributeDefinitions=properties["AttributeDefinitions"],
            BillingMode=properties["BillingMode"],
            GlobalSecondaryIndexes=properties["GlobalSecondaryIndexes"],
        )
        ttl = properties["TimeToLiveSpecification"]
        self.dynamodb.meta.client.update_time_to_live(TableName=table.name, TimeToLiveSpecification=ttl)
        return table

    def repository(self, provider: str, **options: Any) -> Repository:
        """The functions' own repository over this stack's table."""
        return Repository(self.client, self.table.name, provider, 90, **options)

    def secret_name(self, provider: str) -> str:
        return f"{self.name}/{provider}"

    def put_secret(self, provider: str, value: str | dict[str, Any], label: str = "") -> None:
        """The provider's secret, or with `label` one more of its fleet, `<stack>/<provider>/<label>`."""
        name = f"{self.secret_name(provider)}/{label}" if label else self.secret_name(provider)
        text = value if isinstance(value, str) else json.dumps(value)
        try:
            self.secrets.create_secret(Name=name, SecretString=text)
        except self.secrets.exceptions.ResourceExistsException:
            self.secrets.put_secret_value(SecretId=name, SecretString=text)
        parameters.clear_caches()
        secret_store.fleet.cache_clear()

    def shard_queue(self, provider: str) -> str:
        """The provider's shard queue (template.yaml's <provider>ShardQueue); its URL."""
        url: str = self.sqs.create_queue(QueueName=f"{self.name}-{provider}-shards")["QueueUrl"]
        return url

    def deliver_shards(
        self, provider: str, env: dict[str, str], url: str, limit: int | None = None, **context: Any
    ) -> list[Any]:
        """Invoke the handler with each queued shard (at most `limit`), one message per
        invocation, as the template's SQS event source (BatchSize 1) does; returns each result."""
        results: list[Any] = []
        while len(results) != limit and (
            messages := self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1).get("Messages", [])
        ):
            (message,) = messages
            record = {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": {},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:{url.rsplit('/', 1)[1]}",
                "awsRegion": REGION,
            }
            results.append(self.invoke(provider, env, LambdaContext(**context), event={"Records": [record]}))
            self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return results

    def environment(self, provider: str, base_url: str, **overrides: str) -> dict[str, str]:
        """The function's environment as template.yaml sets it, pointed at the simulator."""
        return {
            "PROVIDER": provider,
            "POWERTOOLS_SERVICE_NAME": "creditwatch",
            "POWERTOOLS_METRICS_NAMESPACE": "CreditWatch",
            "SECRET_NAME": self.secret_name(provider),
            "TABLE_NAME": self.table.name,
            "TOPIC_ARN": self.topic_arn,
            "WARNING_THRESHOLD": "1000",
            "CRITICAL_THRESHOLD": "100",
            "FAILURES_BEFORE_ALERT": "3",
            "RETENTION_DAYS": "90",
            "REMIND_AFTER_HOURS": "24",
            "BURN_WINDOW_HOURS": "72",
            "FORECAST_WARNING_DAYS": "7",
            "FORECAST_CRITICAL_DAYS": "2",
            "SPIKE_WINDOW_HOURS": "6",
            "SPIKE_FACTOR": "3",
            "SPIKE_MINIMUM_CREDITS": "100",
            "ACCOUNT_SERIES": str(template()["Parameters"]["AccountSeries"]["Default"]),
            "ACCOUNTS_LOG_GROUP": self.journal_group,
            "BASE_URL": base_url,
            **overrides,
        }

    def invoke(
        self,
        provider: str,
        env: dict[str, str],
        context: LambdaContext | None = None,
        event: dict[str, Any] | None = None,
        **scheduled: Any,
    ) -> Any:
        """Run the real handler once with `env` applied to os.environ: on `event`, or on a
        scheduled event made from `scheduled`."""
        saved = dict(os.environ)
        os.environ.update(env)
        try:
            return handler().lambda_handler(event or scheduled_event(**scheduled), context or LambdaContext())
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def seed_history(
        self,
        provider: str,
        account: str,
        balances: list[tuple[datetime, Decimal]],
        pool: str = DEFAULT_POOL,
        topped_up_at: str | None = None,
    ) -> None:
        """Store past balances as earlier runs would have: snapshots, top-ups and the recent
        window (`topped_up_at`: what the provider reported as its last top-up meanwhile)."""
        window = PoolWindow()
        repository = self.repository(provider)
        for at, remaining in balances:
            window, topup = advance(window, remaining, topped_up_at, at, timedelta(hours=72))
            if topup is not None and topup.added is not None:
                repository.save_topup(TopUpRecord(account, pool, topup, iso(at)))
        snapshots = [Snapshot(account, Balance(pool, remaining), iso(at)) for at, remaining in balances]
        repository.save_run(snapshots, {account: {pool: window}}, balances[-1][0])

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert published so far, as SNS delivered it to the inbox queue."""
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.inbox_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return self.received
            for message in batch:
                self.received.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.inbox_url, ReceiptHandle=message["ReceiptHandle"])

    def events(self) -> list[dict[str, Any]]:
        """Every creditwatch event put on the bus so far, as the rule delivered it; each one is
        checked against schemas/alert-event.schema.json, so every test that sees an event
        checks the schema too."""
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.event_inbox_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return self.received_events
            for message in batch:
                event = json.loads(message["Body"])
                jsonschema.validate(event, event_schema())
                self.received_events.append(event)
                self.sqs.delete_message(QueueUrl=self.event_inbox_url, ReceiptHandle=message["ReceiptHandle"])

    def journal(self, provider: str) -> list[dict[str, Any]]:
        """Every line the provider's runs wrote into the accounts journal, oldest first."""
        lines: list[dict[str, Any]] = []
        request = {"logGroupName": self.journal_group, "logStreamName": provider, "startFromHead": True}
        while True:
            page = self.logs.get_log_events(**request)
            lines += [json.loads(event["message"]) for event in page["events"]]
            if not page["events"]:
                return lines
            request["nextToken"] = page["nextForwardToken"]

    def items(self) -> list[dict[str, Any]]:
        return self.table.scan()["Items"]

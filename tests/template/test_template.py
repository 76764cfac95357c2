"""What template.yaml must say, read back from the file, plus cfn-lint over all of it."""

import json
import re
from pathlib import Path

import pytest
from cfnlint.api import lint_all

from creditwatch import http, providers
from sandbox.harness import ROOT, expand, raw_template, template

RESOURCES = template()["Resources"]  # expanded: what CloudFormation creates
LISTED = raw_template()["Parameters"]["Providers"]["Default"].split(",")  # what a stack deploys by default
CONTRACT_ENV = {
    "PROVIDER",
    "SECRET_NAME",
    "SHARD_QUEUE_URL",
    "MAX_CONCURRENCY",
    "EVENT_BUS_NAME",
    "SPIKE_WINDOW_HOURS",
    "SPIKE_FACTOR",
    "SPIKE_MINIMUM_CREDITS",
    "ACCOUNTS_PER_SHARD",
    "TABLE_NAME",
    "TOPIC_ARN",
    "WARNING_THRESHOLD",
    "CRITICAL_THRESHOLD",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_SERVICE_NAME",
    "RETENTION_DAYS",
    "FAILURES_BEFORE_ALERT",
    "REMIND_AFTER_HOURS",
    "BURN_WINDOW_HOURS",
    "FORECAST_WARNING_DAYS",
    "FORECAST_CRITICAL_DAYS",
}


def function(provider: str) -> dict:
    return RESOURCES[f"{provider}Function"]


def test_cfn_lint_reports_no_errors_or_warnings():
    matches = lint_all((ROOT / "template.yaml").read_text())
    assert [str(m) for m in matches if m.rule.severity in ("error", "warning")] == []


def test_runtime_and_architecture():
    globals_ = template()["Globals"]["Function"]
    assert globals_["Architectures"] == ["arm64"]
    for provider in LISTED:
        assert (function(provider)["Properties"]["Runtime"], function(provider)["Properties"]["Handler"]) == (
            "python3.12",
            "app.lambda_handler",
        )
    assert globals_["Timeout"] <= 900
    assert globals_["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Type"] == "SQS"


def test_every_provider_the_template_lists_is_defined_and_the_default_is_the_four_seeds():
    """A definition costs nothing until a stack lists it: the default deploys the seeds, and
    every name a stack can list by default is one the registry defines."""
    assert set(LISTED) <= set(providers.names())
    assert sorted(LISTED) == ["clado", "cleanlist", "clodura", "leadmagic"]


def test_logical_ids_come_from_a_hyphenated_name_without_its_hyphens():
    """`acme-data` makes `acmedataFunction` and every reference to it; no two defined names
    make the same logical ID."""
    resources = expand(raw_template(), {"Providers": ["acme-data"]})["Resources"]
    assert {"acmedataFunction", "acmedataSecret", "acmedataShardQueue", "acmedataStaleAlarm"} <= set(resources)
    function_ = resources["acmedataFunction"]["Properties"]
    assert function_["Environment"]["Variables"]["PROVIDER"] == "acme-data"
    assert function_["Environment"]["Variables"]["SHARD_QUEUE_URL"] == "acmedataShardQueue"
    assert resources["acmedataSecret"]["Properties"]["Name"] == "${AWS::StackName}/acme-data"
    assert all(re.fullmatch(r"[A-Za-z0-9]+", name) for name in resources)
    ids = [name.replace("-", "") for name in providers.names()]
    assert len(ids) == len(set(ids))


def test_per_provider_resources_come_from_one_loop_not_copies():
    raw = raw_template()
    loops = [key for key in raw["Resources"] if key.startswith("Fn::ForEach::")]
    assert loops == ["Fn::ForEach::Provider"]
    text = (ROOT / "template.yaml").read_text()
    for provider in LISTED:  # named once, in the Providers list
        assert text.count(provider) == 1, provider


@pytest.mark.parametrize("provider", LISTED)
def test_each_provider_gets_its_function_secret_and_log_group(provider):
    for suffix in ("Function", "Secret", "LogGroup", "StaleAlarm", "ErrorsAlarm"):
        assert f"{provider}{suffix}" in RESOURCES
    assert RESOURCES[f"{provider}Secret"]["Properties"]["Name"] == f"${{AWS::StackName}}/{provider}"
    assert RESOURCES[f"{provider}Secret"]["Properties"]["SecretString"] == "REPLACE_WITH_API_KEY"
    assert RESOURCES[f"{provider}LogGroup"]["Properties"]["RetentionInDays"] == "LogRetentionDays"
    log_group = RESOURCES[f"{provider}LogGroup"]["Properties"]["LogGroupName"]
    assert function(provider)["Properties"]["LoggingConfig"]["LogGroup"] == log_group
    assert function(provider)["Properties"]["CodeUri"] == "functions/check/"
    assert function(provider)["Properties"]["Environment"]["Variables"]["PROVIDER"] == provider
    assert f"{provider}SecretCommand" in template()["Outputs"]


# Secrets Manager actions that take no resource scope: each secret they return must still be
# allowed by GetSecretValue, which is scoped.
UNSCOPED = {"secretsmanager:BatchGetSecretValue", "secretsmanager:ListSecrets"}
ARN = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${AWS::StackName}"


def statements(provider: str) -> list[dict]:
    policies = function(provider)["Properties"]["Policies"]
    return [statement for policy in policies for statement in policy.get("Statement", [])]


@pytest.mark.parametrize("provider", LISTED)
def test_each_function_reads_only_its_own_secrets(provider):
    """Its secret (Secrets Manager adds six characters to the name) and those under its name:
    `<stack>/clado` must not reach `<stack>/cladoplus`."""
    variables = function(provider)["Properties"]["Environment"]["Variables"]
    assert variables["SECRET_NAME"] == f"${{AWS::StackName}}/{provider}"
    readers = [s for s in statements(provider) if "secretsmanager:GetSecretValue" in json.dumps(s["Action"])]
    assert readers == [
        {
            "Sid": "ReadOwnSecrets",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": [f"{ARN}/{provider}-??????", f"{ARN}/{provider}/*"],
        }
    ]


@pytest.mark.parametrize("provider", LISTED)
def test_no_wildcards_in_function_policies_where_a_scope_exists(provider):
    for statement in statements(provider):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if statement["Resource"] == "*":
            assert set(actions) <= UNSCOPED
            continue
        resources = json.dumps(statement["Resource"]).replace(f"/{provider}/*", "")
        assert "*" not in resources
        assert all("*" not in action for action in actions)


@pytest.mark.parametrize("provider", LISTED)
def test_each_function_consumes_its_own_shard_queue_one_shard_at_a_time(provider):
    properties = function(provider)["Properties"]
    assert properties["Environment"]["Variables"]["SHARD_QUEUE_URL"] == f"{provider}ShardQueue"
    source = RESOURCES[f"{provider}ShardSource"]
    assert source["Type"] == "AWS::Lambda::EventSourceMapping"
    queue_arn = f"arn:${{AWS::Partition}}:sqs:${{AWS::Region}}:${{AWS::AccountId}}:${{{provider}ShardQueue.QueueName}}"
    assert source["Properties"]["EventSourceArn"] == queue_arn
    assert source["Properties"]["FunctionName"] == f"${{{provider}Function}}"  # a reference: made after it
    assert source["Properties"]["BatchSize"] == 1
    assert source["Properties"]["ScalingConfig"] == {"MaximumConcurrency": "ShardConcurrency"}
    # no SQS event on the function: SAM would attach a managed policy whose Resource is "*"
    assert all(event["Type"] != "SQS" for event in properties["Events"].values())
    queue = RESOURCES[f"{provider}ShardQueue"]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * template()["Globals"]["Function"]["Timeout"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == "FailedRunQueue.Arn"
    (shards,) = [s for s in statements(provider) if s["Resource"] == f"{provider}ShardQueue.Arn"]
    assert {"sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage"} <= set(shards["Action"])


@pytest.mark.parametrize("provider", LISTED)
def test_unchecked_accounts_alarm(provider):
    alarm = RESOURCES[f"{provider}UncheckedAlarm"]["Properties"]
    assert alarm["MetricName"] == "AccountsUnchecked"
    assert alarm["Dimensions"] == [{"Name": "Provider", "Value": provider}]
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["Threshold"] == 1
    assert alarm["AlarmActions"] == ["AlertTopic"]


@pytest.mark.parametrize("provider", LISTED)
def test_schedule_v2_with_retries_and_dead_letter_queue(provider):
    event = function(provider)["Properties"]["Events"]["Schedule"]
    assert event["Type"] == "ScheduleV2"
    assert event["Properties"]["ScheduleExpression"] == ["Scheduler", "Event", "Tick"]
    assert event["Properties"]["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert event["Properties"]["DeadLetterConfig"] == {"Arn": "ScheduleDeadLetterQueue.Arn"}
    assert template()["Parameters"]["Schedule"]["Default"] == "1h"


def test_the_tick_is_the_fastest_schedule_and_the_default_schedule_hourly():
    """Each function is ticked at the fastest schedule and checks when its own is due."""
    assert template()["Mappings"]["Scheduler"]["Event"]["Tick"] == "rate(15 minutes)"
    assert min(providers.SCHEDULES.values()) == 900
    assert template()["Parameters"]["Schedule"]["Default"] == "1h"


def test_the_bill_counts_the_ticks_the_template_makes():
    from bench.bill import TICKS_PER_HOUR

    assert template()["Mappings"]["Scheduler"]["Event"]["Tick"] == f"rate({60 // TICKS_PER_HOUR} minutes)"


def test_the_template_offers_the_schedules_the_functions_know():
    assert template()["Parameters"]["Schedule"]["AllowedValues"] == list(providers.SCHEDULES)
    assert {k: v["Seconds"] for k, v in template()["Mappings"]["Schedules"].items()} == providers.SCHEDULES
    pattern = re.compile(template()["Parameters"]["ProviderSchedules"]["AllowedPattern"])
    for accepted in ("", "clodura=6h", "leadmagic=15m,people-data-labs=2h"):
        assert pattern.fullmatch(accepted), accepted
    for refused in ("clodura", "clodura=5m", "clodura=6h,", "Clodura=1h", "clodura=1h;clado=2h"):
        assert not pattern.fullmatch(refused), refused


def test_every_function_knows_the_stack_schedules():
    variables = template()["Globals"]["Function"]["Environment"]["Variables"]
    assert (variables["SCHEDULE"], variables["PROVIDER_SCHEDULES"]) == ("Schedule", "ProviderSchedules")


def test_scheduled_input_is_an_eventbridge_event_with_the_execution_id():
    event = json.loads(template()["Mappings"]["Scheduler"]["Event"]["Input"])
    assert event["id"] == "<aws.scheduler.execution-id>"
    assert event["detail-type"] == "Scheduled Event"
    assert event["time"] == "<aws.scheduler.scheduled-time>"
    assert event["detail"] == {"tick": True}


def test_environment_carries_the_contract():
    globals_env = set(template()["Globals"]["Function"]["Environment"]["Variables"])
    for provider in LISTED:
        env = globals_env | set(function(provider)["Properties"]["Environment"]["Variables"])
        assert env >= CONTRACT_ENV


def test_exactly_one_table_with_literal_keys_pitr_sse_and_ttl():
    tables = [r for r in RESOURCES.values() if r["Type"] == "AWS::DynamoDB::Table"]
    assert len(tables) == 1
    properties = tables[0]["Properties"]
    assert properties["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert properties["SSESpecification"]["SSEEnabled"] is True
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    # One index, sparse on the attribute only STATE items carry: the command lists accounts with
    # it, never with a Scan, and no snapshot write pays for a copy.
    (index,) = properties["GlobalSecondaryIndexes"]
    assert index == {
        "IndexName": "Accounts",
        "KeySchema": [{"AttributeName": "fleet", "KeyType": "HASH"}, {"AttributeName": "account", "KeyType": "RANGE"}],
        "Projection": {"ProjectionType": "KEYS_ONLY"},
    }


def test_topic_is_kms_encrypted_and_sms_gets_critical_only():
    assert RESOURCES["AlertTopic"]["Properties"]["KmsMasterKeyId"] == "AlertKey"
    sms = RESOURCES["SmsSubscription"]
    assert sms["Condition"] == "HasPhone"
    assert sms["Properties"]["FilterPolicy"] == {"severity": ["critical"]}
    assert sms["Properties"]["FilterPolicyScope"] == "MessageAttributes"
    assert RESOURCES["EmailSubscription"]["Condition"] == "HasEmail"


def test_layer_is_built_with_bytecode_for_the_target_runtime():
    layer = RESOURCES["CreditwatchLayer"]
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert layer["Metadata"]["BuildArchitecture"] == "arm64"
    assert layer["Properties"]["ContentUri"] == "layers/creditwatch/"
    assert layer["Properties"]["CompatibleRuntimes"] == [function(LISTED[0])["Properties"]["Runtime"]]
    makefile = (ROOT / "layers/creditwatch/Makefile").read_text()
    assert "build-CreditwatchLayer:" in makefile  # sam build runs build-<logical ID>
    assert "--platform manylinux2014_aarch64 --implementation cp --python-version 3.12" in makefile
    assert "compileall -q -j 0 --invalidation-mode unchecked-hash" in makefile  # valid on a read-only /opt
    requirements = (ROOT / "layers/creditwatch/requirements.txt").read_text()
    assert "aws-lambda-powertools==" in requirements
    assert "requests" not in requirements


def test_the_command_and_its_dependencies_stay_out_of_the_layer():
    """The layer ships its requirements and the creditwatch package, nothing of the command."""
    import tomllib

    requirements = (ROOT / "layers/creditwatch/requirements.txt").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = {
        re.split(r"[\[<>=]", requirement)[0].lower()
        for requirements_of_extra in project["optional-dependencies"].values()
        for requirement in requirements_of_extra
    }
    assert extras >= {"click", "rich", "matplotlib", "moto"}
    layer = {line.split("==")[0].lower() for line in requirements.splitlines() if "==" in line}
    assert layer == {"aws-lambda-powertools", "urllib3", "pyyaml"}
    assert not extras & layer
    makefile = (ROOT / "layers/creditwatch/Makefile").read_text()
    assert "cp -R creditwatch " in makefile  # the only code copied: the command is in cli/, beside it
    assert not (ROOT / "layers/creditwatch/creditwatch_cli").exists()
    assert project["scripts"] == {"creditwatch": "creditwatch_cli:main"}


def test_the_commands_policy_reads_this_stack_and_writes_only_provider_items():
    statements = {s["Sid"]: s for s in RESOURCES["CommandPolicy"]["Properties"]["PolicyDocument"]["Statement"]}
    assert statements["FindTheTable"]["Resource"] == "AWS::StackId"
    reads = statements["ReadAccountsAndBalances"]
    assert sorted(reads["Action"]) == ["dynamodb:BatchGetItem", "dynamodb:Query"]
    assert reads["Resource"] == ["BalancesTable.Arn", "${BalancesTable.Arn}/index/Accounts"]
    writes = statements["WriteProviderItemsOnly"]
    assert sorted(writes["Action"]) == ["dynamodb:DeleteItem", "dynamodb:PutItem"]
    # Silences are keyed `<provider>#`; an account's items, `<provider>#<account>`, stay out of reach.
    assert writes["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["*#"]}}
    assert all("*" not in str(statement["Resource"]) for statement in statements.values())
    assert template()["Outputs"]["CommandPolicyArn"]["Value"] == "CommandPolicy"


def test_samconfig_has_working_defaults():
    text = (ROOT / "samconfig.toml").read_text()
    assert 'stack_name = "creditwatch"' in text
    assert "CAPABILITY_IAM" in text
    for command in ("build", "validate", "package", "sync", "deploy"):  # Fn::ForEach expanded by SAM CLI
        section = text.split(f"[default.{command}.parameters]")[1].split("[")[0]
        assert "language_extensions = true" in section, command


def test_one_sample_scheduled_event_serves_every_provider():
    """The function's PROVIDER variable, not the event, says which provider is checked."""
    event = json.loads(Path(ROOT / "events" / "scheduled.json").read_text())
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.scheduler"


@pytest.mark.parametrize("provider", LISTED)
def test_stale_data_alarm_pages_when_checks_stop_succeeding(provider):
    alarm = RESOURCES[f"{provider}StaleAlarm"]
    properties = alarm["Properties"]
    assert (properties["MetricName"], properties["Statistic"]) == ("CheckOverdue", "Maximum")
    assert properties["Dimensions"] == [{"Name": "Provider", "Value": provider}]
    assert properties["TreatMissingData"] == "breaching"  # a function that stops ticking pages too
    assert (properties["ComparisonOperator"], properties["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
    assert properties["Period"] == 900  # the tick's
    assert (properties["DatapointsToAlarm"], properties["EvaluationPeriods"]) == (2, 3)
    assert properties["AlarmActions"] == properties["OKActions"] == ["MonitorAlarmTopic"]


@pytest.mark.parametrize("provider", LISTED)
def test_lambda_errors_alarm_per_enabled_function(provider):
    alarm = RESOURCES[f"{provider}ErrorsAlarm"]
    assert alarm["Properties"]["MetricName"] == "Errors"
    function_name = function(provider)["Properties"]["FunctionName"]
    assert alarm["Properties"]["Dimensions"] == [{"Name": "FunctionName", "Value": function_name}]
    assert alarm["Properties"]["AlarmActions"] == ["MonitorAlarmTopic"]


@pytest.mark.parametrize(
    ("alarm", "queue"), [("ScheduleDeadLetterAlarm", "ScheduleDeadLetterQueue"), ("FailedRunAlarm", "FailedRunQueue")]
)
def test_dead_letter_queues_have_depth_alarms(alarm, queue):
    properties = RESOURCES[alarm]["Properties"]
    assert properties["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert properties["Dimensions"] == [{"Name": "QueueName", "Value": f"{queue}.QueueName"}]
    assert properties["AlarmActions"] == ["MonitorAlarmTopic"]


def test_the_stacks_own_critical_alarms_reach_sms():
    """Alarm notifications carry no `severity` attribute, which the alert topic's SMS filter
    needs: the critical alarms go to a topic whose SMS subscription has no filter."""
    topic = RESOURCES["MonitorAlarmTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == "AlertKey"
    sms = RESOURCES["MonitorAlarmSms"]
    assert (sms["Condition"], sms["Properties"]["Protocol"]) == ("HasPhone", "sms")
    assert sms["Properties"]["TopicArn"] == "MonitorAlarmTopic"
    assert "FilterPolicy" not in sms["Properties"]
    email = RESOURCES["MonitorAlarmEmail"]
    assert (email["Condition"], email["Properties"]["TopicArn"]) == ("HasEmail", "MonitorAlarmTopic")
    critical = [n for n, r in RESOURCES.items() if r["Type"] == "AWS::CloudWatch::Alarm" and "Unchecked" not in n]
    assert all(RESOURCES[n]["Properties"]["AlarmActions"] == ["MonitorAlarmTopic"] for n in critical)


def test_alarms_can_publish_to_the_encrypted_topic():
    statements = RESOURCES["AlertKey"]["Properties"]["KeyPolicy"]["Statement"]
    cloudwatch = [s for s in statements if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    assert cloudwatch
    assert "kms:GenerateDataKey*" in cloudwatch[0]["Action"]


def dashboard(**values: str) -> dict:
    body, variables = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]
    defaults = {
        "AWS::Region": "us-east-1",
        "MetricsNamespace": "CreditWatch",
        "ForecastWarningDays": "7",
        "ForecastCriticalDays": "2",
        "WarningValue": "1000",
        "CriticalValue": "100",
        "WarningOnCredits": "true",
        "CriticalOnCredits": "true",
        "WarningOnPercent": "false",
        "CriticalOnPercent": "false",
        "RunPeriod": "3600",
        "Journal": "/creditwatch/creditwatch/accounts",
    }
    assert set(variables) <= set(defaults)
    for name, value in {**defaults, **values}.items():
        body = body.replace("${" + name + "}", value)
    assert "${" not in body
    return json.loads(body)


def test_dashboard_graphs_every_metric_per_provider_account_and_pool():
    text = json.dumps(dashboard())
    for metric in (
        "CreditsRemaining",
        "PercentRemaining",
        "BurnRatePerDay",
        "DaysUntilEmpty",
        "CheckSucceeded",
        "CheckFailed",
    ):
        assert f'MetricName=\\"{metric}\\"' in text, metric
    assert "Provider,Account,Pool" in text


def test_dashboard_draws_thresholds_as_horizontal_annotations():
    widgets = {w["properties"].get("title"): w["properties"] for w in dashboard()["widgets"]}
    credits = widgets["Credits remaining"]["annotations"]["horizontal"]
    assert [(a["label"], a["value"], a["visible"]) for a in credits] == [
        ("warning", 1000, True),
        ("critical", 100, True),
    ]
    days = widgets["Days until empty"]["annotations"]["horizontal"]
    assert [(a["label"], a["value"]) for a in days] == [("forecast warning", 7), ("forecast critical", 2)]


@pytest.mark.parametrize("provider", LISTED)
def test_each_schedule_is_named_after_the_stack_so_two_stacks_can_share_a_region(provider):
    schedule = function(provider)["Properties"]["Events"]["Schedule"]["Properties"]
    assert schedule["Name"] == f"${{AWS::StackName}}-{provider}"


@pytest.mark.parametrize(
    "parameter", ["WarningThreshold", "CriticalThreshold", "ForecastWarningDays", "ForecastCriticalDays"]
)
def test_numbers_written_into_the_dashboard_json_are_valid_json_numbers(parameter):
    """Fn::Sub puts these into the dashboard body as bare numbers: "0500" would be invalid JSON."""
    import re

    pattern = re.compile(template()["Parameters"][parameter]["AllowedPattern"])
    percent = "%" if "Threshold" in parameter else ""
    for accepted in ("0", "7", "500", "0.5", "12.25"):
        assert pattern.fullmatch(accepted + percent) or pattern.fullmatch(accepted), accepted
        json.loads(accepted)
    for refused in ("0500", "00", "01.5", ".5", "5.", "-1", "1e3", ""):
        assert not pattern.fullmatch(refused), refused
        assert not pattern.fullmatch(refused + percent), refused


def test_every_checkov_skip_is_justified():
    skips = [
        (name, skip)
        for name, resource in RESOURCES.items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips
    for name, skip in skips:
        assert skip["id"].startswith("CKV_"), name
        assert len(skip.get("comment", "")) > 40, f"{name}: {skip['id']} needs a reason"


DAILY_LIMITED = [p for p in providers.names() if (limit := providers.load(p).rate_limit) and limit.per_day]


@pytest.mark.parametrize("provider", DAILY_LIMITED)
def test_the_tick_keeps_within_each_documented_daily_limit(provider):
    """A check is one request per key, plus http.RETRIES retries at worst. A function checks at
    most once a tick (a period's run that could not finish is run again at the next tick), so
    the tick must fit the provider's per-key daily limit (Clodura Free: 300 a day), and so
    must the provider's own schedule."""
    limit = providers.load(provider).rate_limit
    assert limit is not None
    assert limit.per_day is not None
    count, unit = re.fullmatch(
        r"rate\((\d+) (\w+)\)", raw_template()["Mappings"]["Scheduler"]["Event"]["Tick"]
    ).groups()
    tick = int(count) * {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600}[unit]
    assert 86400 // tick * (1 + http.RETRIES) <= limit.per_day
    own = providers.load(provider).schedule
    assert own is None or 86400 // providers.SCHEDULES[own] * (1 + http.RETRIES) <= limit.per_day


@pytest.mark.parametrize("provider", LISTED)
def test_each_function_puts_events_on_the_configured_bus_only(provider):
    (statement,) = [s for s in statements(provider) if s.get("Sid") == "PutAlertEvents"]
    assert statement["Action"] == "events:PutEvents"
    bus = "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBusName}"
    assert statement["Resource"] == bus
    assert template()["Globals"]["Function"]["Environment"]["Variables"]["EVENT_BUS_NAME"] == "EventBusName"
    assert raw_template()["Parameters"]["EventBusName"]["Default"] == "default"


def test_the_dashboard_says_plainly_that_per_account_thresholds_are_not_drawn():
    body = RESOURCES["Dashboard"]["Properties"]["DashboardBody"][0]
    assert "thresholds an account sets in its secret are not drawn" in body


SEARCH_LIMIT = 500  # the most series CloudWatch draws for one SEARCH() expression


def test_the_per_account_graphs_draw_every_series_the_default_budget_allows():
    """Each provider publishes at most AccountSeries series of accounts' own, so a per-account
    SEARCH returns at most AccountSeries x providers lines: within what CloudWatch draws."""
    budget = raw_template()["Parameters"]["AccountSeries"]
    providers_deployed = raw_template()["Parameters"]["Providers"]["Default"].split(",")
    assert budget["Default"] * len(providers_deployed) <= SEARCH_LIMIT
    assert budget["MaxValue"] <= SEARCH_LIMIT
    env = template()["Globals"]["Function"]["Environment"]["Variables"]
    assert env["ACCOUNT_SERIES"] == "AccountSeries"


def test_every_dashboard_widget_reads_a_bounded_number_of_series():
    """Fleet graphs read per-provider (and per-pool) series; per-account graphs read only the
    budgeted accounts; nothing searches a dimension set that grows with the fleet unbounded."""
    fleet_sets = {"Provider", "Provider,Pool"}
    for widget in dashboard()["widgets"]:
        for row in widget["properties"].get("metrics", []):
            for entry in row:
                (dimensions,) = re.findall(r"\{CreditWatch,([A-Za-z,]+)\}", entry["expression"])
                metrics = set(re.findall(r'MetricName="(\w+)"', entry["expression"]))
                if dimensions == "Provider,Account,Pool":
                    assert metrics <= {"CreditsRemaining", "PercentRemaining", "BurnRatePerDay", "DaysUntilEmpty"}
                else:
                    assert dimensions in fleet_sets, widget["properties"]["title"]


def test_the_dashboard_lists_the_accounts_that_need_attention_from_the_journal():
    (widget,) = [w for w in dashboard()["widgets"] if w["type"] == "log"]
    query = widget["properties"]["query"]
    assert query.startswith("SOURCE '/creditwatch/creditwatch/accounts' | ")
    assert "sort need desc, days asc" in query
    assert "by provider, account" in query
    assert widget["properties"]["view"] == "table"
    levels = next(w for w in dashboard()["widgets"] if w["properties"].get("title", "").startswith("Accounts by level"))
    text = json.dumps(levels)
    for metric in ("AccountsOk", "AccountsWarning", "AccountsCritical", "AccountsFailed"):
        assert metric in text


def test_the_journal_is_one_log_group_with_a_stream_per_provider_each_function_writes_only_its_own():
    group = RESOURCES["AccountsLogGroup"]["Properties"]
    assert group == {"LogGroupName": "/creditwatch/${AWS::StackName}/accounts", "RetentionInDays": "LogRetentionDays"}
    assert template()["Globals"]["Function"]["Environment"]["Variables"]["ACCOUNTS_LOG_GROUP"] == "AccountsLogGroup"
    group_arn = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group"
    arn = f"{group_arn}:/creditwatch/${{AWS::StackName}}/accounts"
    for provider in LISTED:
        stream = RESOURCES[f"{provider}AccountsStream"]
        assert stream["Type"] == "AWS::Logs::LogStream"
        assert stream["Properties"] == {"LogGroupName": "AccountsLogGroup", "LogStreamName": provider}
        (writer,) = [s for s in statements(provider) if "logs:" in json.dumps(s["Action"])]
        assert writer["Action"] == "logs:PutLogEvents"
        assert writer["Resource"] == f"{arn}:log-stream:{provider}"

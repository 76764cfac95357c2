"""Generated input against every boundary: provider bodies, secrets, and the key redactor.

The property for a body: either balances that really round-trip through DynamoDB's
serialiser, fit CloudWatch's range and render into an alert SNS accepts, or a transient
failure; never an exception.
"""

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import quote

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from hypothesis import given, settings
from hypothesis import strategies as st

from creditwatch import providers
from creditwatch.config import ConfigError, parse_secret
from creditwatch.domain import AccountState, Checked, Policy, Threshold, Thresholds, Unavailable, evaluate
from creditwatch.forecast import PoolWindow, advance
from creditwatch.http import _classify
from creditwatch.monitor import pool_metrics
from creditwatch.notifier import SMS_LIMIT, SUBJECT_LIMIT, render
from creditwatch.redaction import Redactor
from creditwatch.repository import Repository, Snapshot
from tests.hostile import bodies

BODIES_PER_PROVIDER = 1000
NOW = datetime(2026, 11, 22, 10, tzinfo=UTC)
POLICY = Policy(Thresholds(Threshold(Decimal(1000)), Threshold(Decimal(100))))
CLOUDWATCH_MAX = 2.0**360  # PutMetricData refuses values outside ±2^360, and non-zero ones inside ±2^-360
serializer, deserializer = TypeSerializer(), TypeDeserializer()
repository = Repository(None, "t", "p", 90)


def storable_item(item: dict) -> None:
    """An item in DynamoDB's typed form that DynamoDB's own rules read back as written."""
    assert serializer.serialize(deserializer.deserialize({"M": item})) == {"M": item}


def history(remaining: Decimal) -> dict[str, PoolWindow]:
    """Two days of a fuller balance before this one, so burn rate and forecast are computed."""
    window = PoolWindow()
    for hours, value in ((48, remaining * 3 + 10), (24, remaining * 2 + 5)):
        window, _ = advance(window, value, None, NOW - timedelta(hours=hours), timedelta(hours=72))
    return {"credits": window}


@pytest.mark.parametrize("name", providers.names())
@settings(max_examples=BODIES_PER_PROVIDER, deadline=None)
@given(body=bodies())
def test_any_body_is_a_storable_renderable_balance_or_a_transient_failure(name, body):
    provider = providers.load(name)
    outcome = _classify(provider, body)

    assert isinstance(outcome, Checked | Unavailable)
    if isinstance(outcome, Unavailable):
        return
    first = outcome.balances[0].remaining
    evaluation = evaluate(name, "acct", NOW, AccountState(), history(first), outcome, POLICY)
    for report in evaluation.pools:
        storable_item(repository._snapshot_item(Snapshot("acct", report.balance, evaluation.observed_at)))
        for value in pool_metrics(report).values():
            assert value[1] == 0 or 1 / CLOUDWATCH_MAX < abs(value[1]) < CLOUDWATCH_MAX
    storable_item(repository._window_item("acct", evaluation.windows, {"S": evaluation.observed_at}, {"N": "0"}))
    for alert in evaluation.alerts:
        message = render(alert, provider)
        assert len(message.subject) <= SUBJECT_LIMIT
        assert len(message.sms) <= SMS_LIMIT
        assert all(" " <= char <= "~" for char in message.subject + message.sms)


ENTRY = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.text(max_size=70), st.integers(), st.none()),
        "api_key": st.one_of(st.text(max_size=40), st.integers(), st.none()),
        "warning_threshold": st.one_of(st.text(max_size=8), st.integers(-5, 5000), st.booleans()),
        "critical_threshold": st.one_of(st.text(max_size=8), st.integers(-5, 5000), st.booleans()),
    },
)
SECRETS = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200),
    bodies().map(lambda body: body.decode("utf-8", "replace")),
    st.lists(st.one_of(ENTRY, st.integers()), max_size=5).map(lambda entries: json.dumps({"accounts": entries})),
    st.lists(ENTRY, max_size=5).map(lambda entries: "\ufeff" + json.dumps({"accounts": entries})),
)


@settings(max_examples=1000, deadline=None)
@given(raw=SECRETS)
def test_any_secret_is_accounts_or_a_config_error_naming_a_field(raw):
    try:
        accounts = parse_secret(raw, POLICY.thresholds)
    except ConfigError as error:
        accounts, problem = [], str(error)
    else:
        problem = None
    assert problem is None or re.match(r"(secret|api_key|accounts): ", problem)
    for account in accounts:
        assert account.problem is None or re.match(r"accounts\[[0-9]+\](\.[a-z_]+)?: ", account.problem)
        assert account.problem or (8 <= len(account.api_key) <= 1024 and account.api_key.isascii())


# Keys and the text around them from different alphabets, so the text cannot spell a key itself.
KEY_TEXT = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x60), min_size=8, max_size=64)
FILLER = st.text(st.characters(min_codepoint=0x61, max_codepoint=0x7A), max_size=40)


@settings(max_examples=500, deadline=None)
@given(keys=st.lists(KEY_TEXT, min_size=1, max_size=20, unique=True), filler=FILLER, data=st.data())
def test_every_known_key_is_redacted_however_it_is_embedded(keys, filler, data):
    redact = Redactor()
    redact.add(keys)
    key = data.draw(st.sampled_from(keys))
    for text in (f"{filler}{key}{filler}", json.dumps({"k": key}), f"/v1?apikey={quote(key, safe='')}&x={filler}"):
        cleaned = redact(text)
        assert key not in cleaned
        assert quote(key, safe="") not in cleaned


@pytest.mark.parametrize("name", providers.names())
@settings(max_examples=300, deadline=None)
@given(body=bodies())
def test_any_body_makes_a_journal_line_of_json_within_a_bounded_size(name, body):
    """Whatever a provider answers, the account's journal line is JSON PutLogEvents takes."""
    from creditwatch import fleet, journal

    provider = providers.load(name)
    outcome = _classify(provider, body)
    first = outcome.balances[0].remaining if isinstance(outcome, Checked) else Decimal(0)
    evaluation = evaluate(name, "acct", NOW, AccountState(), history(first), outcome, POLICY)
    entry = fleet.standing("acct", evaluation, getattr(outcome, "reason", None))
    text = journal.line(fleet.record(name, entry, evaluation, evaluation.observed_at))
    assert json.loads(text)["account"] == "acct"
    assert len(text.encode()) < 2048 * len(provider.pools)

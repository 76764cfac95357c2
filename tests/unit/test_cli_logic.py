"""The command's pure parts: when a silence ends, exit statuses, pre-flight arithmetic."""

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError, ProfileNotFound
from hypothesis import given, settings
from hypothesis import strategies as st

from creditwatch import providers
from creditwatch.config import Account
from creditwatch.domain import Checked, Exhausted, Rejected, Threshold, Thresholds, Unavailable
from creditwatch_cli import when
from creditwatch_cli.checks import CheckFailed, exit_status, judge, planned, preflight, records
from creditwatch_cli.errors import UserError

NOW = datetime(2026, 11, 22, 15, 30, tzinfo=UTC)  # a Sunday
BERLIN = timezone(timedelta(hours=1))
DEFAULTS = Thresholds(Threshold(Decimal(1000)), Threshold(Decimal(100)))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90m", NOW + timedelta(minutes=90)),
        ("2h", NOW + timedelta(hours=2)),
        ("1d12h", NOW + timedelta(days=1, hours=12)),
        ("1W", NOW + timedelta(weeks=1)),
        ("friday", datetime(2026, 11, 27, tzinfo=BERLIN)),  # the start of the next Friday, local time
        ("Sunday", datetime(2026, 11, 29, tzinfo=BERLIN)),  # today is Sunday: a week on
        ("2026-11-27", datetime(2026, 11, 27, tzinfo=BERLIN)),
        ("2026-11-27T17:00", datetime(2026, 11, 27, 17, tzinfo=BERLIN)),
        ("2026-11-27T17:00Z", datetime(2026, 11, 27, 17, tzinfo=UTC)),
        ("2026-11-27T17:00+05:00", datetime(2026, 11, 27, 12, tzinfo=UTC)),
    ],
)
def test_a_silence_ends_after_a_duration_on_a_weekday_or_at_a_time(text, expected):
    assert when.until(text, NOW, BERLIN) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("2026-11-01", "not in the future"),
        ("0h", "not in the future"),
        ("400d", "more than a year away"),
        ("soon", "not a duration"),
        ("2h30", "not a duration"),
        ("", "not a duration"),
    ],
)
def test_an_end_that_is_past_too_far_or_not_a_time_is_refused_naming_the_option(text, problem):
    with pytest.raises(UserError, match=rf"^--until: .*{problem}"):
        when.until(text, NOW, BERLIN)


def account(name="ops", critical="100"):
    return Account(name, "cl-secret-key-1234", Thresholds(Threshold(Decimal(1000)), Threshold(Decimal(critical))))


def result(outcome, provider="cleanlist", critical="100"):
    return judge(providers.load(provider), account(critical=critical), outcome)


def credits(amount):
    from creditwatch.domain import Balance

    return Checked((Balance("credits", Decimal(amount)),))


def test_exit_status_is_the_worst_level_and_3_for_any_failed_check():
    ok, warning, critical = result(credits(5000)), result(credits(500)), result(credits(50))
    assert [exit_status(r) for r in ([ok], [ok, warning], [warning, critical], [])] == [0, 1, 2, 0]
    assert exit_status([ok, critical, result(Unavailable("the provider timed out"))]) == 3
    assert exit_status([result(Rejected(401))]) == 3
    spent = result(Exhausted())  # a 402 is a balance of nothing, not a failed check
    assert exit_status([spent]) == 2
    assert records([spent])[0]["note"] == "the provider answered HTTP 402: no credits left"


def test_records_keep_numbers_exact_and_say_why_a_check_failed():
    (row,) = records([result(credits("1234.5"))])
    assert row == {
        "provider": "cleanlist",
        "account": "ops",
        "pool": "credits",
        "remaining": "1234.5",
        "limit": None,
        "percent": None,
        "level": "ok",
        "note": None,
    }
    (failed,) = records([result(Rejected(401))])
    assert (failed["level"], failed["note"]) == ("failed", "the API key was rejected (HTTP 401)")


def test_preflight_needs_the_batch_plus_the_critical_threshold():
    cleanlist = providers.load("cleanlist")
    need, what = planned(cleanlist, 100, "full")
    assert (need, what) == (Decimal(1100), "100 records of full need up to 1,100 credits (11 each)")
    fits = preflight(result(credits("1234.5")), need, what, None)
    assert fits.fits
    assert fits.sentence.startswith("ok: cleanlist/ops has 1,234.5 credits; 100 records of full need")
    need, what = planned(cleanlist, 5000, "phone")
    short = preflight(result(credits("1234.5")), need, what, None)
    assert not short.fits
    assert "Top up at least 48,865.5 credits first" in short.sentence  # 50,000 + 100 - 1,234.5
    exact = preflight(result(credits(1100)), Decimal(1000), "1,000 credits", None)
    assert exact.fits  # exactly the critical threshold left is enough


def test_preflight_plans_with_the_top_of_a_documented_range():
    need, what = planned(providers.load("clodura"), 5000, "reveal_phone")
    assert need == Decimal(100_000)
    assert what == "5,000 records of reveal_phone need up to 100,000 credits (up to 20 each)"


def test_preflight_refuses_what_it_cannot_work_out():
    with pytest.raises(UserError, match="documents no per-operation costs"):
        planned(providers.load("clado"), 10, "anything")
    with pytest.raises(UserError, match=r"^--operation: 'phones' is not one of cleanlist's: email, phone, full"):
        planned(providers.load("cleanlist"), 10, "phones")
    with pytest.raises(CheckFailed, match="could not be checked: the API key was rejected"):
        preflight(result(Rejected(401)), Decimal(1), "1 credit", None)


def test_a_percentage_critical_threshold_without_a_plan_limit_reserves_nothing_and_says_so():
    outcome = credits(500)
    judged = judge(
        providers.load("cleanlist"),
        Account("ops", "cl-secret-key-1234", Thresholds(Threshold(Decimal(20), True), Threshold(Decimal(5), True))),
        outcome,
    )
    verdict = preflight(judged, Decimal(400), "400 credits", None)
    assert verdict.fits
    assert verdict.reserve == 0
    assert "needs a plan limit" in verdict.sentence


# Generated input at the command's own boundaries: what a person types and what a keys file holds.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
keys_documents = st.dictionaries(
    st.sampled_from([*providers.names(), "acme", "accounts", "api_key"]) | st.text(max_size=12),
    json_values | st.text(min_size=8, max_size=40),
    max_size=5,
)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=60))
def test_any_until_text_is_a_time_within_the_year_or_one_sentence_naming_the_option(text):
    try:
        moment = when.until(text, NOW, BERLIN)
    except UserError as error:
        problem = str(error)
    else:
        problem = None
        assert NOW < moment <= NOW + when.LONGEST
    assert problem is None or problem.startswith("--until: ")


@settings(max_examples=300, deadline=None)
@given(document=keys_documents | json_values, requested=st.sampled_from([(), ("cleanlist",), ("clado", "leadmagic")]))
def test_any_keys_file_gives_accounts_or_one_sentence_and_never_echoes_a_key(tmp_path_factory, document, requested):
    from creditwatch_cli.keys import gather

    path = tmp_path_factory.mktemp("keys") / "keys.json"
    text = json.dumps(document)
    path.write_text(text)
    try:
        found = gather(requested, DEFAULTS, {}, keys_file=path)
    except UserError as error:
        message = str(error)
        assert "\n" not in message
        assert not any(value in message for value in values(document) if len(value) >= 8)  # a key is 8 or more
        return
    assert found
    assert set(found) <= set(providers.names())
    assert not requested or set(found) == set(requested)
    for accounts in found.values():
        assert all(isinstance(account, Account) for account in accounts)


def values(document):
    """Every string of a JSON document that is not an object's key: where a key could be."""
    if isinstance(document, str):
        yield document
    elif isinstance(document, list):
        for item in document:
            yield from values(item)
    elif isinstance(document, dict):
        for item in document.values():
            yield from values(item)


@pytest.mark.parametrize(
    ("error", "sentence"),
    [
        (NoCredentialsError(), "no AWS credentials: set AWS_PROFILE"),
        (NoRegionError(), "no AWS region: pass --region"),
        (ProfileNotFound(profile="ops"), "that AWS profile is not in your AWS config"),
        (EndpointConnectionError(endpoint_url="https://dynamodb.x"), "AWS could not be reached: check the network"),
        (ClientError({"Error": {"Code": "AccessDeniedException"}}, "Query"), "AWS denied Query: your credentials lack"),
        (ClientError({"Error": {"Code": "ExpiredTokenException"}}, "Query"), "your AWS credentials were refused or"),
        (
            ClientError({"Error": {"Code": "ThrottlingException"}}, "PutItem"),
            "AWS refused PutItem (ThrottlingException)",
        ),
    ],
)
def test_an_aws_failure_is_told_in_the_projects_own_words(error, sentence):
    from creditwatch_cli.app import _sentence

    assert _sentence(error).startswith(sentence)

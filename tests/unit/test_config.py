"""Configuration parsing: every error names the field, and never shows a key."""

import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest

from creditwatch import providers
from creditwatch.config import ConfigError, Settings, mask, parse_base_url, parse_secret, parse_threshold
from creditwatch.domain import Threshold, Thresholds

DEFAULTS = Thresholds(Threshold(Decimal(1000)), Threshold(Decimal(100)))
ENV = {
    "PROVIDER": "leadmagic",
    "SECRET_NAME": "creditwatch/leadmagic",
    "TABLE_NAME": "balances",
    "TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:alerts",
    "WARNING_THRESHOLD": "20%",
    "CRITICAL_THRESHOLD": "5%",
}


def test_settings_from_a_complete_environment():
    settings = Settings.from_env(ENV)
    assert settings.thresholds == Thresholds(Threshold(Decimal(20), True), Threshold(Decimal(5), True))
    assert (settings.retention_days, settings.failures_before_alert, settings.base_url) == (90, 3, None)
    assert settings.metrics_namespace == "CreditWatch"
    policy = settings.policy(DEFAULTS)
    assert (policy.burn_window, policy.remind_after) == (timedelta(hours=72), timedelta(hours=24))
    assert (policy.forecast_warning_days, policy.forecast_critical_days) == (7, 2)


def test_reminders_off_and_fractional_forecast_days():
    settings = Settings.from_env({**ENV, "REMIND_AFTER_HOURS": "0", "FORECAST_CRITICAL_DAYS": "0.5"})
    assert settings.policy(DEFAULTS).remind_after is None
    assert settings.forecast_critical_days == Decimal("0.5")


@pytest.mark.parametrize(
    "name", ["PROVIDER", "SECRET_NAME", "TABLE_NAME", "TOPIC_ARN", "WARNING_THRESHOLD", "CRITICAL_THRESHOLD"]
)
def test_a_missing_required_variable_is_named(name):
    env = {k: v for k, v in ENV.items() if k != name}
    with pytest.raises(ConfigError, match=f"^{name}: required"):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"WARNING_THRESHOLD": "lots"}, "WARNING_THRESHOLD"),
        ({"CRITICAL_THRESHOLD": "-5"}, "CRITICAL_THRESHOLD"),
        ({"CRITICAL_THRESHOLD": "150%"}, "CRITICAL_THRESHOLD"),
        ({"WARNING_THRESHOLD": "10%", "CRITICAL_THRESHOLD": "20%"}, "CRITICAL_THRESHOLD"),
        ({"RETENTION_DAYS": "ninety"}, "RETENTION_DAYS"),
        ({"FAILURES_BEFORE_ALERT": "0"}, "FAILURES_BEFORE_ALERT"),
        ({"BASE_URL": "http://api.leadmagic.io"}, "BASE_URL"),
        ({"BASE_URL": "ftp://127.0.0.1"}, "BASE_URL"),
        ({"BURN_WINDOW_HOURS": "0"}, "BURN_WINDOW_HOURS"),
        ({"FORECAST_WARNING_DAYS": "soon"}, "FORECAST_WARNING_DAYS"),
        ({"FORECAST_CRITICAL_DAYS": "-1"}, "FORECAST_CRITICAL_DAYS"),
        ({"FORECAST_WARNING_DAYS": "3", "FORECAST_CRITICAL_DAYS": "5"}, "FORECAST_CRITICAL_DAYS"),
        ({"REMIND_AFTER_HOURS": "-1"}, "REMIND_AFTER_HOURS"),
        ({"PROVIDER": "nosuchprovider"}, "PROVIDER"),
        ({"PROVIDER": "../leadmagic"}, "PROVIDER"),
        ({"RETENTION_DAYS": "9" * 5000}, "RETENTION_DAYS"),  # would overflow a timedelta
        ({"RETENTION_DAYS": "100000"}, "RETENTION_DAYS"),
        ({"RETENTION_DAYS": "٣"}, "RETENTION_DAYS"),  # a digit, but not an ASCII one
        ({"BURN_WINDOW_HOURS": "1e9"}, "BURN_WINDOW_HOURS"),
        ({"FORECAST_WARNING_DAYS": "1e999999"}, "FORECAST_WARNING_DAYS"),
        ({"FORECAST_WARNING_DAYS": "Infinity"}, "FORECAST_WARNING_DAYS"),
        ({"SPIKE_WINDOW_HOURS": "37"}, "SPIKE_WINDOW_HOURS"),  # more than half the 72 h burn window
        ({"SPIKE_WINDOW_HOURS": "0"}, "SPIKE_WINDOW_HOURS"),
        ({"SPIKE_FACTOR": "0"}, "SPIKE_FACTOR"),
        ({"SPIKE_MINIMUM_CREDITS": "lots"}, "SPIKE_MINIMUM_CREDITS"),
    ],
)
def test_invalid_values_name_their_field(overrides, field):
    with pytest.raises(ConfigError, match=f"^{field}:"):
        Settings.from_env({**ENV, **overrides})


@pytest.mark.parametrize(
    "url", ["https://api.leadmagic.io", "http://127.0.0.1:8080", "http://localhost:9000/", "https://proxy.internal/x"]
)
def test_base_url_must_be_https_or_loopback_http(url):
    assert parse_base_url(url) == url.rstrip("/")


@pytest.mark.parametrize(
    "url",
    [
        "http://evil.example\\@127.0.0.1/",  # the standard library reads 127.0.0.1, urllib3 evil.example
        "http://127.0.0.1@evil.example/",
        "http://user:pass@127.0.0.1/",
        "http://evil.example#@127.0.0.1/",
        "http://evil.example?@127.0.0.1/",
        "http://localhost.evil.example/",
        "http://127.0.0.1 .evil.example/",
        "http://127.0.0.1\t/",
        "https://",
        "https://api.leadmagic.io:99999",
        "//127.0.0.1/",
        "http:/127.0.0.1/",
    ],
)
def test_a_base_url_read_two_ways_or_carrying_userinfo_is_refused(url):
    with pytest.raises(ConfigError, match=r"^BASE_URL:"):
        parse_base_url(url)


def test_http_to_a_host_that_is_not_loopback_is_refused_however_it_is_spelled():
    """What urllib3 would connect to is what is checked: the key goes nowhere else over plain http."""
    from urllib3.util import parse_url

    for url in ("http://127.0.0.1.nip.io/", "http://[::ffff:7f00:1]/", "http://0x7f.0.0.1/", "http://2130706433/"):
        with pytest.raises(ConfigError):
            parse_base_url(url)
        assert parse_url(url).host not in ("127.0.0.1", "localhost", "::1")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("500", Threshold(Decimal(500))), (" 20% ", Threshold(Decimal(20), True)), ("0.5", Threshold(Decimal("0.5")))],
)
def test_threshold_forms(text, expected):
    assert parse_threshold(text, "T") == expected


def test_bare_key_becomes_the_default_account():
    (account,) = parse_secret("  lm_key_123456789  \n", DEFAULTS)
    assert (account.name, account.api_key, account.thresholds) == ("default", "lm_key_123456789", DEFAULTS)


def test_json_api_key_becomes_the_default_account():
    (account,) = parse_secret('{"api_key": "lm_key_123456789"}', DEFAULTS)
    assert account.name == "default"


def test_accounts_with_their_own_thresholds():
    accounts = parse_secret(
        '{"accounts": [{"name": "acme", "api_key": "key-acme-1", "warning_threshold": "20%",'
        ' "critical_threshold": "5%"}, {"name": "globex", "api_key": "key-globex-2"}]}',
        DEFAULTS,
    )
    assert [a.name for a in accounts] == ["acme", "globex"]
    assert accounts[0].thresholds == Thresholds(Threshold(Decimal(20), True), Threshold(Decimal(5), True))
    assert accounts[1].thresholds == DEFAULTS
    assert [a.problem for a in accounts] == [None, None]


def test_an_inherited_threshold_yields_to_the_one_set():
    critical_only, warning_only = parse_secret(
        json.dumps(
            {
                "accounts": [
                    {"name": "a", "api_key": "key-aaaaaaaa", "critical_threshold": "5000"},
                    {"name": "b", "api_key": "key-bbbbbbbb", "warning_threshold": "50"},
                ]
            }
        ),
        DEFAULTS,
    )
    assert critical_only.thresholds == Thresholds(Threshold(Decimal(5000)), Threshold(Decimal(5000)))
    assert warning_only.thresholds == Thresholds(Threshold(Decimal(50)), Threshold(Decimal(50)))
    assert (critical_only.problem, warning_only.problem) == (None, None)


@pytest.mark.parametrize("secret", ["REPLACE_WITH_API_KEY", '{"api_key": "REPLACE_WITH_API_KEY"}'])
def test_placeholder_means_not_configured(secret):
    assert parse_secret(secret, DEFAULTS) == []


@pytest.mark.parametrize(
    ("secret", "field"),
    [
        ('{"api_key": ', "secret"),
        ("{}", "secret"),
        ("[]", "secret"),
        ('["key-aaaaaaaa"]', "secret"),
        ('{"api_key": 42}', "api_key"),
        ('{"api_key": "short"}', "api_key"),
        ('{"accounts": []}', "accounts"),
        ("", "secret"),
        ("key with spaces inside", "secret"),
        ("“curly-quoted-key”", "secret"),
        (b"\xff\xfe binary", "secret"),
    ],
)
def test_a_malformed_secret_names_the_field(secret, field):
    with pytest.raises(ConfigError, match=f"^{field}"):
        parse_secret(secret, DEFAULTS)


@pytest.mark.parametrize(
    ("entries", "name", "field"),
    [
        (["x"], "accounts[0]", r"accounts\[0\]: must be an object"),
        ([{"api_key": "key-aaaaaaaa"}], "accounts[0]", r"accounts\[0\]\.name"),
        ([{"name": "has space", "api_key": "key-aaaaaaaa"}], "accounts[0]", r"accounts\[0\]\.name"),
        ([{"name": "trailing\n", "api_key": "key-aaaaaaaa"}], "accounts[0]", r"accounts\[0\]\.name"),
        ([{"name": "a", "api_key": ""}], "a", r"accounts\[0\]\.api_key"),
        ([{"name": "a", "api_key": "key-with-“quote”"}], "a", r"accounts\[0\]\.api_key: .*position 10 "),
        ([{"name": "a", "api_key": "key-aaaaaaaa", "warning_threshold": "x"}], "a", r"accounts\[0\]\.warning_thr"),
        (
            [{"name": "a", "api_key": "key-aaaaaaaa", "warning_threshold": "10", "critical_threshold": "20"}],
            "a",
            r"accounts\[0\]\.critical_threshold",
        ),
    ],
)
def test_a_bad_entry_costs_only_that_entry_and_names_the_field(entries, name, field):
    good = {"name": "good", "api_key": "key-goodgood"}
    accounts = parse_secret(json.dumps({"accounts": [*entries, good]}), DEFAULTS)
    bad, fine = accounts
    assert (bad.name, bad.api_key) == (name, "")
    assert re.match(field, bad.problem or "")
    assert (fine.name, fine.problem) == ("good", None)


def test_a_name_given_twice_is_a_problem_for_the_second_entry():
    secret = {"accounts": [{"name": "a", "api_key": "key-aaaaaaaa"}, {"name": "a", "api_key": "key-bbbbbbbb"}]}
    first, second = parse_secret(json.dumps(secret), DEFAULTS)
    assert (first.name, first.problem) == ("a", None)
    assert second.name == "accounts[1]"
    assert "appears twice" in (second.problem or "")


def test_a_byte_order_mark_and_a_binary_secret_are_read_as_text():
    doc = json.dumps({"accounts": [{"name": "a", "api_key": "key-aaaaaaaa"}]})
    for raw in ("\ufeff" + doc, ("\ufeff" + doc).encode(), doc.encode()):
        (account,) = parse_secret(raw, DEFAULTS)
        assert (account.name, account.api_key) == ("a", "key-aaaaaaaa")


def test_errors_and_reprs_never_show_the_key():
    key = "sk_live_supersecretvalue_9876"
    (account,) = parse_secret(json.dumps({"accounts": [{"name": "a b", "api_key": key}]}), DEFAULTS)
    assert "supersecret" not in repr(account)
    with pytest.raises(ConfigError) as error:
        parse_secret(key + " and more", DEFAULTS)
    assert "supersecret" not in str(error.value)
    (account,) = parse_secret(key, DEFAULTS)
    assert "supersecret" not in repr(account)
    assert account.key_hint == "…9876"


def test_short_keys_are_not_hinted_at_all():
    assert mask("abc123") == "…"


@pytest.mark.parametrize(
    ("provider", "overrides", "schedule"),
    [
        ("leadmagic", {}, "1h"),  # the stack's default
        ("leadmagic", {"SCHEDULE": "2h"}, "2h"),
        ("clodura", {"SCHEDULE": "30m"}, "3h"),  # its definition's own
        ("clodura", {"PROVIDER_SCHEDULES": "leadmagic=15m, clodura=6h"}, "6h"),  # the stack's for it
        ("leadmagic", {"PROVIDER_SCHEDULES": "clodura=6h"}, "1h"),
    ],
)
def test_a_provider_runs_on_the_stacks_schedule_for_it_else_its_own_else_the_stacks(provider, overrides, schedule):
    settings = Settings.from_env({**ENV, "PROVIDER": provider, **overrides})
    assert settings.schedule == schedule
    assert settings.period == {"15m": 900, "30m": 1800, "1h": 3600, "2h": 7200, "3h": 10800, "6h": 21600}[schedule]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"SCHEDULE": "5m"}, "SCHEDULE: must be one of 15m, 30m, 1h, 2h, 3h, 6h, got '5m'"),
        ({"PROVIDER_SCHEDULES": "clodra=6h"}, "PROVIDER_SCHEDULES: 'clodra=6h' names no defined provider"),
        (
            {"PROVIDER_SCHEDULES": "clado=1d"},
            "PROVIDER_SCHEDULES: 'clado=1d': the schedule must be one of 15m, 30m, 1h, 2h, 3h, 6h",
        ),
    ],
)
def test_an_invalid_schedule_names_its_field(overrides, message):
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({**ENV, **overrides})
    assert str(raised.value) == message


def test_a_schedule_that_could_pass_a_documented_daily_limit_is_refused():
    from creditwatch.config import schedule

    base = providers.load("clodura")
    tight = base._replace(rate_limit=base.rate_limit._replace(per_day=100), schedule=None)
    assert schedule({"SCHEDULE": "1h"}, tight) == "1h"  # 24 a day, 72 with every retry
    with pytest.raises(ConfigError) as raised:
        schedule({"SCHEDULE": "15m"}, tight)
    assert str(raised.value) == (
        "SCHEDULE: checking clodura every 15m could make 288 requests a day per key, over its documented 100"
    )

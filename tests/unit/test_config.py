"""Configuration parsing: every error names the field, and never shows a key."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest

from creditwatch.config import ConfigError, Settings, mask, parse_base_url, parse_secret, parse_threshold
from creditwatch.domain import Threshold, Thresholds

DEFAULTS = Thresholds(Threshold(Decimal(1000)), Threshold(Decimal(100)))
ENV = {
    "SECRET_ID": "creditwatch/leadmagic",
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


@pytest.mark.parametrize("name", ["SECRET_ID", "TABLE_NAME", "TOPIC_ARN", "WARNING_THRESHOLD", "CRITICAL_THRESHOLD"])
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
        '{"accounts": [{"name": "acme", "api_key": "k1", "warning_threshold": "20%", "critical_threshold": "5%"},'
        ' {"name": "globex", "api_key": "k2"}]}',
        DEFAULTS,
    )
    assert [a.name for a in accounts] == ["acme", "globex"]
    assert accounts[0].thresholds == Thresholds(Threshold(Decimal(20), True), Threshold(Decimal(5), True))
    assert accounts[1].thresholds == DEFAULTS


@pytest.mark.parametrize("secret", ["REPLACE_WITH_API_KEY", '{"api_key": "REPLACE_WITH_API_KEY"}'])
def test_placeholder_means_not_configured(secret):
    assert parse_secret(secret, DEFAULTS) == []


@pytest.mark.parametrize(
    ("secret", "field"),
    [
        ('{"api_key": ', "secret"),
        ("{}", "secret"),
        ('{"api_key": 42}', "api_key"),
        ('{"accounts": []}', "accounts"),
        ('{"accounts": ["x"]}', r"accounts\[0\]"),
        ('{"accounts": [{"api_key": "k"}]}', r"accounts\[0\]\.name"),
        ('{"accounts": [{"name": "has space", "api_key": "k"}]}', r"accounts\[0\]\.name"),
        ('{"accounts": [{"name": "a", "api_key": "k"}, {"name": "a", "api_key": "j"}]}', r"accounts\[1\]\.name"),
        ('{"accounts": [{"name": "a", "api_key": ""}]}', r"accounts\[0\]\.api_key"),
        (
            '{"accounts": [{"name": "a", "api_key": "k", "warning_threshold": "x"}]}',
            r"accounts\[0\]\.warning_threshold",
        ),
        ("", "secret"),
    ],
)
def test_malformed_secret_names_the_field(secret, field):
    with pytest.raises(ConfigError, match=f"^{field}"):
        parse_secret(secret, DEFAULTS)


def test_errors_and_reprs_never_show_the_key():
    key = "sk_live_supersecretvalue_9876"
    with pytest.raises(ConfigError) as error:
        parse_secret(json.dumps({"accounts": [{"name": "a b", "api_key": key}]}), DEFAULTS)
    assert "supersecret" not in str(error.value)
    (account,) = parse_secret(key, DEFAULTS)
    assert "supersecret" not in repr(account)
    assert account.key_hint == "…9876"


def test_short_keys_are_not_hinted_at_all():
    assert mask("abc123") == "…"

"""Configuration, parsed once into typed objects. Every error names the field that is wrong."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from creditwatch.domain import Policy, Threshold, Thresholds

PLACEHOLDER = "REPLACE_WITH_API_KEY"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
THRESHOLD_VARIABLES = ("WARNING_THRESHOLD", "CRITICAL_THRESHOLD")
ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ConfigError(ValueError):
    """Invalid configuration. The message names the field and never holds a secret value."""


def mask(api_key: str) -> str:
    """At most the last 4 characters, and none of a key too short to spare them."""
    return f"…{api_key[-4:]}" if len(api_key) >= 12 else "…"


def parse_threshold(raw: object, name: str) -> Threshold:
    text = raw.strip() if isinstance(raw, str) else raw
    if isinstance(text, int) and not isinstance(text, bool):
        text = str(text)
    if not isinstance(text, str) or not text:
        raise ConfigError(f"{name}: expected credits like '500' or a percentage like '20%'")
    percent = text.endswith("%")
    try:
        amount = Decimal(text.removesuffix("%").strip())
    except InvalidOperation:
        raise ConfigError(f"{name}: {text!r} is neither a number of credits nor a percentage") from None
    if not amount.is_finite() or amount < 0 or (percent and amount > 100):
        raise ConfigError(f"{name}: {text!r} is out of range (credits >= 0, percentages 0-100%)")
    return Threshold(amount, percent)


def parse_thresholds(
    fields: Mapping[str, object], names: tuple[str, str], defaults: Thresholds | None = None
) -> Thresholds:
    """Warning and critical thresholds from `fields[names[0]]` and `fields[names[1]]`.

    A field that is absent takes its value from `defaults`, when given.
    """

    def one(name: str, default: Threshold | None) -> Threshold:
        if name not in fields and default is not None:
            return default
        return parse_threshold(fields.get(name), name)

    warning = one(names[0], defaults.warning if defaults else None)
    critical = one(names[1], defaults.critical if defaults else None)
    if warning.percent == critical.percent and critical.amount > warning.amount:
        raise ConfigError(f"{names[1]}: {critical} is above the warning threshold {warning}")
    return Thresholds(warning, critical)


def parse_base_url(raw: str) -> str:
    parts = urlsplit(raw)
    loopback = parts.hostname in LOOPBACK_HOSTS
    if not parts.hostname or parts.scheme not in ("https", "http") or (parts.scheme == "http" and not loopback):
        raise ConfigError("BASE_URL: must be an https:// URL (plain http:// only for 127.0.0.1 or localhost)")
    return raw.rstrip("/")


def _positive_int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name, "").strip() or str(default)
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}: {raw!r} is not a whole number") from None
    if value < minimum:
        raise ConfigError(f"{name}: must be at least {minimum}, got {value}")
    return value


def _positive_number(env: Mapping[str, str], name: str, default: str) -> Decimal:
    raw = env.get(name, "").strip() or default
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ConfigError(f"{name}: {raw!r} is not a number") from None
    if not value.is_finite() or value <= 0:
        raise ConfigError(f"{name}: must be a positive number, got {raw!r}")
    return value


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name}: required environment variable is missing or empty")
    return value


@dataclass(frozen=True)
class Settings:
    secret_id: str
    table_name: str
    topic_arn: str
    thresholds: Thresholds
    base_url: str | None = None
    retention_days: int = 90
    failures_before_alert: int = 3
    metrics_namespace: str = "CreditWatch"
    burn_window_hours: int = 72
    forecast_warning_days: Decimal = Decimal(7)
    forecast_critical_days: Decimal = Decimal(2)
    remind_after_hours: int = 24  # 0: no reminders

    def policy(self, thresholds: Thresholds) -> Policy:
        """The alerting rules for one account, with that account's thresholds."""
        return Policy(
            thresholds=thresholds,
            failures_before_alert=self.failures_before_alert,
            burn_window=timedelta(hours=self.burn_window_hours),
            forecast_warning_days=self.forecast_warning_days,
            forecast_critical_days=self.forecast_critical_days,
            remind_after=timedelta(hours=self.remind_after_hours) if self.remind_after_hours else None,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        base_url = env.get("BASE_URL", "").strip()
        warning_days = _positive_number(env, "FORECAST_WARNING_DAYS", "7")
        critical_days = _positive_number(env, "FORECAST_CRITICAL_DAYS", "2")
        if critical_days > warning_days:
            raise ConfigError(f"FORECAST_CRITICAL_DAYS: {critical_days} is above FORECAST_WARNING_DAYS {warning_days}")
        return cls(
            secret_id=_required(env, "SECRET_ID"),
            table_name=_required(env, "TABLE_NAME"),
            topic_arn=_required(env, "TOPIC_ARN"),
            thresholds=parse_thresholds(
                {name: _required(env, name) for name in THRESHOLD_VARIABLES}, THRESHOLD_VARIABLES
            ),
            base_url=parse_base_url(base_url) if base_url else None,
            retention_days=_positive_int(env, "RETENTION_DAYS", 90),
            failures_before_alert=_positive_int(env, "FAILURES_BEFORE_ALERT", 3),
            metrics_namespace=env.get("POWERTOOLS_METRICS_NAMESPACE", "").strip() or "CreditWatch",
            burn_window_hours=_positive_int(env, "BURN_WINDOW_HOURS", 72),
            forecast_warning_days=warning_days,
            forecast_critical_days=critical_days,
            remind_after_hours=_positive_int(env, "REMIND_AFTER_HOURS", 24, minimum=0),
        )


@dataclass(frozen=True)
class Account:
    name: str
    api_key: str = field(repr=False)
    thresholds: Thresholds

    @property
    def key_hint(self) -> str:
        return mask(self.api_key)


def _key(raw: object, name: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError(f"{name}: must be a non-empty string")
    return raw.strip()


def parse_secret(raw: str, defaults: Thresholds) -> list[Account]:
    """The secret's accounts. An empty list means the secret still holds the placeholder.

    Accepted: a bare key, {"api_key": "..."}, or {"accounts": [{"name", "api_key", ...}]}.
    """
    text = raw.strip()
    if not text.startswith("{"):
        key = _key(text, "secret")
        return [] if key == PLACEHOLDER else [Account("default", key, defaults)]
    try:
        doc: Any = json.loads(text)
    except ValueError:
        raise ConfigError("secret: looks like JSON but does not parse") from None
    if "accounts" not in doc:
        if "api_key" not in doc:
            raise ConfigError("secret: JSON needs 'api_key' or 'accounts'")
        key = _key(doc["api_key"], "api_key")
        return [] if key == PLACEHOLDER else [Account("default", key, defaults)]
    entries = doc["accounts"]
    if not isinstance(entries, list) or not entries:
        raise ConfigError("accounts: must be a non-empty list")
    accounts: list[Account] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        where = f"accounts[{index}]."
        if not isinstance(entry, dict):
            raise ConfigError(f"accounts[{index}]: must be an object")
        name = entry.get("name")
        if not isinstance(name, str) or not ACCOUNT_NAME.match(name):
            raise ConfigError(f"{where}name: 1-64 letters, digits, '.', '_' or '-'")
        if name in seen:
            raise ConfigError(f"{where}name: {name!r} appears twice")
        seen.add(name)
        key = _key(entry.get("api_key"), f"{where}api_key")
        # Per-account overrides; the error names the field as `accounts[N].warning_threshold`.
        named = {f"{where}{attribute}": value for attribute, value in entry.items()}
        thresholds = parse_thresholds(named, (f"{where}warning_threshold", f"{where}critical_threshold"), defaults)
        if key != PLACEHOLDER:
            accounts.append(Account(name, key, thresholds))
    return accounts

"""Configuration, parsed once into typed objects. Every error names the field that is wrong."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from creditwatch import providers
from creditwatch.domain import Policy, Threshold, Thresholds
from creditwatch.http import RETRIES
from creditwatch.redaction import mask

PLACEHOLDER = "REPLACE_WITH_API_KEY"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
THRESHOLD_VARIABLES = ("WARNING_THRESHOLD", "CRITICAL_THRESHOLD")
ACCOUNT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
API_KEY = re.compile(r"[!-~]{8,1024}")  # visible ASCII: what an HTTP header can carry as it is
EVENT_BUS = re.compile(r"[A-Za-z0-9._/-]{1,256}")
LOG_GROUP = re.compile(r"[A-Za-z0-9._/#-]{1,512}")
URL_TEXT = re.compile(r"[A-Za-z0-9._~:/\[\]%-]{1,2048}")


class ConfigError(ValueError):
    """Invalid configuration. The message names the field and never holds a secret value."""


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
        # An inherited threshold yields to the one that was set: warning is at least critical.
        if names[0] not in fields and defaults is not None:
            return Thresholds(critical, critical)
        if names[1] not in fields and defaults is not None:
            return Thresholds(warning, warning)
        raise ConfigError(f"{names[1]}: {critical} is above the warning threshold {warning}")
    return Thresholds(warning, critical)


def parse_base_url(raw: str) -> str:
    """https://host[:port][/path], or http:// for loopback only, parsed as the HTTP client will.

    urllib3 (under requests) parses the URL that is sent; the standard library's parser is asked
    too, and any value the two read differently, or that carries userinfo, a query, a fragment
    or a character outside a URL's plain alphabet, is refused rather than guessed at.
    """
    problem = "BASE_URL: must be an https:// URL (plain http:// only for 127.0.0.1 or localhost)"
    if not URL_TEXT.fullmatch(raw):
        raise ConfigError(problem)
    try:
        parts = parse_url(raw)
        other = urlsplit(raw)
        other_port = other.port
    except (LocationParseError, ValueError):
        raise ConfigError(problem) from None
    host = (parts.host or "").strip("[]").lower()
    agreed = (parts.scheme, host, parts.port) == (other.scheme, (other.hostname or "").lower(), other_port)
    if not agreed or parts.auth or other.username is not None or parts.query or parts.fragment or not host:
        raise ConfigError(problem)
    if parts.scheme not in ("https", "http") or (parts.scheme == "http" and host not in LOOPBACK_HOSTS):
        raise ConfigError(problem)
    return parts.url.rstrip("/")


def _positive_int(env: Mapping[str, str], name: str, default: int, minimum: int = 1, maximum: int = 10_000) -> int:
    raw = env.get(name, "").strip() or str(default)
    if not raw.isascii() or not raw.isdigit() or len(raw) > 6:
        raise ConfigError(f"{name}: {raw[:20]!r} is not a whole number from {minimum} to {maximum}")
    value = int(raw)
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name}: must be from {minimum} to {maximum}, got {value}")
    return value


def _positive_number(env: Mapping[str, str], name: str, default: str, maximum: int = 36_500) -> Decimal:
    raw = env.get(name, "").strip() or default
    try:
        value = Decimal(raw) if len(raw) <= 20 else Decimal("NaN")
    except InvalidOperation:
        raise ConfigError(f"{name}: {raw[:20]!r} is not a number") from None
    if not value.is_finite() or not 0 < value <= maximum:
        raise ConfigError(f"{name}: must be a positive number up to {maximum}, got {raw[:20]!r}")
    return value


def _provider(name: str) -> providers.Provider:
    """The provider PROVIDER names. A definition that is itself invalid raises its own error,
    which names its file and field."""
    try:
        return providers.load(name)
    except providers.DefinitionError:
        raise
    except ValueError as error:
        raise ConfigError(f"PROVIDER: {error}") from None


def _event_bus(name: str) -> str:
    if not EVENT_BUS.fullmatch(name):
        raise ConfigError("EVENT_BUS_NAME: an event bus name (letters, digits, '.', '_', '-', '/'; 1-256)")
    return name


def _log_group(name: str) -> str | None:
    if name and not LOG_GROUP.fullmatch(name):
        raise ConfigError("ACCOUNTS_LOG_GROUP: a log group name (letters, digits, '.', '_', '-', '/', '#'; 1-512)")
    return name or None


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name}: required environment variable is missing or empty")
    return value


class Settings(NamedTuple):
    provider: providers.Provider
    secret_name: str  # the provider's secret; more secrets may sit under `<secret_name>/`
    table_name: str
    topic_arn: str
    thresholds: Thresholds
    base_url: str | None = None
    max_concurrency: int = 16  # checks in flight at once
    accounts_per_shard: int = 1000  # a run over more accounts fans out shards of this size
    shard_queue_url: str | None = None  # where shards go; without it every run checks inline
    event_bus: str = "default"  # the EventBridge bus every alert is also put on
    account_series: int = 20  # series of accounts' own a run may publish (the fleet's are apart)
    accounts_log_group: str | None = None  # the journal: every account's line each run
    retention_days: int = 90
    failures_before_alert: int = 3
    metrics_namespace: str = "CreditWatch"
    burn_window_hours: int = 72
    forecast_warning_days: Decimal = Decimal(7)
    forecast_critical_days: Decimal = Decimal(2)
    remind_after_hours: int = 24  # 0: no reminders
    spike_window_hours: int = 6
    spike_factor: Decimal = Decimal(3)
    spike_minimum_credits: Decimal = Decimal(100)
    schedule: str = "1h"  # how often the provider is checked (a providers.SCHEDULES choice)

    def policy(self, thresholds: Thresholds) -> Policy:
        """The alerting rules for one account, with that account's thresholds."""
        return Policy(
            thresholds=thresholds,
            failures_before_alert=self.failures_before_alert,
            burn_window=timedelta(hours=self.burn_window_hours),
            forecast_warning_days=self.forecast_warning_days,
            forecast_critical_days=self.forecast_critical_days,
            remind_after=timedelta(hours=self.remind_after_hours) if self.remind_after_hours else None,
            spike_window=timedelta(hours=self.spike_window_hours),
            spike_factor=self.spike_factor,
            spike_minimum=self.spike_minimum_credits,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        base_url = env.get("BASE_URL", "").strip()
        warning_days = _positive_number(env, "FORECAST_WARNING_DAYS", "7")
        critical_days = _positive_number(env, "FORECAST_CRITICAL_DAYS", "2")
        if critical_days > warning_days:
            raise ConfigError(f"FORECAST_CRITICAL_DAYS: {critical_days} is above FORECAST_WARNING_DAYS {warning_days}")
        burn_window_hours = _positive_int(env, "BURN_WINDOW_HOURS", 72, maximum=8760)
        spike_window_hours = _positive_int(env, "SPIKE_WINDOW_HOURS", 6, maximum=4380)
        if 2 * spike_window_hours > burn_window_hours:
            raise ConfigError(
                f"SPIKE_WINDOW_HOURS: {spike_window_hours} is more than half of BURN_WINDOW_HOURS {burn_window_hours}"
                " (a spike is measured against the window before it)"
            )
        provider = _provider(_required(env, "PROVIDER"))
        return cls(
            provider=provider,
            secret_name=_required(env, "SECRET_NAME"),
            table_name=_required(env, "TABLE_NAME"),
            topic_arn=_required(env, "TOPIC_ARN"),
            thresholds=parse_thresholds(
                {name: _required(env, name) for name in THRESHOLD_VARIABLES}, THRESHOLD_VARIABLES
            ),
            base_url=parse_base_url(base_url) if base_url else None,
            max_concurrency=_positive_int(env, "MAX_CONCURRENCY", 16, maximum=64),
            accounts_per_shard=_positive_int(env, "ACCOUNTS_PER_SHARD", 1000, minimum=10, maximum=3000),
            shard_queue_url=env.get("SHARD_QUEUE_URL", "").strip() or None,
            event_bus=_event_bus(env.get("EVENT_BUS_NAME", "").strip() or "default"),
            account_series=_positive_int(env, "ACCOUNT_SERIES", 20, minimum=0, maximum=500),
            accounts_log_group=_log_group(env.get("ACCOUNTS_LOG_GROUP", "").strip()),
            retention_days=_positive_int(env, "RETENTION_DAYS", 90, maximum=3650),
            failures_before_alert=_positive_int(env, "FAILURES_BEFORE_ALERT", 3, maximum=1000),
            metrics_namespace=env.get("POWERTOOLS_METRICS_NAMESPACE", "").strip() or "CreditWatch",
            burn_window_hours=burn_window_hours,
            spike_window_hours=spike_window_hours,
            spike_factor=_positive_number(env, "SPIKE_FACTOR", "3", maximum=1000),
            spike_minimum_credits=_positive_number(env, "SPIKE_MINIMUM_CREDITS", "100", maximum=10**12),
            forecast_warning_days=warning_days,
            forecast_critical_days=critical_days,
            remind_after_hours=_positive_int(env, "REMIND_AFTER_HOURS", 24, minimum=0, maximum=8760),
            schedule=schedule(env, provider),
        )

    @property
    def period(self) -> int:
        """Seconds between two runs."""
        return providers.SCHEDULES[self.schedule]


def schedule(env: Mapping[str, str], provider: providers.Provider) -> str:
    """How often the provider is checked: its entry in PROVIDER_SCHEDULES (`name=choice,...`,
    the stack's overrides), else its definition's `schedule`, else SCHEDULE (the stack's
    default). A schedule whose checks, with every retry, could pass the provider's documented
    daily limit per key is refused."""
    choices = ", ".join(providers.SCHEDULES)
    overrides = {}
    for entry in filter(None, (part.strip() for part in env.get("PROVIDER_SCHEDULES", "").split(","))):
        name, _, choice = entry.partition("=")
        if name not in providers.names():
            raise ConfigError(f"PROVIDER_SCHEDULES: {entry[:60]!r} names no defined provider")
        if choice not in providers.SCHEDULES:
            raise ConfigError(f"PROVIDER_SCHEDULES: {entry[:60]!r}: the schedule must be one of {choices}")
        overrides[name] = choice
    default = env.get("SCHEDULE", "").strip() or "1h"
    if default not in providers.SCHEDULES:
        raise ConfigError(f"SCHEDULE: must be one of {choices}, got {default[:20]!r}")
    chosen = overrides.get(provider.name) or provider.schedule or default
    limit = provider.rate_limit.per_day if provider.rate_limit else None
    requests = 86400 // providers.SCHEDULES[chosen] * (1 + RETRIES)
    if limit is not None and requests > limit:
        field = "PROVIDER_SCHEDULES" if provider.name in overrides else "SCHEDULE"
        raise ConfigError(
            f"{field}: checking {provider.name} every {chosen} could make {requests} requests a day per key,"
            f" over its documented {limit}"
        )
    return chosen


@dataclass(frozen=True)
class Account:
    """One key to check. An entry whose configuration is wrong keeps its `problem` (naming the
    field) and is not checked: it alerts as a failed check while the other accounts run."""

    name: str
    api_key: str = field(repr=False)
    thresholds: Thresholds
    problem: str | None = None

    @property
    def key_hint(self) -> str:
        return mask(self.api_key)


def _key(raw: object, name: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError(f"{name}: must be a non-empty string")
    key = raw.strip()
    if not API_KEY.fullmatch(key):
        bad = next((index for index, char in enumerate(key) if not "!" <= char <= "~"), None)
        where = f" (position {bad + 1} is a space, a control character or not ASCII)" if bad is not None else ""
        raise ConfigError(f"{name}: must be 8-1024 visible ASCII characters{where}")
    return key


def secret_text(raw: str | bytes) -> str:
    """The secret as text: a binary secret must be UTF-8; a byte-order mark is dropped."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError("secret: a binary secret must be UTF-8 text") from None
    return raw.lstrip("\ufeff").strip()


def parse_secret(
    raw: str | bytes, defaults: Thresholds, label: str = "", seen: set[str] | None = None
) -> list[Account]:
    """The secret's accounts. An empty list means the secret still holds the placeholder.

    Accepted: a bare key, {"api_key": "..."}, or {"accounts": [{"name", "api_key", ...}]}. An
    error in the secret as a whole raises ConfigError; an error in one entry of `accounts`
    costs only that entry (see Account.problem).

    `label` is set for the secrets under the provider's own (`<secret>/<label>`): it names
    a bare key's account and prefixes every error. Names in `seen` (other secrets') are taken.
    """
    seen = set() if seen is None else seen
    where = f"{label}: " if label else ""
    text = secret_text(raw)
    single = label or "default"
    if not text.startswith(("{", "[")):
        key = _key(text, f"{where}secret")
        return [] if key == PLACEHOLDER else [_single(single, key, defaults, seen, where)]
    try:
        doc: Any = json.loads(text)
    except (ValueError, RecursionError):
        raise ConfigError(f"{where}secret: looks like JSON but does not parse") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}secret: JSON must be an object with 'api_key' or 'accounts'")
    if "accounts" not in doc:
        if "api_key" not in doc:
            raise ConfigError(f"{where}secret: JSON needs 'api_key' or 'accounts'")
        key = _key(doc["api_key"], f"{where}api_key")
        return [] if key == PLACEHOLDER else [_single(single, key, defaults, seen, where)]
    entries = doc["accounts"]
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where}accounts: must be a non-empty list")
    accounts: list[Account] = []
    for index, entry in enumerate(entries):
        account = _entry(index, entry, defaults, seen, label)
        if account is not None:
            seen.add(account.name)
            accounts.append(account)
    return accounts


def _single(name: str, key: str, defaults: Thresholds, seen: set[str], where: str) -> Account:
    """The one account of a secret that holds a bare key, named after the secret."""
    if not ACCOUNT_NAME.fullmatch(name) or name in seen:
        problem = f"{where}secret: a bare key's account takes the secret's name, and {name!r} is not usable or taken"
        return Account(f"{name}/secret", "", defaults, problem=problem)
    seen.add(name)
    return Account(name, key, defaults)


def _entry(index: int, entry: object, defaults: Thresholds, seen: set[str], label: str = "") -> Account | None:
    """One entry of `accounts`; None for a placeholder key."""
    where = f"{label}: accounts[{index}]" if label else f"accounts[{index}]"
    # An entry without a usable name is known by its position, which no valid name can be.
    name = entry.get("name") if isinstance(entry, dict) else None
    usable_name = isinstance(name, str) and ACCOUNT_NAME.fullmatch(name) is not None and name not in seen
    try:
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: must be an object")
        if not usable_name:
            if isinstance(name, str) and name in seen:
                raise ConfigError(f"{where}.name: {name!r} appears twice")
            raise ConfigError(f"{where}.name: 1-64 letters, digits, '.', '_' or '-'")
        key = _key(entry.get("api_key"), f"{where}.api_key")
        # Per-account overrides; the error names the field as `accounts[N].warning_threshold`.
        named = {f"{where}.{attribute}": value for attribute, value in entry.items()}
        thresholds = parse_thresholds(named, (f"{where}.warning_threshold", f"{where}.critical_threshold"), defaults)
    except ConfigError as error:
        position = f"{label}/accounts[{index}]" if label else f"accounts[{index}]"
        return Account(str(name) if usable_name else position, "", defaults, problem=str(error))
    return None if key == PLACEHOLDER else Account(str(name), key, thresholds)

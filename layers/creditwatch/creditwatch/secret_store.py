"""Reads a provider's accounts from Secrets Manager, cached by Powertools Parameters.

A fleet may span several secrets: the provider's own, `<stack>/<provider>`, and any number
under it, `<stack>/<provider>/<label>`. They are read together with BatchGetSecretValue, a
name filter and 20 secrets a call, through a Powertools parameter provider, so warm runs
reuse them for SECRET_MAX_AGE seconds like any cached parameter.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.parameters.base import BaseProvider

from creditwatch.config import Account, ConfigError, parse_secret
from creditwatch.domain import Thresholds
from creditwatch.redaction import redact

SECRET_MAX_AGE = 300  # seconds a warm function reuses its secrets before reading them again
PAGE_SIZE = 20  # secrets per BatchGetSecretValue call, the API's maximum with a filter


class Unreadable(str):
    """A secret of the fleet that Secrets Manager would not return: its error code."""


class FleetSecrets(BaseProvider):
    """Powertools parameter provider for a fleet: `get_multiple(name)` is every secret named
    `name` or `name/...`, as {secret name: value}, an unreadable one as Unreadable."""

    def __init__(self, client: Any) -> None:
        super().__init__(client=client)  # type: ignore[no-untyped-call]
        self.client = client

    def _get(self, name: str, **sdk_options: Any) -> str:
        raise NotImplementedError("a fleet is read whole, with get_multiple")

    def _get_multiple(self, path: str, **sdk_options: Any) -> dict[str, Any]:
        # The name filter is a case-insensitive prefix: `<stack>/clado` also matches another
        # provider's `<stack>/cladoplus`, whose secrets are not this fleet's (nor readable).
        def ours(name: str) -> bool:
            return name == path or name.startswith(f"{path}/")

        found: dict[str, Any] = {}
        request: dict[str, Any] = {"Filters": [{"Key": "name", "Values": [path]}], "MaxResults": PAGE_SIZE}
        while True:
            page = self.client.batch_get_secret_value(**request)
            for secret in page.get("SecretValues", []):
                if ours(secret["Name"]):
                    found[secret["Name"]] = secret.get("SecretString", secret.get("SecretBinary"))
            for error in page.get("Errors", []):
                name = secret_name(error.get("SecretId", ""))
                if ours(name):
                    found[name] = Unreadable(error.get("ErrorCode", "error"))
            if not page.get("NextToken"):
                return found
            request["NextToken"] = page["NextToken"]


def secret_name(secret_id: str) -> str:
    """A secret's name from its name or ARN (`arn:...:secret:<name>-<6 characters>`)."""
    if secret_id.startswith("arn:") and ":secret:" in secret_id:
        return secret_id.split(":secret:", 1)[1][:-7]
    return secret_id


@cache
def fleet() -> FleetSecrets:
    """One provider per execution environment, so its cache outlives the invocation."""
    return FleetSecrets(boto3.client("secretsmanager"))


def load_accounts(secret_name: str, defaults: Thresholds) -> list[Account]:
    """Every account of the fleet, its own secret first, the others by name; their keys are
    redacted from every log line from now on.

    A secret that cannot be read or parsed becomes one account named after the secret, whose
    problem alerts as a failed check; the other secrets' accounts are checked as usual."""
    secrets = fleet().get_multiple(secret_name, max_age=SECRET_MAX_AGE)
    if secret_name not in secrets:
        raise ConfigError(f"SECRET_NAME: no secret named {secret_name!r}")
    accounts: list[Account] = []
    seen: set[str] = set()
    for name in sorted(secrets, key=lambda name: (name != secret_name, name)):
        raw = secrets[name]
        label = name[len(secret_name) + 1 :]
        try:
            if isinstance(raw, Unreadable):
                raise ConfigError(f"{label or 'secret'}: Secrets Manager refused to return it ({raw[:60]})")
            accounts += parse_secret(raw if isinstance(raw, bytes) else str(raw), defaults, label, seen)
        except ConfigError as error:
            accounts.append(Account(name, "", defaults, problem=str(error)))
    redact.add(account.api_key for account in accounts if account.api_key)
    return accounts

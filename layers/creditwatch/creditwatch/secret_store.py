"""Reads a provider's accounts from Secrets Manager, cached by Powertools Parameters."""

from __future__ import annotations

from aws_lambda_powertools.utilities import parameters

from creditwatch.config import Account, parse_secret
from creditwatch.domain import Thresholds
from creditwatch.redaction import redact

SECRET_MAX_AGE = 300  # seconds a warm function reuses the secret before reading it again


def load_accounts(secret_id: str, defaults: Thresholds) -> list[Account]:
    """The secret's accounts; their keys are redacted from every log line from now on."""
    raw = parameters.get_secret(secret_id, max_age=SECRET_MAX_AGE)
    accounts = parse_secret(raw if isinstance(raw, bytes) else str(raw), defaults)
    redact.add(account.api_key for account in accounts)
    return accounts

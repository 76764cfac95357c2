"""Reads a provider's accounts from Secrets Manager, cached by Powertools Parameters."""

from __future__ import annotations

from aws_lambda_powertools.utilities import parameters

from creditwatch.config import Account, parse_secret
from creditwatch.domain import Thresholds

SECRET_MAX_AGE = 300  # seconds a warm function reuses the secret before reading it again


def load_accounts(secret_id: str, defaults: Thresholds) -> list[Account]:
    raw = parameters.get_secret(secret_id, max_age=SECRET_MAX_AGE)
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return parse_secret(text, defaults)

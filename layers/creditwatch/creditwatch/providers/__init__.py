"""Provider adapters: one small module per provider, each exposing `PROVIDER`.

A provider is its base URL and credits path, how the key is sent, and how the JSON body
becomes balances. Adding one means adding a module here and a block in template.yaml.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, DecimalException
from typing import Any

from boto3.dynamodb.types import DYNAMODB_CONTEXT

from creditwatch.domain import Balance

Body = Mapping[str, Any]


class UnusableResponse(ValueError):
    """The provider answered 2xx with a body that is not a balance."""


@dataclass(frozen=True)
class Provider:
    name: str
    title: str
    base_url: str
    path: str
    auth: Callable[[str], dict[str, str]]
    parse: Callable[[Body], tuple[Balance, ...]]
    top_up: str  # where a person tops up, for alert texts


def header(name: str) -> Callable[[str], dict[str, str]]:
    return lambda api_key: {name: api_key}


def bearer(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


# What every store can hold: DynamoDB keeps 38 significant digits, CloudWatch takes values
# within 2^±360, and the alert text prints the number whole. A balance outside this is garbage.
MAX_DIGITS = 38
MAX_CREDITS = Decimal("1E+28")
MIN_CREDITS = Decimal("1E-28")  # the smallest non-zero balance
NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?")
MAX_NUMBER_TEXT = 64
TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?"
)
MAX_TIMESTAMP = 40


def storable(number: Decimal) -> bool:
    """Finite, non-negative, at most 38 significant digits, and zero or within 1E-28 .. 1E+28."""
    if not number.is_finite() or number < 0:
        return False
    if len(number.as_tuple().digits) > MAX_DIGITS:
        return False
    return number == 0 or MIN_CREDITS <= number < MAX_CREDITS


def number(value: object, name: str) -> Decimal:
    """A storable number from a JSON number or a plain numeric string; anything else is unusable."""
    text = isinstance(value, str) and len(value) <= MAX_NUMBER_TEXT and NUMBER_TEXT.fullmatch(value) is not None
    json_number = isinstance(value, Decimal | int) and not isinstance(value, bool)
    if not (text or json_number):
        raise UnusableResponse(f"field '{name}' is missing or not a number")
    parsed = Decimal(value)  # type: ignore[arg-type]
    if not storable(parsed):
        raise UnusableResponse(f"field '{name}' is not a storable non-negative number")
    return parsed if parsed else Decimal(0)  # -0 becomes 0


def amount(body: Body, name: str) -> Decimal:
    """A storable number from the body's top-level field `name`."""
    return number(body.get(name), name)


def difference(limit: Decimal, used: Decimal, name: str) -> Decimal:
    """limit - used, floored at 0, computed exactly or not at all."""
    try:
        remaining: Decimal = DYNAMODB_CONTEXT.subtract(limit, used)
    except DecimalException:
        raise UnusableResponse(f"'{name}' cannot be computed exactly") from None
    return max(remaining, Decimal(0))


def timestamp(value: object) -> str | None:
    """A provider's own timestamp (Clado's last top-up), or None when it is not one."""
    if isinstance(value, str) and len(value) <= MAX_TIMESTAMP and TIMESTAMP.fullmatch(value):
        return value
    return None


def usable(balances: tuple[Balance, ...]) -> tuple[Balance, ...]:
    """Every balance an adapter built, checked once more against what the stores can hold."""
    if not balances:
        raise UnusableResponse("no balance in body")
    for balance in balances:
        for field_name in ("remaining", "limit", "used"):
            value = getattr(balance, field_name)
            if value is not None and (not isinstance(value, Decimal) or not storable(value)):
                raise UnusableResponse(f"pool '{balance.pool}': {field_name} is not a storable number")
        if balance.topped_up_at is not None and timestamp(balance.topped_up_at) is None:
            raise UnusableResponse(f"pool '{balance.pool}': top-up time is not a timestamp")
    return balances


def single_pool(field: str) -> Callable[[Body], tuple[Balance, ...]]:
    """The common shape: one balance in one field."""
    return lambda body: (Balance(pool="credits", remaining=amount(body, field)),)


def names() -> list[str]:
    """Every provider this package holds: the registry, and the only list of providers."""
    return sorted(module.name for module in pkgutil.iter_modules(__path__) if not module.name.startswith("_"))


def load(name: str) -> Provider:
    """The adapter for `name`, found by module name so no registry needs editing."""
    if not name.isidentifier():
        raise ValueError(f"provider: {name!r} is not a provider name")
    provider: Provider = importlib.import_module(f"{__name__}.{name}").PROVIDER
    return provider


__all__ = [
    "Body",
    "Provider",
    "UnusableResponse",
    "amount",
    "bearer",
    "difference",
    "header",
    "load",
    "names",
    "number",
    "single_pool",
    "storable",
    "timestamp",
    "usable",
]

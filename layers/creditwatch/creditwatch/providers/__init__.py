"""Provider adapters: one small module per provider, each exposing `PROVIDER`.

A provider is its base URL and credits path, how the key is sent, and how the JSON body
becomes balances. Adding one means adding a module here and a block in template.yaml.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

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


def amount(body: Body, name: str) -> Decimal:
    """A non-negative, finite number from the body: JSON numbers or numeric strings."""
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, float, str)):
        raise UnusableResponse(f"field '{name}' is missing or not a number")
    try:
        number = Decimal(value.strip() if isinstance(value, str) else str(value))
    except ArithmeticError:
        raise UnusableResponse(f"field '{name}' is not a number") from None
    if not number.is_finite() or number < 0:
        raise UnusableResponse(f"field '{name}' is not a non-negative finite number")
    return number


def single_pool(field: str) -> Callable[[Body], tuple[Balance, ...]]:
    """The common shape: one balance in one field."""
    return lambda body: (Balance(pool="credits", remaining=amount(body, field)),)


def load(name: str) -> Provider:
    """The adapter for `name`, found by module name so no registry needs editing."""
    if not name.isidentifier():
        raise ValueError(f"provider: {name!r} is not a provider name")
    provider: Provider = importlib.import_module(f"{__name__}.{name}").PROVIDER
    return provider


__all__ = ["Body", "Provider", "UnusableResponse", "amount", "bearer", "header", "load", "single_pool"]

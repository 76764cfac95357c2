"""Hypothesis strategies for what a hostile or broken provider can send, as raw body bytes.

Numbers span the whole Decimal range (any sign, up to 45 digits, exponents far past what
DynamoDB or CloudWatch hold); strings stand where numbers belong; booleans, nulls, nesting
and sizes past the body limit all appear. Field names are the ones the adapters read, so the
garbage reaches the parsing code instead of missing it.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

FIELDS = (
    "credits",
    "remainingCredits",
    "contactsView",
    "maxContacts",
    "directDials",
    "maxDirectDials",
    "last_topup_at",
    "organization_id",
)


class Raw(str):
    """A token written into the JSON text as it is (NaN, a 5,000-digit integer, ...)."""


def numbers() -> st.SearchStrategy[Decimal]:
    return st.builds(
        lambda sign, digits, exponent: Decimal((sign, tuple(digits), exponent)),
        st.integers(0, 1),
        st.lists(st.integers(0, 9), min_size=1, max_size=45),
        st.integers(-200, 200),
    )


def scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        numbers(),
        numbers().map(str),  # numeric strings, storable or not
        st.integers(0, 10**6),
        st.sampled_from(
            [Raw("NaN"), Raw("Infinity"), Raw("-Infinity"), Raw("1" * 5000), "1_000", " 12 ", "1e999999", "sNaN"]
        ),
        st.booleans(),
        st.none(),
        st.text(max_size=40),
        st.integers(0, 120_000).map(lambda n: "x" * n),  # up to past the body limit
        st.sampled_from(["2024-01-15T10:30:00Z", "2026-11-22 10:00", "yesterday", "2024-01-15T10:30:00Z" * 3]),
    )


def values() -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars(),
        lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
        max_leaves=6,
    )


def encode(value: Any) -> str:
    """JSON text, with Decimals written as the number they are and Raw tokens as they are."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else json.dumps(str(value))
    if isinstance(value, list):
        return "[" + ",".join(encode(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{encode(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def bodies() -> st.SearchStrategy[bytes]:
    """Mostly objects with the adapters' field names; sometimes anything at all."""
    objects = st.dictionaries(st.sampled_from(FIELDS), values(), max_size=6).map(encode)
    deep = st.integers(10, 100_000).map(lambda depth: "[" * depth + "]" * depth)
    return st.one_of(
        objects,
        objects,
        objects,
        values().map(encode),
        deep,
        st.binary(max_size=64),
    ).map(lambda body: body if isinstance(body, bytes) else body.encode())

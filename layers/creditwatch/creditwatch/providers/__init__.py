"""Providers as data: each provider is one definition file, `<name>.yaml`, in this folder.

A definition says where the credits endpoint is, how the key travels, and which JMESPath
expressions over the JSON body hold each pool's balance. The engine owns everything risky:
evaluating the expressions on hostile bodies, parsing numbers strictly to Decimal, and checking
every balance against what DynamoDB, CloudWatch and the alert text can hold. A definition is
validated when it loads; an error names the file and the field.

The folder is the registry: `names()` lists it, and tests, the demo and the simulator read it.
The layer's build writes each definition beside it as JSON too, `<name>.json`, which the
deployed function reads instead, so that a cold start does not import a YAML parser.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, DecimalException
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

import jmespath
from boto3.dynamodb.types import DYNAMODB_CONTEXT
from jmespath.exceptions import JMESPathError

from creditwatch.domain import Balance, Checked, iso
from creditwatch.observability import logger

Body = Mapping[str, Any] | list[Any]  # a JSON object, or an array (Clearout)
FOLDER = Path(__file__).parent

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

# Lower-case letters, digits and single inner hyphens. The template's logical IDs keep only the
# letters and digits (Fn::ForEach's &{Name}), so no two names may differ by hyphens alone.
NAME = re.compile(r"[a-z](?:-?[a-z0-9]){0,39}")
POOL = re.compile(r"[a-z0-9_]{1,40}")
TOKEN = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # a header or query parameter name
PATH = re.compile(r"/[A-Za-z0-9._~/-]{0,200}")
BASE_URL = re.compile(r"https://[a-z0-9.-]{1,200}(?::[0-9]{1,5})?")
TEXT = re.compile(r"[ -~]{1,200}")  # printable ASCII, as alert subjects need
# The id of a balance's owner in an answer (Cleanlist's organization_id): it names the balance in
# DynamoDB keys, CloudWatch dimensions and alert texts, so it is held to this.
OWNER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
KEYS = {
    "name",
    "title",
    "docs",
    "request",
    "pools",
    "rejected_when",
    "topped_up_at",
    "renews_at",
    "owner",
    "schedule",
    "unlimited",
    "rate_limit",
    "costs",
    "example",
    "rejected_example",
}
RATE_KEYS = {"per", "per_second", "per_minute", "per_day"}
# How often a provider may be checked: a choice's seconds. The template offers the same choices.
SCHEDULES = {"15m": 900, "30m": 1800, "1h": 3600, "2h": 7200, "3h": 10800, "6h": 21600}
REQUEST_KEYS = {"base_url", "path", "method", "body", "auth"}
MAX_REQUEST_BODY = 1024  # bytes of a documented JSON request body
POOL_FIELDS = ("remaining", "limit", "used")


class UnusableResponse(ValueError):
    """The provider answered 2xx with a body that is not a balance."""


class DefinitionError(ValueError):
    """A provider definition is invalid. The message names the file and the field."""


@dataclass(frozen=True)
class Expression:
    """A JMESPath expression, kept with its text for error messages."""

    source: str
    compiled: Any = field(compare=False)  # the same source compiles to the same expression

    def search(self, body: Body, headers: Mapping[str, str] | None = None) -> Any:
        try:
            return self.compiled.search(body)
        except (JMESPathError, TypeError, ValueError, ArithmeticError, RecursionError):
            raise UnusableResponse(f"'{self.source}' could not be evaluated on this body") from None


class Header(NamedTuple):
    """A value the provider sends in a response header (People Data Labs' X-TotalLimit-Remaining)."""

    name: str

    @property
    def source(self) -> str:
        return f"header {self.name}"

    def search(self, body: Body, headers: Mapping[str, str] | None = None) -> Any:
        return (headers or {}).get(self.name.lower())


class Sum(NamedTuple):
    """A value that is the sum of several fields (NeverBounce: paid plus free credits). Fields
    absent from the answer count for nothing; at least one must be there."""

    parts: tuple[Expression | Header, ...]

    @property
    def source(self) -> str:
        return " + ".join(part.source for part in self.parts)

    def search(self, body: Body, headers: Mapping[str, str] | None = None) -> Any:
        found = tuple(value for value in (part.search(body, headers) for part in self.parts) if value is not None)
        return found or None


Field = Expression | Header | Sum


class Pool(NamedTuple):
    name: str
    remaining: Field | None = None
    limit: Field | None = None
    used: Field | None = None


class RateLimit(NamedTuple):
    """A documented request limit, for one key (`per: key`) or all of the provider's keys
    together (`per: provider`)."""

    per: str
    per_second: int | None = None
    per_minute: int | None = None
    per_day: int | None = None

    @property
    def interval(self) -> float:
        """The least time between two requests that keeps within the per-second and per-minute limits."""
        return max(1 / (self.per_second or 1e9), 60 / (self.per_minute or 1e9))


class Cost(NamedTuple):
    """The credits one record of an operation costs: a documented range, or one figure."""

    least: Decimal
    most: Decimal

    def __str__(self) -> str:
        return f"{self.most}" if self.least == self.most else f"{self.least}-{self.most}"


class Provider(NamedTuple):
    name: str
    title: str
    top_up: str  # where a person tops up or manages keys, for alert texts
    base_url: str
    path: str
    auth: tuple[str, str]  # ("header", name) | ("bearer", "Authorization") | ("query", name)
    pools: tuple[Pool, ...]
    method: str = "GET"
    body: Mapping[str, Any] | None = None  # a POST's documented JSON body
    rejected_when: Expression | None = None
    topped_up_at: Expression | None = None
    renews_at: Expression | None = None  # where the answer says when the quota next renews
    owner: Expression | None = None  # where the answer names the balance's owner, which several keys share
    schedule: str | None = None  # how often to check it, unless the stack says otherwise (a SCHEDULES choice)
    unlimited: frozenset[str] = frozenset()  # values that mean "no limit" ("unlimited", "inf")
    rate_limit: RateLimit | None = None
    costs: Mapping[str, Cost] = MappingProxyType({})  # credits per record of each documented operation
    example: Mapping[str, Any] | None = None  # a documented answer, for the simulator and tests
    rejected_example: tuple[int, Any] | None = None  # the documented answer to a bad key: status, body

    @property
    def reads_headers(self) -> bool:
        """Every pool comes from response headers (People Data Labs), which its answers carry
        whatever their status: the body and a status such as 400 or 404 do not matter."""
        fields = [f for pool in self.pools for f in (pool.remaining, pool.limit, pool.used) if f is not None]
        return all(isinstance(f, Header) for f in fields)

    @property
    def key_interval(self) -> float:
        """Seconds between two attempts with one key (a check's retries). A check makes at most
        three requests, so only a per-second limit needs spacing; the template keeps every
        schedule within a per-key daily limit."""
        per_second = self.rate_limit.per_second if self.rate_limit else None
        return 1 / per_second if per_second else 0.0

    @property
    def provider_interval(self) -> float:
        """Seconds between the starts of any two checks of a run, when the limit is provider-wide."""
        return self.rate_limit.interval if self.rate_limit and self.rate_limit.per == "provider" else 0.0

    def credentials(self, api_key: str) -> tuple[dict[str, str], dict[str, str]]:
        """The headers and query parameters that carry the key."""
        kind, name = self.auth
        if kind == "query":
            return {}, {name: api_key}
        return {name: f"Bearer {api_key}" if kind == "bearer" else api_key}, {}

    def rejects(self, body: Body) -> bool:
        """True when a 200 answer says the key is not valid (`rejected_when`)."""
        return self.rejected_when is not None and self.rejected_when.search(body) is True

    def parse(self, body: Body, headers: Mapping[str, str] | None = None) -> tuple[Balance, ...]:
        """Every pool with a balance in the answer (see `read`)."""
        return self.read(body, headers).balances

    def read(self, body: Body, headers: Mapping[str, str] | None = None) -> Checked:
        """Every pool the answer reports; a pool whose fields are all absent is not in this answer.
        A pool whose balance (`remaining`, or else `limit`) is one of the `unlimited` values has no
        balance to watch: it is listed apart, never judged, and never mistaken for an unknown one.

        `headers` are the response's, their names in lower case."""
        topped_up_at = timestamp(self.topped_up_at.search(body)) if self.topped_up_at else None
        renews_at = self._renewal(body)
        balances, unlimited = [], []
        for pool in self.pools:
            found = {f: getattr(pool, f).search(body, headers) for f in POOL_FIELDS if getattr(pool, f)}
            if all(value is None for value in found.values()):
                continue
            endless = {field for field, value in found.items() if self._unlimited(value)}
            if endless & {"remaining"} or ("remaining" not in found and "limit" in endless):
                unlimited.append(pool.name)
                continue
            values = {f: amount(v, getattr(pool, f).source) for f, v in found.items() if f not in endless}
            remaining = values.get("remaining")
            if remaining is None:
                remaining = difference(values["limit"], values["used"], pool.name)
            balance = Balance(pool.name, remaining, values.get("limit"), values.get("used"), topped_up_at, renews_at)
            balances.append(balance)
        if not balances and not unlimited:
            raise UnusableResponse("none of the definition's pools is in the body")
        return Checked(tuple(balances), tuple(unlimited), self._owner(body))

    def _owner(self, body: Body) -> str | None:
        """The balance's owner, where the definition names one: then every answer must carry
        it, since it decides whose balance the numbers are."""
        if self.owner is None:
            return None
        found = self.owner.search(body)
        if isinstance(found, Decimal) and found == found.to_integral_value() and 0 <= found < 10**20:
            found = str(int(found))  # a numeric id
        if not isinstance(found, str) or not OWNER.fullmatch(found):
            raise UnusableResponse(f"field '{self.owner.source}' is missing or not an owner id ({OWNER.pattern})")
        return found

    def _renewal(self, body: Body) -> str | None:
        """The next renewal, where the definition says the answer gives it. A date that cannot be
        read is ignored with a log line, and the balances stand."""
        if self.renews_at is None:
            return None
        try:
            found = self.renews_at.search(body)
        except UnusableResponse:
            found = "(not evaluable)"
        if found is None:
            return None
        parsed = renewal(found)
        if parsed is None:
            logger.warning("renewal date not readable: ignored", extra={"field": self.renews_at.source})
        return parsed

    def _unlimited(self, value: object) -> bool:
        return isinstance(value, str) and value.strip().lower() in self.unlimited


def _cost_figure(value: object) -> Decimal | None:
    """A definition's cost figure (YAML gives an int or a float) as Decimal, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    amount = Decimal(str(value))
    return amount if amount.is_finite() and 0 <= amount <= 1_000_000 else None


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


def amount(value: object, name: str) -> Decimal:
    """A field's number, or the exact sum of a Sum's values, each a number."""
    if not isinstance(value, tuple):
        return number(value, name)
    total = Decimal(0)
    for part in value:
        try:
            total = DYNAMODB_CONTEXT.add(total, number(part, name))
        except DecimalException:
            raise UnusableResponse(f"'{name}' cannot be computed exactly") from None
    if not storable(total):
        raise UnusableResponse(f"field '{name}' is not a storable non-negative number")
    return total


def difference(limit: Decimal, used: Decimal, name: str) -> Decimal:
    """limit - used, floored at 0: computed exactly, and storable like any number, or not at all."""
    try:
        remaining: Decimal = max(DYNAMODB_CONTEXT.subtract(limit, used), Decimal(0))
    except DecimalException:
        raise UnusableResponse(f"'{name}' cannot be computed exactly") from None
    if not storable(remaining):  # 2E-28 - 1.5E-28 is exact, but below the smallest balance
        raise UnusableResponse(f"'{name}' is not a storable non-negative number")
    return remaining


def timestamp(value: object) -> str | None:
    """A provider's own timestamp (Clado's last top-up), or None when it is not one."""
    if isinstance(value, str) and len(value) <= MAX_TIMESTAMP and TIMESTAMP.fullmatch(value):
        return value
    return None


DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def renewal(value: object) -> str | None:
    """A renewal date, strictly: `YYYY-MM-DD` (midnight UTC; Hunter's `reset_date`), or an ISO
    date and time with its offset (`2026-05-01T00:00:00.000Z`, `2023-06-18 20:52:28+00:00`), as
    ISO UTC to the second; None for anything else, or a time without an offset."""
    if not isinstance(value, str) or len(value) > MAX_TIMESTAMP:
        return None
    try:
        if DATE.fullmatch(value):
            return iso(datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC))
        if not TIMESTAMP.fullmatch(value):
            return None
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return iso(moment) if moment.tzinfo is not None else None


def names() -> list[str]:
    """Every provider defined in this folder: the registry, and the only list of providers."""
    return sorted(path.stem for path in FOLDER.glob("*.yaml"))


@cache
def load(name: str) -> Provider:
    """The provider defined in `<name>.yaml` (or its built form, `<name>.json`), validated."""
    if not NAME.fullmatch(name):
        raise ValueError(f"{name[:40]!r} is not a provider name: {NAME.pattern}")
    if not (FOLDER / f"{name}.yaml").is_file():
        raise ValueError(f"{name!r} is not a defined provider ({', '.join(names())})")
    built = FOLDER / f"{name}.json"
    if built.is_file():
        return definition(f"{name}.yaml", json.loads(built.read_text(encoding="utf-8")))
    return parse_definition(f"{name}.yaml", (FOLDER / f"{name}.yaml").read_text(encoding="utf-8"))


def parse_definition(file: str, text: str) -> Provider:
    """A provider from a definition's YAML text; every error names `file` and the field."""
    import yaml  # here, not at the top: the deployed layer reads JSON and never imports it

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise DefinitionError(f"{file}: (file): not YAML ({type(error).__name__})") from None
    return definition(file, document)


def definition(file: str, document: object) -> Provider:
    """A provider from a parsed definition; every error names `file` and the field."""

    def fail(field: str, problem: str) -> DefinitionError:
        return DefinitionError(f"{file}: {field}: {problem}")

    def string(value: object, field: str, pattern: re.Pattern[str]) -> str:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise fail(field, f"must match {pattern.pattern}")
        return value

    def pool_field(value: object, field: str, sums: bool = True) -> Field:
        if isinstance(value, dict) and sums and "sum" in value:
            parts = mapping(value, field, {"sum"})["sum"]
            if not isinstance(parts, list) or not 2 <= len(parts) <= 8:
                raise fail(f"{field}.sum", "must list 2 to 8 fields")
            return Sum(tuple(pool_field(part, f"{field}.sum[{i}]", sums=False) for i, part in enumerate(parts)))  # type: ignore[misc]
        if isinstance(value, dict):
            return Header(string(mapping(value, field, {"header"}).get("header"), f"{field}.header", TOKEN))
        return expression(value, field)

    def expression(value: object, field: str) -> Expression:
        if not isinstance(value, str) or not value.strip():
            raise fail(field, "must be a JMESPath expression")
        try:
            return Expression(value, jmespath.compile(value))
        except JMESPathError as error:
            raise fail(field, f"not a JMESPath expression ({type(error).__name__})") from None

    def mapping(value: object, field: str, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise fail(field, "must be a mapping")
        if unknown := set(value) - allowed:
            raise fail(field, f"unknown key(s) {sorted(map(str, unknown))}; allowed: {sorted(allowed)}")
        return value

    doc = mapping(document, "(file)", KEYS)
    name = string(doc.get("name"), "name", NAME)
    if f"{name}.yaml" != Path(file).name:
        raise fail("name", f"must be the file's name without .yaml, not {name!r}")
    request = mapping(doc.get("request"), "request", REQUEST_KEYS)
    method = request.get("method", "GET")
    if method not in ("GET", "POST"):
        raise fail("request.method", "GET or POST")
    request_body = request.get("body")
    if request_body is not None:
        if method != "POST" or not isinstance(request_body, dict):
            raise fail("request.body", "a mapping, the documented JSON body, and only with method POST")
        if len(json.dumps(request_body)) > MAX_REQUEST_BODY:
            raise fail("request.body", f"at most {MAX_REQUEST_BODY} bytes as JSON")
    unlimited = doc.get("unlimited", [])
    if not isinstance(unlimited, list) or not all(isinstance(v, str) and TEXT.fullmatch(v) for v in unlimited):
        raise fail("unlimited", "a list of the texts that mean unlimited, such as [unlimited, inf]")
    auth = mapping(request.get("auth"), "request.auth", {"header", "bearer", "query"})
    if len(auth) != 1:
        raise fail("request.auth", "exactly one of {header: NAME} | {bearer: true} | {query: NAME}")
    ((kind, value),) = auth.items()
    if kind == "bearer" and value is not True:
        raise fail("request.auth.bearer", "must be true")
    pools_doc = doc.get("pools")
    if not isinstance(pools_doc, dict) or not pools_doc:
        raise fail("pools", "must map one or more pool names to their fields")
    pools = []
    for pool_name, fields in pools_doc.items():
        where = f"pools.{pool_name}"
        string(pool_name, where, POOL)
        fields = mapping(fields, where, set(POOL_FIELDS))
        if "remaining" not in fields and not {"limit", "used"} <= set(fields):
            raise fail(where, "needs `remaining`, or `limit` and `used`")
        pools.append(Pool(pool_name, **{f: pool_field(v, f"{where}.{f}") for f, v in fields.items()}))
    rate_limit = None
    if "rate_limit" in doc:
        limits = mapping(doc["rate_limit"], "rate_limit", RATE_KEYS)
        if limits.get("per") not in ("key", "provider"):
            raise fail("rate_limit.per", "must be `key` (each key has its own limit) or `provider`")
        counts = {window: limits[window] for window in RATE_KEYS - {"per"} if window in limits}
        for window, count in counts.items():
            if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 1_000_000:
                raise fail(f"rate_limit.{window}", "must be a whole number of requests from 1 to 1000000")
        if not counts:
            raise fail("rate_limit", "needs per_second, per_minute or per_day")
        rate_limit = RateLimit(limits["per"], **counts)
    costs_doc = doc.get("costs", {})
    if not isinstance(costs_doc, dict):
        raise fail("costs", "must map operation names to credits per record")
    costs = {}
    for operation, figure in costs_doc.items():
        where = f"costs.{str(operation)[:40]}"
        string(operation, where, POOL)
        figures = figure if isinstance(figure, list) else [figure]
        amounts = [amount for amount in map(_cost_figure, figures) if amount is not None]
        if len(amounts) != len(figures) or len(amounts) not in (1, 2) or amounts[0] > amounts[-1]:
            raise fail(where, "credits per record: a number from 0 to 1000000, or [least, most]")
        costs[operation] = Cost(amounts[0], amounts[-1])
    schedule = doc.get("schedule")
    if schedule is not None and schedule not in SCHEDULES:
        raise fail("schedule", f"one of {', '.join(SCHEDULES)}")
    example = doc.get("example")
    if example is not None and not isinstance(example, dict):
        raise fail("example", "must be a mapping: a documented answer")
    rejected_example = None
    if "rejected_example" in doc:
        rejected = mapping(doc["rejected_example"], "rejected_example", {"status", "body"})
        status = rejected.get("status")
        if status not in (200, 401, 403) or not isinstance(rejected.get("body"), dict | str):
            raise fail("rejected_example", "{status: 200, 401 or 403, body: the documented answer (JSON or text)}")
        rejected_example = (status, rejected["body"])
    return Provider(
        name=name,
        title=string(doc.get("title"), "title", TEXT),
        top_up=string(doc.get("docs"), "docs", TEXT),
        base_url=string(request.get("base_url"), "request.base_url", BASE_URL),
        path=string(request.get("path"), "request.path", PATH),
        auth=(kind, "Authorization" if kind == "bearer" else string(value, f"request.auth.{kind}", TOKEN)),
        pools=tuple(pools),
        method=method,
        body=MappingProxyType(request_body) if request_body is not None else None,
        rejected_when=expression(doc["rejected_when"], "rejected_when") if "rejected_when" in doc else None,
        topped_up_at=expression(doc["topped_up_at"], "topped_up_at") if "topped_up_at" in doc else None,
        renews_at=expression(doc["renews_at"], "renews_at") if "renews_at" in doc else None,
        owner=expression(doc["owner"], "owner") if "owner" in doc else None,
        schedule=schedule,
        unlimited=frozenset(value.strip().lower() for value in unlimited),
        rate_limit=rate_limit,
        costs=MappingProxyType(costs),
        example=example,
        rejected_example=rejected_example,
    )


__all__ = [
    "SCHEDULES",
    "Body",
    "Cost",
    "DefinitionError",
    "Header",
    "Provider",
    "Sum",
    "UnusableResponse",
    "load",
    "names",
    "number",
    "parse_definition",
    "storable",
]

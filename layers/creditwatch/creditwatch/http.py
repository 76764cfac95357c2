"""Calls a provider's credits endpoint and classifies the answer. Retries come from urllib3."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any, Self

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.util.retry import Retry

from creditwatch.domain import Checked, Exhausted, Outcome, Rejected, Unavailable
from creditwatch.providers import Provider, UnusableResponse

CONNECT_TIMEOUT = 3.05
READ_TIMEOUT = 10.0
MAX_WAIT = 10.0  # longest single back-off or Retry-After wait, in seconds
RETRIES = 3
BACKOFF_FACTOR = 1.0  # urllib3 waits 0s, 2s, 4s ... (capped at MAX_WAIT) between retries
RETRY_STATUSES = (429, 500, 502, 503, 504)


class DeadlineRetry(Retry):
    """urllib3 Retry that stops retrying when another wait and call would pass `deadline`.

    `deadline` is a time.monotonic() value: the Lambda's end, less a margin.
    """

    deadline = float("inf")

    def new(self, **kw: Any) -> Self:
        retry = super().new(**kw)
        retry.deadline = self.deadline
        return retry

    def is_exhausted(self) -> bool:
        out_of_time = time.monotonic() + MAX_WAIT + READ_TIMEOUT > self.deadline
        return out_of_time or super().is_exhausted()


def new_session(deadline: float = float("inf")) -> requests.Session:
    retry = DeadlineRetry(
        total=RETRIES,
        backoff_factor=BACKOFF_FACTOR,
        backoff_max=MAX_WAIT,
        retry_after_max=int(MAX_WAIT),
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET"}),
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    retry.deadline = deadline
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _describe(exc: requests.RequestException) -> str:
    """A failure in words, without the exception text (which can carry the URL and more)."""
    # requests reports a read timeout whose retries ran out as a ConnectionError wrapping it.
    cause = exc.args[0] if exc.args else None
    reason = cause.reason if isinstance(cause, MaxRetryError) else cause
    if isinstance(exc, requests.Timeout) or isinstance(reason, Urllib3Timeout):
        return "the provider timed out"
    if isinstance(exc, requests.exceptions.RetryError):
        return "the provider kept failing after retries"
    return f"the provider could not be reached ({type(exc).__name__})"


def fetch(session: requests.Session, provider: Provider, base_url: str, api_key: str) -> Outcome:
    """One check. Never raises for what the provider does; the reason never holds the key."""
    try:
        response = session.get(
            base_url + provider.path,
            headers={"Accept": "application/json", **provider.auth(api_key)},
            timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        return Unavailable(_describe(exc))
    status = response.status_code
    if status in (401, 403):
        return Rejected(status)
    if status == 402:
        return Exhausted()
    if status != 200:
        return Unavailable(f"the provider answered HTTP {status}")
    try:
        body = json.loads(response.text, parse_float=Decimal, parse_constant=_reject_constant)
        if not isinstance(body, dict):
            raise UnusableResponse("body is not a JSON object")
        return Checked(provider.parse(body))
    except UnusableResponse as exc:
        return Unavailable(f"unusable response: {exc}")
    except ValueError:
        content_type = response.headers.get("Content-Type", "unknown")[:60]
        return Unavailable(f"unusable response: body is not JSON (Content-Type {content_type})")

"""Calls a provider's credits endpoint and classifies the answer. Retries come from urllib3.

Every request is bounded: a body of at most MAX_BODY bytes after decompression, read as it
streams in, and one time budget (REQUEST_BUDGET, never past the run's deadline) that covers
connecting, retrying and reading the body. Connection failures and HTTP 429/5xx are retried;
read timeouts are not, so a hung provider costs one READ_TIMEOUT, not several.
"""

from __future__ import annotations

import json
import time
from contextvars import ContextVar
from decimal import Decimal
from typing import Any, Self

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.util.retry import Retry

from creditwatch.domain import Checked, Exhausted, Outcome, Rejected, Unavailable
from creditwatch.providers import Provider, UnusableResponse

CONNECT_TIMEOUT = 3.05
READ_TIMEOUT = 5.0  # longest wait for one read from the socket
REQUEST_BUDGET = 20.0  # seconds for one check: connect, retries and body together
MAX_WAIT = 5.0  # longest single back-off or Retry-After wait
RETRIES = 2
BACKOFF_FACTOR = 0.5  # urllib3 waits 0 s, 1 s, 2 s ... (capped at MAX_WAIT) between retries
RETRY_STATUSES = (429, 500, 502, 503, 504)
MAX_BODY = 64 * 1024  # a credits answer is a few hundred bytes
CHUNK = 4096

# The end of the current request's budget, as a time.monotonic() value. A context variable,
# so that checks running on several threads each keep their own.
_request_deadline: ContextVar[float] = ContextVar("request_deadline", default=float("inf"))


class DeadlineRetry(Retry):
    """urllib3 Retry that stops retrying when another wait and call would pass a deadline:
    the run's (`deadline`, the Lambda's end less a margin) or the current request's budget."""

    deadline = float("inf")

    def new(self, **kw: Any) -> Self:
        retry = super().new(**kw)
        retry.deadline = self.deadline
        return retry

    def is_exhausted(self) -> bool:
        deadline = min(self.deadline, _request_deadline.get())
        out_of_time = time.monotonic() + MAX_WAIT + READ_TIMEOUT > deadline
        return out_of_time or super().is_exhausted()


def new_session(deadline: float = float("inf"), pool_size: int = 10) -> requests.Session:
    retry = DeadlineRetry(
        total=RETRIES,
        connect=RETRIES,
        read=False,  # a read timeout is raised at once, never retried
        status=RETRIES,
        other=0,
        redirect=0,
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
    adapter = HTTPAdapter(max_retries=retry, pool_connections=pool_size, pool_maxsize=pool_size)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class TooLarge(Exception):
    """The body passed MAX_BODY bytes."""


class TooSlow(Exception):
    """The body was still arriving when the request's budget ran out."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _describe(exc: requests.RequestException | urllib3.exceptions.HTTPError) -> str:
    """A failure in words, without the exception text (which can carry the URL and more)."""
    # requests reports a timeout whose retries ran out as a ConnectionError wrapping urllib3's
    # error; reading the body raw raises urllib3's own errors.
    cause = exc if isinstance(exc, urllib3.exceptions.HTTPError) else (exc.args[0] if exc.args else None)
    reason = cause.reason if isinstance(cause, MaxRetryError) else cause
    if isinstance(reason, NewConnectionError):  # a subclass of urllib3's timeout, but refused
        return f"the provider could not be reached ({type(exc).__name__})"
    if isinstance(exc, requests.Timeout) or isinstance(reason, Urllib3Timeout):
        return "the provider timed out"
    if isinstance(exc, requests.exceptions.RetryError):
        return "the provider kept failing after retries"
    return f"the provider could not be reached ({type(exc).__name__})"


def _read(response: requests.Response, deadline: float) -> bytes:
    """The decompressed body, read chunk by chunk within MAX_BODY bytes and the deadline."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise TooLarge
    body = bytearray()
    # read1 returns after a single read from the socket (and decompresses at most CHUNK bytes
    # of it), so a body dripped a byte at a time still meets the deadline check every read.
    while chunk := response.raw.read1(CHUNK, decode_content=True):
        body += chunk
        if len(body) > MAX_BODY:
            raise TooLarge
        if time.monotonic() > deadline:
            raise TooSlow
    response.raw.release_conn()  # read to the end: the connection goes back to the pool for the next check
    return bytes(body)


def fetch(session: requests.Session, provider: Provider, base_url: str, api_key: str) -> Outcome:
    """One check. Never raises for what the provider does; the reason never holds the key."""
    deadline = time.monotonic() + REQUEST_BUDGET
    token = _request_deadline.set(deadline)
    headers, params = provider.credentials(api_key)
    try:
        with session.get(
            base_url + provider.path,
            headers={"Accept": "application/json", "Accept-Encoding": "gzip, deflate", **headers},
            params=params,
            timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
            allow_redirects=False,
            stream=True,
        ) as response:
            status = response.status_code
            if status in (401, 403):
                return Rejected(status)
            if status == 402:
                return Exhausted()
            if status != 200:
                return Unavailable(f"the provider answered HTTP {status}")
            content = _read(response, deadline)
            answer_headers = {name.lower(): value for name, value in response.headers.items()}
    except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
        return Unavailable(_describe(exc))
    except TooLarge:
        return Unavailable(f"unusable response: body larger than {MAX_BODY} bytes")
    except TooSlow:
        return Unavailable(f"the provider took longer than {REQUEST_BUDGET:g} s to answer")
    finally:
        _request_deadline.reset(token)
    return _classify(provider, content, answer_headers)


def _classify(provider: Provider, content: bytes, headers: dict[str, str] | None = None) -> Outcome:
    try:
        body = json.loads(content, parse_float=Decimal, parse_int=Decimal, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return Unavailable("unusable response: body is not JSON")
    if not isinstance(body, dict):
        return Unavailable("unusable response: body is not a JSON object")
    try:
        if provider.rejects(body):
            return Rejected(200)
        return Checked(provider.parse(body, headers))
    except UnusableResponse as exc:
        return Unavailable(f"unusable response: {exc}")

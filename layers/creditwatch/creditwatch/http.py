"""Calls a provider's credits endpoint and classifies the answer. Retries come from urllib3.

Every request is bounded: a body of at most MAX_BODY bytes after decompression, read as it
streams in, and one time budget (REQUEST_BUDGET, never past the run's deadline) that covers
connecting, retrying and reading the body. Connection failures and HTTP 429/5xx are retried;
read timeouts are not, so a hung provider costs one READ_TIMEOUT, not several.

urllib3 is used directly: botocore imports it anyway, so it costs nothing at cold start, its
PoolManager is thread-safe, and it keeps no cookie jar that could carry one account's session
into another's request.
"""

from __future__ import annotations

import json
import threading
import time
from contextvars import ContextVar
from decimal import Decimal
from typing import Any, Self
from urllib.parse import urlencode

import urllib3
from urllib3.exceptions import HTTPError, MaxRetryError, NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.util.retry import Retry

from creditwatch.domain import Exhausted, Outcome, Rejected, Unavailable
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
    min_interval = 0.0  # seconds between two attempts with one key

    def new(self, **kw: Any) -> Self:
        retry = super().new(**kw)
        retry.deadline, retry.min_interval = self.deadline, self.min_interval
        return retry

    def get_backoff_time(self) -> float:
        return max(super().get_backoff_time(), self.min_interval)

    def is_exhausted(self) -> bool:
        deadline = min(self.deadline, _request_deadline.get())
        out_of_time = time.monotonic() + MAX_WAIT + READ_TIMEOUT > deadline
        return out_of_time or super().is_exhausted()


def new_session(deadline: float = float("inf"), pool_size: int = 16, min_interval: float = 0.0) -> urllib3.PoolManager:
    """Connections for one run: `pool_size` kept open per host (one per concurrent check), and
    retries of one key at least `min_interval` seconds apart (its provider's per-key rate limit)."""
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
        allowed_methods=frozenset({"GET", "POST"}),  # a POST here only reads the balance
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    retry.deadline, retry.min_interval = deadline, min_interval
    timeout = urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT)
    return urllib3.PoolManager(num_pools=4, maxsize=pool_size, retries=retry, timeout=timeout)


class Pacer:
    """Spaces the starts of requests at least `interval` seconds apart, across threads: a
    provider-wide rate limit. Each caller is given its own start time."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._next = 0.0
        self._lock = threading.Lock()

    def slot(self) -> float:
        """The time.monotonic() at which the caller may start its request."""
        with self._lock:
            start = max(time.monotonic(), self._next)
            self._next = start + self.interval
            return start


class TooLarge(Exception):
    """The body passed MAX_BODY bytes."""


class TooSlow(Exception):
    """The body was still arriving when the request's budget ran out."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _describe(exc: HTTPError) -> str:
    """A failure in words, without the exception text (which can carry the URL and more)."""
    reason = exc.reason if isinstance(exc, MaxRetryError) else exc
    if isinstance(reason, NewConnectionError):  # a subclass of urllib3's timeout, but refused
        return f"the provider could not be reached ({type(reason).__name__})"
    if isinstance(reason, Urllib3Timeout):
        return "the provider timed out"
    if isinstance(exc, MaxRetryError):
        return "the provider kept failing after retries"
    return f"the provider could not be reached ({type(reason).__name__})"


def _read(response: urllib3.BaseHTTPResponse, deadline: float) -> bytes:
    """The decompressed body, read chunk by chunk within MAX_BODY bytes and the deadline."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise TooLarge
    body = bytearray()
    # read1 returns after a single read from the socket (and decompresses at most CHUNK bytes
    # of it), so a body dripped a byte at a time still meets the deadline check every read.
    while chunk := response.read1(CHUNK, decode_content=True):
        body += chunk
        if len(body) > MAX_BODY:
            raise TooLarge
        if time.monotonic() > deadline:
            raise TooSlow
    response.release_conn()  # read to the end: the connection goes back to the pool for the next check
    return bytes(body)


def fetch(pool: urllib3.PoolManager, provider: Provider, base_url: str, api_key: str) -> Outcome:
    """One check. Never raises for what the provider does; the reason never holds the key."""
    deadline = time.monotonic() + REQUEST_BUDGET
    token = _request_deadline.set(deadline)
    headers, params = provider.credentials(api_key)
    url = base_url + provider.path
    if params:
        url += "?" + urlencode(params)
    if provider.body is not None:
        headers["Content-Type"] = "application/json"
    try:
        with pool.request(
            provider.method,
            url,
            body=None if provider.body is None else json.dumps(dict(provider.body)).encode(),
            headers={"Accept": "application/json", "Accept-Encoding": "gzip, deflate", **headers},
            redirect=False,
            preload_content=False,
        ) as response:
            status = response.status
            if status in (401, 403):
                return Rejected(status)
            if status == 402:
                return Exhausted()
            # Balances in headers come on any client error too (People Data Labs' 400 or 404);
            # a redirect, 429 or 5xx is never an answer, headers or not.
            if status != 200 and not (provider.reads_headers and 400 <= status < 500 and status != 429):
                return Unavailable(f"the provider answered HTTP {status}")
            content = _read(response, deadline)
            answer_headers = {name.lower(): value for name, value in response.headers.items()}
    except HTTPError as exc:
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
        if not provider.reads_headers:
            return Unavailable("unusable response: body is not JSON")
        body = {}
    # an object, or an array for the definition's expressions to index (Clearout's docs show
    # its answer wrapped in one)
    if not isinstance(body, dict | list):
        if not provider.reads_headers:
            return Unavailable("unusable response: body is not a JSON object")
        body = {}
    try:
        if provider.rejects(body):
            return Rejected(200)
        return provider.read(body, headers)
    except UnusableResponse as exc:
        return Unavailable(f"unusable response: {exc}")

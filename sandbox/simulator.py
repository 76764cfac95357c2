"""A local stand-in for every defined provider's credits endpoint, on 127.0.0.1.

Its routes come from the provider registry: each definition's path and method, and its key
where the definition says it travels (a header, a Bearer token or a query parameter), checked
the way the real API does: a missing or unknown key gets the definition's documented answer
to a bad key (`rejected_example`: ZeroBounce's `{"Credits": -1}` with 200, say), or else 401. A
POST must carry a JSON body; the wrong method gets 405. Each registered key plays a script of
replies; the last reply repeats. Where a definition names the balance's owner (Cleanlist's
organization_id), an answer that does not say it names one of the key's own, as though each key
were its organisation's only one: keys share a balance only where a script says so.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from creditwatch import providers
from creditwatch.providers import Expression, Header, Provider, Sum


def routes(extra: tuple[Provider, ...] = ()) -> dict[str, list[Provider]]:
    """path -> the providers defined there (several may share one path)."""
    table: dict[str, list[Provider]] = {}
    for provider in (*map(providers.load, providers.names()), *extra):
        table.setdefault(provider.path, []).append(provider)
    return table


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = None  # a dict or list is sent as JSON, a str or bytes as it is
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the reply starts
    drip: float = 0.0  # seconds between chunks of the body (a slow or stalling provider)
    chunk: int = 65536  # bytes per chunk written
    length: bool = True  # send Content-Length; without it the body ends when the connection closes


def balance(provider: str, credits: Any, **extra: Any) -> Reply:
    """The provider's documented example answer, with its first pool's balance set to `credits`."""
    definition = providers.load(provider)
    body = copy.deepcopy(dict(definition.example or {}))
    if definition.owner is not None:  # the key's own, unless `extra` names one (see ProviderSimulator)
        body.pop(definition.owner.source, None)
    pool = definition.pools[0]
    field = pool.remaining
    if isinstance(field, Sum):  # the first part holds it all, the others none
        field = field.parts[0]
        for part in pool.remaining.parts[1:]:  # type: ignore[union-attr]
            _put(body, part, 0)
    if isinstance(field, Header):  # a balance sent in a response header
        return Reply(body={**body, **extra}, headers={field.name: str(credits)})
    if field is None:  # limit and used: a limit of `credits` more than is used
        assert isinstance(pool.used, Expression)
        assert isinstance(pool.limit, Expression)
        used = _get(body, pool.used)
        field, credits = pool.limit, credits if isinstance(credits, str) else used + credits
    _put(body, field, credits)
    if definition.topped_up_at is not None:
        body[definition.topped_up_at.source] = None  # never topped up, unless `extra` says so
    return Reply(body={**body, **extra})


def _path(field: Any) -> list[str]:
    """The example's path a.b.c: a plain path, or the first of `a.b || [0].a.b` (Clearout)."""
    return field.source.split(" || ")[0].split(".")


def _get(body: dict[str, Any], field: Any) -> Any:
    for name in _path(field):
        body = body[name]
    return body


def _put(body: dict[str, Any], field: Any, value: Any) -> None:
    *parents, leaf = _path(field)
    for parent in parents:
        body = body.setdefault(parent, {})
    body[leaf] = value


def rejected(provider: Provider) -> Reply:
    """The provider's documented answer to a bad key, or 401."""
    documented = provider.rejected_example
    if documented is None:
        return Reply(401, {"detail": "Unauthorized - API key missing or invalid"})
    status, body = documented
    return Reply(status, copy.deepcopy(body))


def prospect(contacts_used: int, max_contacts: int, dials_used: int, max_dials: int) -> Reply:
    """Clodura's Prospect-plan body: used against limits, with maxContacts as a string."""
    return Reply(
        body={
            "contactsView": contacts_used,
            "maxContacts": str(max_contacts),
            "directDials": dials_used,
            "maxDirectDials": max_dials,
        }
    )


def _owned(provider: Provider, api_key: str | None, reply: Reply) -> Reply:
    """A balance answer of a provider that names its owner, with the key's own where it names none."""
    owner = provider.owner
    if owner is None or reply.status != 200 or not isinstance(reply.body, dict) or owner.source in reply.body:
        return reply
    organisation = "org_" + hashlib.sha256((api_key or "").encode()).hexdigest()[:12]
    return replace(reply, body={**reply.body, owner.source: organisation})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # socketserver's 5 drops the SYNs of 16 concurrent checks (a 1 s retransmit)


class ProviderSimulator:
    def __init__(self, extra: tuple[Provider, ...] = ()) -> None:
        """`extra`: definitions outside the registry to serve as well (a test's own)."""
        self.routes = routes(extra)
        self.defined = {provider.name: provider for defined in self.routes.values() for provider in defined}
        self.scripts: dict[tuple[str, str], list[Reply]] = {}
        self.calls: list[tuple[str, str]] = []  # (provider, path) of every request, authorised or not
        self.arrivals: list[tuple[str, str | None, float]] = []  # (provider, key, time.monotonic())
        self.in_flight = self.peak = 0  # requests waiting for their reply now, and the most at once
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def script(self, provider: str, api_key: str, *replies: Reply) -> None:
        with self._lock:
            self.scripts[(provider, api_key)] = list(replies)

    def calls_to(self, provider: str) -> int:
        return sum(1 for name, _ in self.calls if name == provider)

    def __enter__(self) -> ProviderSimulator:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next_reply(self, provider: str, api_key: str | None) -> Reply:
        with self._lock:
            script = self.scripts.get((provider, api_key or ""))
            if not script:
                return rejected(self.defined[provider])
            return script.pop(0) if len(script) > 1 else script[0]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        simulator = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer("GET")

            def do_POST(self) -> None:
                self._answer("POST")

            def _answer(self, method: str) -> None:
                path, _, query = self.path.partition("?")
                defined = [p for p in simulator.routes.get(path, []) if p.method == method]
                if not defined:
                    self._send(Reply(405 if path in simulator.routes else 404, {"detail": "Not Found"}))
                    return
                if method == "POST":
                    length = int(self.headers.get("Content-Length") or 0)
                    try:
                        json.loads(self.rfile.read(length) or b"?")
                    except ValueError:
                        self._send(Reply(400, {"detail": "the body must be JSON"}))
                        return
                # Where several providers share a path, the one that knows the key answers.
                keys = [(provider.name, self._key(provider, query)) for provider in defined]
                name, api_key = next(((n, k) for n, k in keys if (n, k or "") in simulator.scripts), keys[0])
                simulator.calls.append((name, path))
                with simulator._lock:
                    simulator.arrivals.append((name, api_key, time.monotonic()))
                    simulator.in_flight += 1
                    simulator.peak = max(simulator.peak, simulator.in_flight)
                try:
                    reply = _owned(simulator.defined[name], api_key, simulator._next_reply(name, api_key))
                    time.sleep(reply.delay)
                finally:
                    # before the reply goes out: its client cannot have sent another request yet
                    with simulator._lock:
                        simulator.in_flight -= 1
                self._send(reply)

            def _key(self, provider: Provider, query: str) -> str | None:
                kind, name = provider.auth
                if kind == "query":
                    values = parse_qs(query).get(name)
                    return values[0] if values else None
                value = self.headers.get(name, "")
                if kind == "bearer":
                    return value.removeprefix("Bearer ") if value.startswith("Bearer ") else None
                return value or None

            def _send(self, reply: Reply) -> None:
                raw = isinstance(reply.body, str | bytes)
                payload = reply.body if isinstance(reply.body, bytes) else str(reply.body).encode()
                if not raw:
                    payload = json.dumps(reply.body).encode()
                self.send_response(reply.status)
                content_type = "text/html" if raw else "application/json"
                for name, value in {"Content-Type": content_type, **reply.headers}.items():
                    self.send_header(name, value)
                if reply.length:
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                # A client that gave up (a timeout or size test) has nothing left to receive.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    for start in range(0, len(payload), reply.chunk):
                        self.wfile.write(payload[start : start + reply.chunk])
                        self.wfile.flush()
                        time.sleep(reply.drip)

            def log_message(self, *_: Any) -> None:
                pass

        return Handler

"""Every request is bounded in size, in decompressed size and in time, on a real socket."""

import gzip
import socket
import time
import tracemalloc

import pytest

from creditwatch import http, providers
from creditwatch.domain import Checked, Unavailable
from creditwatch.http import fetch, new_session
from sandbox.harness import LambdaContext, Stack
from sandbox.simulator import ProviderSimulator, Reply, balance

from .conftest import attributes

KEY = "lm_live_bounded_0123456789"
LEADMAGIC = providers.load("leadmagic")


def check(simulator: ProviderSimulator, reply: Reply) -> tuple[object, float, float]:
    """One check of LeadMagic: its outcome, seconds taken and peak traced MiB."""
    simulator.script("leadmagic", KEY, reply)
    tracemalloc.start()
    started = time.monotonic()
    try:
        outcome = fetch(new_session(), LEADMAGIC, simulator.base_url, KEY)
    finally:
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return outcome, time.monotonic() - started, peak


@pytest.mark.parametrize("length", [True, False], ids=["declared", "undeclared"])
def test_a_body_past_the_limit_is_refused_while_it_streams(simulator, length):
    body = b'{"credits": 1, "padding": "' + b"x" * (20 * 2**20) + b'"}'
    outcome, _, peak = check(simulator, Reply(body=body, length=length, headers={"Content-Type": "application/json"}))
    assert outcome == Unavailable(f"unusable response: body larger than {http.MAX_BODY} bytes")
    assert peak < 4  # MiB: the 20 MiB body was never held


def test_a_compressed_body_is_bounded_after_decompression(simulator):
    bomb = gzip.compress(b'{"credits": 1, "padding": "' + b"0" * (40 * 2**20) + b'"}')
    assert len(bomb) < http.MAX_BODY  # small on the wire
    reply = Reply(body=bomb, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
    outcome, _, peak = check(simulator, reply)
    assert outcome == Unavailable(f"unusable response: body larger than {http.MAX_BODY} bytes")
    assert peak < 4  # MiB: 40 MiB inflated would have shown here


def test_a_small_compressed_body_is_read(simulator):
    reply = Reply(body=gzip.compress(b'{"credits": 12.5}'), headers={"Content-Encoding": "gzip"})
    outcome, _, _ = check(simulator, reply)
    assert isinstance(outcome, Checked)


def test_a_dripped_body_is_cut_off_at_the_request_budget(simulator, monkeypatch):
    monkeypatch.setattr(http, "REQUEST_BUDGET", 1.0)
    body = b'{"credits": 1' + b" " * 200 + b"}"  # 20 s to arrive, a byte every 0.1 s
    outcome, seconds, _ = check(simulator, Reply(body=body, chunk=1, drip=0.1))
    assert outcome == Unavailable("the provider took longer than 1 s to answer")
    assert seconds < 1.5  # the budget, plus at most the one read under way


def test_a_hung_provider_costs_one_read_timeout_and_is_not_retried(simulator, monkeypatch):
    monkeypatch.setattr(http, "READ_TIMEOUT", 0.3)
    outcome, seconds, _ = check(simulator, Reply(body={"credits": 1}, delay=2.0))
    assert outcome == Unavailable("the provider timed out")
    assert simulator.calls_to("leadmagic") == 1
    assert seconds < 1.0


def test_a_refused_connection_is_retried_then_transient():
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    outcome = fetch(new_session(), LEADMAGIC, f"http://127.0.0.1:{port}", KEY)
    assert outcome == Unavailable("the provider could not be reached (NewConnectionError)")
    assert time.monotonic() - started < http.REQUEST_BUDGET


def test_a_redirect_is_not_followed(simulator):
    outcome, _, _ = check(simulator, Reply(302, {"moved": True}, headers={"Location": "https://elsewhere.example/"}))
    assert outcome == Unavailable("the provider answered HTTP 302")
    assert simulator.calls_to("leadmagic") == 1


def test_one_hung_key_does_not_starve_the_others(stack: Stack, simulator, monkeypatch):
    monkeypatch.setattr(http, "READ_TIMEOUT", 0.5)
    keys = {f"acct-{n}": f"lm-key-{n:02d}-xxxxxxxx" for n in range(6)}
    for key in keys.values():
        simulator.script("leadmagic", key, balance("leadmagic", 50_000))
    simulator.script("leadmagic", keys["acct-0"], Reply(body={"credits": 1}, delay=30))
    stack.put_secret("leadmagic", {"accounts": [{"name": n, "api_key": k} for n, k in keys.items()]})

    result = stack.invoke("leadmagic", stack.environment("leadmagic", simulator.base_url, FAILURES_BEFORE_ALERT="1"))

    assert (result["unchecked"], result["failed_checks"]) == (0, 1)
    (alert,) = stack.alerts()
    assert attributes(alert)["account"] == "acct-0"
    assert "timed out" in alert["Message"]


def test_a_run_short_of_time_never_skips_the_same_accounts(stack: Stack, simulator, monkeypatch):
    """Each run starts where the last one ran out of time: three runs with time for one
    account check each once.
    One check at a time, so that time, not concurrency, decides how many are checked."""
    from creditwatch import monitor

    monkeypatch.setattr(monitor, "REQUEST_BUDGET", 1.0)
    keys = {name: f"lm-key-{name}-xxxxxxxx" for name in ("a", "b", "c")}
    for key in keys.values():
        simulator.script("leadmagic", key, Reply(body={"credits": 50_000}, delay=0.5))
    stack.put_secret("leadmagic", {"accounts": [{"name": n, "api_key": k} for n, k in keys.items()]})
    env = stack.environment("leadmagic", simulator.base_url, MAX_CONCURRENCY="1")
    # time for one account: the second would start 0.5 s later, past budget + 0.3 s
    short = LambdaContext(remaining_ms=int((monitor.TIME_MARGIN + 1.3) * 1000))

    checked = []
    for _ in range(3):
        before = {i["account"] for i in stack.items() if i["sk"].startswith("SNAP#")}
        result = stack.invoke("leadmagic", env, context=short)
        assert result["unchecked"] == 2
        after = {i["account"] for i in stack.items() if i["sk"].startswith("SNAP#")}
        checked += sorted(after - before)

    assert sorted(checked) == ["a", "b", "c"]


def test_a_body_read_to_the_end_gives_its_connection_back_to_the_pool(simulator):
    simulator.script("leadmagic", KEY, balance("leadmagic", 5))
    session = new_session()
    for _ in range(5):
        assert isinstance(fetch(session, LEADMAGIC, simulator.base_url, KEY), Checked)
    (pool,) = session.pools._container.values()
    assert pool.num_connections == 1

"""Fault injection at every AWS call a run makes, alone and two in a row, then healthy runs.

The promise: every change of state is alerted exactly once. The one exception is named: when
SNS took an alert and the write confirming it then fails, the next run sends it again (with
the same alert id) rather than risk losing it.
"""

import contextlib
from collections import Counter
from collections.abc import Iterator

import pytest
from moto import mock_aws

from creditwatch.monitor import RunIncomplete
from sandbox.harness import LambdaContext, Stack, reset_powertools
from sandbox.simulator import ProviderSimulator, Reply, balance

from .conftest import Clock, Faults, attributes

ACCOUNTS = {
    "low": ("lm-key-low-0000000001", balance("leadmagic", 50)),
    "fine": ("lm-key-fine-000000002", balance("leadmagic", 50_000)),
    "revoked": ("lm-key-revoked-000003", Reply(401, {"detail": "revoked"})),
}
EXPECTED = Counter({("low", "low_credits"): 1, ("revoked", "check_failed"): 1})


def fresh_stack(simulator: ProviderSimulator) -> tuple[Stack, dict[str, str]]:
    reset_powertools()
    stack = Stack()
    stack.put_secret("leadmagic", {"accounts": [{"name": n, "api_key": k} for n, (k, _) in ACCOUNTS.items()]})
    for key, reply in ACCOUNTS.values():
        simulator.script("leadmagic", key, reply)
    return stack, stack.environment("leadmagic", simulator.base_url)


def invoke(stack: Stack, env: dict[str, str]) -> None:
    with contextlib.suppress(Exception):  # a faulted run may fail; the runs after it must mend it
        stack.invoke("leadmagic", env, context=LambdaContext(remaining_ms=60_000))


def delivered(stack: Stack) -> Counter:
    return Counter((attributes(a)["account"], attributes(a)["alert"]) for a in stack.alerts())


def events(stack: Stack) -> Counter:
    return Counter((e["detail"]["account"], e["detail"]["alert"]) for e in stack.events())


def healthy_trace(simulator: ProviderSimulator, faults: Faults) -> list[str]:
    with mock_aws():
        stack, env = fresh_stack(simulator)
        faults.fail()
        invoke(stack, env)
        calls = list(faults.calls)  # the run's own calls, before the test reads its inbox
        assert delivered(stack) == EXPECTED
        assert events(stack) == EXPECTED
        return calls


def cases(trace: list[str]) -> Iterator[tuple[int, ...]]:
    positions = range(1, len(trace) + 1)
    yield from ((p,) for p in positions)
    yield from ((p, p + 1) for p in positions if p < len(trace))


def confirm_after_sent(calls: list[str], failed: tuple[int, ...]) -> bool:
    """A failed PutItem that confirmed an alert a channel (SNS, EventBridge) had just taken."""
    for p in failed:
        if not 1 <= p <= len(calls) or calls[p - 1] != "PutItem":
            continue
        sends, q = [], p - 1
        while q >= 1 and calls[q - 1] in ("Publish", "PutEvents"):
            sends.append(q)
            q -= 1
        if any(send not in failed for send in sends):
            return True
    return False


def test_every_fault_then_healthy_runs_alerts_each_change_exactly_once(simulator, faults: Faults, clock: Clock):
    trace = healthy_trace(simulator, faults)
    assert {"BatchGetSecretValue", "BatchGetItem", "BatchWriteItem", "PutItem", "Publish", "PutEvents"} <= set(trace)
    results = {}
    for failed in cases(trace):
        with mock_aws():
            stack, env = fresh_stack(simulator)
            faults.fail(*failed)
            invoke(stack, env)
            calls = list(faults.calls)
            faults.fail()
            for _ in range(2):
                clock.advance(minutes=10)  # past the faulted run's leases
                invoke(stack, env)
            got, put = delivered(stack), events(stack)
            ids = Counter(a["MessageAttributes"]["alert_id"]["Value"] for a in stack.alerts())
            event_ids = Counter(e["detail"]["alert_id"] for e in stack.events())
        if confirm_after_sent(calls, failed):
            # at least once: nothing lost, and a repeat carries the same id
            ok = all(
                set(counts) == set(EXPECTED) and max(counts.values()) <= 2 and len(unique) == len(EXPECTED)
                for counts, unique in ((got, ids), (put, event_ids))
            )
        else:
            ok = got == EXPECTED and put == EXPECTED
        results[failed] = (ok, [calls[p - 1] for p in failed if p <= len(calls)], dict(got))
    resent = [case for case, (_, _, got) in results.items() if max(got.values(), default=0) > 1]
    print(f"\nfault cases: {len(results)} over the run's {len(trace)} calls {trace}; resent once: {resent}")
    wrong = {case: result for case, result in results.items() if not result[0]}
    assert not wrong, f"{len(wrong)} of {len(results)} fault cases alerted wrongly: {wrong}"
    assert len(results) >= 2 * len(trace) - 1


@pytest.fixture
def low_account(stack: Stack, simulator: ProviderSimulator) -> dict[str, str]:
    key, reply = ACCOUNTS["low"]
    simulator.script("leadmagic", key, reply)
    stack.put_secret("leadmagic", {"accounts": [{"name": "low", "api_key": key}]})
    return stack.environment("leadmagic", simulator.base_url)


def test_publish_refused_then_release_refused_is_sent_by_a_run_after_the_lease(
    stack: Stack, low_account, faults: Faults, clock: Clock
):
    """The double fault that used to lose an alert: SNS and EventBridge refuse, then the write
    that would free the alert fails too. The alert waits in the outbox and is sent once, later."""
    faults.fail_from("Publish", 3)
    with pytest.raises(RunIncomplete, match="not published"):
        stack.invoke("leadmagic", low_account)
    assert faults.calls[-4:] == ["Publish", "PutEvents", "PutItem", "UpdateItem"]  # then the RUN item
    faults.fail()
    assert stack.alerts() == []
    assert stack.events() == []

    stack.invoke("leadmagic", low_account)  # still inside the faulted run's lease: it might be sending
    assert stack.alerts() == []

    clock.advance(minutes=5)
    stack.invoke("leadmagic", low_account)
    clock.advance(minutes=5)
    stack.invoke("leadmagic", low_account)
    assert [attributes(a)["alert"] for a in stack.alerts()] == ["low_credits"]
    assert [e["detail"]["alert"] for e in stack.events()] == ["low_credits"]
    (state,) = [i for i in stack.items() if i["sk"] == "STATE"]
    assert state.get("outbox", []) == []  # unset attributes are left out


def test_a_confirm_that_fails_after_sns_took_the_alert_resends_it_once_with_the_same_id(
    stack: Stack, low_account, faults: Faults, clock: Clock
):
    """At least once, never lost: the one case an outbox over SNS cannot make exactly once."""
    faults.fail_from("Publish", 1, skip=2)  # the PutItem confirming what SNS and EventBridge just took
    with pytest.raises(RunIncomplete, match="outbox"):
        stack.invoke("leadmagic", low_account)
    assert faults.calls[-4:] == ["Publish", "PutEvents", "PutItem", "UpdateItem"]  # then the RUN item
    faults.fail()
    clock.advance(minutes=5)
    stack.invoke("leadmagic", low_account)
    stack.invoke("leadmagic", low_account)

    sent = stack.alerts()
    assert [attributes(a)["alert"] for a in sent] == ["low_credits", "low_credits"]
    assert len({a["MessageAttributes"]["alert_id"]["Value"] for a in sent}) == 1
    assert len({e["detail"]["alert_id"] for e in stack.events()}) == 1

"""The contract every provider in the registry meets, a new one included: its documented
answer, a rejected key, an empty balance, rate limits and server errors, garbage, and secrecy.

Parametrised over `providers.names()`, so a definition file added to the package is tested
here with no list to edit.
"""

from decimal import Decimal

import pytest

from creditwatch import providers
from sandbox.harness import Stack
from sandbox.simulator import ProviderSimulator, Reply, balance

from .conftest import attributes, leaked

KEY = "contract-key-qzx7wvk2jd9pmt4r"
ALL = providers.names()


def run(stack: Stack, simulator: ProviderSimulator, provider: str, reply: Reply, **env: str) -> dict:
    simulator.script(provider, KEY, reply)
    stack.put_secret(provider, KEY)
    return stack.invoke(provider, stack.environment(provider, simulator.base_url, **env))


def snapshots(stack: Stack) -> dict[str, Decimal]:
    return {i["pool"]: i["remaining"] for i in stack.items() if i["sk"].startswith("SNAP#")}


@pytest.mark.parametrize("provider", ALL)
def test_the_documented_answer_is_stored_through_the_documented_auth(stack, simulator, provider):
    result = run(stack, simulator, provider, balance(provider, 4321))

    assert result["failed_checks"] == 0
    assert simulator.calls_to(provider) == 1
    assert Decimal(4321) in snapshots(stack).values()


@pytest.mark.parametrize("provider", ALL)
def test_a_key_the_provider_does_not_know_is_a_critical_check_failed(stack, simulator, provider):
    simulator.script(provider, "some-other-key-entirely", balance(provider, 5))
    stack.put_secret(provider, KEY)

    stack.invoke(provider, stack.environment(provider, simulator.base_url))

    (alert,) = stack.alerts()
    assert (attributes(alert)["alert"], attributes(alert)["severity"]) == ("check_failed", "critical")
    status, _ = providers.load(provider).rejected_example or (401, None)  # the documented bad-key answer
    said = "the answer says the key is invalid" if status == 200 else f"HTTP {status}"
    assert said in alert["Message"]


@pytest.mark.parametrize("provider", ALL)
def test_payment_required_is_an_empty_pool(stack, simulator, provider):
    run(stack, simulator, provider, Reply(402, {"message": "Payment Required"}))

    assert set(snapshots(stack).values()) == {Decimal(0)}
    (alert,) = stack.alerts()
    assert (attributes(alert)["alert"], attributes(alert)["severity"]) == ("low_credits", "critical")


@pytest.mark.parametrize("provider", ALL)
def test_a_rate_limit_is_retried_then_read(stack, simulator, provider):
    simulator.script(provider, KEY, Reply(429, {"detail": "slow down"}, headers={"Retry-After": "0"}))
    simulator.script(
        provider, KEY, Reply(429, {"detail": "slow down"}, headers={"Retry-After": "0"}), balance(provider, 777)
    )
    stack.put_secret(provider, KEY)

    result = stack.invoke(provider, stack.environment(provider, simulator.base_url))

    assert result["failed_checks"] == 0
    assert simulator.calls_to(provider) == 2


@pytest.mark.parametrize("provider", ALL)
@pytest.mark.parametrize(
    "reply",
    [Reply(503, "down"), Reply(200, "<html>maintenance</html>"), Reply(200, {"unrelated": True}), Reply(200, [1])],
    ids=["5xx", "html", "no-pool", "list"],
)
def test_garbage_and_server_errors_are_transient_and_store_nothing(stack, simulator, provider, reply):
    result = run(stack, simulator, provider, reply, FAILURES_BEFORE_ALERT="2")

    assert result["failed_checks"] == 1
    assert snapshots(stack) == {}
    assert stack.alerts() == []


@pytest.mark.parametrize("provider", ALL)
def test_the_key_appears_nowhere_but_in_the_request(stack, simulator, provider, logs, capsys):
    reflecting = Reply(401, {"detail": f"bad key {KEY}"}, headers={"X-Echo": KEY})
    run(stack, simulator, provider, reflecting)
    run(stack, simulator, provider, balance(provider, 3))

    texts = [logs.getvalue(), capsys.readouterr().out, repr(stack.alerts()), repr(stack.items())]
    assert [leaked(text, KEY) for text in texts] == [[], [], [], []]

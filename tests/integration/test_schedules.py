"""Cadence per provider: every function is ticked every 15 minutes and checks once per period of
its provider's own schedule (the stack's PROVIDER_SCHEDULES entry, else its definition's, else
SCHEDULE). Each tick says whether the checks are overdue (CheckOverdue), the stale alarm's metric."""

import contextlib
from datetime import UTC, datetime

import pytest

from creditwatch.monitor import RunIncomplete
from sandbox.harness import Stack
from sandbox.simulator import ProviderSimulator, Reply, balance

from .conftest import emf_documents

KEYS = {"clodura": "clodura-key-00000001", "leadmagic": "leadmagic-key-0000001"}
START = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def ticks(stack: Stack, simulator: ProviderSimulator, clock, capsys):
    """Tick the providers every 15 minutes for `hours`; the CheckOverdue value of each tick."""
    clock.at = START
    for provider, key in KEYS.items():
        simulator.script(provider, key, balance(provider, 9000))
        stack.put_secret(provider, {"accounts": [{"name": "main", "api_key": key}]})

    def run(hours: int, **env: str) -> dict[str, list[float]]:
        overdue: dict[str, list[float]] = {provider: [] for provider in KEYS}
        for _ in range(hours * 4):
            for provider in KEYS:
                capsys.readouterr()
                environment = stack.environment(provider, simulator.base_url, **env)
                with contextlib.suppress(RunIncomplete):
                    stack.invoke(provider, environment, tick=True)
                documents = emf_documents(capsys.readouterr().out)
                overdue[provider] += [d["CheckOverdue"] for d in documents if "CheckOverdue" in d]
            clock.advance(minutes=15)
        return overdue

    return run


def test_two_providers_run_on_two_schedules(ticks, simulator: ProviderSimulator):
    overdue = ticks(6)
    assert simulator.calls_to("clodura") == 2  # its definition's 3h
    assert simulator.calls_to("leadmagic") == 6  # the stack's 1h
    assert overdue == {"clodura": [0.0] * 24, "leadmagic": [0.0] * 24}  # one value every tick


def test_the_stack_sets_a_providers_schedule_without_editing_the_template(ticks, simulator: ProviderSimulator):
    ticks(6, PROVIDER_SCHEDULES="leadmagic=2h,clodura=6h")
    assert (simulator.calls_to("clodura"), simulator.calls_to("leadmagic")) == (1, 3)


def test_a_run_that_fails_still_covers_its_period_and_the_next_tick_waits(
    ticks, stack: Stack, simulator: ProviderSimulator, monkeypatch
):
    """What failed (an alert SNS refused) waits in its outbox for the next period's run: the
    ticks between spend none of the key's daily requests."""
    from botocore.exceptions import ClientError

    from creditwatch import monitor

    simulator.script("leadmagic", KEYS["leadmagic"], balance("leadmagic", 50))

    def refuse(**_: object) -> None:
        raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"}}, "Publish")

    monkeypatch.setattr(monitor.aws()[1], "publish", refuse)
    ticks(2)
    assert simulator.calls_to("leadmagic") == 2


def test_checks_that_stop_working_are_overdue_after_two_and_a_half_periods(ticks, simulator: ProviderSimulator):
    ticks(1)
    simulator.script("leadmagic", KEYS["leadmagic"], Reply(status=401, body={"message": "invalid key"}))
    overdue = ticks(4)["leadmagic"]
    # The last check that worked was at 00:00; 2.5 hours later, every tick says so.
    assert overdue == [0.0] * 7 + [1.0] * 9  # 01:00 .. 02:30 not yet, 02:45 on


def test_an_invocation_by_hand_checks_at_once(ticks, stack: Stack, simulator: ProviderSimulator):
    ticks(1)
    assert simulator.calls_to("leadmagic") == 1
    stack.invoke("leadmagic", stack.environment("leadmagic", simulator.base_url))  # not a tick
    assert simulator.calls_to("leadmagic") == 2

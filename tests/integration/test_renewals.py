"""Quotas that renew, through the real handler and the simulator, with time travel: a pool that
renews before it would run out is not forecast to; one that runs out first says so, and when;
the rise at a renewal is a renewal, not a top-up, in history, metrics, events and the journal.
Prospeo reports its renewal as `response.next_quota_renewal_date`, "2023-06-18 20:52:28+00:00"."""

import shutil
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from moto import mock_aws

from creditwatch import providers
from sandbox.harness import Stack
from sandbox.simulator import ProviderSimulator, Reply, balance

from .conftest import attributes, emf_documents

KEY = "prospeo-renewal-key-0123456789"


def prospeo(remaining: int, renews: datetime | None) -> Reply:
    """Prospeo's documented answer, with its balance and its next renewal."""
    renewal = None if renews is None else renews.strftime("%Y-%m-%d %H:%M:%S+00:00")
    response = {"remaining_credits": remaining, "used_credits": 1, "next_quota_renewal_date": renewal}
    return Reply(body={"error": False, "response": response})


def kinds(alerts: list[dict]) -> list[tuple[str, str]]:
    return [(attributes(a)["alert"], attributes(a)["severity"]) for a in alerts]


def burning(stack: Stack, now: datetime) -> None:
    """48 hours burning 500 credits an hour (12,000 a day): 30,000 left lasts 2.5 days."""
    history = [(now - timedelta(hours=48 - h), Decimal(54_000 - 500 * h)) for h in range(48)]
    stack.seed_history("prospeo", "default", history)


def run(stack: Stack, simulator: ProviderSimulator, reply: Reply) -> None:
    simulator.script("prospeo", KEY, reply)
    stack.invoke("prospeo", stack.environment("prospeo", simulator.base_url))


def test_a_pool_that_renews_before_it_would_run_out_gets_no_depletion_forecast(stack, simulator, clock):
    stack.put_secret("prospeo", KEY)
    burning(stack, clock.at)

    run(stack, simulator, prospeo(30_000, renews=clock.at + timedelta(days=1)))

    assert stack.alerts() == []
    (state,) = [item for item in stack.items() if item["sk"] == "STATE"]
    assert state["pools"]["credits"]["forecast"] == "ok"


def test_a_pool_that_runs_out_before_its_renewal_says_when_against_the_renewal(stack, simulator, clock):
    stack.put_secret("prospeo", KEY)
    burning(stack, clock.at)
    renews = clock.at + timedelta(days=8.5)

    run(stack, simulator, prospeo(30_000, renews=renews))

    (alert,) = stack.alerts()
    assert kinds([alert]) == [("depletion_forecast", "warning")]
    assert f"runs out in about 2.5 days, 6 days before its renewal on {renews.day} {renews:%b}." in alert["Message"]
    (event,) = stack.events()
    assert event["detail"]["renews_at"] == renews.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_renewal_already_past_is_no_reason_to_keep_quiet(stack, simulator, clock):
    stack.put_secret("prospeo", KEY)
    burning(stack, clock.at)

    run(stack, simulator, prospeo(30_000, renews=clock.at - timedelta(days=3)))

    assert kinds(stack.alerts()) == [("depletion_forecast", "warning")]
    assert "renewal" not in stack.alerts()[0]["Message"]


def test_the_rise_at_a_renewal_is_a_renewal_and_a_rise_before_it_a_top_up(stack, simulator, clock, capsys):
    stack.put_secret("prospeo", KEY)
    renews = clock.at + timedelta(hours=2)
    run(stack, simulator, prospeo(50, renews=renews))  # critical
    clock.advance(hours=1)
    run(stack, simulator, prospeo(1_050, renews=renews))  # before the renewal: bought
    clock.advance(hours=2)
    run(stack, simulator, prospeo(10_000, renews=renews + timedelta(days=30)))  # renewed

    alerts = stack.alerts()
    assert kinds(alerts) == [("low_credits", "critical"), ("recovered", "info")]
    assert "Top-up detected: +1,000 credits." in alerts[1]["Message"]
    recorded = sorted((item for item in stack.items() if item["sk"].startswith("TOPUP#")), key=lambda i: i["sk"])
    assert [(item["added"], item.get("renewal", False)) for item in recorded] == [(1_000, False), (8_950, True)]
    documents = emf_documents(capsys.readouterr().out)
    assert [d["TopUpCredits"] for d in documents if "TopUpCredits" in d] == [1000.0]
    assert [d["RenewalCredits"] for d in documents if "RenewalCredits" in d] == [8950.0]
    journal = [line["pools"]["credits"] for line in stack.journal("prospeo")]
    assert ("topped_up" in journal[1], "renewed" in journal[1]) == (True, False)
    assert journal[2]["renewed"] == "8950"
    assert journal[2]["renews_at"] == (renews + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_renewal_that_lifts_a_low_pool_is_named_a_renewal_in_the_recovery(stack, simulator, clock):
    stack.put_secret("prospeo", KEY)
    renews = clock.at + timedelta(hours=2)
    run(stack, simulator, prospeo(50, renews=renews))
    clock.advance(hours=3)
    run(stack, simulator, prospeo(10_000, renews=renews + timedelta(days=30)))

    alerts = stack.alerts()
    assert kinds(alerts) == [("low_credits", "critical"), ("recovered", "info")]
    assert "Renewal detected: +9,950 credits." in alerts[1]["Message"]
    assert stack.events()[-1]["detail"]["renewal"] is True


@pytest.fixture
def hyphenated():
    """A definition named with a hyphen, `acme-data.yaml`, in the registry for one test."""
    text = (providers.FOLDER / "leadmagic.yaml").read_text()
    path = providers.FOLDER / "acme-data.yaml"
    path.write_text(text.replace("name: leadmagic", "name: acme-data").replace("title: LeadMagic", "title: Acme Data"))
    providers.load.cache_clear()
    try:
        yield "acme-data"
    finally:
        path.unlink()
        shutil.rmtree(providers.FOLDER / "__pycache__" / "acme-data", ignore_errors=True)
        providers.load.cache_clear()


def test_a_hyphenated_provider_works_end_to_end(hyphenated):
    with ProviderSimulator() as simulator, mock_aws():
        stack = Stack()  # made after the definition: its journal has a stream for it
        stack.put_secret(hyphenated, KEY)
        simulator.script(hyphenated, KEY, balance(hyphenated, 50))
        stack.invoke(hyphenated, stack.environment(hyphenated, simulator.base_url))

        (alert,) = stack.alerts()
        assert attributes(alert)["alert"] == "low_credits"
        assert "Acme Data account 'default'" in alert["Message"]
        assert any(item["pk"] == "acme-data#default" for item in stack.items())
        assert [line["provider"] for line in stack.journal(hyphenated)] == ["acme-data"]

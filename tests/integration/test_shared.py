"""Keys that share one balance: Cleanlist's answer names the organisation that owns it, and the
keys of one organisation are one balance, `@<organization_id>`, with one series of snapshots,
one alert state, and one alert naming every account that draws on it. A key alone with its
organisation is watched as itself."""

import pytest

from sandbox.harness import Stack
from sandbox.simulator import ProviderSimulator, Reply, balance

from .conftest import attributes

KEYS = {
    "alice": "clapi_alice_org_a_000001",
    "bob": "clapi_bobby_org_a_000002",
    "carol": "clapi_carol_org_b_000003",
    "dave": "clapi_daved_org_a_000004",
}


@pytest.fixture
def cleanlist(stack: Stack, simulator: ProviderSimulator, clock):
    env = stack.environment("cleanlist", simulator.base_url)

    def run(*names: str) -> dict:
        stack.put_secret("cleanlist", {"accounts": [{"name": n, "api_key": KEYS[n]} for n in names]})
        clock.advance(minutes=60)
        return stack.invoke("cleanlist", env)

    return run


def org(simulator: ProviderSimulator, name: str, organisation: str, credits: object) -> None:
    simulator.script("cleanlist", KEYS[name], balance("cleanlist", credits, organization_id=organisation))


def sent(stack: Stack) -> list[tuple[str, str, str]]:
    return [(attributes(a)["account"], attributes(a)["alert"], a["Message"]) for a in stack.alerts()]


def test_two_keys_of_one_organisation_give_one_alert_and_another_organisation_its_own(
    cleanlist, stack: Stack, simulator: ProviderSimulator
):
    org(simulator, "alice", "org_a", 50)
    org(simulator, "bob", "org_a", 50)
    org(simulator, "carol", "org_b", 60)
    cleanlist("alice", "bob", "carol")

    alerts = sent(stack)
    assert sorted((account, kind) for account, kind, _ in alerts) == [
        ("@org_a", "low_credits"),
        ("carol", "low_credits"),  # alone with org_b: as itself
    ]
    (shared,) = [text for account, _, text in alerts if account == "@org_a"]
    assert "The accounts whose keys draw on this balance: alice, bob." in shared
    events = [e["detail"] for e in stack.events()]
    assert sorted((e["account"], tuple(e["shared_by"])) for e in events) == [
        ("@org_a", ("alice", "bob")),
        ("carol", ()),
    ]
    # One series of snapshots per balance; the keys keep a state of their own, for their checks.
    snapshots = [i["account"] for i in stack.items() if i["sk"].startswith("SNAP#")]
    assert sorted(snapshots) == ["@org_a", "carol"]
    states = {i["account"]: i for i in stack.items() if i["sk"] == "STATE"}
    assert states["@org_a"]["members"] == ["alice", "bob"]
    assert (states["alice"].get("shares"), states["alice"].get("pools", {})) == ("@org_a", {})

    cleanlist("alice", "bob", "carol")  # still low: nothing new
    assert len(stack.alerts()) == 2


def test_a_rejected_key_of_the_organisation_is_still_its_own_check_failed(
    cleanlist, stack: Stack, simulator: ProviderSimulator
):
    org(simulator, "alice", "org_a", 50)
    org(simulator, "bob", "org_a", 50)
    simulator.script("cleanlist", KEYS["dave"], Reply(status=401, body={"detail": "invalid key"}))
    cleanlist("alice", "bob", "dave")

    alerts = sorted((account, kind) for account, kind, _ in sent(stack))
    assert alerts == [("@org_a", "low_credits"), ("dave", "check_failed")]
    (shared,) = [text for account, _, text in sent(stack) if account == "@org_a"]
    assert "alice, bob." in shared  # dave's answer named no organisation


def test_a_shared_balance_recovers_once_and_a_402_counts_against_it(
    cleanlist, stack: Stack, simulator: ProviderSimulator
):
    org(simulator, "alice", "org_a", 5000)
    org(simulator, "bob", "org_a", 5000)
    cleanlist("alice", "bob")
    assert sent(stack) == []
    simulator.script("cleanlist", KEYS["alice"], Reply(status=402, body={"detail": "no credits"}))
    simulator.script("cleanlist", KEYS["bob"], Reply(status=402, body={"detail": "no credits"}))
    cleanlist("alice", "bob")  # a 402 names no organisation: it is the balance the key drew on
    assert [(account, kind) for account, kind, _ in sent(stack)] == [("@org_a", "low_credits")]
    org(simulator, "alice", "org_a", 9000)
    org(simulator, "bob", "org_a", 9000)
    cleanlist("alice", "bob")
    kinds = [(account, kind) for account, kind, _ in sent(stack)]
    assert kinds.count(("@org_a", "recovered")) == 1
    assert {account for account, _ in kinds} == {"@org_a"}


def test_a_shared_balance_stays_while_one_key_draws_on_it_and_retires_with_the_last(
    cleanlist, stack: Stack, simulator: ProviderSimulator
):
    org(simulator, "alice", "org_a", 50)
    org(simulator, "bob", "org_a", 50)
    cleanlist("alice", "bob")
    cleanlist("alice")  # bob leaves: the balance is still alice's
    assert [(account, kind) for account, kind, _ in sent(stack)] == [("@org_a", "low_credits")]
    states = {i["account"]: i for i in stack.items() if i["sk"] == "STATE"}
    assert states["@org_a"]["members"] == ["alice"]

    org(simulator, "carol", "org_b", 9000)
    cleanlist("carol")  # the last key of org_a leaves: its incident resolves
    closed = [a for a in stack.alerts() if a["Subject"].endswith("no longer monitored")]
    assert [attributes(a)["account"] for a in closed] == ["@org_a"]
    assert "(alice) is in creditwatch's secrets any more" in closed[0]["Message"]
    assert "@org_a" in stack.repository("cleanlist").accounts(retired=True)


def test_an_account_alerted_on_its_own_closes_its_alert_once_it_shares_a_balance(
    cleanlist, stack: Stack, simulator: ProviderSimulator
):
    """Alone with its organisation the key is watched as itself; once a second key of that
    organisation comes, its own low alert closes (same dedup_key) and the balance alerts once,
    as the shared balance, which stays the balance's name while any key draws on it."""
    org(simulator, "alice", "org_a", 50)
    cleanlist("alice")
    assert [(account, kind) for account, kind, _ in sent(stack)] == [("alice", "low_credits")]
    org(simulator, "bob", "org_a", 50)
    cleanlist("alice", "bob")
    alerts = [(account, kind) for account, kind, _ in sent(stack)]
    assert sorted(alerts[1:]) == [("@org_a", "low_credits"), ("alice", "recovered")]
    low, closed = [e["detail"] for e in stack.events() if e["detail"]["account"] == "alice"]
    assert closed["dedup_key"] == low["dedup_key"]
    assert closed["dedup_key"] == "creditwatch/cleanlist/alice/credits/level"
    assert closed["severity"] == "info"
    cleanlist("alice")  # bob leaves: alice still draws on the shared balance, which says nothing new
    cleanlist("alice", "bob")
    assert len(stack.alerts()) == 3

"""Silences: DynamoDB items that keep alerts quiet for a while, then one catch-up alert."""

from datetime import timedelta

import pytest

from creditwatch.domain import Silence, iso
from sandbox.harness import Stack
from sandbox.simulator import ProviderSimulator, Reply, balance

from .conftest import attributes, emf_documents

KEY = "lm_live_silence_000001"


@pytest.fixture
def leadmagic(stack: Stack, simulator: ProviderSimulator, clock):
    stack.put_secret("leadmagic", KEY)
    env = stack.environment("leadmagic", simulator.base_url)

    def check(reply: Reply) -> list[dict]:
        simulator.script("leadmagic", KEY, reply)
        before = len(stack.alerts())
        clock.advance(minutes=60)
        stack.invoke("leadmagic", env)
        return stack.alerts()[before:]

    return check


def silence(stack: Stack, clock, hours: float, account: str = "default", pool: str = "*", keys: bool = False) -> None:
    """What `creditwatch silence add` writes, through the repository that owns the items."""
    until = iso(clock() + timedelta(hours=hours))
    stack.repository("leadmagic").save_silence(Silence(account, pool, until, "bulk import", "ops@example.com", keys))


def test_the_repository_writes_replaces_and_removes_a_silence(stack: Stack, clock):
    repository = stack.repository("leadmagic")
    entry = Silence("default", "*", iso(clock() + timedelta(hours=2)), "bulk import", "ops@example.com", False)
    assert repository.save_silence(entry) is False
    assert repository.save_silence(entry._replace(reason="longer import")) is True  # the same account and pool
    assert repository.silences() == [entry._replace(reason="longer import")]
    (item,) = [i for i in stack.items() if i["sk"].startswith("SILENCE#")]
    assert item["expires_at"] > clock().timestamp() + 7 * 86400  # listable a while after it ends
    assert repository.delete_silence("default", "*") is True
    assert repository.delete_silence("default", "*") is False
    assert repository.silences() == []


def test_a_silence_keeps_alerts_quiet_then_sends_one_catch_up(leadmagic, stack: Stack, clock, capsys):
    assert leadmagic(balance("leadmagic", 5000)) == []
    silence(stack, clock, hours=2.5)
    capsys.readouterr()
    assert leadmagic(balance("leadmagic", 50)) == []  # critical, silenced
    assert stack.events() == []
    (run,) = [d for d in emf_documents(capsys.readouterr().out) if "AlertsSilenced" in d]
    assert run["AlertsSilenced"] == 1
    (state,) = [i for i in stack.items() if i["sk"] == "STATE"]
    assert (state["pools"]["credits"]["level"], state["silenced"]) == ("critical", ["credits:level"])
    assert leadmagic(balance("leadmagic", 40)) == []  # still silenced

    (caught,) = leadmagic(balance("leadmagic", 30))  # the silence has ended
    assert (attributes(caught)["alert"], attributes(caught)["severity"]) == ("low_credits", "critical")
    assert caught["Subject"].startswith("[creditwatch] After a silence: CRITICAL")
    (event,) = stack.events()
    assert event["detail"]["catch_up"] is True
    assert leadmagic(balance("leadmagic", 30)) == []  # said once


def test_no_catch_up_when_the_state_recovered_during_the_silence(leadmagic, stack: Stack, clock):
    silence(stack, clock, hours=2.5)
    assert leadmagic(balance("leadmagic", 50)) == []
    assert leadmagic(balance("leadmagic", 90_000)) == []  # the recovery is silenced too
    assert leadmagic(balance("leadmagic", 90_000)) == []  # ended: nothing bad left to tell
    (state,) = [i for i in stack.items() if i["sk"] == "STATE"]
    assert state.get("silenced", []) == []  # unset attributes are left out


def test_a_rejected_key_is_alerted_through_a_silence_unless_it_says_keys(leadmagic, stack: Stack, clock):
    silence(stack, clock, hours=5)
    (alert,) = leadmagic(Reply(401, {"detail": "revoked"}))
    assert attributes(alert)["alert"] == "check_failed"
    assert leadmagic(balance("leadmagic", 90_000)) == []  # the recovery is silenced: it is not a key


def test_a_silence_that_says_keys_covers_a_rejected_key(leadmagic, stack: Stack, clock):
    silence(stack, clock, hours=5, keys=True)
    assert leadmagic(Reply(401, {"detail": "revoked"})) == []


def test_another_accounts_silence_and_an_invalid_item_silence_nothing(leadmagic, stack: Stack, clock):
    silence(stack, clock, hours=5, account="other")
    stack.table.put_item(Item={"pk": "leadmagic#", "sk": "SILENCE#broken", "account": "default", "until": "soon"})
    (alert,) = leadmagic(balance("leadmagic", 50))
    assert attributes(alert)["severity"] == "critical"


def test_a_silence_past_the_first_page_of_items_is_kept(leadmagic, stack: Stack, clock, small_pages):
    for other in ("a-other", "b-other", "c-other", "d-other"):
        silence(stack, clock, hours=5, account=other)
    silence(stack, clock, hours=5)  # sorts after them: on the third page
    assert leadmagic(balance("leadmagic", 50)) == []

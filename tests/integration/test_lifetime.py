"""Accounts over their lifetime: an account removed from the secret is retired by the next
run (what it was owed delivered once, its open alerts closed with the same dedup_key), and a
key that comes back under the same name starts afresh."""

import pytest
from botocore.exceptions import ClientError

from creditwatch import monitor
from creditwatch.monitor import RunIncomplete
from sandbox.harness import Stack
from sandbox.simulator import ProviderSimulator, balance

from .conftest import attributes

KEEP, GONE = "lm_live_kept_account_0001", "lm_live_gone_account_0002"


@pytest.fixture
def leadmagic(stack: Stack, simulator: ProviderSimulator, clock):
    env = stack.environment("leadmagic", simulator.base_url)
    simulator.script("leadmagic", KEEP, balance("leadmagic", 9000))

    def run(*names: str) -> None:
        stack.put_secret(
            "leadmagic", {"accounts": [{"name": n, "api_key": {"kept": KEEP, "gone": GONE}[n]} for n in names]}
        )
        clock.advance(minutes=60)
        stack.invoke("leadmagic", env)

    return run


def sent(stack: Stack, account: str) -> list[tuple[str, str]]:
    return [(attributes(a)["alert"], a["Subject"]) for a in stack.alerts() if attributes(a)["account"] == account]


def test_a_removed_account_gets_what_it_was_owed_once_and_its_incident_resolves(
    leadmagic, stack: Stack, simulator: ProviderSimulator, monkeypatch
):
    simulator.script("leadmagic", GONE, balance("leadmagic", 50))
    sns = monitor.aws()[1]
    publish = sns.publish

    def refuse_gone(**kwargs):
        if kwargs["MessageAttributes"]["account"]["StringValue"] == "gone":
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"}}, "Publish")
        return publish(**kwargs)

    with monkeypatch.context() as patched:  # the critical alert is claimed, and its publish fails
        patched.setattr(sns, "publish", refuse_gone)
        with pytest.raises(RunIncomplete):
            leadmagic("kept", "gone")
    assert sent(stack, "gone") == []
    (low,) = [e for e in stack.events() if e["detail"]["account"] == "gone"]  # the event went out

    leadmagic("kept")  # removed from the secret before the next run
    assert simulator.calls_to("leadmagic") == 3  # the removed key is not checked again
    alerts = sent(stack, "gone")
    assert [kind for kind, _ in alerts] == ["low_credits", "recovered"]  # the owed alert, then the close
    assert alerts[1][1] == "[creditwatch] LeadMagic/gone/credits: no longer monitored"
    low_again, closed = [e for e in stack.events() if e["detail"]["account"] == "gone"]
    assert low_again == low  # the owed alert's event had gone out already: not put again
    assert closed["detail"]["severity"] == "info"
    assert closed["detail"]["dedup_key"] == low["detail"]["dedup_key"]  # PagerDuty resolves the incident
    (state,) = [i for i in stack.items() if i["sk"] == "STATE" and i["account"] == "gone"]
    assert (state["fleet"], state.get("outbox", []), state.get("pools", {})) == ("leadmagic#retired", [], {})
    assert stack.repository("leadmagic").accounts() == ["kept"]
    assert stack.repository("leadmagic").accounts(retired=True) == ["gone"]

    leadmagic("kept")
    leadmagic("kept")
    assert len(sent(stack, "gone")) == 2  # each said once


def test_a_key_that_comes_back_under_the_same_name_starts_afresh(leadmagic, stack: Stack, simulator: ProviderSimulator):
    simulator.script("leadmagic", GONE, balance("leadmagic", 50))
    leadmagic("kept", "gone")
    leadmagic("kept")
    assert [kind for kind, _ in sent(stack, "gone")] == ["low_credits", "recovered"]

    leadmagic("kept", "gone")  # back, still low: a new account's first alert
    assert [kind for kind, _ in sent(stack, "gone")] == ["low_credits", "recovered", "low_credits"]
    (state,) = [i for i in stack.items() if i["sk"] == "STATE" and i["account"] == "gone"]
    assert (state["fleet"], state.get("retired_at")) == ("leadmagic", None)
    assert stack.repository("leadmagic").accounts() == ["gone", "kept"]


def test_a_removed_account_with_nothing_open_is_retired_quietly(leadmagic, stack: Stack, simulator: ProviderSimulator):
    simulator.script("leadmagic", GONE, balance("leadmagic", 9000))
    leadmagic("kept", "gone")
    leadmagic("kept")
    assert sent(stack, "gone") == []
    assert stack.repository("leadmagic").accounts(retired=True) == ["gone"]


def test_a_secret_that_cannot_be_read_retires_none_of_its_accounts(
    leadmagic, stack: Stack, simulator: ProviderSimulator, clock
):
    """A broken secret is not a removal: the monitored thing must not be able to close its own alerts."""
    simulator.script("leadmagic", GONE, balance("leadmagic", 50))
    stack.put_secret("leadmagic", {"accounts": [{"name": "gone", "api_key": GONE}]}, label="eu")
    leadmagic("kept")
    assert [kind for kind, _ in sent(stack, "gone")] == ["low_credits"]
    stack.put_secret("leadmagic", "{not json", label="eu")
    leadmagic("kept")
    assert [kind for kind, _ in sent(stack, "gone")] == ["low_credits"]  # not "no longer monitored"
    assert "gone" in stack.repository("leadmagic").accounts()

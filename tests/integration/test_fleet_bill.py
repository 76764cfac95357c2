"""A fleet's bill: series per provider that do not grow with the fleet, series of accounts'
own within a budget, and every account in the journal each run."""

import json
from dataclasses import replace

import pytest

from sandbox.harness import Stack
from sandbox.simulator import ProviderSimulator, Reply, balance

from .conftest import emf_documents, own, series

BUDGET = 20  # the template's AccountSeries default, which Stack.environment passes on


def fleet(simulator: ProviderSimulator, size: int, low: set[int] = frozenset(), revoked: set[int] = frozenset()):
    accounts = []
    for index in range(size):
        key = f"lm-bill-key-{index:06d}"
        reply = balance("leadmagic", 40 if index in low else 50_000 + index)
        simulator.script("leadmagic", key, Reply(401, {"detail": "revoked"}) if index in revoked else reply)
        accounts.append({"name": f"client-{index:06d}", "api_key": key})
    return accounts


def run(stack: Stack, simulator: ProviderSimulator, capsys, **env: str) -> list[dict]:
    capsys.readouterr()
    stack.invoke("leadmagic", stack.environment("leadmagic", simulator.base_url, **env))
    return emf_documents(capsys.readouterr().out)


def per_provider(documents: list[dict]) -> dict[str, float]:
    """The run's counts, from every document with Provider as its only dimension, summed."""
    totals: dict[str, float] = {}
    for document in documents:
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        if ["Provider"] in directive["Dimensions"]:
            for metric in directive["Metrics"]:
                totals[metric["Name"]] = totals.get(metric["Name"], 0) + document[metric["Name"]]
    return totals


def test_a_run_over_2000_accounts_declares_at_most_the_budget_of_series_of_their_own(stack, simulator, capsys):
    low, revoked = set(range(0, 2000, 97)), {5, 1500}
    stack.put_secret("leadmagic", {"accounts": fleet(simulator, 2000, low, revoked)})

    documents = run(stack, simulator, capsys, ACCOUNTS_PER_SHARD="3000")

    declared = series(documents)
    theirs = {s for s in declared if "Account" in dict(s[2])}
    assert len(theirs) <= BUDGET
    assert own(theirs) == {f"client-{i:06d}" for i in sorted(low)[:BUDGET]}  # the critical ones, by name
    assert len(declared - theirs) <= 20  # the provider's own series, whatever the fleet's size
    totals = per_provider(documents)
    assert totals["AccountsChecked"] == 2000
    assert (totals["AccountsCritical"], totals["AccountsFailed"]) == (len(low), 2)
    assert totals["AccountsOk"] == 2000 - len(low) - 2
    assert totals["CheckSucceeded"] + totals["CheckFailed"] == 2000  # the stale alarm still counts every check
    assert len(stack.journal("leadmagic")) == 2000


def test_a_ten_account_stack_draws_every_accounts_own_line(stack, simulator, capsys):
    stack.put_secret("leadmagic", {"accounts": fleet(simulator, 10, low={3})})

    documents = run(stack, simulator, capsys)

    lines = {values for _, metric, values in series(documents) if metric == "CreditsRemaining"}
    accounts = {dict(values).get("Account") for values in lines}
    assert accounts == {f"client-{i:06d}" for i in range(10)}
    # the ten series left after the lines go to the neediest first: two checks each, on a first run
    checks = {d["Account"] for d in documents if "CheckSucceeded" in d and "Account" in d}
    assert len(checks) == 5
    assert "client-000003" in checks
    assert per_provider(documents)["CheckSucceeded"] == 10


def test_every_account_is_in_the_journal_with_its_balance_each_run(stack, simulator, capsys):
    stack.put_secret("leadmagic", {"accounts": fleet(simulator, 30, low={7}, revoked={11})})

    for _ in range(2):
        run(stack, simulator, capsys, ACCOUNT_SERIES="0")

    lines = stack.journal("leadmagic")
    assert len(lines) == 60
    latest = {line["account"]: line for line in lines[30:]}
    assert latest["client-000007"]["level"] == "critical"
    assert latest["client-000007"]["pools"]["credits"]["remaining"] == "40"
    assert (latest["client-000011"]["level"], latest["client-000011"]["rank"]) == ("failed", 4)
    assert latest["client-000011"]["reason"] == "the API key was rejected (HTTP 401) (2 in a row)"
    assert latest["client-000012"]["pools"]["credits"]["remaining"] == "50012"
    assert {line["provider"] for line in lines} == {"leadmagic"}


def test_with_no_series_budget_no_account_has_series_of_its_own(stack, simulator, capsys):
    stack.put_secret("leadmagic", {"accounts": fleet(simulator, 5, low={1})})

    documents = run(stack, simulator, capsys, ACCOUNT_SERIES="0")

    assert own(series(documents)) == set()
    totals = per_provider(documents)
    assert (totals["CheckSucceeded"], totals["AccountsCritical"]) == (5, 1)


def test_a_journal_that_refuses_the_lines_leaves_them_in_the_functions_log(stack, simulator, capsys, logs, faults):
    stack.put_secret("leadmagic", {"accounts": fleet(simulator, 3)})
    faults.fail_from("PutLogEvents", 1)

    run(stack, simulator, capsys)

    assert stack.journal("leadmagic") == []
    records = [json.loads(text) for text in logs.getvalue().splitlines() if '"account checked"' in text]
    assert sorted(record["account"] for record in records) == [f"client-{i:06d}" for i in range(3)]
    assert "journal not written" in logs.getvalue()


def test_without_a_journal_every_line_goes_to_the_functions_log(stack, simulator, capsys, logs):
    stack.put_secret("leadmagic", {"accounts": fleet(simulator, 3)})

    run(stack, simulator, capsys, ACCOUNTS_LOG_GROUP="")

    records = [json.loads(text) for text in logs.getvalue().splitlines() if '"account checked"' in text]
    assert len(records) == 3


def test_accounts_left_unchecked_are_in_the_journal_and_counted(stack, simulator, capsys, monkeypatch):
    from creditwatch import monitor

    monkeypatch.setattr(monitor, "REQUEST_BUDGET", 1.0)
    accounts = fleet(simulator, 4)
    for index, account in enumerate(accounts):
        simulator.script("leadmagic", account["api_key"], replace(balance("leadmagic", 9000 + index), delay=1.0))
    stack.put_secret("leadmagic", {"accounts": accounts})
    from sandbox.harness import LambdaContext

    capsys.readouterr()
    stack.invoke(
        "leadmagic",
        stack.environment("leadmagic", simulator.base_url, MAX_CONCURRENCY="2"),
        LambdaContext(remaining_ms=int((monitor.TIME_MARGIN + 1.5) * 1000)),
    )

    totals = per_provider(emf_documents(capsys.readouterr().out))
    assert (totals["AccountsChecked"], totals["AccountsUnchecked"]) == (2, 2)
    late = [line for line in stack.journal("leadmagic") if line["level"] == "unchecked"]
    assert [(line["reason"], line["rank"]) for line in late] == [("out of time", 4)] * 2


@pytest.mark.parametrize("budget", [6, 40])
def test_shards_of_one_run_share_the_budget(stack, simulator, capsys, budget):
    stack.put_secret("leadmagic", {"accounts": fleet(simulator, 25, low={2, 13, 24})})
    queue = stack.shard_queue("leadmagic")
    env = stack.environment(
        "leadmagic", simulator.base_url, ACCOUNTS_PER_SHARD="10", SHARD_QUEUE_URL=queue, ACCOUNT_SERIES=str(budget)
    )
    capsys.readouterr()
    stack.invoke("leadmagic", env)
    stack.deliver_shards("leadmagic", env, queue)

    documents = emf_documents(capsys.readouterr().out)
    theirs = {s for s in series(documents) if "Account" in dict(s[2])}
    assert len(theirs) <= budget
    assert per_provider(documents)["AccountsChecked"] == 25
    assert len(stack.journal("leadmagic")) == 25


def test_the_fleets_lowest_forecast_is_one_series_per_pool(stack, simulator, capsys):
    from datetime import UTC, datetime, timedelta
    from decimal import Decimal

    now = datetime.now(UTC).replace(microsecond=0)
    accounts = fleet(simulator, 3)
    stack.put_secret("leadmagic", {"accounts": accounts})
    for index, burn in enumerate((100, 400, 0)):  # 400 an hour: about 5 days from 50,001
        history = [(now - timedelta(hours=h), Decimal(50_000 + index + burn * h)) for h in range(24, 0, -1)]
        stack.seed_history("leadmagic", f"client-{index:06d}", history)

    documents = run(stack, simulator, capsys)

    (pool,) = [d for d in documents if "LowestDaysUntilEmpty" in d]
    assert pool["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Provider", "Pool"]]
    assert pool["LowestDaysUntilEmpty"] == pytest.approx(50_001 / 9600, rel=1e-3)


def test_no_key_is_in_the_journal_whatever_the_account_did(stack, simulator, capsys):
    from .conftest import leaked

    accounts = fleet(simulator, 6, low={1}, revoked={2})
    simulator.script("leadmagic", accounts[3]["api_key"], Reply(200, "<html>bad gateway</html>"))
    accounts.append({"name": "broken", "api_key": "short"})
    stack.put_secret("leadmagic", {"accounts": accounts})

    run(stack, simulator, capsys, FAILURES_BEFORE_ALERT="1")

    lines = stack.journal("leadmagic")
    assert len(lines) == 7
    assert leaked(json.dumps(lines), *(a["api_key"] for a in accounts if len(a["api_key"]) >= 8)) == []

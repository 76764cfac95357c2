"""Forecasts, reminders and top-ups through the real handler, with history seeded in DynamoDB."""

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import jsonschema
import pytest

from creditwatch.domain import iso
from sandbox.harness import ROOT, LambdaContext, Stack, handler, scheduled_event
from sandbox.simulator import ProviderSimulator, balance

from .conftest import attributes, emf_documents

KEY = "lm_live_forecast_0123456789"


def hours_ago(hours: float) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(hours=hours)


def kinds(alerts: list[dict]) -> list[tuple[str, str]]:
    return [(attributes(a)["alert"], attributes(a)["severity"]) for a in alerts]


def setup(stack: Stack, simulator: ProviderSimulator, remaining: float) -> dict[str, str]:
    stack.put_secret("leadmagic", KEY)
    simulator.script("leadmagic", KEY, balance("leadmagic", remaining))
    return stack.environment("leadmagic", simulator.base_url)


def test_depletion_forecast_from_seeded_history(stack, simulator, capsys):
    # 48 hours burning 500 credits an hour (12,000 a day); 30,000 left lasts 2.5 days.
    stack.seed_history("leadmagic", "default", [(hours_ago(48 - h), Decimal(54_000 - 500 * h)) for h in range(48)])
    env = setup(stack, simulator, 30_000)

    stack.invoke("leadmagic", env)

    (alert,) = stack.alerts()
    assert kinds([alert]) == [("depletion_forecast", "warning")]
    assert "empty in 2.5 days" in alert["Subject"]
    assert re.search(r"Burn rate:   1[12],\d{3}(\.\d+)? credits/day", alert["Message"])
    for fragment in ("Empty in:    2.5 days, around ", "Based on:    49 balances over 48."):
        assert fragment in alert["Message"]
    pool = next(d for d in emf_documents(capsys.readouterr().out) if "CreditsRemaining" in d)
    # the run happens a moment after the seeded history ends: allow for that second
    assert pool["BurnRatePerDay"] == pytest.approx(12000, rel=1e-3)
    assert pool["DaysUntilEmpty"] == pytest.approx(2.5, rel=1e-3)
    assert pool["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Provider", "Account", "Pool"]]

    stack.invoke("leadmagic", env)
    assert len(stack.alerts()) == 1


def test_first_run_has_insufficient_history_and_no_forecast_metrics(stack, simulator, capsys, logs):
    stack.invoke("leadmagic", setup(stack, simulator, 30_000))

    assert stack.alerts() == []
    pool = next(d for d in emf_documents(capsys.readouterr().out) if "CreditsRemaining" in d)
    assert "BurnRatePerDay" not in pool
    assert "DaysUntilEmpty" not in pool
    assert '"forecast":"insufficient history"' in logs.getvalue()


def test_a_top_up_is_recorded_and_named_in_the_recovery(stack, simulator, capsys):
    env = setup(stack, simulator, 50)
    stack.invoke("leadmagic", env)
    simulator.script("leadmagic", KEY, balance("leadmagic", 10_050))

    stack.invoke("leadmagic", env)

    assert kinds(stack.alerts()) == [("low_credits", "critical"), ("recovered", "info")]
    assert "Top-up detected: +10,000 credits." in stack.alerts()[1]["Message"]
    (topup,) = [item for item in stack.items() if item["sk"].startswith("TOPUP#credits#")]
    assert (topup["previous"], topup["balance"], topup["added"]) == (50, 10_050, 10_000)
    assert "remaining" not in topup
    documents = emf_documents(capsys.readouterr().out)
    assert [d["TopUpCredits"] for d in documents if "TopUpCredits" in d] == [10000.0]


def age_alert(stack: Stack, hours: float) -> None:
    """Pretend the low-credits alert went out `hours` ago."""
    stack.table.update_item(
        Key={"pk": "leadmagic#default", "sk": "STATE"},
        UpdateExpression="SET pools.credits.alerted_at = :at",
        ExpressionAttributeValues={":at": iso(hours_ago(hours))},
    )


def test_reminder_comes_after_the_interval_and_not_sooner(stack, simulator):
    env = setup(stack, simulator, 500)
    stack.invoke("leadmagic", env)
    age_alert(stack, 23)
    stack.invoke("leadmagic", env)
    assert kinds(stack.alerts()) == [("low_credits", "warning")]

    age_alert(stack, 24.1)
    stack.invoke("leadmagic", env)
    stack.invoke("leadmagic", env)  # the same schedule delivered twice

    alerts = stack.alerts()
    assert kinds(alerts) == [("low_credits", "warning"), ("low_credits", "warning")]
    assert alerts[1]["Subject"].startswith("[creditwatch] Reminder: WARNING LeadMagic/default/credits")


def test_reminder_is_sent_once_by_simultaneous_duplicate_runs(stack, simulator, monkeypatch, simultaneously):
    env = setup(stack, simulator, 500)
    stack.invoke("leadmagic", env)
    age_alert(stack, 30)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    assert simultaneously(lambda _: handler().lambda_handler(scheduled_event(), LambdaContext()), 8) == []
    assert kinds(stack.alerts()) == [("low_credits", "warning"), ("low_credits", "warning")]


def test_reminders_off(stack, simulator):
    env = {**setup(stack, simulator, 500), "REMIND_AFTER_HOURS": "0"}
    stack.invoke("leadmagic", env)
    age_alert(stack, 500)
    stack.invoke("leadmagic", env)
    assert len(stack.alerts()) == 1


def test_percent_thresholds_use_the_full_tank_when_no_limit_is_reported(stack, simulator):
    stack.seed_history("leadmagic", "default", [(hours_ago(3), Decimal(10_000)), (hours_ago(2), Decimal(9_000))])
    env = {**setup(stack, simulator, 1_500), "WARNING_THRESHOLD": "20%", "CRITICAL_THRESHOLD": "5%"}

    stack.invoke("leadmagic", env)

    low = [a for a in stack.alerts() if attributes(a)["alert"] == "low_credits"]
    assert kinds(low) == [("low_credits", "warning")]
    assert "Threshold:   2,000 credits (warning)" in low[0]["Message"]


def test_duplicate_runs_record_a_top_up_once(stack, simulator, capsys, monkeypatch, simultaneously):
    """Two invocations of one schedule at once both see the top-up; it is one TOPUP item and
    one TopUpCredits data point."""
    env = setup(stack, simulator, 50)
    stack.invoke("leadmagic", env)
    simulator.script("leadmagic", KEY, balance("leadmagic", 10_050))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    lambda_handler = handler().lambda_handler
    capsys.readouterr()

    assert simultaneously(lambda _: lambda_handler(scheduled_event(), LambdaContext()), 2) == []
    assert len([item for item in stack.items() if item["sk"].startswith("TOPUP#")]) == 1
    documents = emf_documents(capsys.readouterr().out)
    assert [d["TopUpCredits"] for d in documents if "TopUpCredits" in d] == [10000.0]
    assert kinds(stack.alerts()) == [("low_credits", "critical"), ("recovered", "info")]


def test_a_runaway_burn_is_a_burn_spike_alert_event_and_metric(stack, simulator, capsys):
    """48 hours at 10 credits an hour, then 400 an hour for the last 6: a runaway job."""
    history, remaining = [], 500_000
    for hours in range(54, 0, -1):
        history.append((hours_ago(hours), Decimal(remaining)))
        remaining -= 400 if hours <= 6 else 10
    stack.seed_history("leadmagic", "default", history)
    env = setup(stack, simulator, remaining)
    capsys.readouterr()

    stack.invoke("leadmagic", env)

    (alert,) = stack.alerts()
    assert kinds([alert]) == [("burn_spike", "warning")]
    assert "burn spike" in alert["Subject"]
    assert "look for a runaway job" in alert["Message"]
    (event,) = stack.events()
    jsonschema.validate(event, json.loads((ROOT / "schemas" / "alert-event.schema.json").read_text()))
    assert event["detail-type"] == "Credit Burn Spike"
    ratio = Decimal(event["detail"]["spike_ratio"])
    assert ratio >= 3
    (pool,) = [d for d in emf_documents(capsys.readouterr().out) if "BurnSpikeRatio" in d]
    assert pool["BurnSpikeRatio"] == pytest.approx(float(ratio), rel=0.01)

    stack.invoke("leadmagic", env)
    assert len(stack.alerts()) == 1  # still a spike: alerted once


def test_a_window_in_the_earlier_form_is_read_and_rewritten_packed_without_loss(stack, simulator, capsys):
    # The same 48 hours as above, stored as a window item was before the packed form: a list
    # of [ISO time, balance, segment] per point, with a fractional balance and a top-up.
    history = [(hours_ago(48 - h), Decimal(54_000 - 500 * h) + Decimal("0.25")) for h in range(48)]
    stack.seed_history("leadmagic", "default", history)
    (window,) = [item for item in stack.items() if item["sk"] == "WINDOW"]
    earlier = [[iso(at), str(remaining), 0] for at, remaining in history]
    pool = {"points": earlier, "full_tank": window["pools"]["credits"]["full_tank"]}
    stack.table.put_item(Item={**window, "pools": {"credits": pool}})
    env = setup(stack, simulator, 30_000)

    stack.invoke("leadmagic", env)

    (alert,) = stack.alerts()
    assert kinds([alert]) == [("depletion_forecast", "warning")]  # the earlier points were read
    assert "Based on:    49 balances over 48." in alert["Message"]
    (window,) = [item for item in stack.items() if item["sk"] == "WINDOW"]
    rewritten = window["pools"]["credits"]
    assert "points" not in rewritten
    (points,) = stack.repository("leadmagic").load(["default"])[0]["default"].windows.values()
    kept = [(iso(p.at), str(p.remaining)) for p in points.points]
    assert kept[:-1] == [(at, remaining) for at, remaining, _ in earlier]  # every point, exactly
    assert kept[-1][1] == "30000"

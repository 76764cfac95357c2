"""Each provider's documented responses and errors, through the real handler."""

from decimal import Decimal

import pytest

from sandbox.harness import Stack
from sandbox.simulator import ProviderSimulator, Reply, balance, prospect

from .conftest import attributes, emf_documents

KEY = "sk_live_0123456789abcdef"


def run(stack: Stack, simulator: ProviderSimulator, provider: str, **env: str) -> dict:
    return stack.invoke(provider, stack.environment(provider, simulator.base_url, **env))


def snapshots(stack: Stack) -> list[dict]:
    return sorted((item for item in stack.items() if item["sk"].startswith("SNAP#")), key=lambda i: i["sk"])


@pytest.mark.parametrize(
    ("provider", "reply", "expected"),
    [
        ("clodura", balance("clodura", 5000), [("credits", Decimal(5000), None, None)]),
        (
            "clodura",
            prospect(contacts_used=142, max_contacts=1000, dials_used=38, max_dials=200),
            [
                ("contact_views", Decimal(858), Decimal(1000), Decimal(142)),
                ("direct_dials", Decimal(162), Decimal(200), Decimal(38)),
            ],
        ),
        ("clado", balance("clado", 247, last_topup_at="2024-01-15T10:30:00Z"), [("credits", Decimal(247), None, None)]),
        ("cleanlist", balance("cleanlist", 1234.5), [("credits", Decimal("1234.5"), None, None)]),
        (
            "leadmagic",
            Reply(body='{"credits": 15432.50}', headers={"Content-Type": "application/json"}),
            [("credits", Decimal("15432.50"), None, None)],
        ),
    ],
    ids=["clodura-payg", "clodura-prospect", "clado", "cleanlist-fractional", "leadmagic-fractional"],
)
def test_documented_balance_is_stored_exactly(stack, simulator, provider, reply, expected):
    simulator.script(provider, KEY, reply)
    stack.put_secret(provider, KEY)

    result = run(stack, simulator, provider)

    assert result["failed_checks"] == 0
    stored = [(i["pool"], i["remaining"], i.get("limit"), i.get("used")) for i in snapshots(stack)]
    assert stored == expected
    for item in snapshots(stack):
        assert item["provider"] == provider
        assert item["account"] == "default"
        assert item["observed_at"].endswith("Z")
        assert isinstance(item["remaining"], Decimal)
        assert item["expires_at"] > 0


def test_each_provider_sends_its_key_in_its_documented_header(stack, simulator):
    for provider in ("clodura", "clado", "cleanlist", "leadmagic"):
        simulator.script(provider, KEY, balance(provider, 5000))
        stack.put_secret(provider, KEY)
        assert run(stack, simulator, provider)["failed_checks"] == 0, provider
        assert simulator.calls_to(provider) == 1


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_key_alerts_critical_at_once_and_writes_no_balance(stack, simulator, status):
    simulator.script("leadmagic", KEY, Reply(status, {"detail": "Unauthorized"}))
    stack.put_secret("leadmagic", KEY)

    run(stack, simulator, "leadmagic")
    run(stack, simulator, "leadmagic")

    alerts = stack.alerts()
    assert len(alerts) == 1
    assert attributes(alerts[0]) == {
        "provider": "leadmagic",
        "account": "default",
        "severity": "critical",
        "alert": "check_failed",
    }
    assert f"HTTP {status}" in alerts[0]["Message"]
    assert snapshots(stack) == []


def test_unknown_key_is_refused_by_the_simulator_like_the_real_api(stack, simulator):
    simulator.script("clado", "another-key-entirely", balance("clado", 10))
    stack.put_secret("clado", KEY)

    run(stack, simulator, "clado")

    assert [attributes(a)["alert"] for a in stack.alerts()] == ["check_failed"]


def test_payment_required_records_zero_and_alerts_critical(stack, simulator):
    simulator.script("clodura", KEY, Reply(402, {"message": "Payment Required"}))
    stack.put_secret("clodura", KEY)

    result = run(stack, simulator, "clodura")

    assert result["failed_checks"] == 0
    assert [(i["pool"], i["remaining"]) for i in snapshots(stack)] == [("credits", Decimal(0))]
    (alert,) = stack.alerts()
    assert attributes(alert)["severity"] == "critical"
    assert attributes(alert)["alert"] == "low_credits"


def test_payment_required_empties_every_known_pool(stack, simulator):
    simulator.script("clodura", KEY, prospect(10, 1000, 0, 200), Reply(402, {"message": "Payment Required"}))
    stack.put_secret("clodura", KEY)

    run(stack, simulator, "clodura")
    run(stack, simulator, "clodura")

    latest = {i["pool"]: i["remaining"] for i in snapshots(stack)}
    assert latest == {"contact_views": Decimal(0), "direct_dials": Decimal(0)}


@pytest.mark.parametrize(
    ("provider", "reply"),
    [
        ("clado", Reply(404, {"detail": "Unable to retrieve credit information"})),
        ("clodura", Reply(409, {"message": "Daily limit exceeded"})),
        ("leadmagic", Reply(200, "<html><body>Maintenance</body></html>")),
        ("cleanlist", Reply(200, {"credits": "lots"})),
        ("cleanlist", Reply(200, {"organization_id": "org"})),
        ("leadmagic", Reply(200, {"credits": -5})),
        ("leadmagic", Reply(200, '{"credits": NaN}', headers={"Content-Type": "application/json"})),
        ("clado", Reply(200, [1, 2, 3])),
        ("clodura", Reply(200, {"unexpected": True})),
        ("clado", Reply(500, {"detail": "Credit service error"})),
    ],
    ids=["clado-404", "clodura-409", "html", "text", "missing", "negative", "nan", "list", "unknown", "5xx"],
)
def test_transient_failure_writes_nothing_and_alerts_after_consecutive_failures(stack, simulator, provider, reply):
    simulator.script(provider, KEY, reply)
    stack.put_secret(provider, KEY)
    env = {"FAILURES_BEFORE_ALERT": "2"}

    first = run(stack, simulator, provider, **env)
    assert first["failed_checks"] == 1
    assert stack.alerts() == []
    run(stack, simulator, provider, **env)
    run(stack, simulator, provider, **env)

    (alert,) = stack.alerts()
    assert attributes(alert)["alert"] == "check_failed"
    assert attributes(alert)["severity"] == "warning"
    assert snapshots(stack) == []


def test_rate_limit_is_retried_honouring_retry_after(stack, simulator):
    simulator.script(
        "cleanlist", KEY, Reply(429, {"detail": "slow down"}, headers={"Retry-After": "1"}), balance("cleanlist", 900)
    )
    stack.put_secret("cleanlist", KEY)

    result = run(stack, simulator, "cleanlist")

    assert result["failed_checks"] == 0
    assert simulator.calls_to("cleanlist") == 2
    assert [i["remaining"] for i in snapshots(stack)] == [Decimal(900)]


def test_retries_stop_before_the_request_runs_out_of_its_time_budget(stack, simulator, monkeypatch):
    from creditwatch import http

    monkeypatch.setattr(http, "REQUEST_BUDGET", 8.0)  # less than one more wait and read
    simulator.script("cleanlist", KEY, Reply(503, {"detail": "down"}, headers={"Retry-After": "1"}))
    stack.put_secret("cleanlist", KEY)

    result = run(stack, simulator, "cleanlist")

    assert result["failed_checks"] == 1
    assert simulator.calls_to("cleanlist") == 1


def test_accounts_that_would_run_past_the_function_timeout_wait_for_the_next_run(stack, simulator, logs):
    from sandbox.harness import LambdaContext

    simulator.script("clado", KEY, balance("clado", 10))
    stack.put_secret("clado", KEY)

    result = stack.invoke(
        "clado", stack.environment("clado", simulator.base_url), context=LambdaContext(remaining_ms=9_000)
    )

    assert (result["unchecked"], result["failed_checks"]) == (1, 0)
    assert simulator.calls == []
    assert stack.alerts() == []
    assert "out of time" in logs.getvalue()


def test_timeout_is_a_transient_failure(stack, simulator, monkeypatch):
    from creditwatch import http

    monkeypatch.setattr(http, "READ_TIMEOUT", 0.2)
    monkeypatch.setattr(http, "RETRIES", 0)
    simulator.script("leadmagic", KEY, Reply(body={"credits": 1}, delay=1.0))
    stack.put_secret("leadmagic", KEY)

    result = run(stack, simulator, "leadmagic", FAILURES_BEFORE_ALERT="1")

    assert result["failed_checks"] == 1
    (alert,) = stack.alerts()
    assert "timed out" in alert["Message"]


def test_one_failing_account_does_not_stop_the_others(stack, simulator):
    simulator.script("leadmagic", "key-good-aaaaaaaa", balance("leadmagic", 50))
    simulator.script("leadmagic", "key-broken-bbbbbbb", Reply(500, "oops"))
    simulator.script("leadmagic", "key-revoked-ccccccc", Reply(401, {"detail": "revoked"}))
    stack.put_secret(
        "leadmagic",
        {
            "accounts": [
                {"name": "broken", "api_key": "key-broken-bbbbbbb"},
                {"name": "revoked", "api_key": "key-revoked-ccccccc"},
                {"name": "good", "api_key": "key-good-aaaaaaaa"},
            ]
        },
    )

    result = run(stack, simulator, "leadmagic")

    assert result == {
        "provider": "leadmagic",
        "accounts": 3,
        "unchecked": 0,
        "failed_checks": 2,
        "alerts_sent": 2,
        "events_sent": 2,
        "alerts_silenced": 0,
    }
    assert [(i["account"], i["remaining"]) for i in snapshots(stack)] == [("good", Decimal(50))]
    sent = sorted((attributes(a)["account"], attributes(a)["alert"]) for a in stack.alerts())
    assert sent == [("good", "low_credits"), ("revoked", "check_failed")]


@pytest.mark.parametrize("secret", ["REPLACE_WITH_API_KEY", '{"api_key": "REPLACE_WITH_API_KEY"}'])
def test_placeholder_secret_exits_cleanly_without_calls_alerts_or_balances(stack, simulator, capsys, secret):
    """Only the schedule's bookkeeping: when it first ran, so that its checks fall overdue
    (the stale alarm reminds that the key is missing), and the tick's CheckOverdue."""
    stack.put_secret("clado", secret)

    result = run(stack, simulator, "clado")

    assert result == {"provider": "clado", "configured": False}
    assert simulator.calls == []
    assert stack.alerts() == []
    assert [(item["sk"], sorted(item)) for item in stack.items()] == [("RUN", ["pk", "since", "sk"])]
    assert [d["CheckOverdue"] for d in emf_documents(capsys.readouterr().out)] == [0.0]


def test_per_account_thresholds_override_the_defaults(stack, simulator):
    simulator.script("clodura", "key-small-aaaaaaaaa", balance("clodura", 40))
    simulator.script("clodura", "key-big-bbbbbbbbbbb", balance("clodura", 40))
    stack.put_secret(
        "clodura",
        {
            "accounts": [
                {
                    "name": "small",
                    "api_key": "key-small-aaaaaaaaa",
                    "warning_threshold": "50",
                    "critical_threshold": "9",
                },
                {"name": "big", "api_key": "key-big-bbbbbbbbbbb"},
            ]
        },
    )

    run(stack, simulator, "clodura")

    severities = {attributes(a)["account"]: attributes(a)["severity"] for a in stack.alerts()}
    assert severities == {"small": "warning", "big": "critical"}


def test_percent_threshold_uses_the_plan_limit(stack, simulator):
    simulator.script("clodura", KEY, prospect(contacts_used=850, max_contacts=1000, dials_used=0, max_dials=200))
    stack.put_secret("clodura", KEY)

    run(stack, simulator, "clodura", WARNING_THRESHOLD="20%", CRITICAL_THRESHOLD="5%")

    (alert,) = stack.alerts()
    assert attributes(alert)["severity"] == "warning"
    assert "contact_views" in alert["Subject"]
    assert "Plan limit:  1,000" in alert["Message"]


def test_metrics_are_one_emf_document_per_account_and_pool(stack, simulator, capsys):
    simulator.script("clodura", KEY, prospect(contacts_used=142, max_contacts=1000, dials_used=38, max_dials=200))
    stack.put_secret("clodura", KEY)

    run(stack, simulator, "clodura")

    documents = emf_documents(capsys.readouterr().out)
    by_metrics = {tuple(sorted(m["Name"] for m in d["_aws"]["CloudWatchMetrics"][0]["Metrics"])): d for d in documents}
    check = by_metrics[("CheckFailed", "CheckSucceeded")]
    # per account, and rolled up per provider for the stale-data alarm
    assert check["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Provider", "Account"], ["Provider"]]
    assert (check["CheckSucceeded"], check["CheckFailed"]) == (1.0, 0.0)
    pools = [d for d in documents if "CreditsRemaining" in d]
    assert len(pools) == 2
    for document in pools:
        assert document["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "CreditWatch"
        assert document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Provider", "Account", "Pool"]]
    views = next(d for d in pools if d["Pool"] == "contact_views")
    assert (views["CreditsRemaining"], views["PercentRemaining"]) == (858.0, 85.8)


def test_failed_check_emits_check_failed(stack, simulator, capsys):
    simulator.script("clado", KEY, Reply(401, {"detail": "no"}))
    stack.put_secret("clado", KEY)

    run(stack, simulator, "clado")

    documents = emf_documents(capsys.readouterr().out)
    checks = [(d["CheckSucceeded"], d["CheckFailed"]) for d in documents if "CheckSucceeded" in d]
    assert checks == [(0.0, 1.0)]
    (summary,) = [d for d in documents if "AlertsPublished" in d]
    assert summary["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Provider"]]
    assert summary["AlertsPublished"] == 1.0

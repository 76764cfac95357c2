"""Alert texts: a subject SNS accepts, a full email, a short SMS, and the filterable attributes."""

from decimal import Decimal

from creditwatch import providers
from creditwatch.domain import SHARED, Alert, AlertKind, Balance, Level
from creditwatch.notifier import SMS_LIMIT, SUBJECT_LIMIT, credits, render

CLODURA = providers.load("clodura")


def low(account: str = "acme", **changes: object) -> Alert:
    fields: dict = {
        "kind": AlertKind.LOW_CREDITS,
        "level": Level.WARNING,
        "provider": "clodura",
        "account": account,
        "observed_at": "2026-11-22T10:00:00Z",
        "pool": "contact_views",
        "balance": Balance("contact_views", Decimal(150), Decimal(1000), Decimal(850)),
        "line": Decimal(200),
        **changes,
    }
    return Alert(**fields)


def test_low_credit_alert_carries_everything_a_person_needs():
    message = render(low(), CLODURA)
    assert message.subject == "[creditwatch] WARNING Clodura/acme/contact_views: 150 credits left"
    for fragment in (
        "Clodura account 'acme', pool 'contact_views', is warning (it was ok).",
        "Remaining:   150 credits",
        "Threshold:   200 credits (warning)",
        "Plan limit:  1,000",
        "Used:        850",
        "Percent left: 15.0%",
        "Observed at: 2026-11-22T10:00:00Z",
        "Clodura Developer Dashboard",
    ):
        assert fragment in message.email
    assert message.attributes == {
        "provider": "clodura",
        "account": "acme",
        "severity": "warning",
        "alert": "low_credits",
        "alert_id": low().id,
    }


def test_subject_and_sms_stay_short_and_ascii_for_long_names():
    message = render(low(account="a" * 64, pool="p" * 64), CLODURA)
    assert len(message.subject) <= SUBJECT_LIMIT
    assert message.subject.isascii()
    assert message.subject.endswith("...")
    assert len(message.sms) <= SMS_LIMIT


def test_check_failed_says_why_and_what_to_do():
    alert = Alert(
        AlertKind.CHECK_FAILED,
        Level.CRITICAL,
        "clodura",
        "acme",
        "2026-11-22T10:00:00Z",
        reason="the API key was rejected (HTTP 401)",
    )
    message = render(alert, CLODURA)
    assert message.subject == "[creditwatch] CRITICAL Clodura/acme: check failed: the API key was rejected (HTTP 401)"
    assert "HTTP 401" in message.email
    assert "put the new key" in message.email
    assert message.attributes["severity"] == "critical"
    assert "HTTP 401" in message.sms


def test_recovery_is_info():
    alert = low(kind=AlertKind.RECOVERED, level=Level.OK, previous=Level.CRITICAL, line=None)
    message = render(alert, CLODURA)
    assert message.attributes["severity"] == "info"
    assert message.attributes["alert"] == "recovered"
    assert "back to ok (it was critical)" in message.email


def test_credits_print_exactly_and_readably():
    assert credits(Decimal(15432)) == "15,432"
    assert credits(Decimal("1234.5")) == "1,234.5"
    assert credits(Decimal("0.125")) == "0.12"
    assert credits(None) == "unknown"


def test_provider_text_cannot_break_the_subject():
    alert = Alert(
        AlertKind.CHECK_FAILED,
        Level.WARNING,
        "clodura",
        "acme",
        "2026-11-22T10:00:00Z",
        reason="unusable response: body is not JSON (Content-Type téxt/html\r\nX: y)",
    )
    subject = render(alert, CLODURA).subject
    assert subject.isascii()
    assert all(" " <= char <= "~" for char in subject)


def test_a_folded_forecast_is_told_in_the_low_credits_text():
    from datetime import UTC, datetime, timedelta

    from creditwatch.domain import AccountState, Balance, Checked, Policy, Threshold, Thresholds, evaluate
    from creditwatch.forecast import Point, PoolWindow

    now = datetime(2026, 11, 22, 10, tzinfo=UTC)
    points = tuple(Point(now - timedelta(hours=24 - h), Decimal(290 - 10 * h)) for h in range(24))
    evaluation = evaluate(
        "leadmagic",
        "main",
        now,
        AccountState(),
        {"credits": PoolWindow(points, full_tank=Decimal(290))},
        Checked((Balance("credits", Decimal(50)),)),
        Policy(Thresholds(Threshold(Decimal(1000)), Threshold(Decimal(100)))),
    )
    (alert,) = evaluation.alerts
    message = render(alert, providers.load("leadmagic"))
    assert "At the current rate it runs out in about 0.2 days (forecast: critical)." in message.email
    assert message.detail is not None
    assert message.detail["forecast_level"] == "critical"


def test_a_shared_balance_alert_names_every_account_that_draws_on_it():
    message = render(low("@org_a", shared_by=("alice", "bob")), CLODURA)
    assert message.subject == "[creditwatch] WARNING Clodura/@org_a/contact_views: 150 credits left"
    assert "Clodura shared balance '@org_a', pool 'contact_views', is warning (it was ok)." in message.email
    assert "The accounts whose keys draw on this balance: alice, bob." in message.email
    assert message.detail is not None
    assert message.detail["shared_by"] == ["alice", "bob"]
    assert low("@org_a", shared_by=("alice",)).id == low("@org_a").id  # who shares it is no part of its id


def test_a_key_that_joins_a_shared_balance_says_where_its_alert_went():
    closed = low("alice", kind=AlertKind.RECOVERED, level=Level.OK, previous=Level.CRITICAL, reason=SHARED)
    message = render(closed, CLODURA)
    assert message.subject == "[creditwatch] Clodura/alice/contact_views: watched as a shared balance"
    assert "now watched once, as a shared balance. Its level alert here (critical) is closed." in message.email

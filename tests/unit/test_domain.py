"""Levels, transitions and state, with no mocks: the domain does no I/O."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from creditwatch.domain import (
    SHARED,
    AccountState,
    AlertKind,
    Balance,
    Checked,
    Exhausted,
    Judgement,
    Level,
    Misconfigured,
    Policy,
    PoolState,
    Rejected,
    Threshold,
    Thresholds,
    Unavailable,
    balance_name,
    evaluate,
    iso,
    judge,
    share,
)
from creditwatch.forecast import Point, PoolWindow

ABSOLUTE = Thresholds(warning=Threshold(Decimal(1000)), critical=Threshold(Decimal(100)))
PERCENT = Thresholds(warning=Threshold(Decimal(20), percent=True), critical=Threshold(Decimal(5), percent=True))


NOW = datetime(2026, 11, 22, 10, tzinfo=UTC)


def run(previous: AccountState, outcome, thresholds=ABSOLUTE, failures_before_alert=3, windows=None, now=NOW, **policy):
    rules = Policy(thresholds, failures_before_alert, **policy)
    return evaluate("leadmagic", "acme", now, previous, windows or {}, outcome, rules)


def checked(remaining, limit=None, pool="credits"):
    return Checked((Balance(pool, Decimal(remaining), None if limit is None else Decimal(limit)),))


@pytest.mark.parametrize(
    ("remaining", "level", "line"),
    [
        (5000, Level.OK, None),
        (1001, Level.OK, None),
        (1000, Level.WARNING, Decimal(1000)),
        (101, Level.WARNING, Decimal(1000)),
        (100, Level.CRITICAL, Decimal(100)),
        (0, Level.CRITICAL, Decimal(100)),
    ],
)
def test_absolute_thresholds_are_inclusive(remaining, level, line):
    assert judge(Decimal(remaining), ABSOLUTE, None) == Judgement(level, line)


def test_percent_thresholds_apply_to_the_plan_limit():
    assert judge(Decimal(200), PERCENT, Decimal(1000)).level is Level.WARNING
    assert judge(Decimal(50), PERCENT, Decimal(1000)).line == Decimal(50)
    assert judge(Decimal(201), PERCENT, Decimal(1000)).level is Level.OK


def test_percent_threshold_without_a_limit_is_skipped_not_guessed():
    judgement = judge(Decimal(3), PERCENT, None)
    assert judgement.level is Level.OK
    assert judgement.unjudged == ("critical", "warning")


def test_an_empty_pool_is_critical_even_when_thresholds_cannot_be_judged():
    assert judge(Decimal(0), PERCENT, None).level is Level.CRITICAL


def test_fractional_balances_compare_exactly():
    thresholds = Thresholds(Threshold(Decimal("0.3")), Threshold(Decimal("0.1")))
    assert judge(Decimal("0.1"), thresholds, None).level is Level.CRITICAL
    assert judge(Decimal("0.10000000001"), thresholds, None).level is Level.WARNING


@pytest.mark.parametrize(
    ("before", "remaining", "after", "alerts"),
    [
        (Level.OK, 5000, Level.OK, []),
        (Level.OK, 500, Level.WARNING, [(AlertKind.LOW_CREDITS, "warning")]),
        (Level.OK, 50, Level.CRITICAL, [(AlertKind.LOW_CREDITS, "critical")]),
        (Level.WARNING, 500, Level.WARNING, []),
        (Level.WARNING, 50, Level.CRITICAL, [(AlertKind.LOW_CREDITS, "critical")]),
        (Level.CRITICAL, 500, Level.WARNING, []),
        (Level.CRITICAL, 50, Level.CRITICAL, []),
        (Level.WARNING, 5000, Level.OK, [(AlertKind.RECOVERED, "info")]),
        (Level.CRITICAL, 5000, Level.OK, [(AlertKind.RECOVERED, "info")]),
    ],
)
def test_pool_transitions(before, remaining, after, alerts):
    previous = AccountState(version=3, pools={"credits": PoolState(before)})
    evaluation = run(previous, checked(remaining))
    assert evaluation.state.pools["credits"].level is after
    assert [(a.kind, a.severity) for a in evaluation.alerts if a.aspect == "level"] == alerts
    assert evaluation.state.version == 3


def test_a_rejected_key_is_critical_at_once_and_only_once():
    first = run(AccountState(), Rejected(401))
    assert [(a.kind, a.severity) for a in first.alerts] == [(AlertKind.CHECK_FAILED, "critical")]
    assert "HTTP 401" in (first.alerts[0].reason or "")
    again = run(first.state, Rejected(401))
    assert again.alerts == ()
    assert again.state.failures == 2


def test_transient_failures_alert_only_after_the_configured_run_count():
    state = AccountState()
    for _ in range(2):
        evaluation = run(state, Unavailable("the provider timed out"))
        assert evaluation.alerts == ()
        state = evaluation.state
    third = run(state, Unavailable("the provider timed out"))
    assert [(a.kind, a.severity) for a in third.alerts] == [(AlertKind.CHECK_FAILED, "warning")]
    assert "3 failed check(s) in a row" in (third.alerts[0].reason or "")
    assert run(third.state, Unavailable("x")).alerts == ()


def test_a_transient_failure_never_lowers_a_rejected_key_alert():
    rejected = run(AccountState(), Rejected(403)).state
    assert run(rejected, Unavailable("x")).state.check is Level.CRITICAL


def test_success_after_failure_alert_recovers_and_resets_the_count():
    failing = AccountState(check=Level.WARNING, failures=5)
    evaluation = run(failing, checked(5000))
    assert [(a.kind, a.pool) for a in evaluation.alerts] == [(AlertKind.RECOVERED, None)]
    assert (evaluation.state.check, evaluation.state.failures) == (Level.OK, 0)


def test_failures_below_the_alert_count_recover_silently():
    evaluation = run(AccountState(failures=1), checked(5000))
    assert evaluation.alerts == ()


def test_exhausted_empties_known_pools_or_the_default_one():
    fresh = run(AccountState(), Exhausted())
    assert [(p.balance.pool, p.balance.remaining) for p in fresh.pools] == [("credits", 0)]
    known = AccountState(pools={"contact_views": PoolState(), "direct_dials": PoolState()})
    assert [p.balance.pool for p in run(known, Exhausted()).pools] == ["contact_views", "direct_dials"]
    assert all(a.severity == "critical" for a in run(known, Exhausted()).alerts)


def test_a_failed_check_leaves_pool_levels_alone():
    previous = AccountState(pools={"credits": PoolState(Level.WARNING)})
    assert run(previous, Unavailable("x")).state.pools == previous.pools


def test_a_misconfigured_entry_alerts_critical_naming_the_field_and_recovers_when_fixed():
    evaluation = run(AccountState(), Misconfigured("accounts[2].api_key: must be 8-1024 visible ASCII characters"))
    (alert,) = evaluation.alerts
    assert (alert.kind, alert.level) == (AlertKind.CHECK_FAILED, Level.CRITICAL)
    assert "accounts[2].api_key" in (alert.reason or "")
    (recovered,) = run(evaluation.state, checked(50_000)).alerts
    assert recovered.kind is AlertKind.RECOVERED


def test_alert_ids_are_stable_and_distinct():
    first = run(AccountState(), checked(50)).alerts[0]
    again = run(AccountState(), checked(50)).alerts[0]
    later = run(AccountState(), checked(50), now=NOW + timedelta(hours=1)).alerts[0]
    assert first.id == again.id
    assert first.id != later.id
    assert len(first.id) == 32


def test_percent_remaining_needs_a_limit():
    assert Balance("p", Decimal(858), Decimal(1000)).percent_remaining == Decimal("85.8")
    assert Balance("p", Decimal(858)).percent_remaining is None


def low_pool(alerted: datetime, level: Level = Level.WARNING) -> AccountState:
    return AccountState(version=1, pools={"credits": PoolState(level, iso(alerted))})


def test_a_pool_that_stays_low_is_reminded_after_the_interval_and_not_sooner():
    assert run(low_pool(NOW - timedelta(hours=23, minutes=59)), checked(500)).alerts == ()
    due = run(low_pool(NOW - timedelta(hours=24)), checked(500))
    assert [(a.kind, a.severity, a.reminder) for a in due.alerts] == [(AlertKind.LOW_CREDITS, "warning", True)]
    assert due.state.pools["credits"].alerted_at == iso(NOW)
    assert run(due.state, checked(500), now=NOW + timedelta(hours=23)).alerts == ()


def test_reminders_can_be_turned_off():
    assert run(low_pool(NOW - timedelta(days=30)), checked(500), remind_after=None).alerts == ()


def test_easing_from_critical_keeps_the_reminder_clock():
    evaluation = run(low_pool(NOW - timedelta(hours=2), Level.CRITICAL), checked(500))
    assert evaluation.alerts == ()
    assert evaluation.state.pools["credits"].alerted_at == iso(NOW - timedelta(hours=2))


def test_a_rejected_key_is_reminded_too():
    rejected = AccountState(check=Level.CRITICAL, check_alerted_at=iso(NOW - timedelta(hours=25)), failures=9)
    (alert,) = run(rejected, Rejected(401)).alerts
    assert (alert.kind, alert.reminder, alert.severity) == (AlertKind.CHECK_FAILED, True, "critical")


def test_recovery_clears_the_reminder_clock():
    recovered = run(low_pool(NOW - timedelta(hours=30)), checked(5000))
    assert [a.kind for a in recovered.alerts] == [AlertKind.RECOVERED]
    assert recovered.state.pools["credits"].alerted_at is None


def burning_window(per_hour: int, hours: int, start: int = 100_000) -> dict[str, PoolWindow]:
    points = tuple(Point(NOW - timedelta(hours=hours - h), Decimal(start - per_hour * h)) for h in range(hours))
    return {"credits": PoolWindow(points, full_tank=Decimal(start))}


def test_depletion_forecast_alerts_on_transitions_and_recovers_after_a_top_up():
    # 1,000 credits an hour: 24,000 a day. 100,000 left lasts ~4 days: warning (< 7 days).
    window = burning_window(per_hour=1000, hours=24, start=124_000)
    first = run(AccountState(), checked(100_000), windows=window)
    forecasts = [a for a in first.alerts if a.kind is AlertKind.DEPLETION_FORECAST]
    assert [(a.severity, a.aspect) for a in forecasts] == [("warning", "forecast")]
    assert forecasts[0].forecast is not None
    assert forecasts[0].forecast.burn_per_day == Decimal(24000)
    assert first.state.pools["credits"].forecast is Level.WARNING

    same = run(first.state, checked(99_000), windows=first.windows, now=NOW + timedelta(hours=1))
    assert same.alerts == ()

    topped = run(same.state, checked(900_000), windows=same.windows, now=NOW + timedelta(hours=2))
    assert [(a.kind, a.aspect) for a in topped.alerts] == [(AlertKind.RECOVERED, "forecast")]
    assert topped.pools[0].topup is not None


def test_forecast_critical_under_two_days():
    window = burning_window(per_hour=1000, hours=24, start=64_000)
    evaluation = run(AccountState(), checked(40_000), windows=window)
    assert [a.severity for a in evaluation.alerts if a.kind is AlertKind.DEPLETION_FORECAST] == ["critical"]


def test_an_empty_pool_sends_no_forecast_alert_and_no_forecast_recovery():
    previous = AccountState(version=1, pools={"credits": PoolState(Level.WARNING, iso(NOW), Level.WARNING)})
    evaluation = run(previous, checked(0), windows=burning_window(per_hour=1000, hours=24, start=24_000))
    assert [a.kind for a in evaluation.alerts] == [AlertKind.LOW_CREDITS]
    assert evaluation.state.pools["credits"].forecast is Level.WARNING


def test_recovery_after_a_top_up_says_how_much_was_added():
    previous = AccountState(version=1, pools={"credits": PoolState(Level.CRITICAL, iso(NOW))})
    window = {"credits": PoolWindow((Point(NOW - timedelta(hours=1), Decimal(50)),), full_tank=Decimal(5000))}
    (alert,) = run(previous, checked(10_050), windows=window).alerts
    assert alert.kind is AlertKind.RECOVERED
    assert alert.topup is not None
    assert alert.topup.added == Decimal(10_000)


def test_percent_thresholds_without_a_limit_use_the_full_tank():
    window = {"credits": PoolWindow((Point(NOW - timedelta(hours=5), Decimal(10_000)),), full_tank=Decimal(10_000))}
    evaluation = run(AccountState(), checked(1_500), thresholds=PERCENT, windows=window)
    assert evaluation.pools[0].judgement.level is Level.WARNING  # 15% of the 10,000 full tank
    assert evaluation.pools[0].judgement.line == Decimal(2000)


def test_a_forecast_that_adds_nothing_to_a_low_credits_alert_is_folded_into_it():
    # warning threshold 1,000 (ABSOLUTE); 100 credits an hour: 900 left lasts 9 hours (critical).
    window = burning_window(per_hour=100, hours=24, start=3_300)
    critical_low = run(AccountState(), checked(50), windows=burning_window(per_hour=10, hours=24, start=290))
    assert [(a.kind, a.level, a.folded_forecast) for a in critical_low.alerts] == [
        (AlertKind.LOW_CREDITS, Level.CRITICAL, Level.CRITICAL)
    ]
    assert critical_low.state.pools["credits"].forecast is Level.CRITICAL  # told: no forecast alert later

    warning_low = run(AccountState(), checked(900), windows=window)  # the forecast is worse than the level
    assert [(a.kind, a.level) for a in warning_low.alerts] == [
        (AlertKind.LOW_CREDITS, Level.WARNING),
        (AlertKind.DEPLETION_FORECAST, Level.CRITICAL),
    ]
    assert warning_low.alerts[0].folded_forecast is None


def hourly(rates: list[int], start: int = 100_000) -> dict[str, PoolWindow]:
    """A window of hourly balances ending an hour before NOW, consuming rates[h] in hour h."""
    balances, remaining = [], start
    for rate in rates:
        balances.append(remaining)
        remaining -= rate
    points = tuple(Point(NOW - timedelta(hours=len(rates) - h), Decimal(b)) for h, b in enumerate(balances))
    return {"credits": PoolWindow(points, full_tank=Decimal(start))}, remaining


def spike_run(rates: list[int], previous: AccountState | None = None, now=NOW, **policy):
    window, remaining = hourly(rates)
    return run(previous or AccountState(), checked(remaining), windows=window, now=now, **policy)


def test_a_burn_spike_is_a_warning_once_then_a_recovery():
    # 48 hours at 10 credits an hour, then 6 hours at 400: 40x the recent rate, 2,400 credits.
    evaluation = spike_run([10] * 48 + [400] * 6)
    (alert,) = [a for a in evaluation.alerts if a.kind is AlertKind.BURN_SPIKE]
    assert (alert.level, alert.aspect, alert.pool) == (Level.WARNING, "spike", "credits")
    assert alert.spike is not None
    assert alert.spike.ratio is not None
    assert alert.spike.ratio >= 3
    assert evaluation.state.pools["credits"].spike is Level.WARNING
    assert evaluation.pools[0].spike is not None

    again = run(evaluation.state, checked(0), windows=evaluation.windows, now=NOW + timedelta(hours=1))
    assert [a for a in again.alerts if a.aspect == "spike"] == []  # still a spike: said once

    calm, left = hourly([10] * 60)  # a later window, back to 10 an hour
    calmer = run(again.state, checked(left), windows=calm)
    assert [(a.kind, a.aspect) for a in calmer.alerts if a.aspect == "spike"] == [(AlertKind.RECOVERED, "spike")]


def test_no_spike_is_claimed_from_a_steady_burn_a_trickle_or_too_little_history():
    steady = spike_run([100] * 54)
    assert steady.state.pools["credits"].spike is Level.OK
    trickle = spike_run([1] * 48 + [15] * 6)  # 15x the rate, but only 90 credits
    assert trickle.state.pools["credits"].spike is Level.OK
    short = spike_run([10] * 4 + [400] * 6)  # 10 hours of history: the baseline is mostly the spike
    assert short.pools[0].spike is None
    assert [a for a in short.alerts if a.kind is AlertKind.BURN_SPIKE] == []
    lower_bar = spike_run([1] * 48 + [15] * 6, spike_minimum=Decimal(50))
    assert lower_bar.state.pools["credits"].spike is Level.WARNING


def test_too_little_history_keeps_a_spike_as_it_was():
    previous = AccountState(version=1, pools={"credits": PoolState(Level.OK, None, Level.OK, Level.WARNING, iso(NOW))})
    short = spike_run([10] * 4, previous=previous)
    assert short.state.pools["credits"].spike is Level.WARNING
    assert [a for a in short.alerts if a.aspect == "spike"] == []


def test_a_key_that_now_shares_a_balance_closes_what_it_alerted_on_its_own():
    previous = AccountState(
        version=3,
        check=Level.WARNING,
        failures=4,
        pools={
            "credits": PoolState(Level.CRITICAL, "2026-11-01T00:00:00Z", forecast=Level.WARNING),
            "phone": PoolState(),
        },
    )
    evaluation = share("cleanlist", "alice", NOW, previous, balance_name("org_a"))
    closed = [(a.kind, a.pool, a.aspect, a.previous, a.reason) for a in evaluation.alerts]
    assert closed == [
        (AlertKind.RECOVERED, None, "level", Level.WARNING, None),  # its check works again
        (AlertKind.RECOVERED, "credits", "level", Level.CRITICAL, SHARED),
        (AlertKind.RECOVERED, "credits", "forecast", Level.WARNING, SHARED),
    ]
    assert evaluation.state == AccountState(version=3, shares="@org_a")
    assert (evaluation.pools, dict(evaluation.windows)) == ((), {})
    again = share("cleanlist", "alice", NOW + timedelta(hours=1), evaluation.state, "@org_a")
    assert (again.alerts, again.state) == ((), evaluation.state)  # nothing to say twice


def test_a_key_back_on_its_own_balance_no_longer_shares_one():
    previous = AccountState(shares="@org_a")
    evaluation = run(previous, Checked((Balance("credits", Decimal(5000)),)))
    assert evaluation.state.shares is None

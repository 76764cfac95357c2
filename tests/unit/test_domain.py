"""Levels, transitions and state, with no mocks: the domain does no I/O."""

from decimal import Decimal

import pytest

from creditwatch.domain import (
    AccountState,
    AlertKind,
    Balance,
    Checked,
    Exhausted,
    Judgement,
    Level,
    PoolState,
    Rejected,
    Threshold,
    Thresholds,
    Unavailable,
    evaluate,
    judge,
    revert,
)

ABSOLUTE = Thresholds(warning=Threshold(Decimal(1000)), critical=Threshold(Decimal(100)))
PERCENT = Thresholds(warning=Threshold(Decimal(20), percent=True), critical=Threshold(Decimal(5), percent=True))


def run(previous: AccountState, outcome, thresholds=ABSOLUTE, failures_before_alert=3):
    return evaluate("leadmagic", "acme", "2026-11-22T10:00:00Z", previous, outcome, thresholds, failures_before_alert)


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
    assert [(a.kind, a.severity) for a in evaluation.alerts] == alerts
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
    assert [(b.pool, b.remaining) for b in fresh.balances] == [("credits", 0)]
    known = AccountState(pools={"contact_views": PoolState(), "direct_dials": PoolState()})
    assert [b.pool for b in run(known, Exhausted()).balances] == ["contact_views", "direct_dials"]
    assert all(a.severity == "critical" for a in run(known, Exhausted()).alerts)


def test_a_failed_check_leaves_pool_levels_alone():
    previous = AccountState(pools={"credits": PoolState(Level.WARNING)})
    assert run(previous, Unavailable("x")).state.pools == previous.pools


def test_revert_undoes_only_the_unsent_alerts():
    previous = AccountState(check=Level.CRITICAL, pools={"a": PoolState(Level.OK), "b": PoolState(Level.OK)})
    outcome = Checked((Balance("a", Decimal(50)), Balance("b", Decimal(500))))
    evaluation = run(previous, outcome)
    recovered, low_a, _low_b = evaluation.alerts
    state = revert(evaluation.state, previous, [low_a])
    assert state.pools["a"].level is Level.OK
    assert state.pools["b"].level is Level.WARNING
    assert state.check is Level.OK
    assert revert(evaluation.state, previous, [recovered]).check is Level.CRITICAL


def test_percent_remaining_needs_a_limit():
    assert Balance("p", Decimal(858), Decimal(1000)).percent_remaining == Decimal("85.8")
    assert Balance("p", Decimal(858)).percent_remaining is None

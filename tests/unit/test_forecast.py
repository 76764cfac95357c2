"""Burn rate and depletion forecasts over hand-built balance histories."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from creditwatch.forecast import Point, PoolWindow, advance, forecast

START = datetime(2026, 11, 19, 0, tzinfo=UTC)
SPAN = timedelta(hours=72)


def history(*balances: float | int, every: timedelta = timedelta(hours=1), topped_up_at: list | None = None):
    """Feed balances through `advance` as a run would, one `every` apart; return window and top-ups."""
    window, topups = PoolWindow(), []
    for index, value in enumerate(balances):
        reported = topped_up_at[index] if topped_up_at else None
        window, topup = advance(window, Decimal(str(value)), reported, START + index * every, SPAN)
        topups.append(topup)
    return window, topups


def test_steady_burn():
    window, topups = history(*range(10_000, 7_000, -125))  # 125 an hour for 23 hours
    prediction = forecast(window, Decimal(7_125))
    assert prediction.burn_per_day == Decimal(3000)
    assert prediction.days_left == Decimal("2.375")
    assert prediction.empty_at == window.points[-1].at + timedelta(days=2.375)
    assert prediction.observations == 24
    assert not any(topups)


def test_burn_interrupted_by_a_top_up_is_not_negative_burn():
    # 1,000 a day before and after a top-up of 50,000.
    before = [10_000 - 1000 * d / 24 for d in range(0, 25, 6)]  # 10,000 .. 9,000 over 24 h
    after = [59_000 - 1000 * d / 24 for d in range(0, 25, 6)]  # 59,000 .. 58,000 over 24 h
    window, topups = history(*before, *after, every=timedelta(hours=6))
    prediction = forecast(window, Decimal(58_000))
    assert prediction.burn_per_day == Decimal(1000)
    assert prediction.days_left == Decimal(58)
    (topup,) = [t for t in topups if t]
    assert topup.added == Decimal(50_000)
    assert window.full_tank == Decimal(59_000)


def test_flat_usage_gives_no_forecast():
    window, _ = history(5000, 5000, 5000, 5000)
    prediction = forecast(window, Decimal(5000))
    assert prediction.sufficient
    assert prediction.burn_per_day == 0
    assert prediction.days_left is None
    assert prediction.describe() == "not burning"


def test_too_little_history_is_said_not_guessed():
    single, _ = history(5000)
    assert forecast(single, Decimal(5000)).describe() == "insufficient history"
    short, _ = history(5000, 4000, every=timedelta(minutes=30))  # 2 observations over 30 minutes
    assert not forecast(short, Decimal(4000)).sufficient
    assert forecast(short, Decimal(4000)).burn_per_day is None


def test_old_observations_leave_the_window():
    window, _ = history(*range(100, 0, -1), every=timedelta(hours=1))  # 100 hours of data
    assert len(window.points) == 72
    assert window.points[0].at == START + timedelta(hours=28)


def test_clado_last_topup_at_marks_a_top_up_hidden_by_usage():
    stamps = ["2026-11-01T00:00:00Z", "2026-11-01T00:00:00Z", "2026-11-19T01:30:00Z"]
    window, topups = history(1000, 900, 850, topped_up_at=stamps)
    assert topups[2] is not None
    assert topups[2].added is None  # the balance fell overall: the size is unknown
    assert [p.segment for p in window.points] == [0, 0, 1]
    assert window.full_tank == Decimal(850)


def test_full_tank_is_the_largest_balance_since_the_last_top_up():
    window, _ = history(800, 1000, 900, 700)
    assert window.full_tank == Decimal(1000)


def test_segments_that_consumed_nothing_do_not_dilute_the_rate():
    points = (
        Point(START, Decimal(1000), 0),
        Point(START + timedelta(hours=12), Decimal(500), 0),
        Point(START + timedelta(hours=13), Decimal(5000), 1),
        Point(START + timedelta(hours=48), Decimal(5000), 1),
    )
    prediction = forecast(PoolWindow(points), Decimal(5000))
    assert prediction.burn_per_day == Decimal(1000)


def test_the_last_top_up_is_remembered_after_its_point_leaves_the_window():
    window, _ = history(100, 90, 500, 450)
    assert window.last_topup_at == START + timedelta(hours=2)
    later, _ = advance(window, Decimal(400), None, START + timedelta(days=5), SPAN)
    assert [point.remaining for point in later.points] == [Decimal(400)]  # the top-up's point is gone
    assert later.last_topup_at == START + timedelta(hours=2)
    assert history(100, 90)[0].last_topup_at is None

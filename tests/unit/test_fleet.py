"""A run's accounts read as a fleet, with no mocks: standings, the series budget, counts."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from creditwatch import fleet
from creditwatch.domain import (
    AccountState,
    Balance,
    Checked,
    Evaluation,
    Policy,
    Rejected,
    Threshold,
    Thresholds,
    evaluate,
)
from creditwatch.forecast import PoolWindow, advance

NOW = datetime(2026, 11, 22, 10, tzinfo=UTC)
POLICY = Policy(Thresholds(Threshold(Decimal(1000)), Threshold(Decimal(100))))


def evaluated(remaining: int | str, per_hour: int = 0, limit: int | None = None, pools: int = 1) -> Evaluation:
    """An account's run after 48 hours of hourly checks burning `per_hour` credits."""
    names = ["credits", "phones", "emails"][:pools]
    windows = {}
    for name in names:
        window = PoolWindow()
        for hours in range(48, 0, -1):
            at = NOW - timedelta(hours=hours)
            window, _ = advance(window, Decimal(remaining) + per_hour * hours, None, at, timedelta(hours=72))
        windows[name] = window
    cap = None if limit is None else Decimal(limit)
    outcome = Checked(tuple(Balance(name, Decimal(remaining), cap) for name in names))
    return evaluate("leadmagic", "a", NOW, AccountState(), windows, outcome, POLICY)


def failed() -> Evaluation:
    return evaluate("leadmagic", "a", NOW, AccountState(), {}, Rejected(401), POLICY)


def test_an_accounts_level_is_its_worst_pool_and_a_failed_check_ranks_first():
    assert fleet.standing("x", failed()).level == "failed"
    ranks = {
        name: fleet.standing(name, evaluation).rank
        for name, evaluation in {
            "failed": failed(),
            "critical": evaluated(50),
            "warning": evaluated(900),
            "running out": evaluated(5000, per_hour=100),  # 2.1 days at 2,400 a day
            "fine": evaluated(50_000, per_hour=1),
        }.items()
    }
    assert ranks == {"failed": 4, "critical": 3, "warning": 2, "running out": 1, "fine": 0}
    assert fleet.unchecked("x", "out of time").rank == 4


def test_attention_order_is_rank_then_fewest_days_then_least_percent_then_name():
    standings = [
        fleet.Standing("b", "ok", 0),
        fleet.Standing("a", "ok", 0),
        fleet.Standing("slow", "warning", 2, days_left=Decimal(9)),
        fleet.Standing("fast", "warning", 2, days_left=Decimal(1)),
        fleet.Standing("unknown", "warning", 2),
        fleet.Standing("revoked", "failed", 4),
    ]
    ordered = [s.account for s in sorted(standings, key=fleet.Standing.order)]
    assert ordered == ["revoked", "fast", "slow", "unknown", "a", "b"]


def fleet_of(size: int, low: int = 0) -> tuple[list[fleet.Standing], dict[str, Evaluation]]:
    evaluations = {f"acct-{i:05d}": evaluated(50 if i < low else 50_000, per_hour=10) for i in range(size)}
    return [fleet.standing(name, e) for name, e in evaluations.items()], evaluations


def test_a_small_fleet_keeps_every_accounts_own_line_and_the_neediest_get_the_rest():
    standings, evaluations = fleet_of(10, low=1)
    allotment = fleet.allot(standings, evaluations, budget=20)
    assert allotment.headline == set(evaluations)
    # 10 lines spent; each detail costs 2 checks + burn + days = 4: the low account first
    assert len(allotment.detail) == 2
    assert "acct-00000" in allotment.detail


@pytest.mark.parametrize("size", [1, 20, 2000])
def test_a_fleet_of_any_size_declares_at_most_the_budget(size):
    standings, evaluations = fleet_of(size, low=size // 10)
    allotment = fleet.allot(standings, evaluations, budget=20)
    spent = sum(len(evaluations[name].pools) for name in allotment.headline)
    for name in allotment.detail:
        spent += fleet.CHECK_SERIES + sum(len(fleet.pool_values(r)) - 1 for r in evaluations[name].pools)
    assert spent <= 20
    assert allotment.headline  # somebody is always drawn
    worst = sorted(standings, key=fleet.Standing.order)[: len(allotment.headline)]
    assert {s.account for s in worst} == allotment.headline


def test_a_multi_pool_account_takes_a_line_per_pool_and_a_failed_one_takes_its_checks():
    evaluations = {"prospect": evaluated(50, pools=3), "revoked": failed()}
    standings = [fleet.standing(name, e) for name, e in evaluations.items()]
    allotment = fleet.allot(standings, evaluations, budget=5)
    assert allotment.headline == {"prospect"}
    assert allotment.detail == {"revoked"}  # 3 lines, then its 2 checks; the prospect's detail does not fit
    assert fleet.allot(standings, evaluations, budget=0) == fleet.Allotment()


def test_shards_share_the_budget_without_exceeding_it():
    shards = [1000, 1000, 1000, 1000, 1000, 7]
    assert sum(fleet.share(20, size, sum(shards)) for size in shards) <= 20
    assert fleet.share(20, 10, 10) == 20


def test_the_fleet_is_counted_by_level_and_checked_or_not():
    standings, _ = fleet_of(5, low=2)
    standings += [fleet.standing("revoked", failed()), fleet.unchecked("late", "out of time")]
    assert fleet.tally(standings) == {
        "AccountsOk": 3,
        "AccountsWarning": 0,
        "AccountsCritical": 2,
        "AccountsFailed": 1,
        "AccountsChecked": 6,
        "AccountsUnchecked": 1,
    }


def test_each_pools_lowest_forecast_and_share_of_plan_across_the_fleet():
    evaluations = [evaluated(5000, per_hour=100, limit=10_000), evaluated(2400, per_hour=100, limit=4800), failed()]
    (pool,) = fleet.lowest(evaluations).values()
    assert pool["LowestDaysUntilEmpty"] == pytest.approx(Decimal(1), rel=Decimal("0.01"))
    assert pool["LowestPercentRemaining"] == 50
    assert fleet.lowest([evaluated(5000)]) == {}  # not burning, no limit: nothing to say


def test_a_journal_line_is_json_with_exact_balances_and_sortable_numbers():
    evaluation = evaluated("1234.5", per_hour=100, limit=10_000)
    line = fleet.record("cleanlist", fleet.standing("ops", evaluation), evaluation, evaluation.observed_at)
    assert json.loads(json.dumps(line)) == line
    assert line["pools"]["credits"]["remaining"] == "1234.5"
    assert (line["level"], line["rank"]) == ("ok", 1)  # above the thresholds, empty in half a day
    assert isinstance(line["days_left"], float)
    late = fleet.record("cleanlist", fleet.unchecked("late", "out of time"), None, "2026-11-22T10:00:00Z")
    assert (late["level"], late["reason"], "pools" in late) == ("unchecked", "out of time", False)

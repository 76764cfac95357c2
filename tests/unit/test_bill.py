"""The bench's bill: DynamoDB's item sizes and units, CloudWatch's metric tiers, a month."""

from decimal import Decimal

import pytest

from bench import prices
from bench.bill import Emissions, item_size, metric_cost, monthly, read_units, write_units


@pytest.mark.parametrize(
    ("item", "size"),
    [
        ({"pk": {"S": "leadmagic#acme"}}, 2 + 14),
        ({"n": {"N": "15432.50"}}, 1 + 3 + 1),  # 6 significant digits: 3 bytes, plus 1
        ({"n": {"N": "-0.0001"}}, 1 + 1 + 1),
        ({"ok": {"BOOL": True}, "none": {"NULL": True}}, 2 + 1 + 4 + 1),
        ({"l": {"L": [{"S": "ab"}, {"N": "1"}]}}, 1 + 3 + (2 + 1) + (2 + 1)),
        ({"m": {"M": {"level": {"S": "ok"}}}}, 1 + 3 + (5 + 2 + 1)),
    ],
)
def test_item_sizes_follow_dynamodbs_rules(item, size):
    assert item_size(item) == size


def test_units_round_up_by_the_kilobyte_written_and_four_read():
    assert write_units({"a": {"S": "x" * 1022}}) == 1
    assert write_units({"a": {"S": "x" * 1023}}) == 1
    assert write_units({"a": {"S": "x" * 1024}}) == 2
    assert (read_units(0), read_units(4096), read_units(4097)) == (1, 1, 2)


def test_metrics_are_priced_by_their_tiers():
    assert metric_cost(10) == Decimal("3.00")
    assert metric_cost(25_000) == 10_000 * Decimal("0.30") + 15_000 * Decimal("0.10")


def test_a_month_of_nothing_costs_what_the_stack_costs_standing_still():
    idle = Emissions(0, 0, 0, 0, 0, 0, 0.0, 256, 0, 0, 0, 0, 0, 0, 0, 5, 1)
    bill = monthly(idle)
    assert bill["CloudWatch alarms and dashboard"] == 5 * prices.ALARM_MONTH + prices.DASHBOARD_MONTH
    assert bill["KMS key"] == prices.KMS_KEY_MONTH
    assert bill["CloudWatch metrics"] == bill["DynamoDB"] == 0


def test_a_month_is_730_hourly_runs_of_what_one_run_emits():
    one = Emissions(1, 0, 0, 0, 0, 1, 1.0, 1024, 1_000_000, 0, 0, 0, 0, 0, 0, 0, 0)
    assert monthly(one)["DynamoDB"] == 730 * prices.DYNAMODB_WRITE_UNITS_MILLION
    # the three ticks an hour between runs are invocations too (this one's take no time)
    requests = Decimal(730 + 3 * 730) / 1_000_000 * Decimal("0.20")
    assert monthly(one)["Lambda"] == 730 * prices.LAMBDA_GB_SECOND + requests

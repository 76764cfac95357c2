"""The repository's items and what a run reads back of them."""

from datetime import UTC, datetime
from decimal import Decimal

from creditwatch.domain import AccountState, Level, PoolState
from creditwatch.forecast import Point, PoolWindow
from creditwatch.notifier import Message
from creditwatch.repository import LOADED_ATTRIBUTES, Pending, Repository

NOW = datetime(2026, 12, 1, tzinfo=UTC)
LEFT_BEHIND = {"pk", "provider", "updated_at", "checked_at", "expires_at"}  # never read back by a run


def test_a_run_reads_back_every_attribute_it_writes_but_those_it_never_needs():
    """The load's projection must name every attribute the decoders read: one left out would be
    lost on the next write."""
    repository = Repository(client=None, table="t", provider="cleanlist", retention_days=90)
    state = AccountState(
        version=1,
        check=Level.WARNING,
        check_alerted_at="2026-12-01T00:00:00Z",
        failures=3,
        pools={"credits": PoolState(Level.CRITICAL, "2026-12-01T00:00:00Z", Level.WARNING, Level.WARNING, "x")},
        silenced=(":check",),
        retired_at="2026-12-01T00:00:00Z",
        shares="@org",
        members=("a", "b"),
    )
    message = Message("id", "subject", "email", "sms", {"alert": "low_credits"})
    item = repository._state_item("a", 2, state, [Pending(message, "2026-12-01T00:00:00Z")], NOW)
    assert set(item) - LEFT_BEHIND == set(LOADED_ATTRIBUTES)
    window = PoolWindow((Point(NOW, Decimal(5)),), Decimal(5), "t", NOW, NOW)
    checked, expires = {"S": "2026-12-01T00:00:00Z"}, {"N": "1"}
    written = repository._window_item("a", {"credits": window}, checked, expires)
    assert set(written) - LEFT_BEHIND <= set(LOADED_ATTRIBUTES)


def test_a_state_item_leaves_out_what_is_unset():
    repository = Repository(client=None, table="t", provider="cleanlist", retention_days=90)
    item = repository._state_item("a", 1, AccountState(pools={"credits": PoolState()}), [], NOW)
    assert "retired_at" not in item
    assert "outbox" not in item
    assert item["pools"] == {
        "M": {"credits": {"M": {"level": {"S": "ok"}, "forecast": {"S": "ok"}, "spike": {"S": "ok"}}}}
    }

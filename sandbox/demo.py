"""make demo: the real handlers of all four providers, once, against moto and the simulator.

No AWS account and no internet: AWS is moto in this process, the providers are the local
simulator on 127.0.0.1. Prints balances, levels and the alerts that would have been sent.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from moto import mock_aws

from creditwatch import providers
from creditwatch.forecast import forecast
from creditwatch.notifier import credits
from creditwatch.observability import logger
from sandbox.harness import FAKE_AWS_ENV, Stack, raw_template
from sandbox.simulator import ProviderSimulator, Reply, balance, prospect

# What a stack deploys by default (the four seeds), and the definitions that report a renewal date
SEEDS = tuple(raw_template()["Parameters"]["Providers"]["Default"].split(","))
PROVIDERS = SEEDS + tuple(n for n in providers.names() if n not in SEEDS and providers.load(n).renews_at)
CLADO_TOPPED_UP_AT = "2026-11-01T09:00:00Z"  # what the simulated Clado reports as its last top-up

# provider -> [(account, key, reply, per-account thresholds)]
ACCOUNTS: dict[str, list[tuple[str, str, Reply, dict[str, str]]]] = {
    "clodura": [
        ("growth", "demo-clodura-growth-0001", balance("clodura", 48000), {}),
        (
            "prospect-team",
            "demo-clodura-prospect-0002",
            prospect(contacts_used=845, max_contacts=1000, dials_used=192, max_dials=200),
            {"warning_threshold": "20%", "critical_threshold": "5%"},
        ),
    ],
    "clado": [
        ("enrichment", "demo-clado-enrich-0003", balance("clado", 640, last_topup_at=CLADO_TOPPED_UP_AT), {}),
        (
            "outbound",
            "demo-clado-revoked-0004",
            Reply(401, {"detail": "Unauthorized - API key missing or invalid"}),
            {},
        ),
    ],
    "cleanlist": [
        ("ops", "demo-cleanlist-ops-0005", balance("cleanlist", 1234.5), {}),
        ("research", "demo-cleanlist-research-0006", balance("cleanlist", 87.3), {}),
    ],
    "leadmagic": [
        (
            "main",
            "demo-leadmagic-main-0007",
            Reply(body='{"credits": 15432.50}', headers={"Content-Type": "application/json"}),
            {},
        ),
        ("backup", "demo-leadmagic-backup-0008", Reply(402, {"message": "Payment Required"}), {}),
        ("eu", "demo-leadmagic-eu-0009", Reply(200, "<html><body>502 Bad Gateway</body></html>"), {}),
    ],
}


# provider, account -> (balance now, credits burned per day, days of history), seeded as past runs
HISTORY = {
    ("leadmagic", "main"): (Decimal("15432.50"), 2400, 3),
    ("clado", "enrichment"): (Decimal(640), 200, 10),
    ("cleanlist", "ops"): (Decimal("1234.5"), 150, 3),
    ("clodura", "growth"): (Decimal(48000), 0, 2),
}
# provider, account -> (days ago, credits added): a top-up in the seeded history
TOPUPS = {("clado", "enrichment"): (4, Decimal(1000))}


def accounts() -> dict[str, list[tuple[str, str, Reply, dict[str, str]]]]:
    """The accounts above, and for any other provider in the registry one account answering
    its definition's documented example."""
    return {
        provider: ACCOUNTS.get(provider)
        or [("main", f"demo-{provider}-main-0100", Reply(body=providers.load(provider).example), {})]
        for provider in PROVIDERS
    }


def seed(stack: Stack, simulator: ProviderSimulator) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    for (provider, account), (current, per_day, days) in HISTORY.items():
        topup_days, added = TOPUPS.get((provider, account), (0, Decimal(0)))
        hourly = [
            (now - timedelta(hours=h), current + Decimal(per_day) * h / 24 - (added if h > topup_days * 24 else 0))
            for h in range(days * 24, 0, -1)
        ]
        reported = CLADO_TOPPED_UP_AT if provider == "clado" else None
        stack.seed_history(provider, account, hourly, topped_up_at=reported)
    for provider, entries in accounts().items():
        for _name, key, reply, _ in entries:
            simulator.script(provider, key, reply)
        stack.put_secret(
            provider,
            {"accounts": [{"name": name, "api_key": key, **limits} for name, key, _, limits in entries]},
        )


@contextlib.contextmanager
def captured() -> Iterator[io.StringIO]:
    """The JSON logs and EMF lines that would go to CloudWatch Logs, kept off the screen."""
    output = io.StringIO()
    previous = logger.registered_handler.setStream(output)  # type: ignore[attr-defined]
    try:
        with contextlib.redirect_stdout(output):
            yield output
    finally:
        logger.registered_handler.setStream(previous)  # type: ignore[attr-defined]


def run_all(stack: Stack, simulator: ProviderSimulator) -> int:
    """Run every handler once with its output captured; return how many lines it wrote."""
    with captured() as output:
        for provider in PROVIDERS:
            stack.invoke(provider, stack.environment(provider, simulator.base_url))
    return output.getvalue().count("\n")


def rows(stack: Stack) -> list[list[str]]:
    """Each account's latest balances, read back the way the functions store them."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for item in sorted((i for i in stack.items() if i["sk"].startswith("SNAP#")), key=lambda i: i["sk"]):
        latest[(item["pk"], item["pool"])] = item
    table = []
    for provider, entries in accounts().items():
        loaded, _ = stack.repository(provider).load([name for name, *_ in entries])
        for name, stored in loaded.items():
            state, windows = stored.state, stored.windows
            pools = [item for (pk, _), item in latest.items() if pk == f"{provider}#{name}"]
            if not pools:
                failing = f"check failing ({state.failures} runs)"
                table.append([provider, name, "-", "-", "-", "critical: key rejected" if state.check else failing, "-"])
            for item in pools:
                prediction = forecast(windows[item["pool"]], item["remaining"])
                burn = f", {credits(prediction.burn_per_day)}/day" if prediction.days_left is not None else ""
                table.append(
                    [
                        provider,
                        name,
                        item["pool"],
                        f"{item['remaining']:,}",
                        f"{item['limit']:,}" if "limit" in item else "-",
                        str(state.pools[item["pool"]].level),
                        prediction.describe() + burn,
                    ]
                )
    return table


def print_table(header: list[str], body: list[list[str]]) -> None:
    widths = [max(len(str(row[i])) for row in [header, *body]) for i in range(len(header))]
    line = "  ".join("-" * width for width in widths)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print(line)
    for row in body:
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)))


EVENT_COLUMNS = ("provider", "account", "pool", "level", "remaining", "alert_id")


def main(then: Callable[[Stack], None] | None = None) -> None:
    """The demo; `then` runs in the same moto account afterwards (creditwatch demo --plot)."""
    os.environ.update(FAKE_AWS_ENV)
    with mock_aws(), ProviderSimulator() as simulator:
        with captured():
            stack = Stack()
            seed(stack, simulator)
        written = run_all(stack, simulator)
        first = list(stack.alerts())
        events = list(stack.events())
        run_all(stack, simulator)
        repeated = len(stack.alerts()) - len(first)
        repeated_events = len(stack.events()) - len(events)

        count = sum(map(len, accounts().values()))
        print(f"\ncreditwatch demo: {len(PROVIDERS)} providers, {count} accounts, simulator at {simulator.base_url}")
        print("Thresholds: warning <= 1,000 credits, critical <= 100 (prospect-team: 20% / 5% of its plan limits).")
        print("Forecast: depletion_forecast alerts below 7 days (warning) and 2 days (critical) at the current burn.\n")
        print_table(["provider", "account", "pool", "remaining", "limit", "level", "forecast"], rows(stack))
        print(f"\nAlerts published to SNS ({len(first)}):")
        print_table(
            ["severity", "alert", "subject"],
            [
                [a["MessageAttributes"]["severity"]["Value"], a["MessageAttributes"]["alert"]["Value"], a["Subject"]]
                for a in first
            ],
        )
        print(f"\nEvents put on the EventBridge bus, one per alert ({len(events)}), as a rule delivers them:")
        print_table(
            ["detail-type", *EVENT_COLUMNS],
            [[e["detail-type"], *(str(e["detail"][k] or "-") for k in EVENT_COLUMNS)] for e in events],
        )
        example = next(a for a in first if a["MessageAttributes"]["alert"]["Value"] == "depletion_forecast")
        print(f"\nThe email of '{example['Subject']}' (SMS gets one short line, critical alerts only):\n")
        print("    " + example["Message"].replace("\n", "\n    "))
        print(
            f"\nSecond run of every handler: {repeated} new alert(s) and {repeated_events} new event(s)"
            " (an alert goes out once per change of level)."
        )
        print(f"Each run wrote {written} JSON log and EMF metric lines to stdout (CloudWatch Logs, when deployed).")
        journal = [line for provider in PROVIDERS for line in stack.journal(provider)]
        latest = {(line["provider"], line["account"]): line for line in journal}
        need = sorted((line for line in latest.values() if line["rank"]), key=lambda line: -line["rank"])
        print(
            f"The accounts journal took {len(journal)} lines, one per account per run. Its attention table, worst"
            f" first: " + ", ".join(f"{line['provider']}/{line['account']} ({line['level']})" for line in need)
        )
        print("leadmagic/eu is failing transiently: a check_failed warning goes out after 3 failed runs in a row.\n")
        if then is not None:
            with captured():  # its AWS calls log like the functions'; what it says goes to stderr
                then(stack)


if __name__ == "__main__":
    main()

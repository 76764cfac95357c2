"""make demo: the real handlers of all four providers, once, against moto and the simulator.

No AWS account and no internet: AWS is moto in this process, the providers are the local
simulator on 127.0.0.1. Prints balances, levels and the alerts that would have been sent.
"""

from __future__ import annotations

import contextlib
import io
import os
from typing import Any

from moto import mock_aws

from creditwatch.observability import logger
from sandbox.harness import FAKE_AWS_ENV, PROVIDERS, Stack
from sandbox.simulator import ProviderSimulator, Reply, balance, prospect

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
        ("enrichment", "demo-clado-enrich-0003", balance("clado", 640, last_topup_at="2026-11-01T09:00:00Z"), {}),
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


def seed(stack: Stack, simulator: ProviderSimulator) -> None:
    for provider, accounts in ACCOUNTS.items():
        for _name, key, reply, _ in accounts:
            simulator.script(provider, key, reply)
        stack.put_secret(
            provider,
            {"accounts": [{"name": name, "api_key": key, **limits} for name, key, _, limits in accounts]},
        )


def run_all(stack: Stack, simulator: ProviderSimulator) -> int:
    """Run every handler once with its output captured; return how many lines it wrote."""
    output = io.StringIO()
    previous = logger.registered_handler.setStream(output)  # type: ignore[attr-defined]
    try:
        with contextlib.redirect_stdout(output):
            for provider in PROVIDERS:
                stack.invoke(provider, stack.environment(provider, simulator.base_url))
    finally:
        logger.registered_handler.setStream(previous)  # type: ignore[attr-defined]
    return output.getvalue().count("\n")


def rows(stack: Stack) -> list[list[str]]:
    items = stack.items()
    states = {item["pk"]: item for item in items if item["sk"] == "STATE"}
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for item in sorted((i for i in items if i["sk"].startswith("SNAP#")), key=lambda i: i["sk"]):
        latest[(item["pk"], item["pool"])] = item
    table = []
    for provider, accounts in ACCOUNTS.items():
        for name, *_ in accounts:
            pk = f"{provider}#{name}"
            state = states.get(pk, {})
            pools = [item for (key, _), item in latest.items() if key == pk]
            if not pools:
                rejected = state.get("check") == "critical"
                status = "critical: key rejected" if rejected else f"check failing ({state.get('failures', 0)} runs)"
                table.append([provider, name, "-", "-", "-", status])
            for item in pools:
                level = state.get("pools", {}).get(item["pool"], {}).get("level", "ok")
                limit = f"{item['limit']:,}" if "limit" in item else "-"
                table.append([provider, name, item["pool"], f"{item['remaining']:,}", limit, level])
    return table


def print_table(header: list[str], body: list[list[str]]) -> None:
    widths = [max(len(str(row[i])) for row in [header, *body]) for i in range(len(header))]
    line = "  ".join("-" * width for width in widths)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print(line)
    for row in body:
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)))


def main() -> None:
    os.environ.update(FAKE_AWS_ENV)
    with mock_aws(), ProviderSimulator() as simulator:
        stack = Stack()
        seed(stack, simulator)
        written = run_all(stack, simulator)
        first = list(stack.alerts())
        run_all(stack, simulator)
        repeated = len(stack.alerts()) - len(first)

        accounts = sum(map(len, ACCOUNTS.values()))
        print(f"\ncreditwatch demo: 4 providers, {accounts} accounts, provider simulator at {simulator.base_url}")
        print("Thresholds: warning <= 1,000 credits, critical <= 100 (prospect-team: 20% / 5% of its plan limits)\n")
        print_table(["provider", "account", "pool", "remaining", "limit", "level"], rows(stack))
        print(f"\nAlerts published to SNS ({len(first)}):")
        print_table(
            ["severity", "alert", "subject"],
            [
                [a["MessageAttributes"]["severity"]["Value"], a["MessageAttributes"]["alert"]["Value"], a["Subject"]]
                for a in first
            ],
        )
        print("\nThe email of the first alert (SMS gets one short line, critical alerts only):\n")
        print("    " + first[0]["Message"].replace("\n", "\n    "))
        print(f"\nSecond run of every handler: {repeated} new alert(s) (an alert goes out once per change of level).")
        print(f"Each run wrote {written} JSON log and EMF metric lines to stdout (CloudWatch Logs, when deployed).")
        print("leadmagic/eu is failing transiently: a check_failed warning goes out after 3 failed runs in a row.\n")


if __name__ == "__main__":
    main()

"""make bench: speed, memory and DynamoDB call counts of one run over many accounts.

Runs the real LeadMagic handler in-process against moto and the provider simulator, so the
figures include HTTP on loopback and moto's own overhead: an upper bound for the run's own work.
Exits non-zero when a target is missed.
"""

from __future__ import annotations

import collections
import gzip
import math
import os
import subprocess
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from moto import mock_aws

from creditwatch import http, monitor, providers
from creditwatch.domain import AccountState, Balance, Checked, Policy, Threshold, Thresholds, evaluate
from creditwatch.observability import logger
from creditwatch.redaction import Redactor
from sandbox.harness import FAKE_AWS_ENV, ROOT, Stack
from sandbox.simulator import ProviderSimulator, Reply, balance

ACCOUNTS = 300
TARGETS = {
    "import_s": 2.0,  # cold-start import of the shared package and its libraries
    "run_s": 10.0,  # one run over ACCOUNTS accounts, moto and loopback HTTP included
    "peak_mib": 32.0,  # traced Python allocations during that run
    "evaluations_per_s": 10_000.0,  # pure domain throughput, forecast over 72 points included
    "redact_line_ms": 0.5,  # one 600-character log line cleaned of 5,000 known keys
}
# One request against a hostile provider: (reply, peak MiB target, seconds target).
BUDGET = 2.0  # the request budget used here, in place of http.REQUEST_BUDGET, to keep the bench short
HOSTILE = {
    "20 MiB body": (Reply(body=b"{" + b" " * (20 * 2**20) + b"}"), 2.0, 5.0),
    "gzip bomb (40 KB -> 40 MiB)": (
        Reply(body=gzip.compress(b"{" + b" " * (40 * 2**20) + b"}"), headers={"Content-Encoding": "gzip"}),
        2.0,
        5.0,
    ),
    "dripped body (1 B / 0.1 s)": (
        Reply(body=b'{"credits": 1' + b" " * 100 + b"}", chunk=1, drip=0.1),
        2.0,
        BUDGET + 1,
    ),
    "hung provider": (Reply(body={"credits": 1}, delay=30), 2.0, http.READ_TIMEOUT + 1),
}


def import_seconds() -> float:
    code = "import time; t = time.perf_counter(); import creditwatch.monitor; print(time.perf_counter() - t)"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers" / "creditwatch")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)  # noqa: S603
    return float(result.stdout)


def evaluations_per_second() -> float:
    """Pure domain throughput: hourly checks of one pool, with a full 72-hour forecast window."""
    policy = Policy(Thresholds(Threshold(Decimal(1000)), Threshold(Decimal(100))))
    start, count = datetime(2026, 11, 1, tzinfo=UTC), 20_000
    state, windows = AccountState(), {}
    began = time.perf_counter()
    for hour in range(count):
        outcome = Checked((Balance("credits", Decimal(10**9 - 37 * hour)),))
        evaluation = evaluate("p", "a", start + timedelta(hours=hour), state, windows, outcome, policy)
        state, windows = evaluation.state, evaluation.windows
    return count / (time.perf_counter() - began)


def redact_line_ms() -> float:
    redactor = Redactor()
    redactor.add(f"bench-key-{index:06d}-{'x' * 16}" for index in range(5000))
    line = '{"level":"INFO","message":"balance checked","account":"account-17","remaining":"42.5"}' * 7
    began = time.perf_counter()
    for _ in range(1000):
        redactor(line)
    return time.perf_counter() - began  # 1,000 lines: seconds x 1000 / 1000 = ms per line


def hostile_requests() -> dict[str, tuple[float, float]]:
    """Peak traced MiB and seconds of one check against each hostile reply."""
    figures = {}
    provider = providers.load("leadmagic")
    http.REQUEST_BUDGET = BUDGET
    with ProviderSimulator() as simulator:
        for name, (reply, _, _) in HOSTILE.items():
            simulator.script("leadmagic", "bench-hostile-key-0001", reply)
            session = http.new_session()
            tracemalloc.start()
            began = time.perf_counter()
            http.fetch(session, provider, simulator.base_url, "bench-hostile-key-0001")
            seconds = time.perf_counter() - began
            figures[name] = (tracemalloc.get_traced_memory()[1] / 2**20, seconds)
            tracemalloc.stop()
    return figures


def two_runs() -> list[tuple[float, float, dict[str, int]]]:
    """A first run (every account seen for the first time) and a second, steady one."""
    with mock_aws(), ProviderSimulator() as simulator:
        stack = Stack()
        accounts = []
        for index in range(ACCOUNTS):
            key = f"bench-key-{index:06d}-xxxxxxxx"
            simulator.script("leadmagic", key, balance("leadmagic", 50 + index * 10))
            accounts.append({"name": f"account-{index}", "api_key": key})
        stack.put_secret("leadmagic", {"accounts": accounts})
        env = stack.environment("leadmagic", simulator.base_url)
        calls: collections.Counter[str] = collections.Counter()
        monitor.aws.cache_clear()
        dynamodb = monitor.aws()[0].meta.client
        dynamodb.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.update([model.name]))
        devnull = open(os.devnull, "w")  # noqa: SIM115 (closed below)
        logger.registered_handler.setStream(devnull)  # type: ignore[attr-defined]
        stdout, sys.stdout = sys.stdout, devnull
        results = []
        try:
            for _ in range(2):
                calls.clear()
                tracemalloc.start()
                start = time.perf_counter()
                stack.invoke("leadmagic", env)
                seconds = time.perf_counter() - start
                peak = tracemalloc.get_traced_memory()[1] / 2**20
                tracemalloc.stop()
                results.append((seconds, peak, dict(calls)))
        finally:
            sys.stdout = stdout
            devnull.close()
        return results


def main() -> int:
    os.environ.update(FAKE_AWS_ENV)
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    figures = {
        "import_s": import_seconds(),
        "evaluations_per_s": evaluations_per_second(),
        "redact_line_ms": redact_line_ms(),
    }
    (first_s, first_mib, first_calls), (figures["run_s"], figures["peak_mib"], calls) = two_runs()
    print(f"creditwatch bench: LeadMagic runs over {ACCOUNTS} accounts (moto + loopback simulator)\n")
    print(f"  first run (every account new): {first_s:.2f} s, peak {first_mib:.2f} MiB, DynamoDB {first_calls}")
    print("  second run (steady state), against targets:")
    failed = False
    for name, target in TARGETS.items():
        value = figures[name]
        ok = value >= target if name.endswith("per_s") else value <= target
        failed |= not ok
        bound = ">=" if name.endswith("per_s") else "<="
        print(f"  {name:<20} {value:>12,.2f}   target {bound} {target:,.2f}   {'ok' if ok else 'MISSED'}")
    # Steady state: batched reads of state and window (2 keys an account, 100 a call), batched
    # writes of snapshot and window (2 items an account, 25 a call), no state write without a change.
    expected_calls = {
        "BatchGetItem": math.ceil(2 * ACCOUNTS / 100),
        "BatchWriteItem": math.ceil(2 * ACCOUNTS / 25),
        "PutItem": 0,
    }
    print("\n  DynamoDB calls in the second run (grow with batches, not accounts):")
    for operation, expected in expected_calls.items():
        actual = calls.get(operation, 0)
        ok = actual <= expected
        failed |= not ok
        print(f"  {operation:<20} {actual:>12}   expected <= {expected}   {'ok' if ok else 'MISSED'}")
    print(f"  {'per account':<20} {sum(calls.values()) / ACCOUNTS:>12.2f}")
    limits = f"request budget {BUDGET:g} s, read timeout {http.READ_TIMEOUT:g} s, body {http.MAX_BODY // 1024} KiB"
    print(f"\n  One request against a hostile provider ({limits}):")
    for name, (peak, seconds) in hostile_requests().items():
        _, peak_target, seconds_target = HOSTILE[name]
        ok = peak <= peak_target and seconds <= seconds_target
        failed |= not ok
        print(
            f"  {name:<28} peak {peak:6.2f} MiB (<= {peak_target:g})   {seconds:5.2f} s (<= {seconds_target:g})"
            f"   {'ok' if ok else 'MISSED'}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

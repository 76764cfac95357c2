"""make bench: fleet runs, cold import, domain and redaction speed, hostile requests.

The fleet figures come from the real LeadMagic handler, in-process against moto, with the
provider simulator in a process of its own answering every check after 100 ms (bench.fleet,
one subprocess per fleet size, so that each peak memory is its own). Each wall is set against
the floor's wall measured beside it, against the same moto and simulator, so that moto's own
CPU and the machine's speed weigh on both. Every target is such a ratio, or a count.

The cold import is measured on the `sam build` output (run `make build` first) under Python
3.12 with bytecode writing off, as on Lambda's read-only /opt, against `import boto3` alone
from a Python 3.12 venv (.venv-bench312, made on first use), as the runtime provides it.
Exits non-zero when a target is missed.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
import timeit
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from bench import fleet
from bench.bill import Emissions, monthly
from creditwatch import http, providers
from creditwatch.redaction import Redactor
from sandbox.harness import FAKE_AWS_ENV, ROOT
from sandbox.simulator import ProviderSimulator, Reply

FLEETS = (1, 50, 200, 1000, 5000)
BILLS = (10, 1000, 5000)  # fleets whose monthly bill is worked out, checked hourly
BILL_LIMIT = 30.0  # dollars a month at the largest
WALL_RATIO = 1.5  # wall <= this x the floor's wall (bench.fleet.floor) measured beside it ...
RATIO_AT = (200, 1000)  # ... at these fleet sizes, within one 60 s invocation
PEAK_MIB = 200.0  # the benchmark process's peak RSS at 5000 accounts (moto's tables included)
CPU_AT = 100  # accounts in the steady-state CPU run (bench.cpu)
CPU_RATIO = 1.5  # steady-state CPU per account <= this x the floor measured beside it
EVALUATE_RATIO = 0.25  # one account's domain evaluation (72-point window) <= this x that floor
MEMORY_MB, VCPU_MB = 256, 1769  # the template's MemorySize; Lambda gives one vCPU at 1,769 MB
IMPORT_RATIO = 1.3  # built handler import <= this x `import boto3`
IMPORT_SAMPLES = 15
REDACT_KEYS, REDACT_RATIO = 5000, 1.5  # a log line cleaned of 5,000 known keys <= this x of one key
BUILD = ROOT / ".aws-sam" / "build"
BENCH_VENV = ROOT / ".venv-bench312"
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


def python312() -> str | None:
    """A working Python 3.12: python3.12 on PATH, or one of pyenv's versions."""
    candidates = [shutil.which("python3.12")]
    if shutil.which("pyenv"):
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False).stdout.strip()  # noqa: S607
        candidates += sorted(str(p) for p in Path(root).glob("versions/3.12*/bin/python3.12"))
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "--version"], capture_output=True, check=False).returncode == 0:  # noqa: S603
            return candidate
    return None


def cold_imports() -> tuple[float, float] | None:
    """Median seconds of `import boto3` alone and of importing the built handler, each in
    fresh Python 3.12 processes, interleaved; None without Python 3.12 or a build."""
    layer, function = BUILD / "CreditwatchLayer" / "python", BUILD / "leadmagicFunction"
    interpreter = python312()
    if interpreter is None or not layer.is_dir():
        return None
    python = BENCH_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([interpreter, "-m", "venv", str(BENCH_VENV)], check=True)  # noqa: S603
        boto3 = next(line for line in (ROOT / "requirements-dev.txt").read_text().split() if line.startswith("boto3=="))
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", boto3], check=True)  # noqa: S603
    env = {**os.environ, **FAKE_AWS_ENV, "PYTHONDONTWRITEBYTECODE": "1", "POWERTOOLS_SERVICE_NAME": "creditwatch"}
    env.pop("PYTHONPATH", None)

    def seconds(module: str, path: list[str]) -> float:
        code = f"import sys, time; sys.path[:0] = {path!r}; t = time.perf_counter(); import {module}; "
        code += "print(time.perf_counter() - t)"
        result = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True, env=env)  # noqa: S603
        return float(result.stdout)

    boto3, handler = [], []
    for _ in range(IMPORT_SAMPLES):
        boto3.append(seconds("boto3", []))
        handler.append(seconds("app", [str(function), str(layer)]))
    return statistics.median(boto3), statistics.median(handler)


def figures(module: str, *args: str) -> dict[str, object]:
    """The last line a bench module prints, run in a process of its own."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers" / "creditwatch")}
    command = [sys.executable, "-m", module, *args]
    result = subprocess.run(command, capture_output=True, text=True, check=True, env=env, cwd=ROOT)  # noqa: S603
    row: dict[str, object] = json.loads(result.stdout.splitlines()[-1])
    return row


def fleets(scenario: str, sizes: tuple[int, ...]) -> list[dict[str, object]]:
    """bench.fleet's figures for each size, each in a process of its own."""
    return [figures("bench.fleet", scenario, str(size)) for size in sizes]


def bills() -> tuple[list[Emissions], list[dict[str, float]]]:
    """What a steady run emits at each of BILLS, and the month's bill it makes."""
    emitted = [Emissions(**row) for row in fleets("bill", BILLS)]  # type: ignore[arg-type]
    return emitted, [{part: float(cost) for part, cost in monthly(e).items()} for e in emitted]


def print_bills(verdict: Callable[[bool], str]) -> None:
    emitted, bills_ = bills()
    sizes = "".join(f"{e.accounts:>14,}" for e in emitted)
    print("\n  Monthly bill, checked hourly, one provider's fleet (list prices: bench/prices.py)")
    print(f"  {'accounts':<34}{sizes}")
    measured = {
        "metric series (of accounts' own)": [f"{e.series} ({e.own_series})" for e in emitted],
        "logged a run, KiB (journal)": [
            f"{(e.log_bytes + e.journal_bytes) / 1024:,.0f} ({e.journal_bytes / 1024:,.0f})" for e in emitted
        ],
        "DynamoDB write / read units a run": [f"{e.write_units:,} / {e.read_units:,}" for e in emitted],
        "invocations, seconds a run": [f"{e.invocations}, {e.seconds:,.1f}" for e in emitted],
        "secrets": [str(e.secrets) for e in emitted],
    }
    for name, cells in measured.items():
        print(f"  {name:<34}" + "".join(f"{cell:>14}" for cell in cells))
    for part in bills_[0]:
        print(f"  {part:<34}" + "".join(f"{'$' + format(bill[part], ',.2f'):>14}" for bill in bills_))
    totals = [sum(bill.values()) for bill in bills_]
    print(f"  {'total a month':<34}" + "".join(f"{'$' + format(t, ',.2f'):>14}" for t in totals))
    print(f"  target: at most ${BILL_LIMIT:g} a month at {BILLS[-1]:,} accounts   {verdict(totals[-1] <= BILL_LIMIT)}")


def print_cpu(verdict: Callable[[bool], str]) -> None:
    """bench.cpu's steady state: a full window, AWS out of process, beside the floor."""
    row = figures("bench.cpu", str(CPU_AT))
    cpu_ms, floor_ms = float(row["cpu_ms"]), float(row["floor_ms"])  # type: ignore[arg-type]
    ratio, share = cpu_ms / floor_ms, MEMORY_MB / VCPU_MB
    wall_ms = cpu_ms / share  # CPU-bound at this share: wall per account
    reach = {
        latency: int(fleet.FUNCTION_TIMEOUT_S * 1000 / max(wall_ms, latency * 1000 / fleet.MAX_CONCURRENCY))
        for latency in (0.1, 0.3)
    }
    print(
        f"\n  CPU per account, steady state ({row['runs']} hourly runs, full window, AWS out of process):"
        f" {cpu_ms:.2f} ms on a full core, floor {floor_ms:.2f} ms, ratio {ratio:.2f} (<= {CPU_RATIO})"
        f"   {verdict(ratio <= CPU_RATIO)}"
    )
    evaluate_ms = float(row["evaluate_ms"])  # type: ignore[arg-type]
    print(
        f"  domain evaluation of one account (72-point window): {evaluate_ms:.3f} ms, {evaluate_ms / floor_ms:.2f}"
        f" x the floor (<= {EVALUATE_RATIO})   {verdict(evaluate_ms <= EVALUATE_RATIO * floor_ms)}"
    )
    print(
        f"  at {MEMORY_MB} MB ({share:.3f} vCPU): {wall_ms:.1f} ms of wall an account; one {fleet.FUNCTION_TIMEOUT_S} s"
        f" invocation reaches about {reach[0.1]:,} accounts at 100 ms, {reach[0.3]:,} at 300 ms"
    )


def redaction_ratio() -> tuple[float, float]:
    """Seconds to clean one 600-character log line of REDACT_KEYS known keys and of one known
    key, side by side: the first should not grow with the keys."""
    line = '{"level":"INFO","message":"balance checked","account":"account-17","remaining":"42.5"}' * 7

    def seconds(keys: int) -> float:
        redactor = Redactor()
        redactor.add(f"bench-key-{index:06d}-{'x' * 16}" for index in range(keys))
        return min(timeit.repeat(lambda: redactor(line), number=200, repeat=5)) / 200

    return seconds(REDACT_KEYS), seconds(1)


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


def dynamodb_bound(size: int, shards: int) -> int:
    """The issue's budget per run, for each invocation that checks accounts (a shard is one),
    plus the scheduled run's one Query of the Accounts index (to retire accounts gone from the
    secrets) and one read of its RUN item (is the schedule due), and each shard's read of its
    progress (`SHARD#`, what earlier deliveries finished)."""
    invocations = max(1, shards)
    per = math.ceil(size / invocations)
    each = math.ceil(2 * per / 25) + math.ceil(2 * per / 100) + 2 + (1 if shards else 0)
    return invocations * each + 2


def main() -> int:
    os.environ.update(FAKE_AWS_ENV)
    failed = False

    def verdict(ok: bool) -> str:
        nonlocal failed
        failed |= not ok
        return "ok" if ok else "MISSED"

    print(
        f"creditwatch bench: LeadMagic fleets, every check answered after {fleet.LATENCY * 1000:.0f} ms, "
        f"MAX_CONCURRENCY {fleet.MAX_CONCURRENCY}, ACCOUNTS_PER_SHARD {fleet.ACCOUNTS_PER_SHARD}\n"
    )
    print("  accounts   wall s   floor s   ratio   checked   shards (s each)        peak MiB   AWS calls")
    for row in fleets("walls", FLEETS):
        size, wall = int(row["accounts"]), float(row["wall_s"])  # type: ignore[call-overload]
        least = float(row["floor_s"]) if row["floor_s"] else math.nan  # type: ignore[arg-type]
        shards: list[float] = row["shard_s"]  # type: ignore[assignment]
        calls: dict[str, int] = row["calls"]  # type: ignore[assignment]
        ok = row["checked"] == size
        if size in RATIO_AT:
            ok &= wall <= WALL_RATIO * least and wall <= fleet.INVOCATION_S
        if shards:
            ok &= max(shards) <= fleet.FUNCTION_TIMEOUT_S
        if size == FLEETS[-1]:
            ok &= float(row["peak_mib"]) < PEAK_MIB  # type: ignore[arg-type]
        dynamo = sum(n for op, n in calls.items() if op in ("GetItem", "Query", "BatchGetItem", "BatchWriteItem"))
        ok &= dynamo <= dynamodb_bound(size, len(shards)) and calls.get("PutItem", 0) == 0
        each = f"{len(shards)} ({', '.join(f'{s:.1f}' for s in shards)})" if shards else "-"
        listed = ", ".join(f"{op} {n}" for op, n in sorted(calls.items()))
        print(
            f"  {size:>8}   {wall:6.2f}   {least:7.2f}   {wall / least:5.2f}   {row['checked']:>7}   {each:<22} "
            f"{float(row['peak_mib']):8.1f}   {listed}   {verdict(ok)}"  # type: ignore[arg-type]
        )
    print(
        f"  targets: every account checked; wall <= {WALL_RATIO} x the floor's at {' and '.join(map(str, RATIO_AT))} "
        f"within {fleet.INVOCATION_S} s; each shard within the {fleet.FUNCTION_TIMEOUT_S} s timeout; peak < "
        f"{PEAK_MIB:g} MiB at {FLEETS[-1]}; DynamoDB <= ceil(2n/25) + ceil(2n/100) + 2 per invocation of n accounts,"
        " no PutItem in a steady run"
    )

    print_cpu(verdict)
    print_bills(verdict)

    imports = cold_imports()
    if imports is None:
        print("\n  cold import: skipped (needs Python 3.12 and `make build`)")
    else:
        boto3, handler = imports
        ratio = handler / boto3
        print(
            f"\n  cold import under Python 3.12, bytecode writing off (median of {IMPORT_SAMPLES}):"
            f" import boto3 {boto3 * 1000:.0f} ms, built handler {handler * 1000:.0f} ms,"
            f" ratio {ratio:.2f} (<= {IMPORT_RATIO})   {verdict(ratio <= IMPORT_RATIO)}"
        )

    many, one = redaction_ratio()
    print(
        f"\n  a 600-character log line cleaned of {REDACT_KEYS:,} known keys: {many * 1000:.3f} ms, of one key"
        f" {one * 1000:.3f} ms, ratio {many / one:.2f} (<= {REDACT_RATIO})   {verdict(many / one <= REDACT_RATIO)}"
    )
    limits = f"request budget {BUDGET:g} s, read timeout {http.READ_TIMEOUT:g} s, body {http.MAX_BODY // 1024} KiB"
    print(f"\n  One request against a hostile provider ({limits}):")
    for name, (peak, seconds) in hostile_requests().items():
        _, peak_target, seconds_target = HOSTILE[name]
        ok = peak <= peak_target and seconds <= seconds_target
        print(
            f"  {name:<28} peak {peak:6.2f} MiB (<= {peak_target:g})   {seconds:5.2f} s (<= {seconds_target:g})"
            f"   {verdict(ok)}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

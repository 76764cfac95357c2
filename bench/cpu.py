"""CPU per account in the steady state, against the floor of this design, in one process:
`python -m bench.cpu N`.

As production runs it: AWS is a moto server in a process of its own (boto3 pointed at it with
AWS_ENDPOINT_URL), the provider stand-in is a third process, and RUNS hourly runs under time
travel fill every account's 72-hour window before the last one is measured. Only this
process's own CPU (user and system, every thread) is counted.

The floor, measured in the same process against the same servers: per account, one GET to the
stand-in through urllib3 and two small items written and two read back through the low-level
DynamoDB client, batched (bench.fleet.floor). That is the least a run of this design must
spend. The pure domain evaluation of one account, a full window's forecast included, is
measured in the same process too. Prints one JSON line of figures.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.fleet import MAX_CONCURRENCY, evaluation, floor, key, remaining, serve
from creditwatch import monitor
from creditwatch.observability import logger
from sandbox.harness import FAKE_AWS_ENV, LambdaContext, Stack, reset_powertools
from sandbox.simulator import Reply

RUNS = 76  # hourly: the window holds 72 points from the 73rd on
MEASURED = 3  # the last runs, each measured beside a floor: the medians are reported
LATENCY = 0.005  # the stand-in's answer: the CPU counted does not depend on it


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto in a process of its own; its endpoint."""
    port = free_port()
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    try:
        for _ in range(200):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.1):
                break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def replies(index: int) -> list[Reply]:
    """Each run's balance, an hour's burn lower than the last."""
    return [Reply(body={"credits": int(remaining(index, run - RUNS))}, delay=LATENCY) for run in range(RUNS + 1)]


def cpu() -> float:
    return time.process_time()


def steady(size: int, base_url: str) -> tuple[list[float], list[float], dict[str, Any]]:
    """RUNS hourly runs over `size` accounts; of the last MEASURED, the CPU seconds of each and
    of a floor measured right after it; and the last run's result."""
    stack = Stack()
    stack.put_secret("leadmagic", {"accounts": [{"name": f"c{i:06d}", "api_key": key(i)} for i in range(size)]})
    env = stack.environment("leadmagic", base_url, MAX_CONCURRENCY=str(MAX_CONCURRENCY), ACCOUNTS_PER_SHARD="3000")
    clock = {"now": datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=RUNS)}
    monitor.now = lambda: clock["now"]  # type: ignore[assignment]
    runs, floors, result = [], [], {}
    for run in range(RUNS):
        began = cpu()
        result = stack.invoke("leadmagic", env, LambdaContext(remaining_ms=900_000))
        if run >= RUNS - MEASURED:
            runs.append(cpu() - began)
            floors.append(floor(size, base_url, stack.table.name, cpu))
        clock["now"] += timedelta(hours=1)
    return runs, floors, result


def measure(size: int) -> dict[str, Any]:
    ready: Any = multiprocessing.get_context("fork").Queue()
    child = multiprocessing.get_context("fork").Process(target=serve, args=(size, ready, replies), daemon=True)
    child.start()
    try:
        base_url = ready.get(timeout=120)
        with moto_server() as endpoint:
            os.environ["AWS_ENDPOINT_URL"] = endpoint
            reset_powertools()
            runs, floors, result = steady(size, base_url)
            evaluate_ms = statistics.median(evaluation() for _ in range(MEASURED)) * 1000
    finally:
        child.terminate()
    return {
        "accounts": size,
        "checked": result.get("accounts", 0) - result.get("unchecked", 0),
        "runs": RUNS,
        "cpu_ms": statistics.median(runs) * 1000 / size,
        "floor_ms": statistics.median(floors) * 1000 / size,
        "evaluate_ms": evaluate_ms,
        "ratios": [run / least for run, least in zip(runs, floors, strict=True)],
    }


def main() -> int:
    os.environ.update(FAKE_AWS_ENV)
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    devnull = open(os.devnull, "w")  # noqa: SIM115 (for the life of the process)
    logger.registered_handler.setStream(devnull)  # type: ignore[attr-defined]
    stdout, sys.stdout = sys.stdout, devnull  # EMF documents
    figures = measure(int(sys.argv[1]))
    sys.stdout = stdout
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())

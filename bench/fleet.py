"""One fleet size through the real handler, in a process of its own: `python -m bench.fleet N`.

The provider simulator runs in a child process (so its HTTP work does not share this
process's interpreter lock) and answers every check after LATENCY seconds. AWS is moto, in
this process. A first run makes every account's state; the second, steady run is measured.
A fleet larger than ACCOUNTS_PER_SHARD is sent out in shards, and every shard is delivered
to the handler in turn, as the queue would. Prints one JSON line of figures.
"""

from __future__ import annotations

import collections
import json
import math
import multiprocessing
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

from moto import mock_aws

from creditwatch import monitor, secret_store
from creditwatch.observability import logger
from sandbox.harness import FAKE_AWS_ENV, LambdaContext, Stack
from sandbox.simulator import ProviderSimulator, Reply

LATENCY = 0.1  # seconds the simulator takes to answer, a provider's round trip from Lambda
MAX_CONCURRENCY = 16
ACCOUNTS_PER_SHARD = 1000
INVOCATION_S = 60  # time a scheduled invocation has in the benchmark
FUNCTION_TIMEOUT_S = 120  # the template's Timeout: what a shard's invocation has


def key(index: int) -> str:
    return f"bench-key-{index:06d}-xxxxxxxx"


def serve(size: int, ready: Any) -> None:
    """The child process: the simulator, every key answered after LATENCY seconds."""
    with ProviderSimulator() as simulator:
        for index in range(size):
            simulator.script("leadmagic", key(index), Reply(body={"credits": 50_000 + index}, delay=LATENCY))
        ready.put(simulator.base_url)
        time.sleep(3600)


def measure(size: int) -> dict[str, Any]:
    ready: Any = multiprocessing.get_context("fork").Queue()
    child = multiprocessing.get_context("fork").Process(target=serve, args=(size, ready), daemon=True)
    child.start()
    try:
        return run(size, ready.get(timeout=60))
    finally:
        child.terminate()


def run(size: int, base_url: str) -> dict[str, Any]:
    with mock_aws():
        stack = Stack()
        stack.put_secret("leadmagic", {"accounts": [{"name": f"c{i:06d}", "api_key": key(i)} for i in range(size)]})
        queue = stack.shard_queue("leadmagic")
        env = stack.environment(
            "leadmagic",
            base_url,
            MAX_CONCURRENCY=str(MAX_CONCURRENCY),
            ACCOUNTS_PER_SHARD=str(ACCOUNTS_PER_SHARD),
            SHARD_QUEUE_URL=queue,
        )
        calls: collections.Counter[str] = collections.Counter()
        monitor.aws.cache_clear()
        clients = [monitor.aws()[0].meta.client, *monitor.aws()[1:], secret_store.fleet().client]
        for client in clients:
            client.meta.events.register("before-call", lambda model, **_: calls.update([model.name]))

        def one_run() -> tuple[float, list[float], int]:
            """Wall seconds of the scheduled invocation plus its shards', each shard's, accounts checked."""
            began = time.perf_counter()
            result = stack.invoke("leadmagic", env, LambdaContext(remaining_ms=INVOCATION_S * 1000))
            shards = []
            if "shards" in result:
                for _ in range(result["shards"]):
                    shard_began = time.perf_counter()
                    (outcome,) = stack.deliver_shards(
                        "leadmagic", env, queue, 1, remaining_ms=FUNCTION_TIMEOUT_S * 1000
                    )
                    shards.append(time.perf_counter() - shard_began)
                    result.setdefault("checked", 0)
                    result["checked"] += sum(r["accounts"] - r["unchecked"] for r in outcome["shards"])
            else:
                result["checked"] = result["accounts"] - result["unchecked"]
            return time.perf_counter() - began, shards, result["checked"]

        one_run()  # every account's state is made
        calls.clear()
        wall, shards, checked = one_run()
    ideal = math.ceil(size / MAX_CONCURRENCY) * LATENCY
    return {
        "accounts": size,
        "wall_s": wall,
        "shard_s": shards,
        "ideal_s": ideal,
        "checked": checked,
        "calls": dict(calls),
        "peak_mib": peak_mib(),
    }


def peak_mib() -> float:
    """This process's peak resident memory: VmHWM, which starts afresh at exec (ru_maxrss
    carries over the peak of the process that started this one)."""
    status = Path("/proc/self/status")
    if status.exists():
        line = next(line for line in status.read_text().splitlines() if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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

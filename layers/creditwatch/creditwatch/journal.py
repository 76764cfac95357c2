"""The accounts journal: one CloudWatch Logs line per account per run, in a log group of the
stack's own (`/creditwatch/<stack>/accounts`, a stream per provider), where the dashboard's
Logs Insights widget and any query find every account of every provider in one place.

A run writes its lines in a few PutLogEvents calls. Lines the journal does not take are
written to the function's own log instead, so that no run's record is lost.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

MAX_BATCH_BYTES = 1_048_576  # PutLogEvents: the messages' UTF-8 bytes plus 26 bytes each
EVENT_OVERHEAD = 26
MAX_BATCH_EVENTS = 10_000


def line(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"), sort_keys=True)


def batches(lines: Sequence[str]) -> Iterator[list[str]]:
    """As many lines a batch as PutLogEvents takes."""
    batch: list[str] = []
    size = 0
    for text in lines:
        cost = len(text.encode()) + EVENT_OVERHEAD
        if batch and (size + cost > MAX_BATCH_BYTES or len(batch) == MAX_BATCH_EVENTS):
            yield batch
            batch, size = [], 0
        batch.append(text)
        size += cost
    if batch:
        yield batch


class Journal:
    def __init__(self, client: Any, group: str, stream: str) -> None:
        self.client = client
        self.group = group
        self.stream = stream

    def write(self, lines: Sequence[str]) -> list[str]:
        """Put every line; returns those the journal did not take (its refusals raise)."""
        refused: list[str] = []
        for batch in batches(lines):
            stamp = int(time.time() * 1000)  # the time of writing; each line carries its run's time
            response = self.client.put_log_events(
                logGroupName=self.group,
                logStreamName=self.stream,
                logEvents=[{"timestamp": stamp, "message": text} for text in batch],
            )
            if response.get("rejectedLogEventsInfo"):
                refused += batch
        return refused

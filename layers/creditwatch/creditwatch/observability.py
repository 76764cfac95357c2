"""Logger and Metrics, created once. Service and namespace come from the Powertools env."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()
# service="" keeps Powertools from adding a "service" dimension: every metric carries
# exactly the documented dimensions, which alarms and dashboards match on.
metrics = Metrics(service="")


def emit(dimensions: dict[str, str], values: dict[str, tuple[MetricUnit, float]], rollup: tuple[str, ...] = ()) -> None:
    """Flush one EMF document with these dimensions and metrics.

    `rollup` names a subset of the dimensions under which the same values are also published
    (an EMF dimension set), e.g. per provider across its accounts, for alarms.
    """
    if not values:
        return
    for dimension, label in dimensions.items():
        metrics.add_dimension(name=dimension, value=label)
    if rollup:
        metrics.add_dimensions(**{name: dimensions[name] for name in rollup})
    for metric, (unit, value) in values.items():
        metrics.add_metric(name=metric, unit=unit, value=value)
    metrics.flush_metrics()

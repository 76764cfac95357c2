"""Logger and Metrics, created once. Service and namespace come from the Powertools env.

Every log line is cleaned of API keys (creditwatch.redaction), and the libraries that can log
a request or a response (botocore, boto3, urllib3) write through the same handler
and formatter, at the same level, instead of reaching the root logger unformatted.
"""

from __future__ import annotations

import logging

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit

from creditwatch.redaction import RedactingFormatter

LIBRARY_LOGGERS = {"botocore", "boto3", "urllib3"}

logger = Logger(logger_formatter=RedactingFormatter())
for _name in LIBRARY_LOGGERS:
    logging.getLogger(_name)  # registered now, so that the copy below finds it
copy_config_to_registered_loggers(source_logger=logger, include=set(LIBRARY_LOGGERS))

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

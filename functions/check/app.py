"""The credit check. Every provider's function runs this module and names its provider in the
PROVIDER environment variable; the work happens in the shared creditwatch layer. The function
is invoked by its schedule and, for a fleet large enough to shard, by its shard queue."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from creditwatch.monitor import handle
from creditwatch.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, context)

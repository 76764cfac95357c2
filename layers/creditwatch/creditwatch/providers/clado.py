"""Clado: GET /api/credits with a Bearer key; `credits` is the balance.

`last_topup_at` (ISO-8601 or null) is kept: a new value marks a top-up even when usage since
then hides the rise in the balance.
"""

from creditwatch.domain import Balance
from creditwatch.providers import Body, Provider, amount, bearer, timestamp


def parse(body: Body) -> tuple[Balance, ...]:
    topped_up_at = timestamp(body.get("last_topup_at"))
    return (Balance(pool="credits", remaining=amount(body, "credits"), topped_up_at=topped_up_at),)


PROVIDER = Provider(
    name="clado",
    title="Clado",
    base_url="https://search.clado.ai",
    path="/api/credits",
    auth=bearer,
    parse=parse,
    top_up="https://clado.ai",
)

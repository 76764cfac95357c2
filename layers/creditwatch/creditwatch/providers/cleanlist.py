"""Cleanlist: GET /api/v1/public/credits/balance with a Bearer key; `credits` may be fractional."""

from creditwatch.providers import Provider, bearer, single_pool

PROVIDER = Provider(
    name="cleanlist",
    title="Cleanlist",
    base_url="https://api.cleanlist.ai",
    path="/api/v1/public/credits/balance",
    auth=bearer,
    parse=single_pool("credits"),
    top_up="https://portal.cleanlist.ai (Settings > Billing)",
)

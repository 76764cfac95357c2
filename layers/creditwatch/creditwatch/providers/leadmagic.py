"""LeadMagic: GET /v1/credits with an X-API-Key header; `credits` may be fractional."""

from creditwatch.providers import Provider, header, single_pool

PROVIDER = Provider(
    name="leadmagic",
    title="LeadMagic",
    base_url="https://api.leadmagic.io",
    path="/v1/credits",
    auth=header("X-API-Key"),
    parse=single_pool("credits"),
    top_up="https://leadmagic.io",
)

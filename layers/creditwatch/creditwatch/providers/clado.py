"""Clado: GET /api/credits with a Bearer key; `credits` is the balance."""

from creditwatch.providers import Provider, bearer, single_pool

PROVIDER = Provider(
    name="clado",
    title="Clado",
    base_url="https://search.clado.ai",
    path="/api/credits",
    auth=bearer,
    parse=single_pool("credits"),
    top_up="https://clado.ai",
)

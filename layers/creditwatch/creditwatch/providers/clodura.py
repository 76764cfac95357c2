"""Clodura: GET /api/v1/credits with an X-API-KEY header.

Free Forever, Max and PAYG plans report one pool, `remainingCredits`. Prospect plans report
what was used against each plan limit (`maxContacts` is a string), which gives two pools.
"""

from creditwatch.domain import Balance
from creditwatch.providers import Body, Provider, UnusableResponse, amount, difference, header


def parse(body: Body) -> tuple[Balance, ...]:
    if "remainingCredits" in body:
        return (Balance(pool="credits", remaining=amount(body, "remainingCredits")),)
    if "maxContacts" in body:
        return tuple(
            _used_of(pool, body, used, limit)
            for pool, used, limit in (
                ("contact_views", "contactsView", "maxContacts"),
                ("direct_dials", "directDials", "maxDirectDials"),
            )
        )
    raise UnusableResponse("neither 'remainingCredits' nor 'maxContacts' in body")


def _used_of(pool: str, body: Body, used_field: str, limit_field: str) -> Balance:
    used, limit = amount(body, used_field), amount(body, limit_field)
    return Balance(pool=pool, remaining=difference(limit, used, pool), limit=limit, used=used)


PROVIDER = Provider(
    name="clodura",
    title="Clodura",
    base_url="https://api.clodura.ai",
    path="/api/v1/credits",
    auth=header("X-API-KEY"),
    parse=parse,
    top_up="the Clodura Developer Dashboard (https://clodura.ai)",
)

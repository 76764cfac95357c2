"""Each adapter against its provider's documented responses, served by the simulator.

The simulator answers only a request that carries the key where the provider expects it (its
header, Bearer token or query parameter); anything else gets 401, so a Checked outcome also
proves the key travelled as documented.
"""

from decimal import Decimal
from socket import socket

import pytest

from creditwatch import providers
from creditwatch.domain import Balance, Checked, Exhausted, Rejected, Unavailable
from creditwatch.http import fetch, new_session
from sandbox.simulator import ProviderSimulator, Reply

KEY = "test-key-0000000000"


@pytest.fixture
def check(simulator: ProviderSimulator):
    def answer(name: str, status: int = 200, body: object = None, **reply: object):
        provider = providers.load(name)
        simulator.script(name, KEY, Reply(status=status, body=body, **reply))  # type: ignore[arg-type]
        return fetch(new_session(), provider, simulator.base_url, KEY)

    return answer


@pytest.mark.parametrize(
    ("name", "url", "header", "value"),
    [
        ("clodura", "https://api.clodura.ai/api/v1/credits", "X-API-KEY", KEY),
        ("clado", "https://search.clado.ai/api/credits", "Authorization", f"Bearer {KEY}"),
        ("cleanlist", "https://api.cleanlist.ai/api/v1/public/credits/balance", "Authorization", f"Bearer {KEY}"),
        ("leadmagic", "https://api.leadmagic.io/v1/credits", "X-API-Key", KEY),
    ],
)
def test_documented_endpoint_and_auth_header(name, url, header, value):
    provider = providers.load(name)
    assert provider.base_url + provider.path == url
    assert provider.credentials(KEY) == ({header: value}, {})


def test_clodura_common_credit_pool(check):
    outcome = check("clodura", body={"remainingCredits": 4200})
    assert outcome == Checked((Balance("credits", Decimal(4200)),))


def test_clodura_prospect_plan_gives_two_pools_with_string_limit(check):
    outcome = check(
        "clodura", body={"contactsView": 142, "maxContacts": "1000", "directDials": 38, "maxDirectDials": 200}
    )
    assert outcome == Checked(
        (
            Balance("contact_views", Decimal(858), Decimal(1000), Decimal(142)),
            Balance("direct_dials", Decimal(162), Decimal(200), Decimal(38)),
        )
    )


def test_clodura_overage_never_goes_negative(check):
    outcome = check(
        "clodura", body={"contactsView": 1200, "maxContacts": "1000", "directDials": 0, "maxDirectDials": 0}
    )
    assert isinstance(outcome, Checked)
    assert outcome.balances[0].remaining == 0


def test_clado_credits_and_last_topup(check):
    outcome = check("clado", body={"credits": 247, "last_topup_at": "2024-01-15T10:30:00Z"})
    assert outcome == Checked((Balance("credits", Decimal(247), topped_up_at="2024-01-15T10:30:00Z"),))


def test_clado_never_topped_up(check):
    outcome = check("clado", body={"credits": 150, "last_topup_at": None})
    assert outcome == Checked((Balance("credits", Decimal(150)),))


def test_cleanlist_fractional_balance_is_exact(check):
    outcome = check("cleanlist", body='{"organization_id": "org_x", "credits": 1234.5}')
    assert outcome == Checked((Balance("credits", Decimal("1234.5")),), owner="org_x")


@pytest.mark.parametrize(
    ("owner", "read"),
    [('"org_2abcDEF"', "org_2abcDEF"), ("42", "42"), ('"org:a.b-c_d"', "org:a.b-c_d")],
)
def test_cleanlist_names_the_organisation_that_owns_the_balance(check, owner, read):
    outcome = check("cleanlist", body=f'{{"organization_id": {owner}, "credits": 5}}')
    assert isinstance(outcome, Checked)
    assert outcome.owner == read


@pytest.mark.parametrize(
    "owner", ["null", '""', '"org x"', '"@org"', '"' + "o" * 65 + '"', "4.5", "-1", "true", '["org"]', '{"id": 1}']
)
def test_cleanlist_without_a_readable_organisation_is_not_a_balance(check, owner):
    """The owner decides whose balance the number is: without one, the number is no one's."""
    outcome = check("cleanlist", body=f'{{"organization_id": {owner}, "credits": 5}}')
    assert outcome == Unavailable(
        "unusable response: field 'organization_id' is missing or not an owner id ([A-Za-z0-9][A-Za-z0-9._:-]{0,63})"
    )


def test_cleanlist_answer_without_its_organisation_is_not_a_balance(check):
    assert isinstance(check("cleanlist", body='{"credits": 5}'), Unavailable)


def test_leadmagic_fractional_balance_is_exact(check):
    outcome = check("leadmagic", body='{"credits": 15432.50}')
    assert isinstance(outcome, Checked)
    assert str(outcome.balances[0].remaining) == "15432.50"


@pytest.mark.parametrize(
    ("status", "expected"),
    [(401, Rejected(401)), (403, Rejected(403)), (402, Exhausted())],
)
def test_auth_and_payment_statuses(check, status, expected):
    assert check("leadmagic", status=status, body={"detail": "x"}) == expected


@pytest.mark.parametrize(
    ("name", "status", "body", "reason"),
    [
        ("clado", 404, {"detail": "Unable to retrieve"}, "HTTP 404"),
        ("clodura", 409, {"message": "daily limit"}, "HTTP 409"),
        ("clodura", 400, {"message": "bad"}, "HTTP 400"),
        ("clodura", 422, {"errors": []}, "HTTP 422"),
        ("leadmagic", 200, "<html>oops</html>", "not JSON"),
        ("leadmagic", 200, '{"credits": NaN}', "not JSON"),
        ("leadmagic", 200, '{"credits": Infinity}', "not JSON"),
        ("leadmagic", 200, {"credits": "12abc"}, "'credits' is missing or not a number"),
        ("leadmagic", 200, {"credits": True}, "'credits' is missing or not a number"),
        ("leadmagic", 200, {"credits": None}, "none of the definition's pools"),
        ("leadmagic", 200, {"credits": -1}, "non-negative"),
        ("leadmagic", 200, {}, "none of the definition's pools"),
        ("cleanlist", 200, 1, "not a JSON object"),
        ("cleanlist", 200, [1], "none of the definition's pools"),  # an array is for expressions to index
        ("clodura", 200, {"contactsView": 1}, "'maxContacts' is missing"),
        ("clodura", 200, {"unrelated": 1}, "none of the definition's pools"),
        (
            "clodura",
            200,
            {"contactsView": 1, "maxContacts": "n/a", "directDials": 0, "maxDirectDials": 1},
            "maxContacts",
        ),
    ],
)
def test_unusable_answers_are_transient_and_say_why(check, name, status, body, reason):
    outcome = check(name, status=status, body=body)
    assert isinstance(outcome, Unavailable)
    assert reason in outcome.reason
    assert KEY not in outcome.reason


def test_connection_failure_is_transient_without_exception_text():
    with socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    outcome = fetch(new_session(), providers.load("clado"), f"http://127.0.0.1:{port}", KEY)
    assert outcome == Unavailable("the provider could not be reached (NewConnectionError)")


def test_unknown_provider_name_is_refused():
    with pytest.raises(ValueError, match="provider"):
        providers.load("../etc")

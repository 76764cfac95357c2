"""The definition format's newer parts, each through the simulator and the real HTTP client:
POST with a documented body, the raw key as Authorization, sums of fields, a 200 that rejects
the key, unlimited pools, renewal dates, and hyphenated names."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from creditwatch import providers
from creditwatch.domain import Balance, Checked, Exhausted, Rejected, Unavailable
from creditwatch.http import fetch, new_session
from creditwatch.providers import DefinitionError, parse_definition, renewal
from sandbox.simulator import ProviderSimulator, Reply, balance

KEY = "format-key-0123456789abcdef"

POSTED = """
name: postdata
title: Post Data
docs: https://postdata.example/billing
request:
  base_url: https://api.postdata.example
  path: /v1/usage
  method: POST
  body: {scope: credits}
  auth: {header: Authorization}
pools:
  credits:
    remaining: credits
    used: {sum: [used.paid, used.free]}
unlimited: [unlimited, inf]
renews_at: cycle.ends
"""


def posted() -> providers.Provider:
    return parse_definition("postdata.yaml", POSTED)


def test_a_post_sends_the_documented_body_with_the_raw_key_as_authorization():
    provider = posted()
    assert provider.credentials(KEY) == ({"Authorization": KEY}, {})  # no "Bearer": the key as it is
    with ProviderSimulator(extra=(provider,)) as simulator:
        simulator.script("postdata", KEY, Reply(body={"credits": 40, "used": {"paid": 7, "free": 3}}))
        outcome = fetch(new_session(), provider, simulator.base_url, KEY)
        assert outcome == Checked((Balance("credits", Decimal(40), used=Decimal(10)),))
        assert fetch(new_session(), provider, simulator.base_url, f"Bearer {KEY}") == Rejected(401)
    get = parse_definition("postdata.yaml", POSTED.replace("  method: POST\n  body: {scope: credits}\n", ""))
    with ProviderSimulator(extra=(provider,)) as simulator:  # it serves the POST only
        simulator.script("postdata", KEY, Reply(body={"credits": 40}))
        assert fetch(new_session(), get, simulator.base_url, KEY) == Unavailable("the provider answered HTTP 405")


def test_a_sum_counts_the_fields_present_and_each_must_be_a_number():
    provider = posted()
    assert provider.parse({"credits": 1, "used": {"free": "2.5"}}) == (
        Balance("credits", Decimal(1), used=Decimal("2.5")),
    )
    for bad in ({"paid": "lots", "free": 1}, {"paid": -1, "free": 1}, {}):  # {}: none of it there
        with pytest.raises(providers.UnusableResponse, match=r"used\.paid \+ used\.free"):
            provider.parse({"credits": 1, "used": bad})


def test_neverbounce_adds_paid_and_free_and_a_metered_account_without_paid_credits_is_read():
    provider = providers.load("neverbounce")
    paid = {
        "paid_credits_remaining": 900,
        "free_credits_remaining": 100,
        "paid_credits_used": 5,
        "free_credits_used": 0,
    }
    both = {"status": "success", "credits_info": paid}
    # the official CLI's fixture of a metered account
    metered = {"credits_info": {"free_credits_remaining": 1000, "free_credits_used": 0, "monthly_api_usage": 0}}
    assert provider.parse(both)[0].remaining == 1000
    assert provider.parse(metered)[0].remaining == 1000
    assert provider.rejects({"status": "auth_failure", "message": "bad key"})
    assert not provider.rejects({"status": "throttle_triggered"})


@pytest.mark.parametrize("credits", [-1, "-1"])
def test_zerobounce_minus_one_is_a_rejected_key_as_a_number_or_a_string(credits):
    provider = providers.load("zerobounce")
    with ProviderSimulator() as simulator:
        simulator.script("zerobounce", KEY, Reply(body={"Credits": credits}))
        assert fetch(new_session(), provider, simulator.base_url, KEY) == Rejected(200)
        simulator.script("zerobounce", KEY, balance("zerobounce", "2375323"))  # the SDKs' string form
        assert fetch(new_session(), provider, simulator.base_url, KEY) == Checked(
            (Balance("credits", Decimal(2375323)),)
        )
        # an unknown key gets the documented answer, {"Credits": -1} with 200, as the real API does
        assert fetch(new_session(), provider, simulator.base_url, "unknown-key-0000") == Rejected(200)


@pytest.mark.parametrize("status", [200, 400, 404])
def test_balances_in_headers_are_read_on_an_answer_of_any_status(status):
    """People Data Labs' bare enrichment request matches nothing (400 or 404) and costs nothing;
    its headers carry the balance all the same. A bad key and an empty account keep their meaning."""
    provider = providers.load("people-data-labs")
    headers = {"X-TotalLimit-Remaining": "1342"}
    with ProviderSimulator() as simulator:
        simulator.script(
            "people-data-labs",
            KEY,
            Reply(status, dict(provider.example or {}), headers=headers),
            Reply(status, "not json", headers=headers),  # the body is never read
            Reply(404, dict(provider.example or {})),  # no header: nothing to read
            Reply(402, {"status": 402}, headers={"X-TotalLimit-Remaining": "0"}),
            Reply(500, {"status": 500}, headers=headers),  # a server error is no answer, headers or not
        )
        session = new_session()
        answers = [fetch(session, provider, simulator.base_url, KEY) for _ in range(4)]
        assert fetch(session, provider, simulator.base_url, "unknown-key-0000") == Rejected(401)
    read = Checked((Balance("credits", Decimal(1342)),))
    assert answers[:2] == [read, read]
    assert answers[2] == Unavailable("unusable response: none of the definition's pools is in the body")
    assert answers[3] == Exhausted()


@pytest.mark.parametrize("status", [301, 302, 307])
def test_a_redirect_is_never_read_for_its_headers(status):
    """Redirects are not followed, and not answers: balances in their headers are not read."""
    headers = {"X-TotalLimit-Remaining": "1342", "Location": "https://elsewhere.example/"}
    with ProviderSimulator() as simulator:
        simulator.script("people-data-labs", KEY, Reply(status, {}, headers=headers))
        assert fetch(new_session(), providers.load("people-data-labs"), simulator.base_url, KEY) == Unavailable(
            f"the provider answered HTTP {status}"
        )


def test_a_body_balance_is_still_refused_on_any_status_but_200():
    with ProviderSimulator() as simulator:
        simulator.script("enrow", KEY, Reply(404, {"credits": 5}))
        assert fetch(new_session(), providers.load("enrow"), simulator.base_url, KEY) == Unavailable(
            "the provider answered HTTP 404"
        )


def test_clearout_is_read_as_its_openapi_has_it_and_as_its_docs_page_wraps_it():
    provider = providers.load("clearout")
    answer = dict(provider.example or {})
    assert provider.parse(answer) == provider.parse([answer]) == (Balance("credits", Decimal(114563)),)
    with pytest.raises(providers.UnusableResponse, match="none of the definition's pools"):
        provider.parse([])


def test_an_unlimited_pool_is_kept_apart_never_a_balance_and_never_mistaken_for_an_unknown_one():
    provider = posted()
    assert provider.read({"credits": "Unlimited"}) == Checked((), ("credits",))
    assert provider.read({"credits": "inf", "used": {"paid": 5}}) == Checked((), ("credits",))
    assert provider.read({"credits": "INF ", "used": {"paid": 5}}) == Checked((), ("credits",))
    for unknown in ("n/a", "", "-1", None, "infinite"):
        with pytest.raises(providers.UnusableResponse):
            provider.read({"credits": unknown, "used": {"paid": 1}})


def test_a_limit_that_is_unlimited_beside_a_number_left_keeps_the_number():
    provider = parse_definition(
        "postdata.yaml", POSTED.replace("    used: {sum: [used.paid, used.free]}", "    limit: cap")
    )
    assert provider.read({"credits": 70, "cap": "inf"}) == Checked((Balance("credits", Decimal(70)),))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-15", "2026-12-15T00:00:00Z"),  # Hunter's reset_date
        ("2023-06-18 20:52:28+00:00", "2023-06-18T20:52:28Z"),  # Prospeo's
        ("2026-05-01T00:00:00.000Z", "2026-05-01T00:00:00Z"),  # Apollo's, Lusha's
        ("2026-05-01T02:00:00+02:00", "2026-05-01T00:00:00Z"),
        ("2026-05-01T00:00:00", None),  # no offset: which day is unknown
        ("2026-02-30", None),
        ("15 Dec 2026", None),
        ("", None),
        (20261215, None),
        ("2026-12-15" + " " * 50, None),
    ],
)
def test_a_renewal_date_is_read_strictly(text, expected):
    assert renewal(text) == expected


@given(st.one_of(st.text(max_size=60), st.integers(), st.none(), st.lists(st.integers(), max_size=2)))
def test_no_renewal_value_stops_a_check(value):
    """Whatever the answer puts where the renewal should be, the balance is read."""
    (found,) = posted().parse({"credits": 5, "used": {"paid": 1}, "cycle": {"ends": value}})
    assert found.remaining == 5
    assert found.renews_at is None or found.renews_at.endswith("Z")


def test_an_unreadable_renewal_is_logged_and_ignored(caplog):
    (found,) = posted().parse({"credits": 5, "used": {"free": 1}, "cycle": {"ends": "next Tuesday"}})
    assert found.renews_at is None
    assert "renewal date not readable" in caplog.text


def test_a_hyphenated_name_is_a_name():
    text = POSTED.replace("name: postdata", "name: post-data")
    assert parse_definition("post-data.yaml", text).name == "post-data"
    for name in ("-post", "post-", "post--data", "Post-data"):
        with pytest.raises(DefinitionError, match=rf"^{name}\.yaml: name: "):
            parse_definition(f"{name}.yaml", text.replace("name: post-data", f"name: {name}"))


def test_an_invalid_name_is_told_apart_from_an_unknown_one():
    with pytest.raises(ValueError, match="is not a provider name") as invalid:
        providers.load("Acme_Data")
    assert "clodura" not in str(invalid.value)
    with pytest.raises(ValueError, match="'acme-data' is not a defined provider") as unknown:
        providers.load("acme-data")
    assert "acme-data," not in str(unknown.value).split("(", 1)[1]

"""Provider definitions: validated when they load, every error naming the file and the field."""

import json
from decimal import Decimal

import pytest

from creditwatch import providers
from creditwatch.domain import Balance, Checked, Rejected, Unavailable
from creditwatch.http import _classify, fetch, new_session
from creditwatch.providers import Cost, DefinitionError, RateLimit, parse_definition
from sandbox.simulator import ProviderSimulator, Reply, balance

VALID = """
name: acmedata
title: Acme Data
docs: https://acme-data.example/billing
request:
  base_url: https://api.acme-data.example
  path: /v3/acme/balance
  auth: {query: apikey}
pools:
  credits:
    remaining: account.balance.remaining
  sms:
    limit: account.sms.quota
    used: account.sms.spent
rejected_when: "status == 'invalid_key'"
"""
KEY = "acme-key-0123456789abcdef"
RATE = "rejected_when:"  # where a test puts a rate_limit line


def acme(text: str = VALID):
    return parse_definition("acmedata.yaml", text)


@pytest.mark.parametrize("name", providers.names())
def test_every_shipped_definition_loads_and_parses_its_own_example(name):
    provider = providers.load(name)
    assert provider.name == name
    assert provider.base_url.startswith("https://")
    assert provider.example is not None
    answer = balance(name, 100)  # the documented example, as the provider sends it
    headers = {header.lower(): value for header, value in answer.headers.items()}
    if provider.owner is not None:  # the simulator names the key's owner: here, the example's
        answer = balance(name, 100, **{provider.owner.source: provider.example[provider.owner.source]})
    assert isinstance(_classify(provider, json.dumps(answer.body).encode(), headers), Checked)


def test_a_definition_with_nested_paths_limit_used_and_query_auth():
    provider = acme()
    assert provider.credentials(KEY) == ({}, {"apikey": KEY})
    body = {"account": {"balance": {"remaining": "12.5"}, "sms": {"quota": 100, "spent": 30}}}
    assert provider.parse(body) == (
        Balance("credits", Decimal("12.5")),
        Balance("sms", Decimal(70), Decimal(100), Decimal(30)),
    )
    assert provider.parse({"account": {"balance": {"remaining": 1}}}) == (Balance("credits", Decimal(1)),)
    assert provider.rejects({"status": "invalid_key"})
    assert not provider.rejects({"status": "ok"})


def test_the_key_travels_in_the_query_string_and_a_200_can_reject_it():
    provider = acme()
    with ProviderSimulator(extra=(provider,)) as simulator:  # it answers only ?apikey=KEY
        simulator.script("acmedata", KEY, Reply(body={"account": {"balance": {"remaining": 5}}}))
        session = new_session()
        assert fetch(session, provider, simulator.base_url, KEY) == Checked((Balance("credits", Decimal(5)),))
        simulator.script("acmedata", KEY, Reply(body={"status": "invalid_key"}))
        assert fetch(session, provider, simulator.base_url, KEY) == Rejected(200)
        simulator.script("acmedata", "another-key-0000", Reply(body={"account": {"balance": {"remaining": 5}}}))
        assert fetch(session, provider, simulator.base_url, "wrong-key-000000") == Rejected(401)


def test_an_expression_that_fails_on_a_body_is_an_unusable_response():
    provider = acme(VALID.replace("account.balance.remaining", "length(account)"))
    with ProviderSimulator(extra=(provider,)) as simulator:
        simulator.script("acmedata", KEY, Reply(body={"account": 5}))
        outcome = fetch(new_session(), provider, simulator.base_url, KEY)
    assert isinstance(outcome, Unavailable)
    assert "could not be evaluated" in outcome.reason


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (("name: acmedata", "name: other"), "name"),
        (("name: acmedata", "name: Acme_Data"), "name"),
        (("name: acmedata", "name: acme-data"), "name"),  # a hyphen cannot be part of a logical ID
        (("title: Acme Data", "title: [1]"), "title"),
        (("  base_url: https://api.acme-data.example", "  base_url: http://api.acme-data.example"), "request.base_url"),
        (("  path: /v3/acme/balance", "  path: v3?x=1"), "request.path"),
        (("  auth: {query: apikey}", "  auth: {query: apikey, bearer: true}"), "request.auth"),
        (("  auth: {query: apikey}", "  auth: {bearer: yes please}"), "request.auth.bearer"),
        (("  auth: {query: apikey}", "  auth: {cookie: x}"), "request.auth"),
        (("  auth: {query: apikey}", "  auth: {header: 'X Key'}"), "request.auth.header"),
        (("  path: /v3/acme/balance", "  path: /v3/acme/balance\n  method: DELETE"), "request.method"),
        (("  path: /v3/acme/balance", "  path: /v3/acme/balance\n  body: {a: 1}"), "request.body"),
        (("  path: /v3/acme/balance", "  path: /v3/acme/balance\n  method: POST\n  body: [1]"), "request.body"),
        (("pools:", "unlimited: [1]\npools:"), "unlimited"),
        (("pools:", "renews_at: '[['\npools:"), "renews_at"),
        (("    remaining: account.balance.remaining", "    remaining: account.[balance"), "pools.credits.remaining"),
        (("    used: account.sms.spent", "    spent: account.sms.spent"), "pools.sms"),
        (("    used: account.sms.spent\n", ""), "pools.sms"),
        (("rejected_when: \"status == 'invalid_key'\"", "rejected_when: 'status =='"), "rejected_when"),
        (("docs:", "doc:"), r"\(file\)"),
        ((RATE, "rate_limit: {per: ip, per_second: 1}\n" + RATE), "rate_limit.per"),
        ((RATE, "rate_limit: {per: key, per_second: 0}\n" + RATE), "rate_limit.per_second"),
        ((RATE, "rate_limit: {per: key, per_minute: 1.5}\n" + RATE), "rate_limit.per_minute"),
        ((RATE, "rate_limit: {per: key, per_day: true}\n" + RATE), "rate_limit.per_day"),
        ((RATE, "rate_limit: {per: key}\n" + RATE), "rate_limit"),
        ((RATE, "rate_limit: {per: key, per_hour: 5}\n" + RATE), "rate_limit"),
        ((RATE, "costs: [1, 2]\n" + RATE), "costs"),
        ((RATE, "costs: {Phone: 1}\n" + RATE), "costs.Phone"),
        ((RATE, "costs: {phone: -1}\n" + RATE), "costs.phone"),
        ((RATE, "costs: {phone: '10'}\n" + RATE), "costs.phone"),
        ((RATE, "costs: {phone: [20, 10]}\n" + RATE), "costs.phone"),
        ((RATE, "costs: {phone: [1, 2, 3]}\n" + RATE), "costs.phone"),
        ((RATE, "costs: {phone: .nan}\n" + RATE), "costs.phone"),
        ((RATE, "costs: {phone: true}\n" + RATE), "costs.phone"),
    ],
)
def test_an_invalid_definition_names_the_file_and_the_field(change, field):
    with pytest.raises(DefinitionError, match=rf"^acmedata\.yaml: {field}: "):
        acme(VALID.replace(*change))


def test_a_rate_limit_spaces_one_key_or_the_whole_provider():
    per_key = acme(VALID.replace(RATE, "rate_limit: {per: key, per_second: 2, per_minute: 10}\n" + RATE))
    assert per_key.rate_limit == RateLimit("key", per_second=2, per_minute=10)
    assert (per_key.key_interval, per_key.provider_interval) == (0.5, 0.0)  # a check's 3 attempts fit 10 a minute
    shared = acme(VALID.replace(RATE, "rate_limit: {per: provider, per_second: 4, per_minute: 60}\n" + RATE))
    assert (shared.key_interval, shared.provider_interval) == (0.25, 1.0)  # 60 a minute is the tighter
    assert (acme().key_interval, acme().provider_interval) == (0.0, 0.0)


def test_costs_are_exact_credits_per_record_or_a_documented_range():
    provider = acme(VALID.replace(RATE, "costs: {verify: 0.04, phone: [10, 20], free: 0}\n" + RATE))
    assert provider.costs == {
        "verify": Cost(Decimal("0.04"), Decimal("0.04")),
        "phone": Cost(Decimal(10), Decimal(20)),
        "free": Cost(Decimal(0), Decimal(0)),
    }
    assert (str(provider.costs["phone"]), str(provider.costs["verify"])) == ("10-20", "0.04")
    assert acme().costs == {}
    # The seeds document costs for Clodura and Cleanlist.
    assert providers.load("cleanlist").costs["full"] == Cost(Decimal(11), Decimal(11))
    assert providers.load("clodura").costs["reveal_phone"] == Cost(Decimal(10), Decimal(20))


def test_not_yaml_and_not_a_mapping_are_named_too():
    for text in ("name: [", "- just\n- a list\n"):
        with pytest.raises(DefinitionError, match=r"^acmedata\.yaml: \(file\): "):
            acme(text)


def test_an_unknown_provider_is_refused_with_the_known_ones_listed():
    with pytest.raises(ValueError, match="clodura"):
        providers.load("nosuchprovider")


HEADER_BALANCE = """
name: headerlimit
title: Header Limit
docs: https://dashboard.example/usage
request:
  base_url: https://api.headerlimit.example
  path: /v5/person/enrich
  auth: {header: X-Api-Key}
pools:
  credits:
    remaining: {header: X-TotalLimit-Remaining}
example: {status: 200}
"""


def test_a_balance_can_come_from_a_response_header():
    """People Data Labs reports what is left in X-TotalLimit-Remaining, not in the body."""
    provider = parse_definition("headerlimit.yaml", HEADER_BALANCE)
    with ProviderSimulator(extra=(provider,)) as simulator:
        simulator.script(
            "headerlimit",
            KEY,
            Reply(body={"status": 200}, headers={"x-totallimit-remaining": "250"}),
            Reply(body={"status": 200}, headers={"X-TotalLimit-Remaining": "lots"}),
            Reply(body={"status": 200}),
        )
        session = new_session()
        assert fetch(session, provider, simulator.base_url, KEY) == Checked((Balance("credits", Decimal(250)),))
        garbage = fetch(session, provider, simulator.base_url, KEY)
        absent = fetch(session, provider, simulator.base_url, KEY)
    assert garbage == Unavailable("unusable response: field 'header X-TotalLimit-Remaining' is missing or not a number")
    assert absent == Unavailable("unusable response: none of the definition's pools is in the body")


def test_a_header_field_is_validated_like_any_other():
    with pytest.raises(DefinitionError, match=r"^headerlimit\.yaml: pools\.credits\.remaining\.header: "):
        parse_definition("headerlimit.yaml", HEADER_BALANCE.replace("X-TotalLimit-Remaining", "Bad Name"))
    with pytest.raises(DefinitionError, match=r"^headerlimit\.yaml: pools\.credits\.remaining: unknown key"):
        parse_definition("headerlimit.yaml", HEADER_BALANCE.replace("{header: X-TotalLimit", "{heder: X-TotalLimit"))


def test_a_limit_less_used_below_the_smallest_balance_is_unusable():
    """Both numbers are storable and the difference is exact, but 5E-29 is below 1E-28."""
    provider = acme()
    with pytest.raises(providers.UnusableResponse, match="'sms' is not a storable"):
        provider.parse({"account": {"sms": {"quota": "2E-28", "spent": "1.5E-28"}}})


@pytest.mark.parametrize(
    "text",
    ["1E+28", "1E+127", "1E-29", "1E-131", "1" * 39, "0." + "1" * 39, "-1", "-0.5"],
    ids=[
        "1e28",
        "past-dynamodb",
        "below-smallest",
        "past-dynamodb-small",
        "39-digits",
        "39-decimals",
        "neg",
        "neg-frac",
    ],
)
def test_numbers_outside_what_every_store_holds_are_unusable(text):
    """The bounds themselves, always checked: hypothesis finds them only when it happens to."""
    for value in (Decimal(text), text):  # as a JSON number and as a numeric string
        with pytest.raises(providers.UnusableResponse, match="'credits' is not a storable"):
            providers.number(value, "credits")


@pytest.mark.parametrize("text", ["0", "-0", "9.999999999999999999999999999E+27", "1E-28", "1" * 28, "0.5"])
def test_numbers_every_store_holds_are_kept_exactly(text):
    assert providers.number(Decimal(text), "credits") == Decimal(text)


@pytest.mark.parametrize("name", providers.names())
def test_the_built_json_form_of_each_definition_is_the_same_provider(name):
    """The layer's build writes each definition as JSON, which the deployed function reads."""
    import yaml

    text = (providers.FOLDER / f"{name}.yaml").read_text()
    built = json.loads(json.dumps(yaml.safe_load(text)))
    assert providers.definition(f"{name}.yaml", built) == parse_definition(f"{name}.yaml", text)

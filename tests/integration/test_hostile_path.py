"""Generated bodies through the whole path: the real handler, moto and the simulator.

Each example is one run over ACCOUNTS accounts, each answered with its own generated body.
The property: the run never raises; an account whose body holds a usable balance has exactly
that balance stored, and every other account has nothing stored and a failed check.
"""

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creditwatch import http, providers
from creditwatch.domain import Checked, Unavailable
from sandbox.harness import Stack
from sandbox.simulator import ProviderSimulator, Reply
from tests.hostile import bodies

ACCOUNTS = 40
RUNS = 25  # x ACCOUNTS = 1,000 generated bodies per provider
names = itertools.count()


@pytest.mark.parametrize("provider", providers.names())
def test_any_bodies_cost_only_their_own_accounts(
    stack: Stack, simulator: ProviderSimulator, provider: str, monkeypatch: pytest.MonkeyPatch
):
    del stack  # moto is running; each example makes its own stack
    # bodies, not pacing, are under test: a provider-wide limit (FullEnrich's 60 a minute) would
    # spread 40 checks over 40 s and leave some for the next run
    monkeypatch.setattr(providers.Provider, "provider_interval", property(lambda _: 0.0))
    adapter = providers.load(provider)

    @settings(
        max_examples=RUNS,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(answers=st.lists(bodies(), min_size=ACCOUNTS, max_size=ACCOUNTS))
    def one_run(answers: list[bytes]) -> None:
        run = next(names)
        stack = Stack(name=f"hostile-{run}")  # a table of its own: nothing from earlier examples
        accounts = {}
        for index, body in enumerate(answers):
            name, key = f"r{run}-a{index}", f"key-{provider}-{run:05d}-{index:03d}"
            simulator.script(provider, key, Reply(body=body, headers={"Content-Type": "application/json"}))
            # what fetch makes of it: refused past the size limit, else classified
            too_large = len(body) > http.MAX_BODY
            accounts[name] = (key, Unavailable("too large") if too_large else http._classify(adapter, body))
        stack.put_secret(provider, {"accounts": [{"name": n, "api_key": k} for n, (k, _) in accounts.items()]})

        result = stack.invoke(provider, stack.environment(provider, simulator.base_url))

        stored: dict[str, dict] = {}
        for item in stack.table.scan()["Items"]:
            if item.get("account") in accounts and item["sk"].startswith("SNAP#"):
                stored.setdefault(item["account"], {})[item["pool"]] = item["remaining"]
        for name, (_, outcome) in accounts.items():
            if isinstance(outcome, Checked):
                assert stored.get(name) == {b.pool: b.remaining for b in outcome.balances}, name
            else:
                assert name not in stored, name
        assert result["failed_checks"] == sum(not isinstance(o, Checked) for _, o in accounts.values())
        assert result["unchecked"] == 0

    one_run()

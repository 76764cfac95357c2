"""Fake AWS credentials and clean Powertools state for every test; the provider simulator."""

from collections.abc import Iterator

import pytest

from sandbox.harness import FAKE_AWS_ENV, reset_powertools
from sandbox.simulator import ProviderSimulator


@pytest.fixture
def simulator() -> Iterator[ProviderSimulator]:
    with ProviderSimulator() as sim:
        yield sim


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(autouse=True)
def clean_powertools():
    reset_powertools()
    yield
    reset_powertools()

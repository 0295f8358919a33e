"""The providers' signing-key cache: kept for the provider's max-age, fetched again after a failed delivery at most
once a minute per URL, and a provider that cannot be reached is KeysUnavailable, not a crash."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from vrtx_pipelines.webhooks.keys import KeysUnavailable, PublicKeys

URL = "https://keys.example/certs"


class Provider:
    def __init__(self) -> None:
        self.fetches = 0
        self.now = 1000.0
        self.down = False

    def fetch(self, url: str) -> tuple[Mapping[str, Any], float]:
        if self.down:
            raise KeysUnavailable("signing keys unreachable (ConnectError)")
        self.fetches += 1
        return {"keys": [{"kid": f"k{self.fetches}"}]}, 300.0


@pytest.fixture
def provider() -> Provider:
    return Provider()


@pytest.fixture
def keys(provider: Provider) -> PublicKeys:
    return PublicKeys(fetch=provider.fetch, clock=lambda: provider.now)


def test_a_key_set_is_fetched_once_and_kept_for_its_max_age(keys: PublicKeys, provider: Provider) -> None:
    assert keys.cached(URL) is None
    first = keys.get(URL)
    provider.now += 299
    assert keys.get(URL) is first and keys.cached(URL) is first and provider.fetches == 1
    provider.now += 2
    assert keys.cached(URL) is None and keys.get(URL)["keys"] == [{"kid": "k2"}]


def test_a_failed_delivery_fetches_again_at_most_once_a_minute(keys: PublicKeys, provider: Provider) -> None:
    keys.get(URL)
    assert keys.refetch(URL) is None  # just fetched: nothing new to expect
    provider.now += 61
    assert keys.refetch(URL) == {"keys": [{"kid": "k2"}]}
    assert keys.refetch(URL) is None and provider.fetches == 2


def test_unreachable_keys_are_keys_unavailable_and_the_cached_set_stays(keys: PublicKeys, provider: Provider) -> None:
    kept = keys.get(URL)
    provider.down, provider.now = True, provider.now + 120
    with pytest.raises(KeysUnavailable):
        keys.refetch(URL)
    assert keys.cached(URL) is kept

"""The `store` fixture: every contract test runs against each backend available here."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from expledger.store import open_store


class Clock:
    """A clock that advances one second per reading, so timestamps are distinct and known."""

    def __init__(self):
        self.moment = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        self.moment += timedelta(seconds=1)
        return self.moment


@pytest.fixture
def store(store_url):
    with open_store(store_url, now=Clock()) as opened:
        yield opened

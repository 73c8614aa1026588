"""Fixtures: the fake Metabase (see fake_metabase.py) and the analytics database details handed to provisioning."""

from __future__ import annotations

import pytest

from include.metabase.fake import FakeMetabase


@pytest.fixture
def make_fake():
    """Start fakes with given options; all are stopped after the test."""
    started: list[FakeMetabase] = []

    def make(**options) -> FakeMetabase:
        fake = FakeMetabase(**options).start()
        started.append(fake)
        return fake

    yield make
    for fake in started:
        fake.stop()


@pytest.fixture
def fake_metabase(make_fake) -> FakeMetabase:
    """A running fake Metabase whose admin user already exists."""
    return make_fake()


@pytest.fixture
def analytics_details() -> dict:
    """The analytics database as ``provision`` takes it (the fake never connects to it)."""
    return {"host": "analytics-host", "port": 5432, "dbname": "analytics", "user": "reader", "password": "secret"}

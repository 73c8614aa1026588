"""Fixtures: the fake Metabase, checked against Metabase's OpenAPI description, and the analytics database details."""

from __future__ import annotations

import pytest
from metabase_openapi import RequestValidator

from devtools.fake_metabase import FakeMetabase


@pytest.fixture(scope="session")
def openapi() -> RequestValidator:
    """Metabase's own description of the operations the provisioning calls (see metabase_openapi.py)."""
    return RequestValidator()


@pytest.fixture
def make_fake(openapi):
    """Start fakes with given options; every request they route is checked against Metabase's OpenAPI description.

    A test ends with no request found invalid, unless it made one on purpose (``expect_invalid=True``).
    """
    started: list[tuple[FakeMetabase, bool]] = []

    def make(expect_invalid: bool = False, **options) -> FakeMetabase:
        fake = FakeMetabase(check_request=openapi.problems, **options).start()
        started.append((fake, expect_invalid))
        return fake

    yield make
    for fake, _ in started:
        fake.stop()
    for fake, expect_invalid in started:
        assert expect_invalid or fake.invalid == [], fake.invalid


@pytest.fixture
def fake_metabase(make_fake) -> FakeMetabase:
    """A running fake Metabase whose admin user already exists."""
    return make_fake()


@pytest.fixture
def analytics_details() -> dict:
    """The analytics database as ``provision`` takes it (the fake never connects to it)."""
    return {"host": "analytics-host", "port": 5432, "dbname": "analytics", "user": "reader", "password": "secret"}

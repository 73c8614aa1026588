"""Fixtures for the REST API: a MariaDB database loaded by the real TiDB loader, a read-only account, the app."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from dataclasses import dataclass

import pytest
from api_data import (
    API_KEY,
    DS_NEW,
    DS_OLD,
    MYSQL,
    OTHER_KEY,
    Gold,
    admin,
    count,
    gold_batches,
    load_other_gold,
    load_products,
    make_tweets,
    products_dataset,
)


@dataclass(frozen=True)
class Served:
    """The loaded test database: its name, the read-only account, the expected rows by slice."""

    database: str
    user: str
    password: str
    gold: dict[dt.date, Gold]


@pytest.fixture(scope="session")
def served() -> Served:
    """Two slices of the tweets gold tables (and the test products) loaded into a fresh MariaDB database."""
    from include.api.datasets import key_columns
    from include.serving.tidb import load_slice_tidb

    database = f"api_test_{uuid.uuid4().hex[:8]}"
    user, password = f"api_ro_{uuid.uuid4().hex[:8]}", secrets.token_hex(12)
    conn = admin()
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    conn.select_db(database)
    gold = {DS_OLD: count(make_tweets(1, 600)), DS_NEW: count(make_tweets(2, 1500))}
    for ds, expected in gold.items():
        for table, (schema, batches) in gold_batches(ds, expected).items():
            # per-hour indexed as the API recommends; the others as the serve DAG loads them today (no index).
            keys = key_columns(table) if table == "tweets_per_hour" else ()
            load_slice_tidb(conn, table, ds, schema, 7, batches, key_columns=keys)
    load_products(conn)
    load_other_gold(conn)
    with conn.cursor() as cur:
        # The documented read-only account.
        cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
        cur.execute(f"GRANT SELECT ON `{database}`.* TO '{user}'@'%'")
    try:
        yield Served(database, user, password, gold)
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
            cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
        conn.close()


@pytest.fixture(scope="session")
def settings(served):
    from include.api.config import Settings

    return Settings(
        key_hashes=frozenset(
            {hashlib.sha256(API_KEY.encode()).hexdigest(), hashlib.sha256(OTHER_KEY.encode()).hexdigest()}
        ),
        db_host=MYSQL["host"],
        db_port=MYSQL["port"],
        db_user=served.user,
        db_password=served.password,
        db_name=served.database,
        pool_size=4,
        max_page_size=500,
        default_page_size=50,
    )


@pytest.fixture(scope="session")
def app(settings):
    from include.api.app import create_app
    from include.api.datasets import REGISTRY

    return create_app(settings, datasets=(*REGISTRY, products_dataset()))


@pytest.fixture(scope="session")
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        client.headers["X-API-Key"] = API_KEY
        yield client


@pytest.fixture
def anonymous(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        yield client

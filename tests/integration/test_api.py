"""The REST API over a real tweets run: gold served into MariaDB (as TiDB) by the serve task, read back through every
dataset route and compared with the Iceberg gold tables read by PyIceberg."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import uuid

import pytest

pytestmark = pytest.mark.integration

KEY = "integration-" + uuid.uuid4().hex
CONN_ID = "tidb_api_test"


@pytest.fixture(scope="module")
def api_database(tweets_run, lake_env):
    """A fresh MariaDB database holding every registered tweets dataset, loaded by the serve DAG's TiDB task."""
    import pymysql

    from include.api.datasets import REGISTRY
    from include.serving.tasks import serve_tidb
    from include.serving.tidb import SESSION_DEFAULTS  # TiDB's sql_mode and collation

    name = f"api_it_{uuid.uuid4().hex[:8]}"
    admin = pymysql.connect(host="127.0.0.1", port=3306, user="root", autocommit=True, **SESSION_DEFAULTS)
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
    variable = f"AIRFLOW_CONN_{CONN_ID.upper()}"
    os.environ[variable] = json.dumps(
        {"conn_type": "mysql", "host": "127.0.0.1", "port": 3306, "login": "root", "schema": name}
    )
    try:
        for dataset in REGISTRY:
            if dataset.domain == "tweets":
                serve_tidb(dataset.name, tweets_run.ds, conn_id=CONN_ID)
        yield name
    finally:
        os.environ.pop(variable, None)
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


@pytest.fixture(scope="module")
def client(api_database):
    from fastapi.testclient import TestClient

    from include.api.app import create_app
    from include.api.config import Settings

    settings = Settings(
        key_hashes=frozenset({hashlib.sha256(KEY.encode()).hexdigest()}),
        db_port=3306,
        db_user="root",
        db_name=api_database,
    )
    with TestClient(create_app(settings)) as client:
        client.headers["X-API-Key"] = KEY
        yield client


def as_json(value):
    """A gold value as the API writes it (independently of the API's encoder)."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def iceberg_rows(catalog, table: str, ds: str) -> list[dict]:
    from pyiceberg.expressions import EqualTo

    arrow = catalog.load_table(f"gold.{table}").scan(row_filter=EqualTo("ds", ds)).to_arrow()
    return [{name: as_json(value) for name, value in row.items()} for row in arrow.to_pylist()]


def walk(client, path: str) -> list[dict]:
    rows, cursor = [], None
    while True:
        body = client.get(path, params={"limit": 37, **({"cursor": cursor} if cursor else {})}).json()
        rows += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return rows


def test_every_tweets_route_serves_the_iceberg_gold_rows_once_in_order(client, tweets_run, iceberg_catalog):
    from include.api.datasets import REGISTRY

    for dataset in (d for d in REGISTRY if d.domain == "tweets"):
        want = iceberg_rows(iceberg_catalog, dataset.name, tweets_run.ds)
        assert want, dataset.name
        for name, direction in reversed(dataset.page_key):
            want.sort(key=lambda row, name=name: row[name], reverse=direction == "desc")
        got = walk(client, f"/v1/{dataset.path}")
        assert got == want, dataset.name
        for row in want[:: max(1, len(want) // 5)]:
            assert client.get(f"/v1/{dataset.path}/{row[dataset.key]}").json() == row, dataset.name


def test_catalogue_freshness_matches_the_served_slices(client, tweets_run, iceberg_catalog):
    datasets = {d["name"]: d for d in client.get("/v1/datasets").json()["datasets"]}
    for name in ("tweets_per_hour", "tweets_per_day", "tweets_by_language"):
        freshness = datasets[name]["freshness"]
        assert freshness["latest_ds"] == tweets_run.ds and freshness["slices"] == 1
        assert freshness["latest_ds_rows"] == len(iceberg_rows(iceberg_catalog, name, tweets_run.ds))

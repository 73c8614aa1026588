"""The REST API against MariaDB loaded by the real TiDB loader: rows, pages, filters, auth, errors, logs."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from urllib.parse import quote

import pytest
from api_data import API_KEY, DS_NEW, DS_OLD, OTHER_KEY, PRODUCTS, access_log

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat() + "Z"


def walk(client, path: str, **params) -> tuple[list[dict], int]:
    """Every row of a list route, following next_cursor; returns the rows and the number of pages."""
    rows, pages, cursor = [], 0, None
    while True:
        response = client.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        body = response.json()
        rows += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return rows, pages
        assert len(body["items"]) == body["limit"]


# --- rows --------------------------------------------------------------------------------------------------------


def test_per_hour_walks_the_latest_slice_exactly_once_in_order(client, served):
    rows, pages = walk(client, "/v1/tweets/per-hour", limit=7)
    expected = sorted(served.gold[DS_NEW].per_hour.items())
    assert rows == [{"ds": str(DS_NEW), "hour_start": iso(hour), "tweets": n} for hour, n in expected]
    assert pages == -(-len(expected) // 7)


def test_per_hour_range_and_slice(client, served):
    start, end = dt.datetime(2020, 3, 31, 5, tzinfo=dt.UTC), dt.datetime(2020, 4, 1, 17, tzinfo=dt.UTC)
    # The same instants written with an offset: the API compares in UTC.
    params = {"start": "2020-03-31T07:00:00+02:00", "end": "2020-04-01T17:00:00Z", "ds": str(DS_OLD), "limit": 5}
    rows, _ = walk(client, "/v1/tweets/per-hour", **params)
    expected = sorted((h, n) for h, n in served.gold[DS_OLD].per_hour.items() if start <= h < end)
    assert [(r["hour_start"], r["tweets"]) for r in rows] == [(iso(h), n) for h, n in expected]
    assert {r["ds"] for r in rows} == {str(DS_OLD)}


def test_per_day_inclusive_range(client, served):
    rows, _ = walk(client, "/v1/tweets/per-day", **{"from": "2020-03-31", "to": "2020-04-02", "limit": 2})
    expected = sorted((d, n) for d, n in served.gold[DS_NEW].per_day.items() if "2020-03-31" <= str(d) <= "2020-04-02")
    assert [(r["day"], r["tweets"]) for r in rows] == [(str(d), n) for d, n in expected]
    assert len(rows) == 3


def test_by_language_order_breaks_ties_and_pages_through_them(client, served):
    rows, _ = walk(client, "/v1/tweets/by-language", limit=2)
    expected = sorted(served.gold[DS_NEW].by_language.items(), key=lambda item: (-item[1], item[0]))
    assert [(r["lang"], r["tweets"]) for r in rows] == expected
    assert [r["lang"] for r in rows if r["tweets"] == 4] == ["aa", "ab", "ac"]


def test_lookups(client, served):
    hour, n = next(iter(sorted(served.gold[DS_NEW].per_hour.items())))
    assert client.get(f"/v1/tweets/per-hour/{iso(hour)}").json() == {
        "ds": str(DS_NEW),
        "hour_start": iso(hour),
        "tweets": n,
    }
    day = dt.date(2020, 4, 1)
    body = client.get(f"/v1/tweets/per-day/{day}", params={"ds": str(DS_OLD)}).json()
    assert body == {"ds": str(DS_OLD), "day": str(day), "tweets": served.gold[DS_OLD].per_day[day]}
    assert client.get("/v1/tweets/by-language/zh-cn").json()["tweets"] == served.gold[DS_NEW].by_language["zh-cn"]
    missing = client.get("/v1/tweets/by-language/xx")
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
    assert "xx" in missing.json()["detail"]


def test_unknown_slice_is_a_404_problem(client):
    response = client.get("/v1/tweets/per-hour", params={"ds": "2001-01-01"})
    assert response.status_code == 404
    assert response.json()["type"] == "urn:lakehouse:problem:not-loaded"


def test_rows_of_superseded_and_unflipped_loads_are_never_served(client, served):
    """Rows a load left behind (its delete not done yet) or staged (not flipped yet) stay invisible."""
    from api_data import admin

    conn = admin()
    conn.select_db(served.database)
    try:
        with conn.cursor() as cur:
            for load_id in (1, 10**17):
                cur.execute(
                    "INSERT INTO tweets_per_hour__rows (ds, hour_start, tweets, _loaded_at, _load_id, _row)"
                    " VALUES (%s, '2020-03-30 00:00:00', 999999, NOW(), %s, 0)",
                    (DS_NEW, load_id),
                )
        rows, _ = walk(client, "/v1/tweets/per-hour", limit=500)
        assert 999999 not in {r["tweets"] for r in rows}
        assert len(rows) == len(served.gold[DS_NEW].per_hour)
    finally:
        with conn.cursor() as cur:
            cur.execute("DELETE FROM tweets_per_hour__rows WHERE tweets = 999999")
        conn.close()


def test_multi_slice_dataset_with_text_and_float_filters(client):
    every = [(ds, *row) for ds, rows in sorted(PRODUCTS.items()) for row in rows]

    def expect(keep):
        return [
            {"ds": str(ds), "product_id": pid, "name": name, "category": cat, "price": price}
            for ds, pid, name, cat, price in sorted(every, key=lambda r: (r[0], r[1]))
            if keep(ds, pid, name, cat, price)
        ]

    cases = [
        ({}, lambda *r: True),
        ({"q": "LAMP"}, lambda ds, pid, name, cat, price: "lamp" in name.lower()),
        ({"q": "50%"}, lambda ds, pid, name, cat, price: "50%" in name),
        ({"q": "_"}, lambda ds, pid, name, cat, price: "_" in name),
        ({"q": "\\"}, lambda ds, pid, name, cat, price: "\\" in name),
        ({"q": "日本"}, lambda ds, pid, name, cat, price: "日本" in name),
        (
            {"category": "furniture", "ds_to": "2026-11-18"},
            lambda ds, pid, name, cat, price: cat == "furniture" and str(ds) <= "2026-11-18",
        ),
        ({"category": "it's; DROP TABLE x"}, lambda ds, pid, name, cat, price: cat == "it's; DROP TABLE x"),
        ({"min_price": 19.99, "max_price": 49.5}, lambda ds, pid, name, cat, price: 19.99 <= price <= 49.5),
        ({"ds_from": "2026-11-19"}, lambda ds, pid, name, cat, price: str(ds) >= "2026-11-19"),
    ]
    for params, keep in cases:
        rows, _ = walk(client, "/v1/test/products", limit=2, **params)
        assert rows == expect(keep), params
    # A lookup across slices finds the key in its newest slice.
    assert client.get("/v1/test/products/1").json() == expect(lambda ds, pid, *_: pid == 1)[-1]
    assert client.get("/v1/test/products/3").json()["ds"] == "2026-11-18"
    assert client.get("/v1/test/products/1", params={"ds": "2026-11-18"}).status_code == 422


def test_other_domains_routes_serve_their_rows(client):
    """Rentals and products: every served column, decimals as numbers, nulls, the declared order and lookups."""
    import decimal

    from api_data import DS_OLD, OTHER_GOLD

    from include.api.datasets import BY_NAME

    def plain(value):
        if isinstance(value, decimal.Decimal):
            return float(value)
        if isinstance(value, dt.datetime):
            return iso(value)
        return value.isoformat() if isinstance(value, dt.date) else value

    routed = {table: gold for table, gold in OTHER_GOLD.items() if table != "trip_origin_cells"}
    assert set(OTHER_GOLD) - set(BY_NAME) == {"trip_origin_cells"}  # read by the weekly average, no route of its own
    for table, (schema, slices) in routed.items():
        dataset = BY_NAME[table]
        names = [column.name for column in dataset.columns]
        latest = max(slices) if dataset.snapshot else None
        want = [
            {name: plain(value) for name, value in zip(schema.names, (ds, *row), strict=True) if name in names}
            for ds, rows in slices.items()
            if latest is None or ds == latest
            for row in rows
        ]
        for name, direction in reversed(dataset.page_key):
            want.sort(key=lambda row, name=name: row[name], reverse=direction == "desc")
        rows, _ = walk(client, f"/v1/{dataset.path}", limit=1)
        assert rows == [{name: row[name] for name in names} for row in want], table
        if dataset.key:
            for row in want:
                assert client.get(f"/v1/{dataset.path}/{quote(row[dataset.key], safe='')}").json() == row, table
    top = client.get("/v1/rentals/top-countries", params={"limit": 2}).json()["items"]
    assert [(r["country"], r["rank"], r["revenue"]) for r in top] == [("India", 1, 183.58), ("China", 2, 170.1)]
    milk = client.get("/v1/products", params={"q": "MILK", "department": "Dairy North"}).json()["items"]
    assert [(p["product_name"], p["ds"], p["shelf_life_days"]) for p in milk] == [("Whole Milk 1L", str(DS_OLD), 88.0)]
    cream = client.get("/v1/products", params={"q": "crème", "from": "2024-01-01T00:00:00Z"}).json()["items"]
    assert [p["department_name"] for p in cream] == ["Bäckerei Ost"]


# --- catalogue and health ----------------------------------------------------------------------------------------


def test_catalogue_lists_columns_and_freshness_from_the_load_log(client, served):
    from api_data import admin

    body = client.get("/v1/datasets").json()
    by_name = {d["name"]: d for d in body["datasets"]}
    assert {"tweets_per_hour", "tweets_per_day", "tweets_by_language", "api_test_products"} <= set(by_name)
    per_hour = by_name["tweets_per_hour"]
    assert [c["name"] for c in per_hour["columns"]] == ["ds", "hour_start", "tweets"]
    assert per_hour["url"] == "/v1/tweets/per-hour" and per_hour["order"] == ["hour_start asc"]
    conn = admin()
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT loaded_at FROM `{served.database}`._lakehouse_loads WHERE table_name = %s AND ds = %s",
            ("tweets_per_hour", DS_NEW),
        )
        loaded_at = cur.fetchone()[0]
    conn.close()
    assert per_hour["freshness"] == {
        "latest_ds": str(DS_NEW),
        "latest_ds_loaded_at": loaded_at.isoformat() + "Z",
        "latest_ds_rows": len(served.gold[DS_NEW].per_hour),
        "last_loaded_at": per_hour["freshness"]["last_loaded_at"],
        "slices": 2,
    }
    assert client.get("/v1/datasets/tweets_per_day").json()["freshness"]["latest_ds"] == str(DS_NEW)
    assert client.get("/v1/datasets/nope").status_code == 404


def test_health_and_docs_are_open(anonymous):
    assert anonymous.get("/health").json() == {"status": "ok", "database": "ok"}
    assert anonymous.get("/openapi.json").status_code == 200
    assert anonymous.get("/docs").status_code == 200


# --- auth --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/datasets", "/v1/tweets/per-hour", "/v1/tweets/by-language/en"])
def test_data_routes_need_a_valid_key(anonymous, path):
    missing = anonymous.get(path)
    assert missing.status_code == 401 and missing.headers["content-type"] == PROBLEM
    assert missing.json()["title"] == "Missing API key"
    assert missing.headers["www-authenticate"].startswith("ApiKey")
    wrong = anonymous.get(path, headers={"X-API-Key": API_KEY + "x"})
    assert wrong.status_code == 401 and wrong.json()["title"] == "Invalid API key"
    for key in (API_KEY, OTHER_KEY):
        assert anonymous.get(path, headers={"X-API-Key": key}).status_code == 200


def test_keys_come_from_the_environment_as_hashes():
    from include.api.auth import digest, key_matches, main
    from include.api.config import Settings

    settings = Settings.from_env({"LAKEHOUSE_API_KEY_HASHES": f" {digest('a').upper()} ,{digest('b')}"})
    assert key_matches("a", settings.key_hashes) and key_matches("b", settings.key_hashes)
    assert not key_matches("c", settings.key_hashes)
    with pytest.raises(ValueError, match="SHA-256"):
        Settings.from_env({"LAKEHOUSE_API_KEY_HASHES": "plain-text-key"})
    assert main(["hash", "a"]) == 0 and main([]) == 2


# --- validation --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "fragment"),
    [
        ("/v1/tweets/per-hour", {"start": "yesterday"}, "start"),
        ("/v1/tweets/per-hour", {"start": "2020-04-02T00:00:00Z", "end": "2020-04-01T00:00:00Z"}, "before `end`"),
        ("/v1/tweets/per-hour", {"start": "2020-04-01T00:00:00Z", "end": "2020-04-01T00:00:00Z"}, "before `end`"),
        ("/v1/tweets/per-hour", {"end": "9999-12-31T23:00:00-05:00"}, "out of range"),
        ("/v1/tweets/per-day", {"from": "2020-04-03", "to": "2020-04-01"}, "at or before `to`"),
        ("/v1/tweets/per-day", {"from": "2020-02-30"}, "from"),
        ("/v1/tweets/per-hour", {"limit": 0}, "limit"),
        ("/v1/tweets/per-hour", {"limit": 501}, "less than or equal to 500"),
        ("/v1/tweets/per-hour", {"ds": "20261120"}, "ds"),
        ("/v1/tweets/per-hour", {"lang": "en"}, "'lang': Extra inputs are not permitted"),
        ("/v1/tweets/per-hour", {"cursor": "not a cursor!"}, "cursor"),
        ("/v1/tweets/per-hour", {"cursor": "abc"}, "not valid"),
        ("/v1/tweets/by-language/EN", {}, "lang"),
        ("/v1/tweets/per-hour/not-a-time", {}, "hour_start"),
        ("/v1/test/products", {"min_price": "nan"}, "min_price"),
        ("/v1/test/products", {"q": ""}, "q"),
    ],
)
def test_invalid_parameters_are_a_422_problem(client, path, params, fragment):
    response = client.get(path, params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == 422 and body["instance"] == path
    assert fragment in body["detail"], body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]


def test_a_cursor_only_fits_its_own_query(client):
    first = client.get("/v1/tweets/per-hour", params={"limit": 3, "start": "2020-03-30T00:00:00Z"}).json()
    cursor = first["next_cursor"]
    other_filters = client.get("/v1/tweets/per-hour", params={"limit": 3, "cursor": cursor})
    assert other_filters.status_code == 422 and "different query" in other_filters.json()["detail"]
    other_dataset = client.get("/v1/tweets/per-day", params={"cursor": cursor})
    assert other_dataset.status_code == 422
    other_slice = client.get(
        "/v1/tweets/per-hour", params={"start": "2020-03-30T00:00:00Z", "ds": str(DS_OLD), "cursor": cursor}
    )
    assert other_slice.status_code == 422 and "slice" in other_slice.json()["detail"]
    # The page size may change between pages.
    same = client.get("/v1/tweets/per-hour", params={"limit": 10, "start": "2020-03-30T00:00:00Z", "cursor": cursor})
    assert same.status_code == 200 and len(same.json()["items"]) == 10


INJECTIONS = [
    "' OR '1'='1",
    "en' OR 1=1 -- ",
    '"; DROP TABLE tweets_per_hour__rows; --',
    "en`; SELECT SLEEP(5); #",
    "%",
    "_",
    "\\",
    "\\' OR 1=1 #",
    "1 UNION SELECT user, password, 1 FROM mysql.user",
    "en\x00",
    "😀' OR ''='",
]


def _text_parameters(spec: dict) -> list[tuple[str, str, str, dict]]:
    """(path template, location, name, example path values) of every string parameter of every operation."""
    found = []
    for path, operations in spec["paths"].items():
        if "get" not in operations:  # the upload takes a file, not text parameters (test_api_ingest.py)
            continue
        parameters = operations["get"].get("parameters", [])
        examples = {p["name"]: str(p["schema"]["examples"][0]) for p in parameters if p["in"] == "path"}
        for parameter in parameters:
            schema = parameter["schema"]
            types = {schema.get("type")} | {s.get("type") for s in schema.get("anyOf", [])}
            if "string" in types:
                found.append((path, parameter["in"], parameter["name"], examples))
    return found


def test_injection_attempts_in_every_text_parameter_are_inert(client, served):
    spec = client.get("/openapi.json").json()
    targets = _text_parameters(spec)
    assert len(targets) >= 15, targets
    before, _ = walk(client, "/v1/tweets/per-hour", limit=500)
    all_products, _ = walk(client, "/v1/test/products", limit=500)
    statuses = Counter()
    for path, location, name, examples in targets:
        for payload in INJECTIONS:
            values = {**examples, **({name: payload} if location == "path" else {})}
            url = path.format(**{key: quote(value, safe="") for key, value in values.items()})
            response = client.get(url, params={} if location == "path" else {name: payload})
            statuses[response.status_code] += 1
            assert response.status_code < 500, (path, name, payload, response.text)
            if response.status_code == 200 and "items" in response.json():
                # Accepted payloads are values, never SQL: they match only rows holding them literally.
                items = response.json()["items"]
                assert len(items) < len(all_products), (path, name, payload, items)
            elif response.status_code == 200:
                assert response.json() in ({"status": "ok", "database": "ok"},) or "datasets" in response.json()
    after, _ = walk(client, "/v1/tweets/per-hour", limit=500)
    assert after == before
    # Both outcomes occur: refused by validation, and accepted as plain values.
    assert statuses[200] and statuses[422], statuses


# --- failures ----------------------------------------------------------------------------------------------------


def test_database_unavailable_is_a_503_problem(settings):
    import dataclasses

    from fastapi.testclient import TestClient

    from include.api.app import create_app

    down = dataclasses.replace(settings, db_port=1, connect_timeout_s=1)
    with TestClient(create_app(down)) as client:
        for path in ("/health", "/v1/tweets/per-hour", "/v1/datasets"):
            response = client.get(path, headers={"X-API-Key": API_KEY})
            assert response.status_code == 503, response.text
            assert response.headers["content-type"] == PROBLEM
            assert response.headers["retry-after"] == "5"
            assert "Traceback" not in response.text


def test_an_exhausted_pool_is_a_503_not_a_hang(settings):
    import dataclasses
    import time

    from fastapi.testclient import TestClient

    from include.api.app import create_app

    app = create_app(dataclasses.replace(settings, pool_size=1, pool_timeout_s=0.2))
    held = app.state.db._pool.connect()
    try:
        with TestClient(app) as client:
            started = time.monotonic()
            response = client.get("/v1/tweets/per-hour", headers={"X-API-Key": API_KEY})
            assert response.status_code == 503 and time.monotonic() - started < 2
    finally:
        held.close()


def test_a_slow_request_gets_a_504_at_the_timeout(settings):
    import dataclasses
    import time

    from fastapi.testclient import TestClient

    from include.api.app import create_app

    class SlowDatabase:
        def run(self, work):
            time.sleep(1.5)

        def dispose(self):
            pass

    app = create_app(dataclasses.replace(settings, request_timeout_s=0.3), database=SlowDatabase())
    with TestClient(app) as client:
        started = time.monotonic()
        response = client.get("/v1/tweets/per-hour", headers={"X-API-Key": API_KEY})
        assert response.status_code == 504 and response.headers["content-type"] == PROBLEM
        assert time.monotonic() - started < 1.2
        assert response.json()["request_id"] == response.headers["x-request-id"]


def test_a_query_over_tidbs_memory_quota_is_a_clear_503(settings):
    import dataclasses

    import pymysql
    from fastapi.testclient import TestClient

    from include.api.app import create_app
    from include.api.db import Database, MemoryQuotaExceeded

    db = Database(dataclasses.replace(settings, pool_size=1))

    def over_quota(cur):
        # What TiDB answers when a query passes tidb_mem_quota_query.
        raise pymysql.err.OperationalError(8175, "Your query has been cancelled due to exceeding the allowed memory")

    with pytest.raises(MemoryQuotaExceeded):
        db.run(over_quota)
    db.ping()  # the connection went back to the pool and still works

    class OverQuota:
        def run(self, work):
            return db.run(over_quota)

        def dispose(self):
            db.dispose()

    with TestClient(create_app(settings, database=OverQuota())) as client:
        response = client.get("/v1/tweets/per-hour", headers={"X-API-Key": API_KEY})
    assert response.status_code == 503 and response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == "urn:lakehouse:problem:database-memory-quota" and "8175" in body["detail"]
    assert response.headers["retry-after"] == "30"


def test_the_database_stops_a_statement_at_the_timeout(settings):
    import dataclasses

    from include.api.db import Database, StatementTimeout

    db = Database(dataclasses.replace(settings, request_timeout_s=0.5))
    with pytest.raises(StatementTimeout):
        db.run(lambda cur: cur.execute("SELECT SLEEP(3) FROM tweets_per_day"))
    db.dispose()


def test_the_api_account_is_read_only(served, settings):
    from include.api.db import Database, DatabaseUnavailable

    assert (settings.db_user, settings.db_name) == (served.user, served.database)
    db = Database(settings)
    try:
        with pytest.raises(DatabaseUnavailable) as refused:
            db.run(lambda cur: cur.execute("DELETE FROM tweets_per_day__rows"))
        assert refused.value.__cause__.args[0] == 1142  # command denied
    finally:
        db.dispose()


# --- CORS, request ids, access log -------------------------------------------------------------------------------


def test_cors_is_configurable(settings):
    import dataclasses

    from fastapi.testclient import TestClient

    from include.api.app import create_app

    with TestClient(create_app(dataclasses.replace(settings, cors_origins=("https://dash.example",)))) as client:
        preflight = client.options(
            "/v1/tweets/per-hour",
            headers={
                "Origin": "https://dash.example",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "X-API-Key",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://dash.example"
        other = client.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
    with TestClient(create_app(settings)) as client:
        assert "access-control-allow-origin" not in client.get("/health", headers={"Origin": "https://x"}).headers


def test_access_log_is_one_json_line_with_request_id_and_duration(client):
    from include.api.middleware import JsonFormatter

    with access_log() as records:
        response = client.get("/v1/tweets/per-day", params={"limit": 1}, headers={"X-Request-ID": "trace-123"})
    assert response.headers["x-request-id"] == "trace-123"
    entry = json.loads(JsonFormatter().format(records[-1]))
    assert entry["request_id"] == "trace-123" and entry["status"] == 200 and entry["path"] == "/v1/tweets/per-day"
    assert entry["duration_ms"] > 0 and entry["api_key_id"] and API_KEY not in json.dumps(entry)
    # An unusable incoming id is replaced.
    assert client.get("/health", headers={"X-Request-ID": "bad id\n"}).headers["x-request-id"] != "bad id\n"


def test_users_and_trips_filters(client):
    """The users filters (gender, nationality, country), the statistics' run range, the trips' day and region."""
    from api_data import OTHER_GOLD

    def ids(path: str, key: str, **params) -> list:
        rows, _ = walk(client, path, limit=2, **params)
        return [row[key] for row in rows]

    users = {row[0]: (ds, *row) for ds, rows in OTHER_GOLD["users"][1].items() for row in rows}
    # Rows are (ds, user_id, title, first_name, last_name, gender, ..., nationality at 10); pages go by ds, user_id.
    by_slice = sorted(users.items(), key=lambda item: (item[1][0], item[0]))
    assert ids("/v1/users", "user_id", gender="female") == [u for u, r in by_slice if r[5] == "female"]
    assert ids("/v1/users", "user_id", nationality="FR") == [u for u, r in by_slice if r[10] == "FR"]
    assert ids("/v1/users", "user_id", country="Brazil", gender="female") == ["a1b2c3d4-0000-4000-8000-000000000001"]
    assert client.get("/v1/users", params={"nationality": "fr"}).status_code == 422
    kim = client.get("/v1/users/c3d4e5f6-0000-4000-8000-000000000003").json()
    assert kim["first_name"] == "Kim" and kim["latitude"] is None and kim["ds"] == str(DS_NEW)

    rows, _ = walk(client, "/v1/users/statistics", **{"from": str(DS_NEW), "gender": "all"})
    assert [(r["ds"], r["users"], r["average_age"]) for r in rows] == [(str(DS_NEW), 2, 36.0)]

    trips = [row for rows in OTHER_GOLD["trips"][1].values() for row in rows]
    # Trip rows are (trip_id, region, ..., trip_date at 8, ...).
    in_range = sorted(t[0] for t in trips if dt.date(2026, 1, 5) <= t[8] <= dt.date(2026, 1, 11))
    assert sorted(ids("/v1/trips", "trip_id", **{"from": "2026-01-05", "to": "2026-01-11"})) == in_range
    brno = sorted(t[0] for t in trips if t[1] == "Brno" and t[8] <= dt.date(2026, 1, 11))
    assert sorted(ids("/v1/trips", "trip_id", region="Brno", to="2026-01-11")) == brno
    weekly = [(r["region"], r["week_start"]) for r in walk(client, "/v1/trips/weekly", region="Turin")[0]]
    assert weekly == [("Turin", "2026-01-05"), ("Turin", "2026-01-12")]
    groups = walk(client, "/v1/trips/groups")[0]
    assert [(g["region"], g["trips"], g["datasources"]) for g in groups] == [
        ("Prague", 3, "cheap_mobile,funny_car"),
        ("Turin", 1, "baba_car"),
    ]


def test_no_secret_column_is_served_or_documented(client):
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    fields = {field for name in ("UsersRow", "UserStatisticsRow") for field in schemas[name]["properties"]}
    body = client.get("/v1/users", params={"limit": 5}).json()
    assert "user_id" in fields and body["items"]
    fields |= {field for row in body["items"] for field in row}
    for word in ("password", "salt", "md5", "sha1", "sha256", "hash"):
        assert not [field for field in fields if word in field], word

"""The dataset registry, the SQL builder and cursors, and the OpenAPI document (no database)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from include.api.datasets import BY_NAME, REGISTRY, Column, Dataset, Equals, Range, key_columns
from include.api.query import PageQuery, decode_cursor, encode_cursor, keyset_condition, like_pattern, page_sql


def test_every_registered_dataset_is_a_gold_table_with_unique_routes():
    from include.serving.tasks import gold_tables

    assert {d.name for d in REGISTRY} <= set(gold_tables())
    assert len({d.path for d in REGISTRY}) == len(REGISTRY)


def test_the_api_reads_the_loader_layout_by_the_loader_names():
    from include.api import query
    from include.serving import loads, tidb

    assert (query.LOAD_LOG, query.ROWS_SUFFIX, query.LOAD_ID) == (loads.LOAD_LOG, tidb.ROWS_SUFFIX, tidb.LOAD_ID)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sort": (("nope", "asc"),)}, "sort column 'nope'"),
        ({"sort": (("tweets", "up"),)}, "asc or desc"),
        ({"key": "nope"}, "key 'nope'"),
        ({"filters": (Equals("tweets", "limit", "x", "1", pattern=".*"),)}, "must be unique and not one of"),
        ({"filters": (Equals("tweets", "n", "x", "1", pattern=".*"),)}, "text filter on non-text column"),
        ({"filters": (Range("nope", "a", "b", "x", (1, 2)),)}, "filter column 'nope'"),
        ({"columns": (Column("day", "date", "d", "2020-01-01"),)}, "first column must be ds"),
    ],
)
def test_inconsistent_declarations_fail_at_import(change, message):
    base = BY_NAME["tweets_per_day"]
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(Dataset) if f.init}
    with pytest.raises(ValueError, match=message):
        Dataset(**{**fields, **change})


DECLARED = """
[shared]
ds = ["date", "The slice.", "2026-11-20"]
_loaded_at = ["datetime", "When it was loaded.", "2026-11-21T01:05:00Z"]

[patterns]
code = '^[a-z]{2}$'

[domains.tests]
freshness = { warn_after = [1, "day"], error_after = [2, "day"] }

[[gold]]
name = "codes"
domain = "tests"
description = "One row per code."
key = ["code"]
snapshot = false
columns = [
    ["code", "str", "A code.", "en"],
    ["label", "str?", "Its label.", "English"],
    ["n", "int", "N.", 3],
    ["_hidden", "str", "Not served by the API."],
]

[gold.api]
path = "tests/codes"
summary = "Codes"
sort = [["code", "asc"]]
key = "code"
key_pattern = "code"
omit = ["_hidden"]

[[gold.api.filters]]
equals = "code"
param = "code"
description = "One code."
example = "en"
pattern = "code"
max_length = 2

[[gold]]
name = "not_served"
domain = "tests"
description = "A gold table the API does not serve."
key = []
snapshot = true
columns = []
"""


def test_declarations_are_read_from_toml(tmp_path):
    from include.api.datasets import load

    (path := tmp_path / "tables.toml").write_text(DECLARED)
    (codes,) = load(path)  # `not_served` has no [gold.api]; `_hidden` is omitted
    assert codes.columns == (
        Column("ds", "date", "The slice.", "2026-11-20"),
        Column("code", "str", "A code.", "en"),
        Column("label", "str", "Its label.", "English", nullable=True),
        Column("n", "int", "N.", 3),
    )
    assert (codes.sort, codes.key, codes.key_pattern, codes.snapshot) == (
        (("code", "asc"),),
        "code",
        "^[a-z]{2}$",
        False,
    )
    assert codes.filters == (Equals("code", "code", "One code.", "en", pattern="^[a-z]{2}$", max_length=2),)


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        (("equals = ", "matches = "), ValueError),  # a filter of no known kind
        (('summary = "Codes"', 'summary = "Codes"\nsumary = "typo"'), TypeError),
        (('["_hidden", "str", "Not served by the API."]', '["_shown", "str", "No example."]'), ValueError),
        (('key = ["code"]', 'key = ["code", "n"]'), ValueError),  # neither sorted nor looked up by its whole key
    ],
)
def test_a_mistyped_declaration_fails_at_import(tmp_path, edit, error):
    from include.api.datasets import load

    (path := tmp_path / "tables.toml").write_text(DECLARED.replace(*edit))
    with pytest.raises(error):
        load(path)


def test_key_columns_for_the_loader_index():
    assert key_columns("tweets_per_hour") == ("hour_start",)
    assert key_columns("tweets_by_language") == ("lang",)
    assert key_columns("not_a_dataset") == ()


def test_keyset_condition_handles_mixed_directions():
    sql, args = keyset_condition((("tweets", "desc"), ("lang", "asc")), (12, "en"))
    assert sql == "((`tweets` < %s) OR (`tweets` = %s AND `lang` > %s))"
    assert args == [12, 12, "en"]


def test_like_patterns_match_wildcards_literally():
    assert like_pattern("50%_off!") == "%50!%!_off!!%"


def test_snapshot_pages_read_one_slice_by_its_current_load():
    query = PageQuery(
        BY_NAME["tweets_per_hour"], {"start": dt.datetime(2020, 4, 1), "end": None}, 10, dt.date(2026, 1, 1)
    )
    sql, args = page_sql(query)
    assert "FROM `tweets_per_hour__rows`" in sql
    assert "`_load_id` = (SELECT load_id FROM `_lakehouse_loads` WHERE table_name = %s AND ds = %s)" in sql
    assert sql.endswith("ORDER BY `hour_start` ASC LIMIT %s")
    assert args == [dt.date(2026, 1, 1), "tweets_per_hour", dt.date(2026, 1, 1), dt.datetime(2020, 4, 1), 11]


def test_cursors_round_trip_and_refuse_tampering():
    import base64
    import json

    dataset = BY_NAME["tweets_by_language"]
    query = PageQuery(dataset, {}, 5, dt.date(2026, 11, 20))
    cursor = encode_cursor(query, (dt.date(2026, 11, 20), "en", 42))
    moved = decode_cursor(PageQuery(dataset, {}, 9), cursor)
    assert (moved.ds, moved.after, moved.limit) == (dt.date(2026, 11, 20), (42, "en"), 9)
    body = json.loads(base64.urlsafe_b64decode(cursor + "=="))
    for bad in ({**body, "k": ["42", "en"]}, {**body, "k": [42]}, {**body, "v": 2}, {**body, "d": "x"}, [1]):
        forged = base64.urlsafe_b64encode(json.dumps(bad).encode()).decode().rstrip("=")
        with pytest.raises(ValueError):
            decode_cursor(PageQuery(dataset, {}, 5), forged)


def test_openapi_documents_every_route_with_descriptions_examples_and_problems():
    from include.api.app import create_app
    from include.api.config import Settings

    spec = create_app(Settings()).openapi()
    assert spec["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "An API key issued by the platform team. The server stores only its SHA-256 digest.",
    }
    paths = spec["paths"]
    assert {"/health", "/v1/datasets", "/v1/datasets/{name}", "/v1/tweets/per-hour/{hour_start}"} <= set(paths)
    for path, item in paths.items():
        # Every route is a GET answering JSON, but the upload (POST, 202) and the event streams (SSE).
        [(method, operation)] = item.items()
        success = "202" if method == "post" else "200"
        success_media = "text/event-stream" if "/ingestions/" in path else "application/json"
        assert operation["summary"] and operation["description"], path
        assert ("security" in operation) == path.startswith("/v1/"), path
        for parameter in operation.get("parameters", []):
            assert parameter.get("description"), (path, parameter["name"])
            if parameter["name"] != "cursor":
                assert parameter["schema"].get("examples"), (path, parameter["name"])
        for status, response in operation["responses"].items():
            media = success_media if status == success else "application/problem+json"
            assert list(response["content"]) == [media], (path, status)
        if path.startswith("/v1/"):
            assert {"401", "503"} <= set(operation["responses"]), path
            assert "example" in operation["responses"][success]["content"][success_media] or path.startswith(
                "/v1/datasets"
            )


def test_every_list_route_documents_what_it_refuses_across_parameters():
    """A range's order and the cursor's issue are no parameter's schema: the list route's 422 names them."""
    from include.api.app import create_app
    from include.api.config import Settings

    paths = create_app(Settings()).openapi()["paths"]
    for dataset in REGISTRY:
        invalid = paths[f"/v1/{dataset.path}"]["get"]["responses"]["422"]["description"]
        assert "a `cursor` that is not the `next_cursor`" in invalid, dataset.name
        for item in dataset.filters:
            if isinstance(item, Range):
                assert f"`{item.lower}` " in invalid and f" `{item.upper}`" in invalid, (dataset.name, invalid)

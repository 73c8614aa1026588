"""Users transformations and jobs: input documents beside the rows expected from them.

The job tests land pages from the sample server in moto S3 (``extract_users``) and check every table against
figures computed in plain Python from the generator's documents (``users_page``), with rules written here.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import re
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal

import pytest

pytestmark = pytest.mark.spark

D1, D2, D3 = "2026-11-19", "2026-11-20", "2026-11-21"
DAY1, DAY2, DAY3 = (dt.date.fromisoformat(d) for d in (D1, D2, D3))
UTC = dt.timezone.utc  # noqa: UP017 - mirrors the job's Python 3.10 code
LOADED = dt.datetime(2026, 11, 20, 6, tzinfo=UTC)
PAGE1 = "s3a://landing/users/ds=2026-11-20/page-0001.json"
PAGE2 = "s3a://landing/users/ds=2026-11-20/page-0002.json"
SECRETS = ("password", "salt", "md5", "sha1", "sha256")
UUID_A = "7a0eed16-9430-4d68-901f-c0d4c1c3bf00"
UUID_B = "0b1c2d3e-4f50-4a61-8b72-93a4b5c6d7e8"
UUID_C = "11111111-2222-4333-8444-555555555555"


def user_doc(uuid: str | None = UUID_A, **changes) -> dict:
    """A randomuser.me 1.4 document; ``changes`` set dotted paths (``dob__date`` = dob.date), ``...`` deletes."""
    doc = {
        "gender": "female",
        "name": {"title": "Miss", "first": "Jennie", "last": "Nichols"},
        "location": {
            "street": {"number": 8929, "name": "Valwood Pkwy"},
            "city": "Billings",
            "state": "Michigan",
            "country": "United States",
            "postcode": 63104,
            "coordinates": {"latitude": "-69.8246", "longitude": "134.8719"},
            "timezone": {"offset": "+9:30", "description": "Adelaide, Darwin"},
        },
        "email": "jennie.nichols@example.com",
        "login": {
            "uuid": uuid,
            "username": "yellowpeacock117",
            "password": "addison",
            "salt": "sld1yGtd",
            "md5": "ab54ac4c0be9480ae8fa5e9e2a5196a3",
            "sha1": "edcf2ce613cbdea349133c52dc2f3b83168dc51b",
            "sha256": "48df5229235ada28389b91e60a935e4f9b73eb4bdb855ef9258a1751f10bdc5d",
        },
        "dob": {"date": "1992-03-08T15:13:16.688Z", "age": 30},
        "registered": {"date": "2007-07-09T05:51:59.390Z", "age": 14},
        "phone": "(272) 790-0888",
        "cell": "(489) 330-2385",
        "id": {"name": "SSN", "value": "405-88-3636"},
        "picture": {
            "large": "https://randomuser.me/api/portraits/women/75.jpg",
            "medium": "https://randomuser.me/api/portraits/med/women/75.jpg",
            "thumbnail": "https://randomuser.me/api/portraits/thumb/women/75.jpg",
        },
        "nat": "US",
    }
    if uuid is ...:
        del doc["login"]["uuid"]
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = doc
        for key in parents:
            node = node[key]
        if value is ...:
            del node[leaf]
        else:
            node[leaf] = value
    return doc


def text(document) -> str:
    return document if isinstance(document, str) else json.dumps(document)


def raw_frame(spark, pages: list[list], ds: str = D2):
    """Raw rows: ``pages[p][i]`` is entry ``i + 1`` of page ``p + 1`` (a document, or the raw text if a str)."""
    from lakehouse_jobs.users import RAW_SCHEMA

    rows = [
        (dt.date.fromisoformat(ds), text(entry), PAGE1 if p == 1 else PAGE2, p, n, LOADED)
        for p, entries in enumerate(pages, start=1)
        for n, entry in enumerate(entries, start=1)
    ]
    return spark.createDataFrame(rows, RAW_SCHEMA)


def local(moment: dt.datetime) -> dt.datetime:
    """How PySpark hands back a TimestampType value: naive, in the Python process's time zone."""
    return dt.datetime.fromtimestamp(moment.timestamp())


# --- raw -------------------------------------------------------------------------------------------------


def test_split_results_keeps_each_entry_exactly_as_received():
    from lakehouse_jobs.users import split_results

    page = (
        '{ "info" : {"seed": "s", "page": 1},\n  "results" : [ {"a": [1, {"b": "x]}"}], "c": "\\"q\\""} ,\n'
        '   "oops" , null,42 , [ 1 ,2],\t{ }\n ] }\n'
    )
    assert split_results(page) == ['{"a": [1, {"b": "x]}"}], "c": "\\"q\\""}', '"oops"', "null", "42", "[ 1 ,2]", "{ }"]
    assert split_results('{"results": []}') == []
    for not_a_response in (None, "", "[]", '{"results": {}}', '{"info": {}}', '{"results": [1]', "<html>"):
        assert split_results(not_a_response) is None


def test_to_raw_one_row_per_entry(spark):
    from lakehouse_jobs.users import to_raw, with_entries

    pages = spark.createDataFrame(
        [
            ('{"results":[{"x":1},"y"],"info":{"page":1}}', PAGE1),
            ('{"results":[{"x":2}],"info":{"page":2}}', PAGE2),
            ('{"results":[{"x":3}],"info":{"page":7}}', "s3a://landing/elsewhere/users.json"),
            ("not json", "s3a://landing/users/ds=2026-11-20/page-0003.json"),
        ],
        "value string, _source_file string",
    )
    rows = to_raw(with_entries(pages), D2).collect()
    got = sorted((r["_source_file"], r["_page"], r["_record_number"], r["document"], r["ds"]) for r in rows)
    assert got == [
        ("s3a://landing/elsewhere/users.json", 7, 1, '{"x":3}', DAY2),  # no page in the name: info.page
        (PAGE1, 1, 1, '{"x":1}', DAY2),
        (PAGE1, 1, 2, '"y"', DAY2),
        (PAGE2, 2, 1, '{"x":2}', DAY2),
    ]
    assert with_entries(pages).where("entries IS NULL").count() == 1


# --- bronze ------------------------------------------------------------------------------------------------


def test_classify_every_kind_of_document(spark):
    from lakehouse_jobs.users import classify

    page1 = [
        user_doc(),  # 1 valid
        user_doc(),  # 2 the same document again
        user_doc(email="other@example.com"),  # 3 same user, other values: still a duplicate
        '{"login": {"uuid": "x", "password": "p"',  # 4 cut short
        '"user unavailable"',  # 5
        "null",  # 6
        "[1, 2]",  # 7
        '{"login": "abc"}',  # 8 an object, but not the shape of a user
        user_doc(uuid=...),  # 9 no uuid
        user_doc(uuid="  "),  # 10 blank uuid
        user_doc(UUID_C, email="no-at.example.com"),  # 11
        user_doc(UUID_C, email=...),  # 12
        user_doc(UUID_C, dob__date="1985-02-30T10:00:00.000Z"),  # 13 no such day
        user_doc(UUID_C, dob__date="2026-11-21T00:00:00.000Z"),  # 14 born after the run's day
        user_doc(UUID_C, dob__age="forty"),  # 15
        user_doc(UUID_C, dob__age=151),  # 16
        user_doc(UUID_C, location__coordinates__latitude="123.4567"),  # 17
        user_doc(UUID_C, location__coordinates__longitude="n/a"),  # 18
        user_doc(UUID_C, registered__date="yesterday"),  # 19
        user_doc(UUID_C, email="bad", dob__age=-1),  # 20 the first failing rule names the reason
        user_doc(UUID_C, location__coordinates=...),  # 21 valid: C's first valid document, no coordinates
        "{not json}",  # 22
    ]
    page2 = [
        user_doc(UUID_A.upper()),  # 1 the uuid is matched case-insensitively: a duplicate of page 1's
        user_doc(UUID_B, dob__age="0", location__postcode="SW1A 1AA"),  # 2 valid
        user_doc(UUID_B),  # 3
    ]
    classified = classify(raw_frame(spark, [page1, page2]))
    got = sorted((r["_page"], r["_record_number"], r["kind"], r["reason"]) for r in classified.collect())
    assert got == [
        (1, 1, "record", None),
        (1, 2, "duplicate", None),
        (1, 3, "duplicate", None),
        (1, 4, "reject", "malformed_json"),
        (1, 5, "reject", "not_an_object"),
        (1, 6, "reject", "not_an_object"),
        (1, 7, "reject", "not_an_object"),
        (1, 8, "reject", "unexpected_structure"),
        (1, 9, "reject", "missing_user_id"),
        (1, 10, "reject", "missing_user_id"),
        (1, 11, "reject", "bad_email"),
        (1, 12, "reject", "bad_email"),
        (1, 13, "reject", "bad_date_of_birth"),
        (1, 14, "reject", "bad_date_of_birth"),
        (1, 15, "reject", "bad_age"),
        (1, 16, "reject", "bad_age"),
        (1, 17, "reject", "bad_coordinates"),
        (1, 18, "reject", "bad_coordinates"),
        (1, 19, "reject", "bad_registered_date"),
        (1, 20, "reject", "bad_email"),
        (1, 21, "record", None),
        (1, 22, "reject", "malformed_json"),
        (2, 1, "duplicate", None),
        (2, 2, "record", None),
        (2, 3, "duplicate", None),
    ]


def test_the_engine_keeps_a_user_first_seen_on_a_refused_document(spark):
    """What bronze writes (an aggregation): per user the first *valid* document by page, then record number."""
    import random

    from lakehouse_jobs.users import LAYER

    rng = random.Random(5)
    uuids = [f"{i:08d}-2222-4333-8444-555555555555" for i in range(12)]
    pages = [[], []]
    for _ in range(80):  # (uuid, email): an email without "@" is refused
        pages[rng.randint(0, 1)].append((rng.choice(uuids), rng.choice(["a@example.com", "b@example.com", "bad"])))
    want, first_seen = {}, {}
    for p, entries in enumerate(pages, start=1):
        for n, (uuid, email) in enumerate(entries, start=1):
            first_seen.setdefault(uuid, email)
            if "@" in email and uuid not in want:
                want[uuid] = (p, n, email)
    assert any(first_seen[uuid] == "bad" for uuid in want)  # some user's first document is refused
    docs = [[user_doc(uuid, email=email) for uuid, email in entries] for entries in pages]
    records = LAYER.records(LAYER.parse(raw_frame(spark, docs))).collect()
    assert {r["user_id"]: (r["_page"], r["_record_number"], r["email"]) for r in records} == want


def test_accepted_users_are_typed(spark):
    from lakehouse_jobs.users import BRONZE_SCHEMA, accepted, classify

    documents = [
        user_doc(),
        user_doc(
            UUID_B.upper(),
            gender=" MALE ",
            email=" Max.Power@Example.COM ",
            nat="gb",
            name__title=" ",
            dob__age="0",
            location__postcode="SW1A 1AA",
            location__street__name=...,
            location__coordinates=...,
            registered=...,
            picture=...,
        ),
    ]
    rows = [r.asDict() for r in accepted(classify(raw_frame(spark, [documents]))).orderBy("_record_number").collect()]
    assert [list(r) for r in rows] == [BRONZE_SCHEMA.fieldNames()] * 2
    assert rows[0] == {
        "ds": DAY2,
        "user_id": UUID_A,
        "title": "Miss",
        "first_name": "Jennie",
        "last_name": "Nichols",
        "gender": "female",
        "email": "jennie.nichols@example.com",
        "username": "yellowpeacock117",
        "date_of_birth": dt.date(1992, 3, 8),
        "age": 30,
        "nationality": "US",
        "street": "8929 Valwood Pkwy",
        "city": "Billings",
        "state": "Michigan",
        "country": "United States",
        "postcode": "63104",
        "latitude": -69.8246,
        "longitude": 134.8719,
        "timezone_offset": "+9:30",
        "registered_at": local(dt.datetime(2007, 7, 9, 5, 51, 59, 390000, tzinfo=UTC)),
        "phone": "(272) 790-0888",
        "cell": "(489) 330-2385",
        "picture_url": "https://randomuser.me/api/portraits/women/75.jpg",
        "_source_file": PAGE1,
        "_page": 1,
        "_record_number": 1,
        "_loaded_at": local(LOADED),
    }
    second = rows[1]
    assert (second["user_id"], second["gender"], second["email"], second["nationality"]) == (
        UUID_B,
        "male",
        "max.power@example.com",
        "GB",
    )
    assert (second["title"], second["age"], second["postcode"], second["street"]) == (None, 0, "SW1A 1AA", "8929")
    assert (second["latitude"], second["longitude"], second["registered_at"], second["picture_url"]) == (None,) * 4


def test_rejected_records_carry_no_secret(spark):
    from lakehouse_jobs.users import classify, rejected

    secret_values = list(user_doc()["login"].values())[2:]
    page = [
        user_doc(email="bad"),
        json.dumps(user_doc(dob__age="x"), indent=2),
        '{"login": {"uuid": "u", "password": "addison", "salt" : "sld1yGtd", "md5": 5, "sha1": null, '
        '"sha256": {"k": "48df5229235ada28389b91e60a935e4f9b73eb4bdb855ef9258a1751f10bdc5d"}}, "name": "x"}',
        '{"login": {"sha256": "48df5229235ada28389b91e60a935e4f9b73eb4bdb855ef9258a1751f10bdc5d",'
        ' "password": "addison"',
        json.dumps([user_doc()["login"]]),
    ]
    rows = sorted(rejected(classify(raw_frame(spark, [page]))).collect(), key=lambda r: r["_record_number"])
    assert [r["reason"] for r in rows] == [
        "bad_email",
        "bad_age",
        "unexpected_structure",
        "malformed_json",
        "not_an_object",
    ]
    for row in rows:
        assert not any(secret in row["record"] for secret in secret_values), row["record"]
        assert not any(f'"{key}"' in row["record"] for key in SECRETS), row["record"]
    first = json.loads(rows[0]["record"])
    assert (first["email"], first["login"], first["location"]["postcode"]) == (
        "bad",
        {"uuid": UUID_A, "username": "yellowpeacock117"},
        "63104",
    )
    assert (rows[0]["user_id"], rows[2]["user_id"]) == (UUID_A, None)
    assert json.loads(rows[2]["record"]) == {"login": {"uuid": "u"}, "name": "x"}
    assert json.loads(rows[4]["record"]) == [{"uuid": UUID_A, "username": "yellowpeacock117"}]


def test_reconciliation_accounts_for_every_document(spark):
    from lakehouse_jobs.users import Reconciliation, classify

    classified = classify(raw_frame(spark, [[user_doc(), user_doc(), "[]", user_doc(UUID_B)]]))
    assert Reconciliation.of(classified, 4) == Reconciliation(raw=4, accepted=2, duplicates=1, rejects=1)


# --- gold --------------------------------------------------------------------------------------------------


def bronze_frame(spark, rows: list[tuple]):
    """Bronze rows from (ds, user_id, city, age, gender) tuples; the other values are those of ``user_doc``."""
    from lakehouse_jobs.users import BRONZE_SCHEMA, accepted, classify

    template = accepted(classify(raw_frame(spark, [[user_doc()]]))).first().asDict()
    records = []
    for n, (ds, user_id, city, age, gender) in enumerate(rows, start=1):
        values = {**template, "ds": dt.date.fromisoformat(ds), "user_id": user_id, "city": city, "age": age}
        values.update(gender=gender, _record_number=n)
        records.append(tuple(values[name] for name in BRONZE_SCHEMA.fieldNames()))
    return spark.createDataFrame(records, BRONZE_SCHEMA)


def gold_frame(spark, rows: list[tuple]):
    """gold.users rows from (ds, user_id, city, first_ds) tuples."""
    from lakehouse_jobs.users import USERS_SCHEMA

    bronze = {
        b["user_id"]: b.asDict()
        for b in bronze_frame(spark, [(ds, uid, city, 30, "female") for ds, uid, city, _ in rows]).collect()
    }
    records = [
        tuple({**bronze[uid], "first_ds": dt.date.fromisoformat(first)}[n] for n in USERS_SCHEMA.fieldNames())
        for _, uid, _, first in rows
    ]
    return spark.createDataFrame(records, USERS_SCHEMA)


def test_user_changes_and_changed_slices(spark):
    from lakehouse_jobs.users import changed_slices, user_changes

    bronze = bronze_frame(
        spark,
        [
            (D2, "new", "Oslo", 30, "female"),  # first seen in this run
            (D1, "seen", "Oslo", 30, "female"),
            (D2, "seen", "Rome", 30, "female"),  # seen again: moves from slice D1 to D2, with D2's values
            (D1, "same", "Oslo", 30, "female"),  # not in this run: left alone
            (D2, "later", "Oslo", 30, "female"),
            (D3, "later", "Lima", 30, "female"),  # a later slice already holds it: no change
            (D1, "back", "Kyiv", 30, "female"),  # slice D2 no longer holds it: back to its D1 version
        ],
    )
    gold = gold_frame(
        spark,
        [
            (D1, "seen", "Oslo", D1),
            (D1, "same", "Oslo", D1),
            (D3, "later", "Lima", D2),
            (D2, "gone", "Baku", D2),  # written by an earlier attempt of this run; no bronze slice holds it now
            (D2, "back", "Riga", D1),
        ],
    )
    changes = user_changes(bronze, gold, D2)
    got = sorted(
        (r["user_id"], r["_op"], r["ds"], r["city"], r["first_ds"], r["_previous_ds"]) for r in changes.collect()
    )
    assert got == [
        ("back", "upsert", DAY1, "Kyiv", DAY1, DAY2),
        ("gone", "delete", None, None, None, DAY2),
        ("new", "upsert", DAY2, "Oslo", DAY2, None),
        ("seen", "upsert", DAY2, "Rome", DAY1, DAY1),
    ]
    assert [tuple(r) for r in changed_slices(changes, D2).collect()] == [(DAY1, 2)]


def test_statistics_per_gender_and_all(spark):
    from lakehouse_jobs.users import statistics

    rows = [(D2, f"u{i}", "x", age, gender) for i, (age, gender) in enumerate([(30, "female"), (31, "female")])]
    rows += [(D2, "m", "x", 40, "male"), (D2, "n", "x", 50, None)]
    got = sorted(tuple(r) for r in statistics(bronze_frame(spark, rows), D2).collect())
    assert got == [
        (DAY2, "all", 4, 37.75),
        (DAY2, "female", 2, 30.5),
        (DAY2, "male", 1, 40.0),
        (DAY2, "unknown", 1, 50.0),
    ]
    # 9 / 8 = 1.125: rounded half up, not to even.
    eight = [(D2, f"v{i}", "x", 2 if i == 0 else 1, "male") for i in range(8)]
    assert {r["gender"]: r["average_age"] for r in statistics(bronze_frame(spark, eight), D2).collect()} == {
        "male": 1.13,
        "all": 1.13,
    }
    assert [tuple(r) for r in statistics(bronze_frame(spark, []), D2).collect()] == [(DAY2, "all", 0, None)]


# --- the jobs on landed pages, against figures computed from the generator ------------------------------------

RESULTS, PAGE_SIZE = 400, 100


def options():
    """A population small enough that a good share of D1's users come back on D2."""
    from devtools.samples.users import UserOptions

    return UserOptions(returning_ratio=0.25, population=300)


EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def parse_instant(value) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except (TypeError, ValueError):
        return None


def reject_reason(entry, ds: dt.date) -> str | None:
    """Why bronze must refuse a generated entry, by the issue's rules, written independently of the job."""
    if not isinstance(entry, dict):
        return "not_an_object"
    if not str(entry["login"].get("uuid") or "").strip():
        return "missing_user_id"
    if not EMAIL.match((entry.get("email") or "").strip()):
        return "bad_email"
    born = parse_instant(entry["dob"]["date"])
    if born is None or born.date() > ds:
        return "bad_date_of_birth"
    age = entry["dob"]["age"]
    if not isinstance(age, int) or not 0 <= age <= 150:
        return "bad_age"
    for axis, limit in (("latitude", 90), ("longitude", 180)):
        try:
            value = float(entry["location"]["coordinates"][axis])
        except ValueError:
            return "bad_coordinates"
        if abs(value) > limit:
            return "bad_coordinates"
    return None


def bronze_values(entry) -> dict:
    location, name = entry["location"], entry["name"]
    return {
        "user_id": entry["login"]["uuid"].strip().lower(),
        "title": name["title"],
        "first_name": name["first"],
        "last_name": name["last"],
        "gender": entry["gender"],
        "email": entry["email"].lower(),
        "username": entry["login"]["username"],
        "date_of_birth": dt.date.fromisoformat(entry["dob"]["date"][:10]),
        "age": entry["dob"]["age"],
        "nationality": entry["nat"],
        "street": f"{location['street']['number']} {location['street']['name']}",
        "city": location["city"],
        "state": location["state"],
        "country": location["country"],
        "postcode": str(location["postcode"]),
        "latitude": float(location["coordinates"]["latitude"]),
        "longitude": float(location["coordinates"]["longitude"]),
        "timezone_offset": location["timezone"]["offset"],
        "registered_at": local(parse_instant(entry["registered"]["date"])),
        "phone": entry["phone"],
        "cell": entry["cell"],
        "picture_url": entry["picture"]["large"],
    }


@functools.cache
def expected_slice(ds: str) -> dict:
    """What raw and bronze must hold for the run of ``ds`` (default seed), from the generator's documents."""
    from devtools.samples.users import users_page

    day = dt.date.fromisoformat(ds)
    seed, pages = f"lakehouse-{ds}", range(1, RESULTS // PAGE_SIZE + 1)
    entries = [e for page in pages for e in users_page(seed, page, PAGE_SIZE, options=options())]
    reasons, users, duplicates = Counter(), {}, 0
    for entry in entries:
        reason = reject_reason(entry, day)
        if reason:
            reasons[reason] += 1
        elif entry["login"]["uuid"].strip().lower() in users:
            duplicates += 1
        else:
            values = bronze_values(entry)
            users[values["user_id"]] = values
    secrets = {e["login"][k] for e in entries if isinstance(e, dict) for k in SECRETS[1:] if k in e["login"]}
    return {"entries": entries, "reasons": reasons, "users": users, "duplicates": duplicates, "secrets": secrets}


def expected_statistics(users: list[dict]) -> dict[str, tuple]:
    groups: dict[str, list[int]] = {"all": [u["age"] for u in users]}
    for user in users:
        groups.setdefault(user["gender"], []).append(user["age"])
    cent = Decimal("0.01")
    return {g: (len(a), float((Decimal(sum(a)) / len(a)).quantize(cent, ROUND_HALF_UP))) for g, a in groups.items()}


def rows(spark, table: str, ds: str | None = None, drop: tuple = ("_loaded_at", "recorded_at")) -> list[dict]:
    from lakehouse_jobs.iceberg import qualified

    df = spark.table(qualified(table))
    if ds:
        df = df.where(f"ds = DATE'{ds}'")
    return sorted(({k: v for k, v in r.asDict().items() if k not in drop} for r in df.collect()), key=repr)


def _remove_users_data(spark, s3) -> None:
    """Drop the users tables and remove the users rows of the shared ops/gold tables and the landed pages."""
    from lakehouse_jobs.iceberg import qualified

    for table in ("raw.users", "bronze.users", "bronze.users_rejects", "gold.users", "gold.user_statistics"):
        spark.sql(f"DROP TABLE IF EXISTS {qualified(table)}")
    shared = {"ops.extractions": "domain = 'users'", "gold.pipeline_runs": "domain = 'users'"}
    shared["ops.slice_changes"] = "table_name = 'gold.users'"
    for table, condition in shared.items():
        if spark.catalog.tableExists(qualified(table)):
            spark.sql(f"DELETE FROM {qualified(table)} WHERE {condition}")
    listing = s3.list_objects_v2(Bucket="landing", Prefix="users/").get("Contents", [])
    for item in listing:
        s3.delete_object(Bucket="landing", Key=item["Key"])


@pytest.fixture(scope="module", autouse=True)
def _no_users_data_around(spark, s3):
    """The catalog and S3 are shared by the test session (the users DAG's end-to-end run uses the same days):
    start from no users data, and leave none behind."""
    _remove_users_data(spark, s3)
    yield
    _remove_users_data(spark, s3)


@pytest.fixture(scope="module")
def pipeline(spark, lake_env, caplog_module):
    """Land and process D1, then D2 (its population members return), through every job."""
    from devtools.samples.users import serve_users
    from include.landing.users import extract_users
    from lakehouse_jobs import users

    results = {}
    with serve_users(options=options()) as url:
        for ds in (D1, D2):
            manifest = extract_users(url, ds, results=RESULTS, page_size=PAGE_SIZE, seed=None, nationalities=None)
            raw = users.run_raw(spark, ds)
            recon = users.run_bronze(spark, ds, max_reject_ratio=0.2)
            gold = users.run_gold(spark, ds)
            results[ds] = {"manifest": manifest, "raw": raw, "recon": recon, "gold": gold, "url": url}
    return results


@pytest.fixture(scope="module")
def caplog_module():
    """Every log record of the module's jobs (pytest's caplog is per test)."""
    import airflow.sdk  # noqa: F401 - Airflow configures logging on import: attach after it, not before

    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Collect(level=logging.INFO)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("py4j").setLevel(logging.WARNING)
    yield records
    root.removeHandler(handler)
    root.setLevel(previous)


def as_landed(entry):
    """A served entry as the land task stores it: its login secrets cut out, everything else as received."""
    if isinstance(entry, dict) and isinstance(entry.get("login"), dict):
        return {**entry, "login": {k: v for k, v in entry["login"].items() if k not in SECRETS}}
    return entry


@pytest.mark.parametrize("ds", [D1, D2])
def test_raw_holds_every_entry_as_received(spark, s3, pipeline, ds):
    expected = expected_slice(ds)
    got = rows(spark, "raw.users", ds)
    assert pipeline[ds]["raw"] == len(got) == RESULTS == pipeline[ds]["manifest"]["records"]
    by_position = {(r["_page"], r["_record_number"]): r for r in got}
    for index, entry in enumerate(expected["entries"]):
        page, number = divmod(index, PAGE_SIZE)
        row = by_position[(page + 1, number + 1)]
        assert row["document"] == json.dumps(as_landed(entry), ensure_ascii=False, separators=(",", ":"))
        assert row["_source_file"].endswith(f"/users/ds={ds}/page-{page + 1:04d}.json")
    # The documents are the landed bytes, sliced.
    body = s3.get_object(Bucket="landing", Key=f"users/ds={ds}/page-0001.json")["Body"].read().decode("utf-8")
    assert all(by_position[(1, n)]["document"] in body for n in range(1, PAGE_SIZE + 1))


@pytest.mark.parametrize("ds", [D1, D2])
def test_extraction_recorded(spark, pipeline, ds):
    (row,) = [r for r in rows(spark, "ops.extractions", ds) if r["domain"] == "users"]
    manifest = pipeline[ds]["manifest"]
    assert (row["records"], row["pages"], row["raw_rows"], row["bytes"]) == (RESULTS, 4, RESULTS, manifest["bytes"])
    assert (row["status"], row["source"], row["sha256"]) == ("succeeded", manifest["source"], manifest["sha256"])


@pytest.mark.parametrize("ds", [D1, D2])
def test_bronze_rejects_and_reconciliation(spark, pipeline, ds):
    expected = expected_slice(ds)
    bronze = rows(spark, "bronze.users", ds, drop=("_loaded_at", "_source_file", "_page", "_record_number", "ds"))
    assert bronze == sorted(expected["users"].values(), key=repr)
    rejects = rows(spark, "bronze.users_rejects", ds)
    assert Counter(r["reason"] for r in rejects) == expected["reasons"]
    recon = pipeline[ds]["recon"]
    assert (recon.raw, recon.accepted, recon.duplicates, recon.rejects) == (
        RESULTS,
        len(expected["users"]),
        expected["duplicates"],
        sum(expected["reasons"].values()),
    )
    assert recon.raw == recon.accepted + recon.duplicates + recon.rejects
    assert expected["duplicates"] > 0 and len(expected["reasons"]) >= 5
    (run,) = [r for r in rows(spark, "gold.pipeline_runs", ds) if r["domain"] == "users"]
    assert (run["raw_rows"], run["accepted"], run["duplicates"], run["rejects"], run["status"]) == (
        recon.raw,
        recon.accepted,
        recon.duplicates,
        recon.rejects,
        "published",
    )


def test_gold_users_merge_users_seen_again(spark, pipeline):
    day1, day2 = expected_slice(D1)["users"], expected_slice(D2)["users"]
    again = set(day1) & set(day2)
    assert len(again) >= 10  # population members came back on D2
    expected = {uid: {**v, "ds": DAY1, "first_ds": DAY1} for uid, v in day1.items()}
    expected.update({uid: {**v, "ds": DAY2, "first_ds": DAY1 if uid in day1 else DAY2} for uid, v in day2.items()})
    got = {r["user_id"]: r for r in rows(spark, "gold.users")}
    assert got == expected
    assert pipeline[D2]["gold"]["upserts"] == len(day2) and pipeline[D2]["gold"]["changed_slices"] == [D1]
    changes = [r for r in rows(spark, "ops.slice_changes") if r["table_name"] == "gold.users"]
    assert changes == [{"table_name": "gold.users", "ds": DAY2, "changed_ds": DAY1, "rows_out": len(again)}]


@pytest.mark.parametrize("ds", [D1, D2])
def test_user_statistics(spark, pipeline, ds):
    expected = expected_statistics(list(expected_slice(ds)["users"].values()))
    got = {r["gender"]: (r["users"], r["average_age"]) for r in rows(spark, "gold.user_statistics", ds)}
    assert got == expected
    assert set(got) == {"all", "female", "male"}


def test_no_secret_in_any_table_or_log(spark, pipeline, caplog_module):
    secrets = expected_slice(D1)["secrets"] | expected_slice(D2)["secrets"]
    assert len(secrets) > 1000
    for table in ("bronze.users", "bronze.users_rejects", "gold.users", "gold.user_statistics"):
        for row in rows(spark, table, drop=()):
            values = [str(v) for v in row.values() if v is not None]
            assert not any(secret in value for value in values for secret in secrets), (table, row)
            assert not any(f'"{key}"' in value for value in values for key in SECRETS), (table, row)
    # The land task cut them out, so raw holds none either (the served documents had over a thousand).
    raw_text = " ".join(r["document"] for r in rows(spark, "raw.users", D1) + rows(spark, "raw.users", D2))
    assert not any(secret in raw_text for secret in secrets)
    assert not any(f'"{key}":' in raw_text for key in SECRETS[1:])
    log_text = "\n".join(caplog_module)
    assert "raw.users ds=2026-11-19" in log_text  # the jobs' log lines were collected
    assert not any(secret in log_text for secret in secrets)


def test_running_every_job_again_changes_nothing(spark, pipeline):
    from lakehouse_jobs import users

    tables = (
        "raw.users", "bronze.users", "bronze.users_rejects", "gold.users", "gold.user_statistics",
        "ops.slice_changes", "ops.extractions", "gold.pipeline_runs",
    )  # fmt: skip
    before = {table: rows(spark, table) for table in tables}
    for ds in (D2, D1):  # a re-run of the latest day, then a backfill of the day before
        users.run_raw(spark, ds)
        users.run_bronze(spark, ds, max_reject_ratio=0.2)
        counts = users.run_gold(spark, ds)
        assert (counts["upserts"], counts["deletes"], counts["changed_slices"]) == (0, 0, [])
    assert {table: rows(spark, table) for table in tables} == before


def test_a_gold_run_whose_audit_fails_leaves_main_as_it_was(spark, pipeline, monkeypatch):
    from lakehouse_jobs import users, wap

    def snapshots():
        return {t: spark.sql(f"SELECT name, snapshot_id FROM lake.{t}.refs").collect() for t in users.GOLD_SCHEMAS}

    before, contents = snapshots(), {t: rows(spark, t) for t in users.GOLD_SCHEMAS}
    real = users.statistics
    monkeypatch.setattr(users, "statistics", lambda bronze, ds: real(bronze, ds).unionByName(real(bronze, ds)))
    branch = wap.branch_name("users", "gold", D2)
    with pytest.raises(wap.AuditFailed, match=rf"branch {branch} failed.*gold.user_statistics: \d+ repeated keys"):
        users.run_gold(spark, D2)
    after = snapshots()
    assert {t: [r for r in refs if r["name"] == "main"] for t, refs in after.items()} == {
        t: [r for r in refs if r["name"] == "main"] for t, refs in before.items()
    }
    assert branch in {r["name"] for r in after[users.STATISTICS]}  # kept for inspection
    assert {t: rows(spark, t) for t in users.GOLD_SCHEMAS} == contents
    monkeypatch.setattr(users, "statistics", real)
    users.run_gold(spark, D2)  # the fixed retry: nothing differs from main, the branches are dropped
    assert snapshots() == before


def test_reject_ratio_gate(spark, pipeline):
    from lakehouse_jobs import users
    from lakehouse_jobs.bronze import RejectRatioExceeded

    with pytest.raises(RejectRatioExceeded, match=r"users rejected .* > max_reject_ratio 0\.00%"):
        users.run_bronze(spark, D1, max_reject_ratio=0.0)
    (run,) = [r for r in rows(spark, "gold.pipeline_runs", D1) if r["domain"] == "users"]
    assert run["status"] == "rejected"
    assert len(rows(spark, "bronze.users", D1)) == len(expected_slice(D1)["users"])  # the slice stays as it was
    users.run_bronze(spark, D1, max_reject_ratio=0.2)
    (run,) = [r for r in rows(spark, "gold.pipeline_runs", D1) if r["domain"] == "users"]
    assert run["status"] == "published"


def test_raw_refuses_a_landing_without_manifest_or_with_a_wrong_count(spark, lake_env, s3):
    from devtools.samples.users import page_body
    from lakehouse_jobs import ops, users
    from lakehouse_jobs.iceberg import qualified

    prefix = f"users/ds={D3}/"
    s3.put_object(Bucket="landing", Key=f"{prefix}page-0001.json", Body=page_body("x", 1, 10))
    with pytest.raises(ops.ManifestError, match="no manifest"):
        users.run_raw(spark, D3)
    manifest = {f: None for f in ops.MANIFEST_FIELDS} | {"domain": "users", "ds": D3, "records": 11}
    s3.put_object(Bucket="landing", Key=f"{prefix}_manifest.json", Body=json.dumps(manifest).encode())
    with pytest.raises(ops.ManifestError, match="manifest says 11 records, the pages hold 10"):
        users.run_raw(spark, D3)
    s3.put_object(Bucket="landing", Key=f"{prefix}page-0002.json", Body=b"<html>")
    with pytest.raises(ops.ManifestError, match="1 landed files are not RandomUser responses"):
        users.run_raw(spark, D3)
    raw = qualified("raw.users")
    assert spark.table(raw).where(f"ds = DATE'{D3}'").count() == 0  # nothing written for a refused landing


def test_an_old_extractions_table_grows_the_new_columns(spark):
    from pyspark.sql import types as T

    from lakehouse_jobs.iceberg import ensure_table, merge_rows, qualified
    from lakehouse_jobs.ops import EXTRACTIONS_SCHEMA

    table = "ops.extractions_before_users"
    old = T.StructType([f for f in EXTRACTIONS_SCHEMA.fields if f.name not in ("records", "pages")])
    spark.sql(f"DROP TABLE IF EXISTS {qualified(table)}")
    ensure_table(spark, table, old)
    merge_rows(spark.createDataFrame([("tweets", DAY1) + (None,) * 11], old), table, old, keys=("domain", "ds"))
    assert spark.table(qualified(table)).columns == old.fieldNames()
    new_row = ("users", DAY2) + (None,) * 11 + (400, 4)
    merge_rows(spark.createDataFrame([new_row], EXTRACTIONS_SCHEMA), table, EXTRACTIONS_SCHEMA, keys=("domain", "ds"))
    grown = spark.table(qualified(table))
    assert grown.columns == EXTRACTIONS_SCHEMA.fieldNames()
    assert sorted((r["domain"], r["records"], r["pages"]) for r in grown.collect()) == [
        ("tweets", None, None),
        ("users", 400, 4),
    ]
    assert all(f.nullable for f in grown.schema.fields if f.name in ("records", "pages"))
    spark.sql(f"DROP TABLE {qualified(table)}")


def test_a_backfill_in_reverse_order_with_a_gap_gives_the_gold_of_a_clean_run_in_date_order(spark, pipeline):
    # After D1 and D2 (run in date order by the fixture), D7 runs before D5, and D6 never: every user's row is its
    # version of the latest day run that saw it, first seen on the earliest, whatever the order the days ran in.
    # Last in the module: it adds users to gold.users, which the tests above check.
    from devtools.samples.users import serve_users
    from include.landing.users import extract_users
    from lakehouse_jobs import users

    d5, d7 = "2026-11-23", "2026-11-25"
    with serve_users(options=options()) as url:
        for ds in (d7, d5):
            extract_users(url, ds, results=RESULTS, page_size=PAGE_SIZE, seed=None, nationalities=None)
            users.run_raw(spark, ds)
            users.run_bronze(spark, ds, max_reject_ratio=0.2)
            users.run_gold(spark, ds)
    expected: dict[str, dict] = {}
    for ds in sorted((D1, D2, d5, d7)):  # a clean run in date order, in plain Python
        day = dt.date.fromisoformat(ds)
        for uid, values in expected_slice(ds)["users"].items():
            first = expected[uid]["first_ds"] if uid in expected else day
            expected[uid] = {**values, "ds": day, "first_ds": first}
    seen = [set(expected_slice(ds)["users"]) for ds in (D1, D2, d5, d7)]
    assert len(seen[3] & (seen[0] | seen[1]) & seen[2]) >= 3  # users seen before, on D5 and on D7: the hard case
    assert {r["user_id"]: r for r in rows(spark, "gold.users")} == expected
    for ds in (d5, d7):
        got = {r["gender"]: (r["users"], r["average_age"]) for r in rows(spark, "gold.user_statistics", ds)}
        assert got == expected_statistics(list(expected_slice(ds)["users"].values()))

"""The users DAG end to end through Airflow (local Spark runner) against the local RandomUser-compatible API:
landing, ops.extractions, raw → bronze → gold, checked against figures computed in plain Python from the documents
the API serves; no password or hash past raw; a next-day run that sees users again updates them, not duplicates."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter, defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NEXT_DS = "2026-11-21"
NEXT_LOGICAL_DATE = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
SECRETS = ("password", "salt", "md5", "sha1", "sha256")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def arrow(catalog, table: str, ds: str | None = None):
    from pyiceberg.expressions import AlwaysTrue, EqualTo

    return catalog.load_table(table).scan(row_filter=EqualTo("ds", ds) if ds else AlwaysTrue()).to_arrow()


def served_entries(ds: str, results: int, page_size: int) -> list[tuple[int, int, object]]:
    """(page, position, entry) of every entry the API serves for the DAG's default seed of ``ds``."""
    from devtools.samples.users import users_page

    return [
        (page, position, entry)
        for page in range(1, results // page_size + 1)
        for position, entry in enumerate(users_page(f"lakehouse-{ds}", page, page_size), start=1)
    ]


def is_valid(entry, ds: str) -> bool:
    """The issue's rules for a usable user, written independently of the job."""
    if not isinstance(entry, dict):
        return False
    uuid = (entry.get("login") or {}).get("uuid")
    if not isinstance(uuid, str) or not uuid.strip():
        return False
    if not isinstance(entry.get("email"), str) or not EMAIL.match(entry["email"].strip()):
        return False
    try:
        born = dt.datetime.fromisoformat(entry["dob"]["date"].replace("Z", "+00:00")).date()
    except (KeyError, TypeError, ValueError):
        return False
    age = entry["dob"].get("age")
    if born > dt.date.fromisoformat(ds) or not isinstance(age, int) or not 0 <= age <= 150:
        return False
    coordinates = entry["location"]["coordinates"]
    try:
        lat, lon = float(coordinates["latitude"]), float(coordinates["longitude"])
    except (TypeError, ValueError):
        return False
    return -90 <= lat <= 90 and -180 <= lon <= 180


def expected_users(ds: str, results: int, page_size: int) -> tuple[dict[str, dict], Counter]:
    """The first valid document of each uuid (by page, position), and the count of each kind."""
    users: dict[str, dict] = {}
    kinds = Counter()
    for _, _, entry in served_entries(ds, results, page_size):
        if not is_valid(entry, ds):
            kinds["reject"] += 1
        elif entry["login"]["uuid"] in users:
            kinds["duplicate"] += 1
        else:
            users[entry["login"]["uuid"]] = entry
            kinds["record"] += 1
    return users, kinds


def secrets_of(ds: str, results: int, page_size: int) -> set[str]:
    values = set()
    for _, _, entry in served_entries(ds, results, page_size):
        if isinstance(entry, dict):
            values |= {str(entry["login"][k]) for k in SECRETS if entry.get("login", {}).get(k)}
    return values


def test_pages_land_and_the_extraction_is_recorded(users_run, s3, iceberg_catalog):
    keys = sorted(
        o["Key"] for o in s3.list_objects_v2(Bucket="landing", Prefix=f"users/ds={users_run.ds}/")["Contents"]
    )
    pages = users_run.results // users_run.page_size
    assert keys == [f"users/ds={users_run.ds}/_manifest.json"] + [
        f"users/ds={users_run.ds}/page-{p:04d}.json" for p in range(1, pages + 1)
    ]
    landed = b"".join(
        s3.get_object(Bucket="landing", Key=k)["Body"].read() for k in keys if not k.endswith("_manifest.json")
    )
    (row,) = [r for r in arrow(iceberg_catalog, "ops.extractions").to_pylist() if r["domain"] == "users"]
    assert (row["records"], row["pages"], row["bytes"], row["status"]) == (
        users_run.results,
        pages,
        len(landed),
        "succeeded",
    )
    assert arrow(iceberg_catalog, "raw.users", users_run.ds).num_rows == users_run.results


def test_bronze_and_gold_match_the_served_documents(users_run, iceberg_catalog):
    users, kinds = expected_users(users_run.ds, users_run.results, users_run.page_size)
    bronze = arrow(iceberg_catalog, "bronze.users", users_run.ds).to_pylist()
    assert {r["user_id"]: r["email"] for r in bronze} == {u: d["email"].strip() for u, d in users.items()}
    assert arrow(iceberg_catalog, "bronze.users_rejects", users_run.ds).num_rows == kinds["reject"]
    gold = {r["user_id"]: r for r in arrow(iceberg_catalog, "gold.users").to_pylist()}
    assert set(gold) == set(users)
    for user_id, doc in users.items():
        row = gold[user_id]
        assert (row["first_name"], row["last_name"], row["age"], row["nationality"]) == (
            doc["name"]["first"],
            doc["name"]["last"],
            doc["dob"]["age"],
            doc["nat"],
        )
        assert row["latitude"] == pytest.approx(float(doc["location"]["coordinates"]["latitude"]))
        assert row["ds"] == row["first_ds"] == dt.date.fromisoformat(users_run.ds)
    (run,) = [
        r for r in arrow(iceberg_catalog, "gold.pipeline_runs", users_run.ds).to_pylist() if r["domain"] == "users"
    ]
    assert (run["raw_rows"], run["accepted"], run["duplicates"], run["rejects"]) == (
        users_run.results,
        kinds["record"],
        kinds["duplicate"],
        kinds["reject"],
    )


def test_user_statistics_per_gender_and_all(users_run, iceberg_catalog):
    users, _ = expected_users(users_run.ds, users_run.results, users_run.page_size)
    ages = defaultdict(list)
    for doc in users.values():
        ages[doc["gender"]].append(doc["dob"]["age"])
        ages["all"].append(doc["dob"]["age"])
    expected = {
        gender: (len(values), float((Decimal(sum(values)) / len(values)).quantize(Decimal("0.01"), ROUND_HALF_UP)))
        for gender, values in ages.items()
    }
    rows = arrow(iceberg_catalog, "gold.user_statistics", users_run.ds).to_pylist()
    assert {r["gender"]: (r["users"], r["average_age"]) for r in rows} == expected


def test_no_password_or_hash_reaches_bronze_or_gold(users_run, iceberg_catalog):
    secrets = secrets_of(users_run.ds, users_run.results, users_run.page_size)
    assert secrets
    for table in ("bronze.users", "bronze.users_rejects", "gold.users", "gold.user_statistics"):
        arrow_table = arrow(iceberg_catalog, table)
        assert not {f.name for f in arrow_table.schema} & set(SECRETS), table
        text = json.dumps(arrow_table.to_pylist(), default=str)
        assert not [s for s in secrets if s in text], table


def secret_keys_left(document_text: str) -> set[str]:
    """The login secret keys a stored document still holds (none for a text that is not a user object)."""
    try:
        document = json.loads(document_text)
    except ValueError:
        return set()
    login = document.get("login") if isinstance(document, dict) else None
    return set(login) & set(SECRETS) if isinstance(login, dict) else set()


def test_no_password_or_hash_is_landed_or_kept_in_raw(users_run, s3, iceberg_catalog):
    """The secrets are cut out before landing: neither the landed pages nor raw.users hold them."""
    hashes = {s for s in secrets_of(users_run.ds, users_run.results, users_run.page_size) if len(s) >= 8}
    assert hashes
    prefix = f"users/ds={users_run.ds}/"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="landing", Prefix=prefix)["Contents"]]
    pages = [s3.get_object(Bucket="landing", Key=k)["Body"].read().decode() for k in keys if "page-" in k]
    assert len(pages) == users_run.results // users_run.page_size
    entries = [json.dumps(entry) for page in pages for entry in json.loads(page)["results"]]
    assert not [e for e in entries if secret_keys_left(e)]
    assert not [h for h in hashes if any(h in page for page in pages)]
    documents = [r["document"] for r in arrow(iceberg_catalog, "raw.users", users_run.ds).to_pylist()]
    assert len(documents) == users_run.results
    assert not [d for d in documents if d and secret_keys_left(d)]
    assert not [h for h in hashes if any(d and h in d for d in documents)]


def test_a_user_seen_again_is_updated_not_duplicated(users_run, iceberg_catalog):
    from airflow.dag_processing.dagbag import DagBag

    conf = {"base_url": users_run.base_url, "results": users_run.results, "page_size": users_run.page_size}
    dag = DagBag(dag_folder=str(ROOT / "dags" / "users.py")).dags["users"]
    run = dag.test(logical_date=NEXT_LOGICAL_DATE, run_conf=conf)
    assert run.state == "success", {ti.task_id: ti.state for ti in run.get_task_instances()}

    first, _ = expected_users(users_run.ds, users_run.results, users_run.page_size)
    second, _ = expected_users(NEXT_DS, users_run.results, users_run.page_size)
    again = set(first) & set(second)
    assert again, "the sample population should bring some users back"
    gold = {r["user_id"]: r for r in arrow(iceberg_catalog, "gold.users").to_pylist()}
    assert set(gold) == set(first) | set(second)  # one row per user
    day1, day2 = dt.date.fromisoformat(users_run.ds), dt.date.fromisoformat(NEXT_DS)
    for user_id, row in gold.items():
        assert row["ds"] == (day2 if user_id in second else day1), user_id
        assert row["first_ds"] == (day1 if user_id in first else day2), user_id
        if user_id in again:  # the later run's version: e.g. its new address
            assert row["city"] == second[user_id]["location"]["city"].strip()
    announced = next(ti for ti in run.get_task_instances() if ti.task_id == "announce_moved_slices")
    assert announced.xcom_pull(task_ids="announce_moved_slices") == [users_run.ds]

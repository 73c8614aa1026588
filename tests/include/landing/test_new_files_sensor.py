"""The new-files sensor and trigger on the moto S3 stand-in, with ops.processed_files in a throwaway Iceberg catalog."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid

import pytest

from include.landing.new_files import (
    LandedObject,
    NewFilesTrigger,
    NewLandedFilesSensor,
    Watermark,
    list_objects,
)

PREFIX = "trips/"
T0 = dt.datetime(2026, 11, 20, 12, 0, 0, tzinfo=dt.UTC)


# --- fixtures: S3 objects and processed versions ----------------------------------------------------


@pytest.fixture(scope="module")
def sensor_catalog_db(moto_endpoint):
    """A PostgreSQL database of its own for the Iceberg catalog, and the warehouse bucket on the moto server."""
    import boto3
    from botocore.exceptions import ClientError

    from devtools import local_stack

    client = boto3.client(
        "s3", endpoint_url=moto_endpoint, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    try:
        client.create_bucket(Bucket="lakehouse")
    except ClientError as exc:  # another module of the session may have created it
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    name = f"sensor_test_{uuid.uuid4().hex[:8]}"
    local_stack.recreate_database(name)
    yield name
    local_stack.drop_database(name)


@pytest.fixture
def catalog(landing_s3, moto_endpoint, sensor_catalog_db, monkeypatch):
    """PyIceberg on the throwaway catalog; the ``iceberg_catalog`` connection points at it. Emptied after the test."""
    from pyiceberg.catalog.sql import SqlCatalog

    connection = {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres"}
    monkeypatch.setenv("AIRFLOW_CONN_ICEBERG_CATALOG", json.dumps({**connection, "schema": sensor_catalog_db}))
    lake = SqlCatalog(
        "lake",
        uri=f"postgresql+psycopg2://postgres@127.0.0.1:5432/{sensor_catalog_db}",
        warehouse="s3://lakehouse/warehouse",
        **{
            "s3.endpoint": moto_endpoint,
            "s3.access-key-id": "test",
            "s3.secret-access-key": "test",
            "s3.region": "us-east-1",
        },
    )
    yield lake
    if lake.table_exists("ops.processed_files"):
        lake.purge_table("ops.processed_files")


def record_processed(catalog, rows: list[dict]) -> None:
    """Append ``ops.processed_files`` rows (as the Spark job writes them) with PyIceberg, in the test catalog only."""
    import pyarrow as pa

    from lakehouse_jobs.landed_files import PROCESSED_SCHEMA

    # The Spark job's own declaration of the table, in Arrow types (a Spark timestamp is Iceberg's timestamptz).
    arrow = {"string": pa.string(), "bigint": pa.int64(), "date": pa.date32(), "timestamp": pa.timestamp("us", "UTC")}
    schema = pa.schema(
        [pa.field(f.name, arrow[f.dataType.simpleString()], f.nullable) for f in PROCESSED_SCHEMA.fields]
    )
    catalog.create_namespace_if_not_exists("ops")
    table = catalog.create_table_if_not_exists("ops.processed_files", schema=schema)
    defaults = {"domain": "trips", "ds": dt.date(2026, 11, 20), "row_count": 1, "processed_at": T0}
    table.append(pa.Table.from_pylist([{**defaults, **row} for row in rows], schema=schema))


def put(s3, key: str, body: str) -> None:
    s3.put_object(Bucket="landing", Key=key, Body=body.encode())


def listed(s3, prefix: str = PREFIX) -> dict[str, dict]:
    """The objects under ``prefix`` as boto3 lists them."""
    return {o["Key"]: o for o in s3.list_objects_v2(Bucket="landing", Prefix=prefix).get("Contents", [])}


def as_pending(item: dict) -> dict:
    """The sensor's XCom entry for a listed object, built from boto3's own listing."""
    return {
        "path": f"s3a://landing/{item['Key']}",
        "key": item["Key"],
        "etag": item["ETag"].strip('"'),
        "size": item["Size"],
        "last_modified": item["LastModified"].astimezone(dt.UTC).isoformat(),
    }


def version(item: dict, **overrides) -> dict:
    """A processed-files row for a listed object."""
    return {"path": f"s3a://landing/{item['Key']}", "etag": item["ETag"].strip('"'), "size": item["Size"], **overrides}


def sensor(**kwargs) -> NewLandedFilesSensor:
    return NewLandedFilesSensor(task_id="wait_for_trips", domain="trips", prefix=PREFIX, **kwargs)


# --- the sensor --------------------------------------------------------------------------------------------------


def test_sensor_returns_the_files_not_processed_yet(landing_s3, catalog):
    for key in ("trips/a.csv", "trips/b.csv", "trips/2026/11/c.csv", "trips/_partial.csv", "trips/.tmp.csv"):
        put(landing_s3, key, f"{key}\n")
    put(landing_s3, "trips/readme.txt", "not data\n")
    put(landing_s3, "elsewhere/d.csv", "other prefix\n")
    objects = listed(landing_s3)
    record_processed(
        catalog,
        [
            version(objects["trips/a.csv"]),  # processed as it is: not pending
            version(objects["trips/b.csv"], etag="older-content"),  # processed, but changed since
            version(objects["trips/2026/11/c.csv"], domain="products"),  # another domain's bookkeeping
        ],
    )
    result = sensor().execute(context={})
    assert result == [as_pending(objects[k]) for k in ("trips/2026/11/c.csv", "trips/b.csv")]
    assert json.loads(json.dumps(result)) == result  # XCom-ready


def test_the_latest_processed_version_of_a_path_counts(landing_s3, catalog):
    put(landing_s3, "trips/back.csv", "content A\n")
    put(landing_s3, "trips/same.csv", "content A\n")
    objects = listed(landing_s3)
    later = T0 + dt.timedelta(hours=1)
    record_processed(
        catalog,
        [
            # back.csv: A, then B processed; now A is back: the job reads it again, so it is pending.
            version(objects["trips/back.csv"], processed_at=T0),
            version(objects["trips/back.csv"], etag="B", size=9, processed_at=later),
            # same.csv: B, then A processed; A is what lies there.
            version(objects["trips/same.csv"], etag="B", size=9, processed_at=T0),
            version(objects["trips/same.csv"], processed_at=later),
        ],
    )
    assert sensor().execute(context={}) == [as_pending(objects["trips/back.csv"])]


def test_every_file_is_pending_before_anything_was_processed(landing_s3, catalog):
    put(landing_s3, "trips/first.csv", "x\n")
    assert not catalog.table_exists("ops.processed_files")
    assert sensor().execute(context={}) == [as_pending(listed(landing_s3)["trips/first.csv"])]


def test_sensor_defers_when_nothing_is_pending(landing_s3, catalog):
    from airflow.sdk.exceptions import TaskDeferred

    for key in ("trips/a.csv", "trips/b.csv", "trips/deep/c.csv"):
        put(landing_s3, key, "x\n")
    objects = listed(landing_s3)
    record_processed(catalog, [version(o) for o in objects.values()])
    before = dt.datetime.now(dt.UTC)
    with pytest.raises(TaskDeferred) as deferred:
        sensor(poll_interval=30, timeout=600).execute(context={})
    after = dt.datetime.now(dt.UTC)
    assert deferred.value.method_name == "execute_complete"
    classpath, kwargs = deferred.value.trigger.serialize()
    assert classpath == "include.landing.new_files.NewFilesTrigger"
    seconds = {k: o["LastModified"].astimezone(dt.UTC).replace(microsecond=0) for k, o in objects.items()}
    watermark = max(seconds.values())
    deadline = dt.datetime.fromisoformat(kwargs.pop("deadline"))
    assert before + dt.timedelta(seconds=600) <= deadline <= after + dt.timedelta(seconds=600)
    assert kwargs == {
        "bucket": "landing",
        "prefix": PREFIX,
        "suffix": ".csv",
        "watermark": watermark.isoformat(),
        "keys_at_watermark": sorted(k for k, s in seconds.items() if s == watermark),
        "count_at_watermark": 3,
        "poll_interval": 30,
        "conn_id": "lakehouse_s3",
    }
    # The trigger enforces the deadline; the defer timeout is only a backstop, later.
    assert deferred.value.timeout > dt.timedelta(seconds=600)


def test_resuming_defers_again_succeeds_or_times_out(landing_s3, catalog):
    from airflow.sdk.exceptions import AirflowSensorTimeout, TaskDeferred

    put(landing_s3, "trips/a.csv", "x\n")
    record_processed(catalog, [version(listed(landing_s3)["trips/a.csv"])])
    deadline = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    woken = {"status": "new_files", "keys": ["trips/a.csv"], "deadline": deadline}
    # Woken by a re-drop of the same bytes: nothing to do, wait again until the same deadline.
    put(landing_s3, "trips/a.csv", "x\n")
    with pytest.raises(TaskDeferred) as deferred:
        sensor().execute_complete(context={}, event=woken)
    assert deferred.value.trigger.serialize()[1]["deadline"] == deadline
    put(landing_s3, "trips/b.csv", "y\n")
    assert sensor().execute_complete(context={}, event=woken) == [as_pending(listed(landing_s3)["trips/b.csv"])]
    with pytest.raises(AirflowSensorTimeout, match=r"no new \.csv file for trips under s3://landing/trips/"):
        sensor().execute_complete(context={}, event={"status": "timeout", "keys": [], "deadline": deadline})


def test_a_deadline_passed_while_resuming_times_out(landing_s3, catalog):
    from airflow.sdk.exceptions import AirflowSensorTimeout

    put(landing_s3, "trips/a.csv", "x\n")
    record_processed(catalog, [version(listed(landing_s3)["trips/a.csv"])])
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).isoformat()
    with pytest.raises(AirflowSensorTimeout, match="sensor timeout of 60s"):
        sensor(timeout=60).execute_complete(context={}, event={"status": "new_files", "keys": [], "deadline": past})


# --- the trigger --------------------------------------------------------------------------------------------------


def trigger_after(s3, **kwargs) -> NewFilesTrigger:
    """The trigger the sensor would defer to after listing the prefix now."""
    seen = Watermark.of(list_objects(s3, "landing", PREFIX, ".csv"))
    return NewFilesTrigger(
        bucket="landing",
        prefix=PREFIX,
        watermark=seen.at.isoformat() if seen.at else None,
        keys_at_watermark=seen.keys,
        count_at_watermark=seen.count,
        **kwargs,
    )


def first_event(trigger: NewFilesTrigger):
    async def run():
        return await anext(trigger.run())

    return asyncio.run(run())


def test_trigger_fires_on_a_new_file(landing_s3):
    put(landing_s3, "trips/a.csv", "x\n")
    trigger = trigger_after(landing_s3)
    put(landing_s3, "trips/sub/b.csv", "y\n")
    put(landing_s3, "trips/_c.csv", "in flight\n")
    event = first_event(trigger)
    assert event.payload == {"status": "new_files", "keys": ["trips/sub/b.csv"], "deadline": None}


def test_trigger_fires_on_the_first_file_of_an_empty_prefix(landing_s3):
    trigger = trigger_after(landing_s3)
    assert trigger.watermark is None
    put(landing_s3, "trips/a.csv", "x\n")
    assert first_event(trigger).payload["keys"] == ["trips/a.csv"]


def test_trigger_does_not_fire_on_files_already_listed(landing_s3):
    put(landing_s3, "trips/a.csv", "x\n")
    put(landing_s3, "trips/b.csv", "y\n")
    trigger = trigger_after(landing_s3)
    assert asyncio.run(trigger.poll_once()) is None


def test_trigger_fires_on_a_new_key_in_the_watermark_second(landing_s3):
    """Listed at the very second ``b`` landed, but before it: ``b`` is new although it is not later."""
    put(landing_s3, "trips/a.csv", "x\n")
    put(landing_s3, "trips/b.csv", "y\n")
    seconds = {k: o["LastModified"].astimezone(dt.UTC).replace(microsecond=0) for k, o in listed(landing_s3).items()}
    at = seconds["trips/b.csv"]
    before_b = [k for k, s in seconds.items() if s == at and k != "trips/b.csv"]
    trigger = NewFilesTrigger(
        bucket="landing", prefix=PREFIX, watermark=at.isoformat(), keys_at_watermark=before_b, count_at_watermark=1
    )
    assert asyncio.run(trigger.poll_once()) == ["trips/b.csv"]
    seen_both = NewFilesTrigger(
        bucket="landing",
        prefix=PREFIX,
        watermark=at.isoformat(),
        keys_at_watermark=[*before_b, "trips/b.csv"],
        count_at_watermark=2,
    )
    assert asyncio.run(seen_both.poll_once()) is None


def test_trigger_fires_when_the_count_up_to_the_watermark_changes(landing_s3):
    put(landing_s3, "trips/a.csv", "x\n")
    put(landing_s3, "trips/b.csv", "y\n")
    trigger = trigger_after(landing_s3)
    landing_s3.delete_object(Bucket="landing", Key="trips/a.csv")
    assert first_event(trigger).payload == {"status": "new_files", "keys": [], "deadline": None}


def test_trigger_times_out_at_its_deadline(landing_s3):
    put(landing_s3, "trips/a.csv", "x\n")
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).isoformat()
    event = first_event(trigger_after(landing_s3, deadline=past))
    assert event.payload == {"status": "timeout", "keys": [], "deadline": past}


def test_trigger_serialises_to_what_rebuilds_it():
    from airflow.sdk._shared.module_loading import import_string

    trigger = NewFilesTrigger(
        bucket="landing",
        prefix=PREFIX,
        watermark=T0.isoformat(),
        keys_at_watermark=["trips/a.csv"],
        count_at_watermark=4,
        poll_interval=5.0,
        deadline=(T0 + dt.timedelta(hours=1)).isoformat(),
        conn_id="other_s3",
    )
    classpath, kwargs = trigger.serialize()
    assert json.loads(json.dumps(kwargs)) == kwargs
    rebuilt = import_string(classpath)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)


def test_watermark_works_to_the_second():
    def obj(key: str, at: dt.datetime) -> LandedObject:
        return LandedObject(key, "e", 1, at)

    listed_then = [obj("a", T0 - dt.timedelta(minutes=5)), obj("b", T0 + dt.timedelta(milliseconds=250))]
    seen = Watermark.of(listed_then)
    assert seen == Watermark(T0, ("b",), 2)
    now = [
        *listed_then,
        obj("c", T0 + dt.timedelta(milliseconds=900)),  # same second as the watermark, unknown key
        obj("d", T0 + dt.timedelta(seconds=1)),
        obj("e", T0 - dt.timedelta(seconds=1)),  # older: only the count reveals it
    ]
    assert [o.key for o in seen.new_objects(now)] == ["c", "d"]
    assert seen.count_changed(now) and not seen.count_changed(listed_then)
    assert Watermark.of([]).new_objects(now) == now


# --- under dag.test() ---------------------------------------------------------------------------------------------


def one_sensor_dag(dag_id: str, **sensor_kwargs):
    """A one-sensor DAG, registered in the metadata database (dag.test() only syncs the DAGs of the dags folder)."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.collection import update_dag_parsing_results_in_db
    from airflow.sdk import DAG
    from airflow.serialization.serialized_objects import LazyDeserializedDAG
    from airflow.utils.session import create_session

    with DAG(f"{dag_id}_{uuid.uuid4().hex[:6]}", schedule=None, start_date=T0, catchup=False) as dag:
        sensor(**sensor_kwargs)
    with create_session() as session:
        DagBundlesManager().sync_bundles_to_db(session=session)
        session.commit()  # the bundle row first: the DAG row refers to it
        update_dag_parsing_results_in_db(
            "dags-folder", None, [LazyDeserializedDAG.from_dag(dag)], {}, None, set(), session=session
        )
    return dag


def test_the_sensor_defers_and_resumes_under_dag_test(landing_s3, catalog, airflow_db, monkeypatch):
    """dag.test() runs the trigger inline; a file landing while it waits ends the wait with that file as XCom."""
    put(landing_s3, "trips/old.csv", "x\n")
    record_processed(catalog, [version(listed(landing_s3)["trips/old.csv"])])
    real_list = NewFilesTrigger._list

    def a_file_lands_first(self):
        put(landing_s3, "trips/new.csv", "y\n")
        return real_list(self)

    monkeypatch.setattr(NewFilesTrigger, "_list", a_file_lands_first)
    run = one_sensor_dag("new_files_sensor", poll_interval=1, timeout=300).test(logical_date=T0)
    (ti,) = run.get_task_instances()
    assert ti.state == "success"
    assert ti.xcom_pull(task_ids=ti.task_id) == [as_pending(listed(landing_s3)["trips/new.csv"])]


def test_the_sensor_times_out_under_dag_test(landing_s3, catalog, airflow_db):
    put(landing_s3, "trips/old.csv", "x\n")
    record_processed(catalog, [version(listed(landing_s3)["trips/old.csv"])])
    run = one_sensor_dag("new_files_timeout", poll_interval=1, timeout=0, retries=0).test(logical_date=T0)
    (ti,) = run.get_task_instances()
    assert ti.state == "failed"

"""Wait for files to land without holding a worker slot: a deferrable sensor and the trigger it defers to."""

# What is pending is decided exactly as the Spark job decides what to read (lakehouse_jobs.landed_files): the
# landed `*<suffix>` objects under the prefix (names starting with `_` or `.` are not data) whose (ETag, size)
# differ from the latest version of their path recorded in `ops.processed_files` for the domain. A path is
# `s3a://<bucket>/<key>` and an ETag has no quotes, as the Spark job records them.
#
# While nothing is pending the sensor defers to `NewFilesTrigger`, which lists the prefix in the triggerer every
# `poll_interval` seconds. S3's LastModified has a resolution of one second, so the trigger gets the watermark
# (the latest LastModified the sensor saw, to the second) and the keys it saw in that second: an object is new
# when it is later than the watermark, or in the watermark's second under another key. The trigger also fires
# when the number of objects up to the watermark changes: AWS stamps a multipart upload with the time it began,
# so a large file finishing late can carry an older LastModified. Any wake-up is only a hint: the sensor lists
# again, and defers again when nothing is pending (a re-drop of identical bytes, say).
#
# The sensor's `timeout` is enforced by the trigger itself (it fires a "timeout" event at the deadline), because
# `dag.test()` runs a deferred task's trigger inline until its first event and ignores the defer timeout; the
# defer timeout is set a little later as a backstop for a triggerer that is down.

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import urlsplit

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowSensorTimeout
from airflow.triggers.base import BaseTrigger, TriggerEvent

PROCESSED_TABLE = "ops.processed_files"
NEW_FILES, TIMEOUT = "new_files", "timeout"


@dataclass(frozen=True)
class LandedObject:
    """An object under the prefix: its key, ETag (no quotes), size and LastModified (UTC)."""

    key: str
    etag: str
    size: int
    last_modified: dt.datetime

    def path(self, bucket: str) -> str:
        """The path the Spark job lists and records for this object."""
        return f"s3a://{bucket}/{self.key}"


def split_location(prefix: str, bucket: str) -> tuple[str, str]:
    """(bucket, key prefix) of ``prefix``: a key prefix in ``bucket`` (``trips/``) or a URI (``s3a://landing/trips/``)."""
    if "://" in prefix:
        parts = urlsplit(prefix)
        return parts.netloc, parts.path.lstrip("/")
    return bucket, prefix.lstrip("/")


def is_landed_name(key: str, suffix: str) -> bool:
    """A data file: its name ends with ``suffix`` and does not start with ``_`` or ``.`` (as the Spark job reads)."""
    name = key.rsplit("/", 1)[-1]
    return name.endswith(suffix) and not name.startswith(("_", "."))


def list_objects(client: Any, bucket: str, prefix: str, suffix: str) -> list[LandedObject]:
    """The data files under ``prefix`` (recursively), by key."""
    found = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if is_landed_name(item["Key"], suffix):
                modified = item["LastModified"].astimezone(dt.UTC)
                found.append(LandedObject(item["Key"], item["ETag"].strip('"'), int(item["Size"]), modified))
    return sorted(found, key=lambda o: o.key)


def latest_versions(rows: Iterable[Mapping[str, Any]]) -> dict[str, tuple[str, int]]:
    """``ops.processed_files`` rows of one domain -> path: (etag, size) of its latest processed version."""
    latest: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        seen = latest.get(row["path"])
        if seen is None or row["processed_at"] > seen["processed_at"]:
            latest[row["path"]] = row
    return {path: (row["etag"], row["size"]) for path, row in latest.items()}


def processed_versions(domain: str, catalog: Any) -> dict[str, tuple[str, int]]:
    """The latest processed version of each path of ``domain``; empty while ``ops.processed_files`` does not exist."""
    from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError
    from pyiceberg.expressions import EqualTo

    try:
        table = catalog.load_table(PROCESSED_TABLE)
    except (NoSuchTableError, NoSuchNamespaceError):
        return {}
    scan = table.scan(row_filter=EqualTo("domain", domain), selected_fields=("path", "etag", "size", "processed_at"))
    return latest_versions(scan.to_arrow().to_pylist())


def pending_files(
    objects: Iterable[LandedObject], processed: Mapping[str, tuple[str, int]], bucket: str
) -> list[dict[str, Any]]:
    """The objects whose (ETag, size) is not the latest processed version of their path, as XCom-ready dicts."""
    pending = []
    for obj in objects:
        path = obj.path(bucket)
        if processed.get(path) != (obj.etag, obj.size):
            pending.append(
                {
                    "path": path,
                    "key": obj.key,
                    "etag": obj.etag,
                    "size": obj.size,
                    "last_modified": obj.last_modified.isoformat(),
                }
            )
    return sorted(pending, key=lambda f: f["path"])


def _second(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(microsecond=0)


@dataclass(frozen=True)
class Watermark:
    """What the sensor saw last: the latest LastModified (to the second), the keys in that second, the object count.

    An empty listing has no watermark: then any object is new.
    """

    at: dt.datetime | None
    keys: tuple[str, ...]
    count: int

    @classmethod
    def of(cls, objects: Sequence[LandedObject]) -> Watermark:
        if not objects:
            return cls(None, (), 0)
        at = max(_second(o.last_modified) for o in objects)
        return cls(at, tuple(sorted(o.key for o in objects if _second(o.last_modified) == at)), len(objects))

    def new_objects(self, objects: Iterable[LandedObject]) -> list[LandedObject]:
        """The objects the watermark does not account for (later, or in its second under another key)."""
        if self.at is None:
            return list(objects)
        known = set(self.keys)
        return [
            o
            for o in objects
            if _second(o.last_modified) > self.at or (_second(o.last_modified) == self.at and o.key not in known)
        ]

    def count_changed(self, objects: Iterable[LandedObject]) -> bool:
        """The number of objects up to the watermark differs from what the sensor saw (late multipart, deletion)."""
        if self.at is None:
            return False
        return sum(1 for o in objects if _second(o.last_modified) <= self.at) != self.count


class NewFilesTrigger(BaseTrigger):
    """Fires when an object not accounted for by the watermark lands under the prefix, or at the deadline.

    Args:
        bucket: the landing bucket.
        prefix: key prefix to list (recursively).
        suffix: file name ending of the data files.
        watermark: ISO-8601 LastModified (to the second) of the latest object seen; None when none was seen.
        keys_at_watermark: the keys seen in the watermark's second.
        count_at_watermark: the number of objects seen (all at or before the watermark).
        poll_interval: seconds between listings.
        deadline: ISO-8601 time at which to give up with a ``timeout`` event; None waits forever.
        conn_id: Airflow connection of the S3 store.

    Events: ``{"status": "new_files", "keys": [...], "deadline": ...}`` or ``{"status": "timeout", ...}``.
    """

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str,
        suffix: str = ".csv",
        watermark: str | None = None,
        keys_at_watermark: Sequence[str] = (),
        count_at_watermark: int = 0,
        poll_interval: float = 60.0,
        deadline: str | None = None,
        conn_id: str = "lakehouse_s3",
    ) -> None:
        super().__init__()
        self.bucket, self.prefix, self.suffix = bucket, prefix, suffix
        self.watermark = watermark
        self.keys_at_watermark = list(keys_at_watermark)
        self.count_at_watermark = count_at_watermark
        self.poll_interval = poll_interval
        self.deadline = deadline
        self.conn_id = conn_id
        self._client: Any = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "bucket": self.bucket,
                "prefix": self.prefix,
                "suffix": self.suffix,
                "watermark": self.watermark,
                "keys_at_watermark": list(self.keys_at_watermark),
                "count_at_watermark": self.count_at_watermark,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "conn_id": self.conn_id,
            },
        )

    @property
    def seen(self) -> Watermark:
        at = dt.datetime.fromisoformat(self.watermark) if self.watermark else None
        return Watermark(at, tuple(self.keys_at_watermark), self.count_at_watermark)

    def _list(self) -> list[LandedObject]:
        # Runs in a worker thread: boto3 and the connection lookup are blocking calls.
        if self._client is None:
            from include.landing.s3 import s3_client

            self._client = s3_client(self.conn_id)
        return list_objects(self._client, self.bucket, self.prefix, self.suffix)

    async def poll_once(self) -> list[str] | None:
        """List the prefix once: the keys of the new objects, ``[]`` when the count alone changed, None if nothing."""
        objects = await asyncio.to_thread(self._list)
        new = self.seen.new_objects(objects)
        if new:
            return sorted(o.key for o in new)
        return [] if self.seen.count_changed(objects) else None

    def _remaining(self) -> float | None:
        if not self.deadline:
            return None
        deadline = dt.datetime.fromisoformat(self.deadline)
        return (deadline - dt.datetime.now(dt.UTC)).total_seconds()

    async def run(self) -> AsyncIterator[TriggerEvent]:
        location = f"s3://{self.bucket}/{self.prefix}"
        while True:
            keys = await self.poll_once()
            if keys is not None:
                self.log.info("new objects under %s: %s", location, keys or "(count changed)")
                yield TriggerEvent({"status": NEW_FILES, "keys": keys, "deadline": self.deadline})
                return
            remaining = self._remaining()
            if remaining is not None and remaining <= 0:
                yield TriggerEvent({"status": TIMEOUT, "keys": [], "deadline": self.deadline})
                return
            await asyncio.sleep(self.poll_interval if remaining is None else min(self.poll_interval, remaining))


class NewLandedFilesSensor(BaseSensorOperator):
    """Succeed with the files a domain has not processed yet; defer (no worker slot) while there are none.

    Args:
        domain: the domain whose versions in ``ops.processed_files`` count as processed, e.g. ``trips``.
        prefix: key prefix in ``bucket`` (``trips/``) or a URI (``s3a://landing/trips/``); templated.
        bucket: the landing bucket (default: the ``LAKEHOUSE_LANDING_BUCKET`` setting, ``landing``).
        suffix: file name ending of the data files.
        poll_interval: seconds between listings while deferred.
        timeout: seconds to wait for a file before failing (or skipping, with ``soft_fail``).
        s3_conn_id: Airflow connection of the S3 store (default from settings, ``lakehouse_s3``).
        catalog_conn_id: Airflow connection of the Iceberg catalog database (default ``iceberg_catalog``).
        deferrable: False polls in the worker instead (``mode`` ``poke`` or ``reschedule``).

    Returns (XCom ``return_value``): the pending files, by path: ``[{"path": "s3a://landing/trips/x.csv",
    "key": "trips/x.csv", "etag": "...", "size": 123, "last_modified": "2026-11-20T06:00:00+00:00"}, ...]``.
    """

    template_fields: Sequence[str] = ("domain", "prefix", "bucket")
    ui_color = "#e8f4ea"

    def __init__(
        self,
        *,
        domain: str,
        prefix: str,
        bucket: str | None = None,
        suffix: str = ".csv",
        poll_interval: float = 60.0,
        timeout: float = 24 * 60 * 60,
        s3_conn_id: str | None = None,
        catalog_conn_id: str | None = None,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poll_interval, timeout=timeout, **kwargs)
        self.domain, self.prefix, self.bucket, self.suffix = domain, prefix, bucket, suffix
        self.poll_interval = poll_interval
        self.s3_conn_id, self.catalog_conn_id = s3_conn_id, catalog_conn_id
        self.deferrable = deferrable

    def _location(self) -> tuple[str, str]:
        from include.settings import load_settings

        return split_location(self.prefix, self.bucket or load_settings().landing_bucket)

    def _s3_conn_id(self) -> str:
        from include.settings import load_settings

        return self.s3_conn_id or load_settings().s3_conn_id

    def check(self) -> tuple[list[dict[str, Any]], list[LandedObject]]:
        """(pending files, every data file) under the prefix now."""
        from include.landing.s3 import s3_client
        from include.serving.source import load_catalog

        bucket, prefix = self._location()
        objects = list_objects(s3_client(self._s3_conn_id()), bucket, prefix, self.suffix)
        processed = processed_versions(self.domain, load_catalog(self.catalog_conn_id, self._s3_conn_id()))
        pending = pending_files(objects, processed, bucket)
        self.log.info(
            "%d %s files under s3://%s/%s, %d not processed by %s",
            *(len(objects), self.suffix, bucket, prefix, len(pending), self.domain),
        )
        return pending, objects

    def poke(self, context: Any) -> PokeReturnValue:
        pending, _ = self.check()
        return PokeReturnValue(bool(pending), pending)

    def execute(self, context: Any) -> list[dict[str, Any]] | None:
        if not self.deferrable:
            return super().execute(context)
        pending, objects = self.check()
        if pending:
            return pending
        deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.timeout)
        self._defer(objects, deadline)

    def execute_complete(self, context: Any, event: Mapping[str, Any] | None = None, **kwargs: Any) -> list[dict]:
        """Resume after the trigger fired: succeed with the pending files, fail at the deadline, else defer again.

        Everything needed is in ``event``: ``dag.test()`` passes the event alone, not the defer kwargs.
        """
        event = event or {}
        deadline = dt.datetime.fromisoformat(event["deadline"]) if event.get("deadline") else None
        if event.get("status") == TIMEOUT:
            self._timed_out()
        pending, objects = self.check()
        if pending:
            return pending
        if deadline is not None and deadline <= dt.datetime.now(dt.UTC):
            self._timed_out()
        self._defer(objects, deadline)

    def _timed_out(self) -> NoReturn:
        bucket, prefix = self._location()
        raise AirflowSensorTimeout(
            f"no new {self.suffix} file for {self.domain} under s3://{bucket}/{prefix} within the sensor timeout "
            f"of {self.timeout:.0f}s (every landed file is already in {PROCESSED_TABLE})"
        )

    def _defer(self, objects: Sequence[LandedObject], deadline: dt.datetime | None) -> NoReturn:
        bucket, prefix = self._location()
        seen = Watermark.of(objects)
        trigger = NewFilesTrigger(
            bucket=bucket,
            prefix=prefix,
            suffix=self.suffix,
            watermark=seen.at.isoformat() if seen.at else None,
            keys_at_watermark=seen.keys,
            count_at_watermark=seen.count,
            poll_interval=self.poll_interval,
            deadline=deadline.isoformat() if deadline else None,
            conn_id=self._s3_conn_id(),
        )
        backstop = None
        if deadline is not None:
            left = (deadline - dt.datetime.now(dt.UTC)).total_seconds()
            backstop = dt.timedelta(seconds=max(left, 0) + self.poll_interval + 60)
        self.log.info("nothing pending; deferring until a file lands under s3://%s/%s", bucket, prefix)
        self.defer(trigger=trigger, method_name="execute_complete", timeout=backstop)

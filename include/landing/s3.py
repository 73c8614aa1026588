"""S3 helpers for the landing bucket: a client from the Airflow connection, verified multipart upload, small JSON."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

PART_SIZE = 64 * 1024 * 1024


class UploadError(RuntimeError):
    """The object stored in S3 does not match the local file."""


def s3_client(conn_id: str = "lakehouse_s3") -> Any:
    """Build a boto3 S3 client from an Airflow connection, resolved now (call it inside a task, not at parse time).

    The connection's login and password are the access and secret keys; its extra may carry `endpoint_url`
    (MinIO or any S3-compatible server, addressed path-style) and `region_name`.

    Args:
        conn_id: Airflow connection id, of type `aws`.

    Returns:
        A `botocore` S3 client.
    """
    import boto3
    from airflow.sdk import BaseHook
    from botocore.config import Config

    conn = BaseHook.get_connection(conn_id)
    extra = conn.extra_dejson or {}
    endpoint_url = extra.get("endpoint_url") or None
    region = extra.get("region_name") or extra.get("region") or "us-east-1"
    # MinIO serves buckets under the path unless a domain is configured; path style works everywhere.
    config = Config(
        s3={"addressing_style": "path" if endpoint_url else "auto"},
        retries={"max_attempts": 5, "mode": "standard"},
    )
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=conn.login or None,
        aws_secret_access_key=conn.password or None,
        config=config,
    )


def upload_file(client: Any, path: str | os.PathLike[str], bucket: str, key: str, *, part_size: int = PART_SIZE) -> int:
    """Upload a local file, multipart above `part_size`, streaming from disk, then check the stored size.

    Args:
        client: A boto3 S3 client.
        path: Local file.
        bucket: Destination bucket.
        key: Destination key.
        part_size: Multipart threshold and part size in bytes (S3 needs at least 5 MiB).

    Returns:
        The size of the stored object in bytes.

    Raises:
        UploadError: If the stored object's size differs from the local file's.
    """
    from boto3.s3.transfer import TransferConfig

    source = Path(path)
    size = source.stat().st_size
    config = TransferConfig(multipart_threshold=part_size, multipart_chunksize=part_size, max_concurrency=4)
    logger.info("uploading %s (%d bytes) to s3://%s/%s", source, size, bucket, key)
    progress = _UploadProgress(size)
    client.upload_file(str(source), bucket, key, Config=config, Callback=progress)
    stored = client.head_object(Bucket=bucket, Key=key)["ContentLength"]
    if stored != size:
        raise UploadError(f"s3://{bucket}/{key} holds {stored} bytes, local file {source} has {size}")
    logger.info("uploaded s3://%s/%s (%d bytes)", bucket, key, stored)
    return stored


def put_json(client: Any, bucket: str, key: str, document: Any) -> None:
    """Store a small JSON document."""
    body = json.dumps(document, indent=2, sort_keys=True).encode("utf-8")
    client.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")


def get_json(client: Any, bucket: str, key: str) -> Any:
    """Read a small JSON document."""
    body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    return json.loads(body)


class _UploadProgress:
    """boto3 transfer callback (called from several threads) logging progress every few seconds."""

    def __init__(self, total: int, every_s: float = 5.0) -> None:
        self.total, self.every_s = total, every_s
        self.done = 0
        self.last = time.monotonic()
        self.lock = threading.Lock()

    def __call__(self, count: int) -> None:
        with self.lock:
            self.done += count
            now = time.monotonic()
            if now - self.last < self.every_s:
                return
            self.last = now
            percent = 100 * self.done / self.total if self.total else 100.0
            logger.info("uploaded %d / %d bytes (%.1f%%)", self.done, self.total, percent)

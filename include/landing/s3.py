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
    """An upload did not store the local file at its key: the transfer failed, or the stored size is wrong."""


def s3_client(conn_id: str = "lakehouse_s3") -> Any:
    """The boto3 S3 client of an Airflow connection, through the Amazon provider's ``S3Hook``.

    Resolved now (call it inside a task, not at parse time). The hook does the connection handling: login and
    password as the access and secret keys, ``endpoint_url`` and ``region_name`` from the extra (MinIO or any
    S3-compatible server). Requests are addressed path-style, which MinIO serves without a domain set up, with
    botocore's standard retries.

    Args:
        conn_id: Airflow connection id, of type `aws`.

    Returns:
        A `botocore` S3 client.
    """
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from botocore.config import Config

    # The hook falls back to boto3's default credentials when the connection does not exist: a misspelt id would then
    # write with whatever the worker's environment holds. Look it up first, so it fails naming the id instead.
    S3Hook.get_connection(conn_id)
    config = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5, "mode": "standard"})
    return S3Hook(aws_conn_id=conn_id, config=config).get_conn()


def upload_file(
    client: Any, path: str | os.PathLike[str], bucket: str, key: str, *, part_size: int | None = None
) -> int:
    """Upload a local file, multipart above `part_size`, streaming from disk, then check the stored size.

    The object appears whole or not at all: S3 stores the parts under an upload id and shows them as the object only
    when the upload completes, so until then readers see what was at the key before (nothing, or the previous
    version). A transfer that fails (the endpoint going away, after botocore's retries) is aborted; when the abort
    cannot reach the endpoint either, the parts stay under their upload id, invisible, and the next upload of the
    key aborts them first (one task owns a landing key, and Airflow runs one try of it at a time).

    Args:
        client: A boto3 S3 client.
        path: Local file.
        bucket: Destination bucket.
        key: Destination key.
        part_size: Multipart threshold and part size in bytes (S3 needs at least 5 MiB); default `PART_SIZE`.

    Returns:
        The size of the stored object in bytes.

    Raises:
        UploadError: If the transfer failed (naming the key, the endpoint and the cause), or the stored object's
            size differs from the local file's.
    """
    from boto3.exceptions import Boto3Error
    from boto3.s3.transfer import TransferConfig
    from botocore.exceptions import BotoCoreError, ClientError

    part_size = part_size or PART_SIZE
    source = Path(path)
    size = source.stat().st_size
    config = TransferConfig(multipart_threshold=part_size, multipart_chunksize=part_size, max_concurrency=4)
    target = f"s3://{bucket}/{key} at {client.meta.endpoint_url}"
    logger.info("uploading %s (%d bytes) to %s", source, size, target)
    try:
        abort_pending_uploads(client, bucket, key)
        client.upload_file(str(source), bucket, key, Config=config, Callback=_UploadProgress(size))
        stored = client.head_object(Bucket=bucket, Key=key)["ContentLength"]
    except (BotoCoreError, ClientError, Boto3Error) as error:
        # Only a completed upload replaces the object, so the key holds its previous version (or nothing), unless the
        # completion itself got through before the failure: then it holds the whole file, never a part of it.
        raise UploadError(
            f"upload of {source} ({size} bytes) to {target} failed; the key holds its previous version (or the whole"
            f" file, never a part of it), and a retry uploads it again, aborting the parts left behind: {error}"
        ) from error
    if stored != size:
        raise UploadError(f"s3://{bucket}/{key} holds {stored} bytes, local file {source} has {size}")
    logger.info("uploaded s3://%s/%s (%d bytes)", bucket, key, stored)
    return stored


def abort_pending_uploads(client: Any, bucket: str, key: str) -> int:
    """Abort the multipart uploads of exactly `key` that were never completed (a failed or killed earlier try's).

    Their parts are not an object, but the store keeps them (and bills for them) until aborted.

    Returns:
        How many were aborted.
    """
    from botocore.exceptions import ClientError

    aborted = 0
    pages = client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=key)
    try:
        uploads = [upload for page in pages for upload in page.get("Uploads", []) if upload["Key"] == key]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "AccessDenied":
            raise
        # Credentials without s3:ListBucketMultipartUploads: the upload itself does not need it.
        logger.warning("may not list the multipart uploads of s3://%s/%s: none aborted", bucket, key)
        return 0
    for upload in uploads:
        logger.warning("aborting the unfinished multipart upload %s of s3://%s/%s", upload["UploadId"], bucket, key)
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload["UploadId"])
        aborted += 1
    return aborted


def put_json(client: Any, bucket: str, key: str, document: Any) -> None:
    """Store a small JSON document (in one PUT: whole or not at all).

    Raises:
        UploadError: If the PUT fails, naming the key and the endpoint.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    body = json.dumps(document, indent=2, sort_keys=True).encode("utf-8")
    try:
        client.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    except (BotoCoreError, ClientError) as error:
        raise UploadError(f"writing s3://{bucket}/{key} at {client.meta.endpoint_url} failed: {error}") from error


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

"""The S3 endpoint going away in the middle of a multipart upload (``upload_file``), and the retry after it.

The endpoint is a TCP proxy in front of the moto server, cut (listener closed, every open connection reset) once a
set number of bytes has gone through it towards S3, so the cut always falls inside the upload of a part. What a
reader of the bucket sees at every moment:

- Before the cut: parts are being stored under an upload id. A listing, a HEAD or a GET of the key shows what was
  there before the upload (nothing, or the previous version, byte for byte): parts are not an object until the
  upload is completed.
- From the cut until the task fails: the same. botocore retries the parts, then the upload is aborted (which also
  fails while the endpoint is away); the task fails with an ``UploadError`` naming ``s3://<bucket>/<key>`` and the
  endpoint.
- Between the failure and the retry: still the same; the multipart upload the failed try could not abort stays on
  the server (listed by ``ListMultipartUploads`` only, never as an object).
- The retry (the endpoint is back): aborts the upload the failed try left, uploads again, and completes; from the
  completion on readers see the new file, whose bytes hash as the local file does, and no multipart upload remains.

Landing a file (``land_http_file``: download, upload, then ``_manifest.json``), re-landing a slice whose source
changed, with the endpoint going away mid-upload or between the upload and the manifest:

- From the start of the task: the slice has no manifest (the earlier one is deleted first: a manifest vouches for
  the file next to it), so no reader takes the file for a checked landing; the object is the earlier version until
  the upload completes, the new one after.
- The task fails with an ``UploadError`` naming the endpoint and the key it was writing (the file, or the manifest);
  the slice stays without a manifest: the earlier file intact, or the new one whole. Never a manifest describing
  another file than the one next to it (before, a cut after the upload left the new file with the old manifest).
- The retry lands the new file and then its manifest, whose ``sha256`` and ``lines`` are the source's.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from devtools.local_stack import CuttableProxy
from devtools.samples.http_server import serve_directory
from include.landing import files, s3
from include.landing.s3 import UploadError, s3_client, upload_file

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
KEY = "faults/big.bin"


@pytest.fixture
def proxy(landing_s3, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch):
    """The proxy in front of moto, and the task's ``lakehouse_s3`` connection pointing at it."""
    host, port = moto_endpoint.removeprefix("http://").split(":")
    proxy = CuttableProxy((host, int(port)))
    connection = {
        "conn_type": "aws",
        "login": "test",
        "password": "test",
        "extra": {"endpoint_url": proxy.endpoint, "region_name": "us-east-1"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_LAKEHOUSE_S3", json.dumps(connection))
    yield proxy
    proxy.close()
    for upload in landing_s3.list_multipart_uploads(Bucket="landing").get("Uploads", []):
        landing_s3.abort_multipart_upload(Bucket="landing", Key=upload["Key"], UploadId=upload["UploadId"])


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pending_uploads(client) -> list[str]:
    return [upload["Key"] for upload in client.list_multipart_uploads(Bucket="landing").get("Uploads", [])]


@pytest.mark.parametrize("previous", [None, b"the previous version\n" * 1000], ids=["new-key", "replacing"])
def test_endpoint_cut_mid_upload_fails_clearly_and_the_retry_completes(
    proxy: CuttableProxy, landing_s3, tmp_path: Path, previous: bytes | None
):
    if previous is not None:
        landing_s3.put_object(Bucket="landing", Key=KEY, Body=previous)
    path = tmp_path / "big.bin"
    data = os.urandom(16 * MIB)
    path.write_bytes(data)
    # Past the first part and into the next ones (5 MiB parts, several in flight).
    proxy.cut_after = 8 * MIB
    client = s3_client("lakehouse_s3")

    with pytest.raises(UploadError) as failure:
        upload_file(client, path, "landing", KEY, part_size=5 * MIB)

    assert proxy.cut_done.is_set()
    message = str(failure.value)
    assert f"s3://landing/{KEY}" in message
    assert proxy.endpoint in message
    # The reader (straight to moto) sees what was there before: nothing, or the previous version intact.
    listed = [item["Key"] for item in landing_s3.list_objects_v2(Bucket="landing").get("Contents", [])]
    if previous is None:
        assert listed == []
    else:
        assert listed == [KEY]
        assert landing_s3.get_object(Bucket="landing", Key=KEY)["Body"].read() == previous
    # The abort could not reach the endpoint either: the parts wait, invisible, under their upload id.
    assert pending_uploads(landing_s3) == [KEY]

    proxy.restore()
    stored = upload_file(s3_client("lakehouse_s3"), path, "landing", KEY, part_size=5 * MIB)

    assert stored == len(data)
    assert sha256(landing_s3.get_object(Bucket="landing", Key=KEY)["Body"].read()) == sha256(path.read_bytes())
    assert [item["Key"] for item in landing_s3.list_objects_v2(Bucket="landing")["Contents"]] == [KEY]
    assert pending_uploads(landing_s3) == []


def text_file(path: Path, lines: int, version: str) -> bytes:
    data = "".join(f"{i}\t{version}\n" for i in range(lines)).encode()
    path.write_bytes(data)
    return data


@pytest.mark.parametrize("cut", ["mid-upload", "before-manifest"])
def test_landing_again_with_the_endpoint_cut_never_leaves_a_manifest_of_another_file(
    proxy: CuttableProxy, landing_s3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cut: str
):
    monkeypatch.setattr(s3, "PART_SIZE", 5 * MIB)
    www, downloads = tmp_path / "www", tmp_path / "downloads"
    www.mkdir()
    source = www / "full_dataset.tsv"
    key, manifest_key = "tweets/ds=2020-03-28/full_dataset.tsv", "tweets/ds=2020-03-28/_manifest.json"
    first = text_file(source, 1_000, "v1")
    with serve_directory(www) as base_url:
        url = f"{base_url}/full_dataset.tsv"
        files.land_http_file("tweets", url, "2020-03-28", download_dir=downloads)
        # The source changes (12 MiB: a multipart upload in 5 MiB parts), and the slice is landed again.
        second = text_file(source, 1_000_000, "v2")
        if cut == "mid-upload":
            proxy.cut_after = 7 * MIB
        else:
            put_json = files.put_json

            def cut_first(*args, **kwargs):
                proxy.cut()
                return put_json(*args, **kwargs)

            monkeypatch.setattr(files, "put_json", cut_first)

        with pytest.raises(UploadError) as failure:
            files.land_http_file("tweets", url, "2020-03-28", download_dir=downloads)

        # The reason names the endpoint and the object being written (the file, or the manifest).
        assert proxy.endpoint in str(failure.value)
        assert (key if cut == "mid-upload" else manifest_key) in str(failure.value)

        stored = landing_s3.get_object(Bucket="landing", Key=key)["Body"].read()
        assert sha256(stored) == sha256(first if cut == "mid-upload" else second)
        # A manifest, if there is one, must describe the file next to it (the fix: there is none).
        listed = [item["Key"] for item in landing_s3.list_objects_v2(Bucket="landing")["Contents"]]
        if manifest_key in listed:
            left = json.loads(landing_s3.get_object(Bucket="landing", Key=manifest_key)["Body"].read())
            assert (left["sha256"], left["bytes"]) == (sha256(stored), len(stored))
        assert listed == [key]

        monkeypatch.setattr(files, "put_json", s3.put_json)
        proxy.restore()
        manifest = files.land_http_file("tweets", url, "2020-03-28", download_dir=downloads)

    assert sha256(landing_s3.get_object(Bucket="landing", Key=key)["Body"].read()) == sha256(second)
    stored_manifest = json.loads(landing_s3.get_object(Bucket="landing", Key=manifest_key)["Body"].read())
    assert stored_manifest == manifest
    assert (manifest["sha256"], manifest["lines"], manifest["bytes"]) == (sha256(second), 1_000_000, len(second))
    assert pending_uploads(landing_s3) == []


def test_credentials_that_may_not_list_uploads_still_upload():
    from botocore.exceptions import ClientError

    def denied(**_):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, "ListMultipartUploads")
        yield  # pragma: no cover

    client = SimpleNamespace(get_paginator=lambda name: SimpleNamespace(paginate=denied))

    assert s3.abort_pending_uploads(client, "landing", KEY) == 0

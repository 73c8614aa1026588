"""Tests for the S3 helpers against a moto server."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from include.landing.s3 import get_json, put_json, s3_client, upload_file

MIB = 1024 * 1024


def test_client_comes_from_the_connection(landing_s3, moto_endpoint: str):
    client = s3_client("lakehouse_s3")
    assert client.meta.endpoint_url == moto_endpoint
    assert client.meta.region_name == "us-east-1"
    assert "landing" in [bucket["Name"] for bucket in client.list_buckets()["Buckets"]]


def test_unknown_connection_fails(landing_s3):
    with pytest.raises(Exception, match="not_a_connection"):
        s3_client("not_a_connection")


def test_multipart_upload(landing_s3, tmp_path: Path):
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(11 * MIB))
    stored = upload_file(landing_s3, path, "landing", "x/big.bin", part_size=5 * MIB)
    assert stored == 11 * MIB
    head = landing_s3.head_object(Bucket="landing", Key="x/big.bin")
    # A multipart ETag ends with the number of parts: 5 + 5 + 1 MiB.
    assert head["ETag"].strip('"').endswith("-3")
    body = landing_s3.get_object(Bucket="landing", Key="x/big.bin")["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(path.read_bytes()).digest()


def test_small_upload(landing_s3, tmp_path: Path):
    path = tmp_path / "small.tsv"
    path.write_bytes(b"a\tb\n")
    assert upload_file(landing_s3, path, "landing", "x/small.tsv") == 4
    assert landing_s3.get_object(Bucket="landing", Key="x/small.tsv")["Body"].read() == b"a\tb\n"


def test_json_round_trip(landing_s3):
    document = {"b": [1, 2], "a": "é", "n": None}
    put_json(landing_s3, "landing", "x/doc.json", document)
    assert get_json(landing_s3, "landing", "x/doc.json") == document
    assert landing_s3.head_object(Bucket="landing", Key="x/doc.json")["ContentType"] == "application/json"

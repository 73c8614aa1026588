"""Fixtures for the include/ tests: an in-process moto S3 server standing in for MinIO."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="session")
def moto_endpoint():
    """A moto S3 server on a free local port, for the whole session."""
    from moto.server import ThreadedMotoServer

    # Port 0 lets the OS pick a free port; get_host_and_port reports it.
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def landing_s3(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch):
    """A boto3 client on the moto server, bucket `landing` created, and the `lakehouse_s3` connection set in env."""
    import boto3

    connection = {
        "conn_type": "aws",
        "login": "test",
        "password": "test",
        "extra": {"endpoint_url": moto_endpoint, "region_name": "us-east-1"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_LAKEHOUSE_S3", json.dumps(connection))
    client = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    client.create_bucket(Bucket="landing")
    yield client
    # moto keeps state for the whole server; empty the bucket so each test starts clean.
    for page in client.get_paginator("list_objects_v2").paginate(Bucket="landing"):
        for item in page.get("Contents", []):
            client.delete_object(Bucket="landing", Key=item["Key"])

"""Tests for the local range-capable HTTP file server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import requests

from devtools.samples.http_server import RangeNotSatisfiable, parse_range, serve_directory

SIZE = 100_000


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("www")
    payload = os.urandom(SIZE)
    (root / "data.bin").write_bytes(payload)
    with serve_directory(root) as base_url:
        yield base_url, payload


def test_head_announces_length_and_ranges(served):
    base_url, _ = served
    response = requests.head(f"{base_url}/data.bin", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(SIZE)
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.content == b""


def test_full_get(served):
    base_url, payload = served
    response = requests.get(f"{base_url}/data.bin", timeout=10)
    assert response.status_code == 200
    assert response.content == payload
    assert response.headers["Content-Length"] == str(SIZE)


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=1000-", 1000, SIZE - 1),
        ("bytes=-500", SIZE - 500, SIZE - 1),
        ("bytes=99990-200000", 99990, SIZE - 1),
    ],
)
def test_range_get(served, header: str, first: int, last: int):
    base_url, payload = served
    response = requests.get(f"{base_url}/data.bin", headers={"Range": header}, timeout=10)
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes {first}-{last}/{SIZE}"
    assert response.headers["Content-Length"] == str(last - first + 1)
    assert response.content == payload[first : last + 1]


def test_range_beyond_end_is_416(served):
    base_url, _ = served
    response = requests.get(f"{base_url}/data.bin", headers={"Range": f"bytes={SIZE}-"}, timeout=10)
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{SIZE}"


def test_several_ranges_get_the_whole_file(served):
    base_url, payload = served
    response = requests.get(f"{base_url}/data.bin", headers={"Range": "bytes=0-1,5-6"}, timeout=10)
    assert response.status_code == 200
    assert response.content == payload


def test_missing_file_is_404(served):
    base_url, _ = served
    assert requests.head(f"{base_url}/nope.bin", timeout=10).status_code == 404
    assert requests.get(f"{base_url}/nope.bin", timeout=10).status_code == 404


def test_keep_alive_connection_serves_several_requests(served):
    base_url, payload = served
    with requests.Session() as session:
        first = session.get(f"{base_url}/data.bin", headers={"Range": "bytes=0-9"}, timeout=10)
        second = session.get(f"{base_url}/data.bin", headers={"Range": "bytes=10-19"}, timeout=10)
    assert first.content + second.content == payload[:20]


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, None), ("", None), ("items=0-1", None), ("bytes=-", None), ("bytes=5-2", "416"), ("bytes=-0", "416")],
)
def test_parse_range_edge_cases(header: str | None, expected: str | None):
    if expected == "416":
        with pytest.raises(RangeNotSatisfiable):
            parse_range(header, 10)
    else:
        assert parse_range(header, 10) is expected


def test_serve_directory_rejects_a_file(tmp_path: Path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError), serve_directory(tmp_path / "f"):
        pass

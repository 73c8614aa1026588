"""Tests for landing an HTTP file in S3 (moto) with its manifest."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from devtools.samples.http_server import serve_directory
from devtools.samples.tweets import generate_tweets_tsv
from include.landing.files import file_stats, land_http_file

LINES = 5_000


@pytest.fixture(scope="module")
def tweets_url(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("www")
    generate_tweets_tsv(root / "full_dataset.tsv", LINES, seed=1)
    with serve_directory(root) as base_url:
        yield f"{base_url}/full_dataset.tsv", root / "full_dataset.tsv"


@pytest.mark.parametrize(
    ("content", "lines"),
    [(b"", 0), (b"\n", 1), (b"a", 1), (b"a\n", 1), (b"a\nb", 2), (b"a\n\n", 2), (b"\r\n\r\n", 2)],
)
def test_file_stats_small(tmp_path: Path, content: bytes, lines: int):
    path = tmp_path / "f"
    path.write_bytes(content)
    assert file_stats(path) == (lines, hashlib.sha256(content).hexdigest())


def test_file_stats_across_chunks(tmp_path: Path):
    # 3 MiB of 1 KiB lines, the last without its newline: chunk borders fall inside lines.
    content = (b"x" * 1023 + b"\n") * 3072 + b"tail"
    path = tmp_path / "f"
    path.write_bytes(content)
    assert file_stats(path) == (3073, hashlib.sha256(content).hexdigest())


def test_land_http_file(landing_s3, tweets_url, tmp_path: Path):
    url, source = tweets_url
    download_dir = tmp_path / "downloads"
    manifest = land_http_file("tweets", url, "2020-03-28", download_dir=download_dir)

    data = source.read_bytes()
    key = "tweets/ds=2020-03-28/full_dataset.tsv"
    assert landing_s3.get_object(Bucket="landing", Key=key)["Body"].read() == data
    stored = json.loads(
        landing_s3.get_object(Bucket="landing", Key="tweets/ds=2020-03-28/_manifest.json")["Body"].read()
    )
    assert stored == manifest
    assert manifest["domain"] == "tweets"
    assert manifest["ds"] == "2020-03-28"
    assert manifest["source"] == url
    assert manifest["object_key"] == key
    assert manifest["bytes"] == len(data)
    assert manifest["lines"] == LINES + 1
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["downloader"] == ("aria2c" if shutil.which("aria2c") else "python")
    assert manifest["status"] == "succeeded"
    started = datetime.fromisoformat(manifest["started_at"])
    finished = datetime.fromisoformat(manifest["finished_at"])
    assert started.utcoffset().total_seconds() == 0
    assert started <= finished
    assert manifest["duration_s"] >= 0
    # The local copy is gone once the object and manifest are stored.
    assert not any(path.is_file() for path in download_dir.rglob("*"))


def test_land_twice_replaces_the_slice(landing_s3, tweets_url, tmp_path: Path):
    url, _ = tweets_url
    first = land_http_file("tweets", url, "2020-03-29", download_dir=tmp_path)
    second = land_http_file("tweets", url, "2020-03-29", download_dir=tmp_path)
    keys = [item["Key"] for item in landing_s3.list_objects_v2(Bucket="landing", Prefix="tweets/")["Contents"]]
    assert sorted(keys) == ["tweets/ds=2020-03-29/_manifest.json", "tweets/ds=2020-03-29/full_dataset.tsv"]
    assert first["sha256"] == second["sha256"]


def test_download_dir_from_env(landing_s3, tweets_url, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    url, _ = tweets_url
    monkeypatch.setenv("LAKEHOUSE_DOWNLOAD_DIR", str(tmp_path / "env-dir"))
    manifest = land_http_file("tweets", url, "2020-03-30")
    assert manifest["lines"] == LINES + 1
    assert not (tmp_path / "env-dir" / "tweets" / "ds=2020-03-30").exists()


@pytest.mark.parametrize(
    ("domain", "url", "ds", "message"),
    [
        ("tweets", "http://h/f.tsv", "2020-3-28", "YYYY-MM-DD"),
        ("tweets", "http://h/f.tsv", "2020-02-30", "not a calendar date"),
        ("tweets", "ftp://h/f.tsv", "2020-03-28", "http"),
        ("tweets", "file:///tmp/f.tsv", "2020-03-28", "http"),
        ("tweets", "http://h/", "2020-03-28", "no file name"),
        ("Tweets/..", "http://h/f.tsv", "2020-03-28", "domain"),
    ],
)
def test_invalid_arguments(domain: str, url: str, ds: str, message: str):
    with pytest.raises(ValueError, match=message):
        land_http_file(domain, url, ds)

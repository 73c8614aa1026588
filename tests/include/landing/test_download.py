"""Tests for the resumable downloader, through aria2c and through the Python fallback, against a local server."""

from __future__ import annotations

import logging
import os
import shutil
from http import HTTPStatus
from pathlib import Path

import pytest

from devtools.samples.http_server import RangeRequestHandler, serve_directory
from include.landing.download import DownloadError, download, file_name_from_url

# Over 2 MiB, so aria2c (min split size 1 MiB) really uses several connections.
SIZE = 3 * 1024 * 1024 + 12_345

needs_aria2 = pytest.mark.skipif(shutil.which("aria2c") is None, reason="aria2c is not installed")
DOWNLOADERS = [pytest.param(True, id="aria2c", marks=needs_aria2), pytest.param(False, id="python")]


class _LyingHeadHandler(RangeRequestHandler):
    """Announces ten bytes more on HEAD than it sends on GET."""

    def do_HEAD(self) -> None:  # noqa: N802 - name fixed by http.server
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Length", str(SIZE + 10))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()


class _BrokenGetHandler(RangeRequestHandler):
    """HEAD works, GET fails: the server breaks between the two requests."""

    def do_GET(self) -> None:  # noqa: N802 - name fixed by http.server
        self.send_error(HTTPStatus.FORBIDDEN)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("www")
    path = root / "full_dataset.tsv"
    path.write_bytes(os.urandom(SIZE))
    return path


@pytest.fixture(scope="module")
def base_url(source: Path):
    with serve_directory(source.parent) as url:
        yield url


@pytest.mark.parametrize("use_aria2", DOWNLOADERS)
def test_download_whole_file(source: Path, base_url: str, tmp_path: Path, use_aria2: bool):
    result = download(f"{base_url}/full_dataset.tsv", tmp_path / "dl", use_aria2=use_aria2, connections=4)
    assert result.path == tmp_path / "dl" / "full_dataset.tsv"
    assert result.bytes == SIZE
    assert result.downloader == ("aria2c" if use_aria2 else "python")
    assert result.path.read_bytes() == source.read_bytes()
    assert sorted(p.name for p in result.path.parent.iterdir()) == ["full_dataset.tsv"]


@pytest.mark.parametrize("use_aria2", DOWNLOADERS)
def test_resume_keeps_the_partial_bytes(source: Path, base_url: str, tmp_path: Path, use_aria2: bool):
    # The partial file holds zeros instead of the real first bytes: if they survive, the download resumed.
    have = 1_000_000
    (tmp_path / "full_dataset.tsv").write_bytes(b"\0" * have)
    result = download(f"{base_url}/full_dataset.tsv", tmp_path, use_aria2=use_aria2)
    assert result.bytes == SIZE
    data, expected = result.path.read_bytes(), source.read_bytes()
    assert data[have:] == expected[have:]
    # aria2c restarts at its last 16 KiB block boundary, so only most of the partial bytes must be kept.
    kept = len(data) - len(os.path.commonprefix([data[::-1], expected[::-1]]))
    assert have - 16 * 1024 <= kept <= have
    assert data[:kept] == b"\0" * kept


@pytest.mark.parametrize("use_aria2", DOWNLOADERS)
def test_complete_file_is_not_fetched_again(source: Path, base_url: str, tmp_path: Path, use_aria2: bool):
    (tmp_path / "full_dataset.tsv").write_bytes(b"\1" * SIZE)
    result = download(f"{base_url}/full_dataset.tsv", tmp_path, use_aria2=use_aria2)
    assert result.path.read_bytes() == b"\1" * SIZE


def test_python_discards_an_aria2_partial(source: Path, base_url: str, tmp_path: Path):
    # aria2c writes segments out of order, so its partial file cannot be resumed by length.
    (tmp_path / "full_dataset.tsv").write_bytes(b"\0" * SIZE)
    (tmp_path / "full_dataset.tsv.aria2").write_bytes(b"control")
    result = download(f"{base_url}/full_dataset.tsv", tmp_path, use_aria2=False)
    assert result.path.read_bytes() == source.read_bytes()
    assert not (tmp_path / "full_dataset.tsv.aria2").exists()


def test_python_progress_is_logged(base_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.INFO, logger="include.landing.download"):
        download(f"{base_url}/full_dataset.tsv", tmp_path, use_aria2=False, log_every_s=0)
    assert any("MB/s" in message and "%" in message for message in caplog.messages)


@needs_aria2
def test_aria2_output_goes_to_the_log(base_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.INFO, logger="include.landing.download"):
        download(f"{base_url}/full_dataset.tsv", tmp_path, use_aria2=True)
    assert any(message.startswith("aria2c: ") and "Download complete" in message for message in caplog.messages)


@pytest.mark.parametrize("use_aria2", DOWNLOADERS)
def test_missing_file_raises(base_url: str, tmp_path: Path, use_aria2: bool):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(f"{base_url}/missing.tsv", tmp_path, use_aria2=use_aria2)


@pytest.mark.parametrize("use_aria2", DOWNLOADERS)
def test_size_mismatch_raises(source: Path, tmp_path: Path, use_aria2: bool):
    expected = f"size mismatch .*got {SIZE} bytes, server announced {SIZE + 10}"
    with (
        serve_directory(source.parent, handler_class=_LyingHeadHandler) as url,
        pytest.raises(DownloadError, match=expected),
    ):
        download(f"{url}/full_dataset.tsv", tmp_path, use_aria2=use_aria2)


@pytest.mark.parametrize(("use_aria2", "message"), [(False, "HTTP 403"), (True, "aria2c exited with code")])
def test_failing_get_raises(source: Path, tmp_path: Path, use_aria2: bool, message: str):
    if use_aria2 and shutil.which("aria2c") is None:
        pytest.skip("aria2c is not installed")
    with (
        serve_directory(source.parent, handler_class=_BrokenGetHandler) as url,
        pytest.raises(DownloadError, match=message) as caught,
    ):
        download(f"{url}/full_dataset.tsv", tmp_path, use_aria2=use_aria2)
    assert "\n" not in str(caught.value)


def test_unreachable_server_raises(tmp_path: Path):
    with pytest.raises(DownloadError, match="HEAD .* failed"):
        download("http://127.0.0.1:9/full_dataset.tsv", tmp_path, timeout=2)


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://example.org/data/full_dataset.tsv", "full_dataset.tsv"),
        ("https://example.org/a/b%20c.tsv?x=1#f", "b c.tsv"),
    ],
)
def test_file_name_from_url(url: str, name: str):
    assert file_name_from_url(url) == name


@pytest.mark.parametrize("url", ["https://example.org/", "https://example.org", "https://example.org/dir/.."])
def test_url_without_file_name_is_rejected(url: str):
    with pytest.raises(ValueError, match="no file name"):
        file_name_from_url(url)

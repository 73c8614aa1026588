"""Resumable HTTP download: aria2c with several connections when installed, else a streaming Python fallback."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20
_MB = 1_000_000
# aria2c prints these decorations around each progress summary; they only add noise to a task log.
_ARIA2_NOISE = ("===", "---", "*** Download Progress Summary", "FILE:", "Status Legend", "gid   |")


class DownloadError(RuntimeError):
    """A download failed or produced a file of the wrong size."""


@dataclass(frozen=True)
class DownloadResult:
    """A completed download.

    Attributes:
        path: The downloaded file.
        bytes: Its size in bytes, checked against the server's Content-Length when the server sends one.
        downloader: `aria2c` or `python`.
    """

    path: Path
    bytes: int
    downloader: str


def file_name_from_url(url: str) -> str:
    """Return the last path segment of `url`, e.g. `full_dataset.tsv`.

    Raises:
        ValueError: If the URL path has no file name.
    """
    name = PurePosixPath(unquote(urlsplit(url).path)).name
    if not name or name in (".", ".."):
        raise ValueError(f"URL has no file name in its path: {url}")
    return name


def download(
    url: str,
    dest_dir: str | os.PathLike[str],
    *,
    connections: int = 8,
    use_aria2: bool | None = None,
    timeout: float = 60.0,
    log_every_s: float = 5.0,
) -> DownloadResult:
    """Download `url` into `dest_dir`, resuming a partial file left by an earlier attempt.

    Args:
        url: HTTP(S) address of the file; the local file takes the last segment of its path.
        dest_dir: Folder for the file; created if missing.
        connections: Parallel connections for aria2c (`-x`/`-s`).
        use_aria2: Force aria2c (True) or the Python fallback (False); None picks aria2c when it is on PATH.
        timeout: Seconds to wait for the server to connect or send data.
        log_every_s: Seconds between progress lines.

    Returns:
        The local path, its size and which downloader fetched it.

    Raises:
        DownloadError: On an HTTP error, a failed aria2c run, a missing file or a size different from the
            server's Content-Length.
    """
    target = Path(dest_dir) / file_name_from_url(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    expected = _content_length(url, timeout)
    if use_aria2 is None:
        use_aria2 = shutil.which("aria2c") is not None
    logger.info(
        "downloading %s (%s bytes) to %s with %s",
        url,
        "unknown" if expected is None else expected,
        target,
        "aria2c" if use_aria2 else "python",
    )
    started = time.monotonic()
    if use_aria2:
        _download_aria2(url, target, connections, timeout, log_every_s)
    else:
        _download_python(url, target, expected, timeout, log_every_s)
    size = _verify(url, target, expected)
    elapsed = max(time.monotonic() - started, 1e-6)
    logger.info("downloaded %s: %d bytes in %.1f s (%.1f MB/s)", target.name, size, elapsed, size / _MB / elapsed)
    return DownloadResult(path=target, bytes=size, downloader="aria2c" if use_aria2 else "python")


def _content_length(url: str, timeout: float) -> int | None:
    """HEAD the URL; return its Content-Length, or None when the server does not say."""
    import requests

    try:
        response = requests.head(url, allow_redirects=True, timeout=timeout)
    except requests.RequestException as exc:
        raise DownloadError(f"HEAD {url} failed: {exc}") from exc
    if response.status_code >= 400:
        raise DownloadError(f"HEAD {url} returned HTTP {response.status_code} {response.reason}")
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def _verify(url: str, target: Path, expected: int | None) -> int:
    if not target.is_file():
        raise DownloadError(f"download of {url} left no file at {target}")
    size = target.stat().st_size
    if expected is not None and size != expected:
        raise DownloadError(f"size mismatch for {url}: got {size} bytes, server announced {expected}")
    if expected is None:
        logger.warning("server sent no Content-Length for %s; size %d not verified", url, size)
    return size


def _download_aria2(url: str, target: Path, connections: int, timeout: float, log_every_s: float) -> None:
    command = [
        "aria2c",
        f"--dir={target.parent}",
        f"--out={target.name}",
        f"--max-connection-per-server={connections}",
        f"--split={connections}",
        "--min-split-size=1M",
        "--continue=true",
        "--auto-file-renaming=false",
        "--allow-overwrite=false",
        "--file-allocation=none",
        f"--summary-interval={max(1, round(log_every_s))}",
        "--show-console-readout=false",
        "--enable-color=false",
        "--console-log-level=notice",
        f"--timeout={max(1, round(timeout))}",
        f"--connect-timeout={max(1, round(timeout))}",
        "--max-tries=5",
        "--retry-wait=2",
        url,
    ]
    last_error = ""
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1
    ) as process:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.strip()
            if not line or line.startswith(_ARIA2_NOISE):
                continue
            if "[ERROR]" in line or "errorCode=" in line:
                last_error = line
            logger.info("aria2c: %s", line)
    if process.returncode != 0:
        reason = f": {last_error}" if last_error else ""
        raise DownloadError(f"aria2c exited with code {process.returncode} for {url}{reason}")
    if target.with_name(target.name + ".aria2").exists():
        raise DownloadError(f"aria2c left an unfinished download of {url} at {target}")


def _download_python(url: str, target: Path, expected: int | None, timeout: float, log_every_s: float) -> None:
    control = target.with_name(target.name + ".aria2")
    if control.exists():
        # aria2c fills segments out of order, so the file length says nothing about what is present.
        logger.info("discarding partial aria2c download %s", target)
        target.unlink(missing_ok=True)
        control.unlink()
    have = target.stat().st_size if target.exists() else 0
    if expected is not None and have == expected and target.exists():
        logger.info("%s is already complete (%d bytes)", target, have)
        return
    if expected is not None and have > expected:
        logger.info("discarding %s: %d bytes, larger than the %d announced", target, have, expected)
        have = 0
    _stream(url, target, have, expected, timeout, log_every_s)


def _stream(url: str, target: Path, offset: int, expected: int | None, timeout: float, log_every_s: float) -> None:
    import requests

    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        with requests.get(url, headers=headers, stream=True, timeout=timeout) as response:
            if response.status_code >= 400:
                raise DownloadError(f"GET {url} returned HTTP {response.status_code} {response.reason}")
            if offset and response.status_code != 206:
                logger.info("server ignored the Range request; downloading %s from the start", url)
                offset = 0
            elif offset:
                logger.info("resuming %s at byte %d", target.name, offset)
            with target.open("ab" if offset else "wb") as out:
                progress = _Progress(target.name, offset, expected, log_every_s)
                for chunk in response.iter_content(chunk_size=_CHUNK):
                    out.write(chunk)
                    progress.add(len(chunk))
    except requests.RequestException as exc:
        raise DownloadError(f"GET {url} failed: {exc}") from exc


class _Progress:
    """Logs bytes, percentage and throughput at most every `every_s` seconds."""

    def __init__(self, name: str, done: int, total: int | None, every_s: float) -> None:
        self.name, self.done, self.total, self.every_s = name, done, total, every_s
        self.start_done = done
        self.started = self.last = time.monotonic()

    def add(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if now - self.last < self.every_s:
            return
        self.last = now
        rate = (self.done - self.start_done) / _MB / max(now - self.started, 1e-6)
        percent = f"{100 * self.done / self.total:.1f}%" if self.total else "?%"
        logger.info("%s: %d / %s bytes (%s) at %.1f MB/s", self.name, self.done, self.total or "?", percent, rate)

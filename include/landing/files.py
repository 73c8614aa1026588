"""Land a file from HTTP in the landing bucket, unchanged, with a manifest describing the extraction."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from include.landing.download import download, file_name_from_url
from include.landing.s3 import put_json, s3_client, upload_file

logger = logging.getLogger(__name__)

MANIFEST_NAME = "_manifest.json"
_DS = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DOMAIN = re.compile(r"^[a-z][a-z0-9_]*$")
_CHUNK = 1 << 20


def file_stats(path: str | os.PathLike[str]) -> tuple[int, str]:
    """Count lines and hash a file in one streaming pass.

    Args:
        path: The file.

    Returns:
        (lines, sha256 hex digest); lines counts newline characters, plus one for a last line without a newline.
    """
    digest = hashlib.sha256()
    lines = 0
    last = b""
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    if last and last != b"\n":
        lines += 1
    return lines, digest.hexdigest()


def landing_prefix(domain: str, ds: str) -> str:
    """Key prefix of one run's slice in the landing bucket, e.g. `tweets/ds=2020-03-28/`."""
    return f"{domain}/ds={ds}/"


def land_http_file(
    domain: str,
    url: str,
    ds: str,
    *,
    conn_id: str = "lakehouse_s3",
    bucket: str = "landing",
    download_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Download `url`, upload it unchanged to `<bucket>/<domain>/ds=<ds>/<file name>` and write `_manifest.json`.

    The manifest of an earlier landing of the slice is deleted before the upload and the new one written last, so
    a manifest always describes the file next to it: a failed re-landing leaves the slice without one.

    The local copy is kept when a step fails, so a retry on the same worker resumes the download, and
    deleted once the manifest is written.

    Args:
        domain: Source domain, e.g. `tweets`.
        url: HTTP(S) address of the file.
        ds: The run's logical date, `YYYY-MM-DD`.
        conn_id: Airflow connection of the S3 store.
        bucket: Landing bucket.
        download_dir: Folder for downloads; defaults to env `LAKEHOUSE_DOWNLOAD_DIR`, else a folder in the
            system temp dir. Each domain and ds gets its own subfolder.

    Returns:
        The manifest written next to the object.

    Raises:
        ValueError: On a malformed `domain`, `ds` or `url`.
        DownloadError: If the download fails (from `include.landing.download`).
        UploadError: If the upload fails or the stored object's size is wrong (from `include.landing.s3`).
    """
    _validate(domain, url, ds)
    started_at = datetime.now(UTC)
    started = time.monotonic()
    local_dir = _download_dir(download_dir) / domain / f"ds={ds}"
    result = download(url, local_dir)
    lines, sha256 = file_stats(result.path)
    logger.info("%s: %d bytes, %d lines, sha256 %s", result.path.name, result.bytes, lines, sha256)
    client = s3_client(conn_id)
    prefix = landing_prefix(domain, ds)
    object_key = prefix + result.path.name
    # A manifest vouches for the file next to it: an earlier run's must not outlive this upload (if the task then
    # failed before writing its own, the slice would pair the new file with the old manifest). Without a manifest
    # the slice reads as one being landed, or whose landing failed.
    client.delete_object(Bucket=bucket, Key=prefix + MANIFEST_NAME)
    upload_file(client, result.path, bucket, object_key)
    manifest = {
        "domain": domain,
        "ds": ds,
        "source": url,
        "object_key": object_key,
        "bytes": result.bytes,
        "lines": lines,
        "sha256": sha256,
        "downloader": result.downloader,
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "duration_s": round(time.monotonic() - started, 3),
        "status": "succeeded",
    }
    put_json(client, bucket, prefix + MANIFEST_NAME, manifest)
    logger.info("landed s3://%s/%s with manifest %s", bucket, object_key, MANIFEST_NAME)
    result.path.unlink(missing_ok=True)
    _remove_empty(local_dir)
    return manifest


def _validate(domain: str, url: str, ds: str) -> None:
    if not _DOMAIN.match(domain):
        raise ValueError(f"domain must be lower-case letters, digits and underscores, got {domain!r}")
    if not _DS.match(ds):
        raise ValueError(f"ds must be YYYY-MM-DD, got {ds!r}")
    try:
        date.fromisoformat(ds)
    except ValueError as exc:
        raise ValueError(f"ds is not a calendar date: {ds!r}") from exc
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"url must be an http:// or https:// address, got {url!r}")
    file_name_from_url(url)


def _download_dir(download_dir: str | os.PathLike[str] | None) -> Path:
    if download_dir is not None:
        return Path(download_dir)
    from_env = os.environ.get("LAKEHOUSE_DOWNLOAD_DIR")
    if from_env:
        return Path(from_env)
    # A fixed folder (not mkdtemp) so that a retried task finds and resumes its partial download.
    return Path(tempfile.gettempdir()) / "lakehouse-downloads"


def _remove_empty(folder: Path) -> None:
    for path in (folder, folder.parent):
        try:
            path.rmdir()
        except OSError:
            return

"""Land users from a RandomUser-compatible API, page by page and as received, with a manifest written last."""

# Every page is checked before it is stored (a JSON object whose `results` holds the requested number of entries
# and whose `info` echoes the page and seed), so a half-broken answer (randomuser.me has answered outages with
# `{"results": [], ...}` and status 200) is retried like a 5xx instead of landing. The entries themselves are not
# judged here: malformed users are bronze's business, and land as received.
#
# The feed sends each user's password, salt and password hashes (`login.password`, `salt`, `md5`, `sha1`, `sha256`).
# They are cut out of every page before it is stored, so they exist nowhere: not in landing, raw or any later layer.
# The manifest records that they were removed, and the size and checksum of each body as it was received, so what
# landed can still be traced to the exact response. Nothing about a user is ever logged.

from __future__ import annotations

import hashlib
import logging
import random
import re
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from include.landing.files import MANIFEST_NAME, landing_prefix
from include.landing.s3 import put_json, s3_client

logger = logging.getLogger(__name__)

DOMAIN = "users"
MAX_PAGE_SIZE = 5000  # randomuser.me answers at most 5,000 results a request
DOWNLOADER = "python-requests"
_SECRET_PARAM = re.compile(r"key|token|secret|password|passwd|signature|auth|credential", re.IGNORECASE)
_DS = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SECRET_FIELDS = ("password", "salt", "md5", "sha1", "sha256")  # of each entry's `login` object


class UsersExtractError(RuntimeError):
    """A page could not be fetched as a valid response; nothing more is landed and no manifest is written."""


class InvalidResponse(ValueError):
    """A 200 response that is not the page that was asked for."""


@dataclass(frozen=True)
class _Failure:
    """Why an attempt failed, and how long the server asked us to wait (``Retry-After``), if it did."""

    reason: str
    retry_after: float | None = None


def page_key(ds: str, page: int) -> str:
    """Key of one landed page, e.g. ``users/ds=2026-11-20/page-0001.json``."""
    return f"{landing_prefix(DOMAIN, ds)}page-{page:04d}.json"


def page_url(base_url: str, *, page: int | None, page_size: int, seed: str, nationalities: str | None = None) -> str:
    """The request URL of one page: ``base_url`` with ``results``, ``page``, ``seed`` and ``nat`` set.

    ``page=None`` leaves the page out: the URL of the whole run, as the manifest's ``source`` names it.
    """
    parts = urlsplit(base_url)
    ours = {"results": str(page_size), "page": str(page), "seed": seed}
    if page is None:
        del ours["page"]
    if nationalities:
        ours["nat"] = nationalities
    kept = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ("results", "page", "seed", "nat")
    ]
    return urlunsplit(parts._replace(query=urlencode(kept + list(ours.items()))))


def public_url(url: str) -> str:
    """``url`` fit for a log line or an error: no user info, and secret-looking query values masked."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = [(k, "***" if _SECRET_PARAM.search(k) else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, safe="*")))


def retry_delay(
    attempt: int, *, backoff_s: float, max_backoff_s: float, retry_after: float | None = None, jitter: float = 1.0
) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based) before the next.

    The server's ``Retry-After`` wins when it sent one; otherwise exponential backoff ``backoff_s * 2**(attempt-1)``
    with "equal jitter" (between half and all of it). Either way never more than ``max_backoff_s``.

    Args:
        attempt: the attempt that just failed.
        backoff_s: the first delay.
        max_backoff_s: the cap of every delay, ``Retry-After`` included.
        retry_after: the server's ``Retry-After``, in seconds.
        jitter: a number in [0, 1] (random in use) placing the delay between half and all of the backoff.
    """
    if retry_after is not None:
        return min(max(retry_after, 0.0), max_backoff_s)
    ceiling = min(backoff_s * 2 ** (attempt - 1), max_backoff_s)
    return ceiling / 2 + ceiling / 2 * min(max(jitter, 0.0), 1.0)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds: delta-seconds or an HTTP date; ``None`` when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def validate_page(body: bytes, *, page: int, page_size: int, seed: str) -> int:
    """Check that ``body`` answers the request for ``page``; return its number of entries.

    Raises:
        InvalidResponse: when the body is not JSON, not an object, has no ``results`` list of ``page_size``
            entries, or an ``info`` that does not echo ``page`` and ``seed``.
    """
    import json

    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidResponse(f"body is not JSON ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(document, dict):
        raise InvalidResponse(f"body is a JSON {type(document).__name__}, not an object")
    results = document.get("results")
    if not isinstance(results, list):
        raise InvalidResponse("body has no `results` list")
    if len(results) != page_size:
        raise InvalidResponse(f"`results` has {len(results)} entries, expected {page_size}")
    info = document.get("info")
    if not isinstance(info, dict):
        raise InvalidResponse("body has no `info` object")
    if info.get("page") != page:
        raise InvalidResponse(f"info.page is {info.get('page')!r}, expected {page}")
    if str(info.get("seed")) != seed:
        raise InvalidResponse(f"info.seed is {info.get('seed')!r}, expected {seed!r}")
    return len(results)


def redact_page(body: bytes) -> tuple[bytes, int]:
    """``body`` (a validated page) without the ``login`` secrets of its entries, and how many values were removed.

    Entries that are not objects, or whose ``login`` is not an object, are kept as they are: judging them is
    bronze's business. The page is written back as compact UTF-8 JSON with its keys in the order received.
    """
    import json

    document = json.loads(body)
    removed = 0
    for entry in document["results"]:
        login = entry.get("login") if isinstance(entry, dict) else None
        if isinstance(login, dict):
            for name in SECRET_FIELDS:
                if name in login:
                    del login[name]
                    removed += 1
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8"), removed


def extract_users(
    base_url: str,
    ds: str,
    *,
    results: int,
    page_size: int,
    seed: str | None,
    nationalities: str | None,
    max_attempts: int = 5,
    timeout_s: float = 30,
    bucket: str | None = None,
    conn_id: str | None = None,
    backoff_s: float = 1.0,
    max_backoff_s: float = 30.0,
) -> dict[str, Any]:
    """Fetch ``results`` users in pages of ``page_size`` and land each page under ``landing/users/ds=<ds>/``.

    Pages land as received but for the users' secrets (``redact_page``), as ``page-0001.json``,
    ``page-0002.json``...; objects of an earlier run of the slice
    that this run did not write are then removed, and ``_manifest.json`` is written last (the manifest of an
    earlier run is removed first, so a slice without a manifest is one being landed or one whose landing failed).
    The default seed depends on ``ds`` only, so a re-run lands the same bytes.

    Args:
        base_url: the API, e.g. ``https://randomuser.me/api/`` (its own query parameters are kept).
        ds: the run's date, ``YYYY-MM-DD``.
        results: users to fetch; a multiple of ``page_size``.
        page_size: users a request (1..5000).
        seed: the API's seed; ``None`` means ``lakehouse-<ds>``.
        nationalities: the API's ``nat`` parameter, e.g. ``"us,gb"``; ``None`` for any.
        max_attempts: attempts per page; 429, 5xx, timeouts, connection errors and invalid 200 responses are
            retried, any other status fails at once.
        timeout_s: connect and read timeout of a request, in seconds.
        bucket: landing bucket (default: the settings' ``landing_bucket``).
        conn_id: Airflow connection of the S3 store (default: the settings' ``s3_conn_id``).
        backoff_s: first retry delay; doubled at each retry, with jitter.
        max_backoff_s: cap of every retry delay, ``Retry-After`` included.

    Returns:
        The manifest: ``domain``, ``ds``, ``source``, ``object_key`` (the slice's prefix), ``objects``, ``bytes``,
        ``lines``, ``sha256`` (of the landed pages' bytes in page order), ``records``, ``pages``, ``page_size``,
        ``seed``, ``nationalities``, ``attempts``, ``downloader``, ``started_at``, ``finished_at``, ``duration_s``,
        ``status``, and ``removed`` (the secret fields cut out, how many values, and the ``bytes`` and
        ``sha256`` of the bodies as received). Each of ``objects`` has its ``key``, landed ``bytes``, ``records``,
        ``removed`` values and ``received_bytes``/``received_sha256``.

    Raises:
        ValueError: on a malformed argument, e.g. ``results`` not a multiple of ``page_size``.
        UsersExtractError: when a page fails; the message names the page, its URL and the last status or reason.
    """
    _validate(base_url, ds, results, page_size, max_attempts, timeout_s)
    seed = seed or f"lakehouse-{ds}"
    bucket, client = _target(bucket, conn_id)
    prefix = landing_prefix(DOMAIN, ds)
    started_at, started = datetime.now(UTC), time.monotonic()
    # A manifest vouches for the files next to it: it must not outlive a re-run that fails half-way.
    client.delete_object(Bucket=bucket, Key=prefix + MANIFEST_NAME)
    pages = results // page_size
    digest, received, landed, attempts, records, lines = hashlib.sha256(), hashlib.sha256(), [], 0, 0, 0
    import requests

    with requests.Session() as session:
        fetcher = _PageFetcher(session, pages, page_size, seed, max_attempts, timeout_s, backoff_s, max_backoff_s)
        for page in range(1, pages + 1):
            url = page_url(base_url, page=page, page_size=page_size, seed=seed, nationalities=nationalities)
            as_received, count, tries = fetcher.fetch(url, page)
            body, cut = redact_page(as_received)
            key = page_key(ds, page)
            client.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
            digest.update(body)
            received.update(as_received)
            landed.append(
                {
                    "key": key,
                    "bytes": len(body),
                    "records": count,
                    "removed": cut,
                    "received_bytes": len(as_received),
                    "received_sha256": hashlib.sha256(as_received).hexdigest(),
                }
            )
            attempts, records, lines = attempts + tries, records + count, lines + _lines(body)
            logger.info("page %d/%d: %d entries, %d bytes -> s3://%s/%s", page, pages, count, len(body), bucket, key)
    stale = _remove_stale(client, bucket, prefix, {item["key"] for item in landed})
    manifest = {
        "domain": DOMAIN,
        "ds": ds,
        "source": public_url(
            page_url(base_url, page=None, page_size=page_size, seed=seed, nationalities=nationalities)
        ),
        "object_key": prefix,
        "objects": landed,
        "bytes": sum(item["bytes"] for item in landed),
        "lines": lines,
        "sha256": digest.hexdigest(),
        "records": records,
        "pages": pages,
        "page_size": page_size,
        "seed": seed,
        "nationalities": nationalities,
        "attempts": attempts,
        "downloader": DOWNLOADER,
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "duration_s": round(time.monotonic() - started, 3),
        "status": "succeeded",
        "removed": {
            "fields": [f"login.{name}" for name in SECRET_FIELDS],
            "values": sum(item["removed"] for item in landed),
            "bytes": sum(item["received_bytes"] for item in landed),
            "sha256": received.hexdigest(),
        },
    }
    put_json(client, bucket, prefix + MANIFEST_NAME, manifest)
    logger.info(
        "landed %d users in %d pages (%d bytes, %d attempts, %d secret values cut out) under s3://%s/%s; "
        "removed %d stale objects",
        records, pages, manifest["bytes"], attempts, manifest["removed"]["values"], bucket, prefix, stale,
    )  # fmt: skip
    return manifest


def _validate(base_url: str, ds: str, results: int, page_size: int, max_attempts: int, timeout_s: float) -> None:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"base_url must be an http:// or https:// address, got {public_url(base_url)!r}")
    if not _DS.match(ds):
        raise ValueError(f"ds must be YYYY-MM-DD, got {ds!r}")
    date.fromisoformat(ds)
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be within 1..{MAX_PAGE_SIZE}, got {page_size}")
    if results < 1 or results % page_size:
        raise ValueError(f"results ({results}) must be a positive multiple of page_size ({page_size})")
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")


def _target(bucket: str | None, conn_id: str | None) -> tuple[str, Any]:
    from include.settings import load_settings

    settings = load_settings()
    return bucket or settings.landing_bucket, s3_client(conn_id or settings.s3_conn_id)


@dataclass(frozen=True)
class _PageFetcher:
    """Fetches pages of one run, retrying what may pass on a later attempt."""

    session: Any
    pages: int
    page_size: int
    seed: str
    max_attempts: int
    timeout_s: float
    backoff_s: float
    max_backoff_s: float

    def fetch(self, url: str, page: int) -> tuple[bytes, int, int]:
        """(body, entries, attempts) of ``page``; raises ``UsersExtractError`` once its attempts are spent.

        The project's one retry policy (tenacity): up to ``max_attempts``, waiting ``retry_delay`` between them.
        """
        import tenacity

        def wait(state: tenacity.RetryCallState) -> float:
            return retry_delay(
                state.attempt_number,
                backoff_s=self.backoff_s,
                max_backoff_s=self.max_backoff_s,
                retry_after=state.outcome.result().retry_after,
                jitter=random.random(),  # noqa: S311 - jitter, not cryptography
            )

        def log_retry(state: tenacity.RetryCallState) -> None:
            logger.warning(
                "page %d/%d attempt %d/%d failed: %s; retrying in %.3f s",
                page, self.pages, state.attempt_number, self.max_attempts, state.outcome.result().reason,
                state.upcoming_sleep,
            )  # fmt: skip

        def give_up(state: tenacity.RetryCallState) -> None:
            raise UsersExtractError(
                f"page {page} of {self.pages} failed after {self.max_attempts} attempts: GET {public_url(url)}: "
                f"last {state.outcome.result().reason}"
            )

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_result(lambda outcome: isinstance(outcome, _Failure)),
            stop=tenacity.stop_after_attempt(self.max_attempts),
            wait=wait,
            before_sleep=log_retry,
            retry_error_callback=give_up,
            reraise=True,
        )
        body, entries = retrying(self.attempt, url, page)
        return body, entries, retrying.statistics["attempt_number"]

    def attempt(self, url: str, page: int) -> tuple[bytes, int] | _Failure:
        """One request: ``(body, entries)`` on success, a ``_Failure`` to retry, or ``UsersExtractError``."""
        import requests

        try:
            response = self.session.get(url, timeout=self.timeout_s, headers={"Accept": "application/json"})
        except requests.Timeout:
            return _Failure(f"no response within {self.timeout_s:g} s (timeout)")
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            return _Failure(f"connection error ({type(exc).__name__})")
        except requests.RequestException as exc:
            raise UsersExtractError(f"page {page}: GET {public_url(url)} failed: {type(exc).__name__}") from None
        status = f"HTTP {response.status_code} {response.reason}".strip()
        if response.status_code == 429 or response.status_code >= 500:
            return _Failure(status, parse_retry_after(response.headers.get("Retry-After")))
        if response.status_code >= 400:
            raise UsersExtractError(f"page {page}: GET {public_url(url)} answered {status}; not retried")
        if response.status_code != 200:
            return _Failure(f"unexpected {status}")
        try:
            entries = validate_page(response.content, page=page, page_size=self.page_size, seed=self.seed)
        except InvalidResponse as exc:
            return _Failure(f"invalid response ({status}): {exc}")
        return response.content, entries


def _lines(body: bytes) -> int:
    """Lines of a landed file, counted like ``include.landing.files.file_stats``."""
    return body.count(b"\n") + (1 if body and not body.endswith(b"\n") else 0)


def _remove_stale(client: Any, bucket: str, prefix: str, keep: set[str]) -> int:
    """Delete the objects under ``prefix`` that this run did not write; return how many."""
    stale = [
        item["Key"]
        for listing in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for item in listing.get("Contents", [])
        if item["Key"] not in keep
    ]
    for start in range(0, len(stale), 1000):
        batch = [{"Key": key} for key in stale[start : start + 1000]]
        client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
    if stale:
        logger.info("removed stale objects of an earlier run: %s", ", ".join(stale))
    return len(stale)

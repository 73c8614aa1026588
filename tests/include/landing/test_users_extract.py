"""Landing users from the RandomUser-compatible sample server into S3 (moto): pages, manifest, retries, failures."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from devtools.samples.users import Faults, page_body, serve_users, users_page
from include.landing.users import (
    UsersExtractError,
    extract_users,
    page_url,
    parse_retry_after,
    public_url,
    retry_delay,
    validate_page,
)

DS = "2026-11-20"
PREFIX = f"users/ds={DS}/"
SEED = f"lakehouse-{DS}"  # the default seed of a run
FAST = {"backoff_s": 0.001, "max_backoff_s": 0.01}  # retries without waiting


def landed(client) -> dict[str, bytes]:
    listing = client.list_objects_v2(Bucket="landing", Prefix=PREFIX).get("Contents", [])
    return {item["Key"]: client.get_object(Bucket="landing", Key=item["Key"])["Body"].read() for item in listing}


def page_keys(pages: int) -> list[str]:
    return [f"{PREFIX}page-{page:04d}.json" for page in range(1, pages + 1)]


SECRETS = ("password", "salt", "md5", "sha1", "sha256")


def without_secrets(body: bytes):
    """The served page as a document, minus every entry's login secrets: what must land."""
    document = json.loads(body)
    for entry in document["results"]:
        if isinstance(entry, dict) and isinstance(entry.get("login"), dict):
            entry["login"] = {k: v for k, v in entry["login"].items() if k not in SECRETS}
    return document


def documents(objects: dict[str, bytes], keys: list[str]) -> list:
    return [json.loads(objects[key]) for key in keys]


# --- pure helpers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("attempt", range(1, 12))
@pytest.mark.parametrize("jitter", [0.0, 0.37, 1.0])
def test_backoff_doubles_with_jitter_and_is_capped(attempt, jitter):
    ceiling = min(0.5 * 2 ** (attempt - 1), 8.0)
    delay = retry_delay(attempt, backoff_s=0.5, max_backoff_s=8.0, jitter=jitter)
    assert ceiling / 2 <= delay <= ceiling <= 8.0
    assert delay == pytest.approx(ceiling / 2 * (1 + jitter))


def test_retry_after_wins_but_is_capped():
    assert retry_delay(1, backoff_s=1, max_backoff_s=30, retry_after=12, jitter=0) == 12
    assert retry_delay(4, backoff_s=1, max_backoff_s=30, retry_after=0, jitter=1) == 0
    assert retry_delay(1, backoff_s=1, max_backoff_s=30, retry_after=3600, jitter=0) == 30


def test_parse_retry_after():
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=90), usegmt=True), now) == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None and parse_retry_after("") is None


def test_page_url_and_public_url():
    url = page_url("https://u:pw@api.example/api/?apikey=s3cr3t&page=9&x=1", page=3, page_size=100, seed="s")
    assert url == "https://u:pw@api.example/api/?apikey=s3cr3t&x=1&results=100&page=3&seed=s"
    assert public_url(url) == "https://api.example/api/?apikey=***&x=1&results=100&page=3&seed=s"
    assert page_url("http://h/api/", page=None, page_size=5, seed="s", nationalities="us,gb") == (
        "http://h/api/?results=5&seed=s&nat=us%2Cgb"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html></html>", "not JSON"),
        (b"[]", "JSON list, not an object"),
        (b'{"info": {}}', "no `results` list"),
        (b'{"results": [{}], "info": {"page": 1, "seed": "s"}}', "`results` has 1 entries, expected 2"),
        (b'{"results": [1, 2]}', "no `info` object"),
        (b'{"results": [1, 2], "info": {"page": "1", "seed": "s"}}', "info.page is '1', expected 1"),
        (b'{"results": [1, 2], "info": {"page": 1, "seed": "t"}}', "info.seed is 't', expected 's'"),
    ],
)
def test_validate_page_refuses(body, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        validate_page(body, page=1, page_size=2, seed="s")


def test_validate_page_counts_entries_whatever_they_are():
    body = b'{"results": [{"a": 1}, null, "x"], "info": {"page": 4, "seed": "s", "results": 3}}'
    assert validate_page(body, page=4, page_size=3, seed="s") == 3


# --- extraction --------------------------------------------------------------------------------------------


def test_pages_land_as_received_with_a_manifest(landing_s3, caplog):
    caplog.set_level(logging.INFO)
    with serve_users() as url:
        manifest = extract_users(url, DS, results=300, page_size=100, seed=None, nationalities=None, **FAST)
    objects = landed(landing_s3)
    bodies = [page_body(SEED, page, 100) for page in (1, 2, 3)]
    assert sorted(objects) == sorted([*page_keys(3), f"{PREFIX}_manifest.json"])
    assert documents(objects, page_keys(3)) == [without_secrets(body) for body in bodies]
    assert json.loads(objects[f"{PREFIX}_manifest.json"]) == manifest
    assert {k: manifest[k] for k in ("domain", "ds", "object_key", "records", "pages", "page_size", "seed")} == {
        "domain": "users",
        "ds": DS,
        "object_key": PREFIX,
        "records": 300,
        "pages": 3,
        "page_size": 100,
        "seed": SEED,
    }
    assert manifest["source"] == f"{url}?results=100&seed={SEED}"
    stored = [objects[key] for key in page_keys(3)]
    assert manifest["bytes"] == sum(map(len, stored))
    assert manifest["sha256"] == hashlib.sha256(b"".join(stored)).hexdigest()
    assert manifest["lines"] == 3 and manifest["attempts"] == 3 and manifest["status"] == "succeeded"
    # What was received is on record: its size and checksum, and how many secret values were cut out of it.
    cut = [sum(len(set(e["login"]) & set(SECRETS)) for e in users_page(SEED, p, 100) if isinstance(e, dict)
               and isinstance(e.get("login"), dict)) for p in (1, 2, 3)]  # fmt: skip
    assert min(cut) > 0
    assert manifest["removed"] == {
        "fields": [f"login.{name}" for name in SECRETS],
        "values": sum(cut),
        "bytes": sum(map(len, bodies)),
        "sha256": hashlib.sha256(b"".join(bodies)).hexdigest(),
    }
    expected_objects = [
        {
            "key": k,
            "bytes": len(landed_body),
            "records": 100,
            "removed": n,
            "received_bytes": len(body),
            "received_sha256": hashlib.sha256(body).hexdigest(),
        }
        for k, landed_body, body, n in zip(page_keys(3), stored, bodies, cut, strict=True)
    ]
    assert manifest["objects"] == expected_objects
    assert manifest["nationalities"] is None and manifest["downloader"] == "python-requests"
    started, finished = datetime.fromisoformat(manifest["started_at"]), datetime.fromisoformat(manifest["finished_at"])
    assert started.utcoffset() == timedelta(0) and started <= finished and manifest["duration_s"] >= 0
    # The fields the Spark jobs require of a manifest.
    from lakehouse_jobs.ops import MANIFEST_FIELDS

    assert set(MANIFEST_FIELDS) <= set(manifest)
    # Not a single secret of a user reaches the log.
    secrets = [e["login"][k] for p in (1, 2, 3) for e in users_page(SEED, p, 100) if isinstance(e, dict)
               for k in ("salt", "md5", "sha1", "sha256") if k in e["login"]]  # fmt: skip
    assert secrets and not any(secret in caplog.text for secret in secrets)
    # ... nor any landed object: no login keeps a secret key, and no hash or salt value is anywhere in the bytes.
    logins = [e["login"] for doc in documents(objects, page_keys(3)) for e in doc["results"]
              if isinstance(e, dict) and isinstance(e.get("login"), dict)]  # fmt: skip
    assert logins and not [login for login in logins if set(login) & set(SECRETS)]
    landed_text = b"".join(objects.values()).decode("utf-8")
    assert not [secret for secret in secrets if secret in landed_text]


def test_nationalities_and_an_explicit_seed(landing_s3):
    with serve_users() as url:
        manifest = extract_users(url, DS, results=40, page_size=20, seed="mine", nationalities="fr,de", **FAST)
    objects = landed(landing_s3)
    assert documents(objects, page_keys(2)) == [without_secrets(page_body("mine", p, 20, nat="fr,de")) for p in (1, 2)]
    assert manifest["source"].endswith("?results=20&seed=mine&nat=fr%2Cde")


def test_rerun_lands_the_same_files_and_removes_stale_ones(landing_s3):
    with serve_users() as url:
        extract_users(url, DS, results=400, page_size=100, seed=None, nationalities=None, **FAST)
        first = landed(landing_s3)
        again = extract_users(url, DS, results=400, page_size=100, seed=None, nationalities=None, **FAST)
        assert {k: v for k, v in landed(landing_s3).items() if not k.endswith("_manifest.json")} == {
            k: v for k, v in first.items() if not k.endswith("_manifest.json")
        }
        landing_s3.put_object(Bucket="landing", Key=f"{PREFIX}stray.json", Body=b"{}")
        smaller = extract_users(url, DS, results=300, page_size=100, seed=None, nationalities=None, **FAST)
    objects = landed(landing_s3)
    assert sorted(objects) == sorted([*page_keys(3), f"{PREFIX}_manifest.json"])  # page 4 and the stray are gone
    assert [objects[k] for k in page_keys(3)] == [first[k] for k in page_keys(3)]
    assert (again["records"], smaller["records"]) == (400, 300)


def test_retries_429_and_5xx_honouring_retry_after_capped(landing_s3, caplog):
    caplog.set_level(logging.WARNING)
    log = []
    faults = Faults(errors={1: [429, 500], 3: [503, 502, 504]}, retry_after="3600")
    with serve_users(faults=faults, log=log) as url:
        manifest = extract_users(url, DS, results=300, page_size=100, seed=None, nationalities=None, **FAST)
    assert [(r.page, r.status) for r in log] == [
        (1, 429), (1, 500), (1, 200), (2, 200), (3, 503), (3, 502), (3, 504), (3, 200),
    ]  # fmt: skip
    assert manifest["attempts"] == 8 and manifest["records"] == 300
    assert documents(landed(landing_s3), page_keys(3)) == [without_secrets(page_body(SEED, p, 100)) for p in (1, 2, 3)]
    delays = [float(d) for d in re.findall(r"retrying in ([0-9.]+) s", caplog.text)]
    assert len(delays) == 5 and max(delays) <= FAST["max_backoff_s"]  # Retry-After: 3600 capped
    assert "page 1/3 attempt 1/5 failed: HTTP 429" in caplog.text


def test_retries_a_timeout(landing_s3):
    log = []
    with serve_users(faults=Faults(slow={2: 1}, slow_s=2.0), log=log) as url:
        manifest = extract_users(
            url, DS, results=200, page_size=100, seed=None, nationalities=None, timeout_s=0.2, **FAST
        )
    assert manifest["attempts"] == 3
    assert documents(landed(landing_s3), page_keys(2)) == [without_secrets(page_body(SEED, p, 100)) for p in (1, 2)]


def test_a_page_never_ok_fails_the_run_without_a_manifest(landing_s3):
    log = []
    with serve_users(log=log) as url:
        extract_users(url, DS, results=300, page_size=100, seed=None, nationalities=None, **FAST)
    assert f"{PREFIX}_manifest.json" in landed(landing_s3)
    with serve_users(faults=Faults(broken={2: 500}), log=log) as url:
        secret_url = url.replace("http://", "http://reader:pa55word@") + "?apikey=s3cr3t"
        with pytest.raises(UsersExtractError) as failure:
            extract_users(
                secret_url, DS, results=300, page_size=100, seed=None, nationalities=None, max_attempts=3, **FAST
            )
    message = str(failure.value)
    assert message.startswith("page 2 of 3 failed after 3 attempts: GET http://127.0.0.1:")
    assert "/api/?apikey=***&results=100&page=2&seed=lakehouse-2026-11-20: last HTTP 500" in message
    assert "s3cr3t" not in message and "pa55word" not in message
    assert f"{PREFIX}_manifest.json" not in landed(landing_s3)  # the earlier run's manifest is gone too
    assert [(r.page, r.status) for r in log[-4:]] == [(1, 200), (2, 500), (2, 500), (2, 500)]


def test_other_4xx_fail_at_once(landing_s3):
    log = []
    refused = pytest.raises(UsersExtractError, match=r"page 1: GET .* answered HTTP 404 Not Found; not retried")
    with serve_users(faults=Faults(broken={1: 404}), log=log) as url, refused:
        extract_users(url, DS, results=100, page_size=100, seed=None, nationalities=None, **FAST)
    assert len(log) == 1
    assert landed(landing_s3) == {}


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("short", "`results` has 99 entries, expected 100"),
        ("wrong_page", "info.page is 2, expected 1"),
        ("wrong_seed", "info.seed is '0123456789abcdef', expected 'lakehouse-2026-11-20'"),
        ("not_json", "body is not JSON"),
        ("not_object", "body is a JSON list, not an object"),
        ("no_results", "body has no `results` list"),
    ],
)
def test_invalid_responses_are_retried_then_fail(landing_s3, kind, reason):
    log = []
    with serve_users(faults=Faults(invalid={1: kind}), log=log) as url, pytest.raises(UsersExtractError) as failure:
        extract_users(url, DS, results=100, page_size=100, seed=None, nationalities=None, max_attempts=2, **FAST)
    assert "page 1 of 1 failed after 2 attempts" in str(failure.value)
    assert f"last invalid response (HTTP 200 OK): {reason}" in str(failure.value)
    assert len(log) == 2 and landed(landing_s3) == {}


def test_connection_errors_are_retried_then_fail(landing_s3):
    from devtools.local_stack import free_port

    url = f"http://127.0.0.1:{free_port()}/api/"
    with pytest.raises(
        UsersExtractError, match=r"failed after 2 attempts: .*: last connection error \(ConnectionError\)"
    ):
        extract_users(url, DS, results=10, page_size=10, seed=None, nationalities=None, max_attempts=2, **FAST)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"results": 1000, "page_size": 300}, "results (1000) must be a positive multiple of page_size (300)"),
        ({"results": 0, "page_size": 10}, "results (0) must be a positive multiple of page_size (10)"),
        ({"results": 10, "page_size": 0}, "page_size must be within 1..5000"),
        ({"results": 10000, "page_size": 5001}, "page_size must be within 1..5000"),
        ({"results": 10, "page_size": 10, "max_attempts": 0}, "max_attempts must be >= 1"),
        ({"results": 10, "page_size": 10, "timeout_s": 0}, "timeout_s must be > 0"),
        ({"results": 10, "page_size": 10, "ds": "20261120"}, "ds must be YYYY-MM-DD"),
        ({"results": 10, "page_size": 10, "base_url": "ftp://h/api/"}, "base_url must be an http"),
    ],
)
def test_arguments_are_checked_before_any_request(kwargs, message):
    args = {"base_url": "http://127.0.0.1:9/api/", "ds": DS, "seed": None, "nationalities": None, **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        extract_users(args.pop("base_url"), args.pop("ds"), **args)

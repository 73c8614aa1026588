"""The RandomUser-compatible generator and server: deterministic pages, randomuser.me's parameter rules, faults."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import requests

from devtools.samples.users import (
    DEFECTS,
    NATIONALITIES,
    Faults,
    UserOptions,
    page_body,
    serve_users,
    users_page,
)

ROOT = Path(__file__).resolve().parents[3]
SEED = "lakehouse-2026-11-20"
ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@pytest.fixture(scope="module")
def api():
    with serve_users() as base_url:
        yield base_url


def get(url: str, **params) -> requests.Response:
    return requests.get(url, params=params, timeout=10)


def entries(pages: int, size: int, seed: str = SEED, options: UserOptions | None = None) -> list:
    return [e for page in range(1, pages + 1) for e in users_page(seed, page, size, options=options)]


# --- generator -------------------------------------------------------------------------------------------


def test_same_request_same_bytes_other_seed_other_users():
    assert page_body(SEED, 3, 50) == page_body(SEED, 3, 50)
    assert users_page(SEED, 3, 50) == json.loads(page_body(SEED, 3, 50))["results"]
    ids = {e["login"].get("uuid") for e in users_page(SEED, 1, 50) if isinstance(e, dict)}
    other = {e["login"].get("uuid") for e in users_page("another-seed", 1, 50) if isinstance(e, dict)}
    assert len(ids) > 40 and len(ids & other) < 5  # only members of the returning population may recur


def test_valid_users_have_the_randomuser_1_4_shape():
    options = UserOptions(bad_ratio=0, duplicate_ratio=0)
    users = entries(4, 100, options=options)
    assert all(isinstance(u, dict) for u in users)
    for user in users:
        assert set(user) == {
            "gender", "name", "location", "email", "login", "dob", "registered", "phone", "cell", "id", "picture",
            "nat",
        }  # fmt: skip
        assert user["gender"] in ("male", "female") and user["nat"] in NATIONALITIES
        assert set(user["login"]) == {"uuid", "username", "password", "salt", "md5", "sha1", "sha256"}
        assert UUID.match(user["login"]["uuid"])
        assert ISO_Z.match(user["dob"]["date"]) and ISO_Z.match(user["registered"]["date"])
        assert user["dob"]["age"] == options.reference_date.year - int(user["dob"]["date"][:4])
        coordinates = user["location"]["coordinates"]
        assert abs(float(coordinates["latitude"])) <= 90 and abs(float(coordinates["longitude"])) <= 180
        assert isinstance(coordinates["latitude"], str) and isinstance(coordinates["longitude"], str)
        assert re.match(r"^[a-z.-]+@example\.com$", user["email"]), user["email"]
        assert set(user["location"]["street"]) == {"number", "name"}
    # randomuser.me mixes integer and string postcodes.
    assert {type(u["location"]["postcode"]) for u in users} == {int, str}
    assert len({u["login"]["uuid"] for u in users}) > 380


def test_every_defect_and_repeats_show_up():
    found = entries(10, 200)
    objects = [e for e in found if isinstance(e, dict)]
    assert 0 < len(found) - len(objects) < 40  # not_an_object entries
    no_uuid = [e for e in objects if not e["login"].get("uuid")]
    bad_email = [e for e in objects if "@" not in e["email"] or e["email"].endswith("@")]
    bad_age = [e for e in objects if not isinstance(e["dob"]["age"], int) or not 0 <= e["dob"]["age"] <= 150]
    bad_lat = [e for e in objects if not re.match(r"^-?\d+\.\d+$", e["location"]["coordinates"]["latitude"])]
    assert no_uuid and bad_email and bad_age and bad_lat
    assert {"1985-02-30T10:00:00.000Z", "not a date", "2990-01-01T00:00:00.000Z"} & {e["dob"]["date"] for e in objects}
    texts = Counter(json.dumps(e, sort_keys=True) for e in found)
    assert sum(n - 1 for n in texts.values() if n > 1) > 20  # entries repeated byte for byte
    # A repeat may come from the previous page.
    page_one = {json.dumps(e, sort_keys=True) for e in users_page(SEED, 1, 200) if isinstance(e, dict)}
    page_two = [json.dumps(e, sort_keys=True) for e in users_page(SEED, 2, 200) if isinstance(e, dict)]
    assert any(text in page_one for text in page_two)
    assert set(DEFECTS) == {
        "not_an_object", "missing_user_id", "bad_email", "bad_date_of_birth", "bad_age", "bad_coordinates",
    }  # fmt: skip


def test_returning_users_keep_identity_and_move():
    options = UserOptions(bad_ratio=0, duplicate_ratio=0, returning_ratio=0.5, population=50)
    day1 = {u["login"]["uuid"]: u for u in users_page("day-1", 1, 100, options=options)}
    day2 = {u["login"]["uuid"]: u for u in users_page("day-2", 1, 100, options=options)}
    again = set(day1) & set(day2)
    assert len(again) >= 10
    for user_id in again:
        first, second = day1[user_id], day2[user_id]
        for stable in ("name", "login", "dob", "registered", "email", "gender", "picture"):
            assert first[stable] == second[stable]
    assert any(day1[u]["location"] != day2[u]["location"] for u in again)


def test_options_are_checked():
    with pytest.raises(ValueError, match="ratios"):
        UserOptions(bad_ratio=1.5)
    with pytest.raises(ValueError, match="population"):
        UserOptions(population=0)


# --- server: randomuser.me's answers ---------------------------------------------------------------------


def test_server_answers_like_randomuser(api):
    response = get(api, results=25, page=2, seed=SEED)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.content == page_body(SEED, 2, 25)
    assert response.json()["info"] == {"seed": SEED, "results": 25, "page": 2, "version": "1.4"}


@pytest.mark.parametrize(
    ("query", "info"),
    [
        ("results=0&seed=s", {"results": 0, "page": 1}),
        ("results=5001&seed=s", {"results": 1, "page": 1}),  # above the limit: 1
        ("results=-2&seed=s", {"results": 1, "page": 1}),
        ("results=ten&seed=s", {"results": 1, "page": 1}),
        ("seed=s", {"results": 1, "page": 1}),
        ("results=3&results=4&seed=s", {"results": 4, "page": 1}),  # the last value wins
        ("results=2&page=0&seed=s", {"results": 2, "page": 1}),
        ("results=2&page=10001&seed=s", {"results": 2, "page": 1}),
        ("results=2&page=x&seed=s", {"results": 2, "page": 1}),
        ("results=2&page=7&seed=s", {"results": 2, "page": 7}),
    ],
)
def test_parameter_rules(api, query, info):
    document = requests.get(f"{api}?{query}", timeout=10).json()
    assert {k: document["info"][k] for k in info} == info
    assert len(document["results"]) == info["results"]
    assert document["results"] == users_page("s", info["page"], info["results"])


def test_nationalities(api):
    users = get(api, results=60, seed="n", nat="us,GB,fr").json()["results"]
    assert users == users_page("n", 1, 60, nat="us,GB,fr")
    assert {u["nat"] for u in users if isinstance(u, dict)} == {"US", "GB", "FR"}
    # An unknown code makes randomuser.me ignore the filter.
    assert get(api, results=60, seed="n", nat="us,zz").json()["results"] == users_page("n", 1, 60)
    # An 18-character seed carries a nationality index (hex) in its last two characters.
    nat = NATIONALITIES[int("0b", 16)]
    seeded = get(api, results=10, seed="0123456789abcdef0b").json()
    assert seeded["info"]["seed"] == "0123456789abcdef0b"
    assert {u["nat"] for u in seeded["results"] if isinstance(u, dict)} == {nat}


def test_no_seed_gets_a_random_one(api):
    first, second = (get(api, results=2).json()["info"]["seed"] for _ in range(2))
    assert re.match(r"^[0-9a-f]{16}$", first) and first != second
    assert get(api, results=2, seed=first).json()["results"] == users_page(first, 1, 2)


def test_other_paths_are_not_found(api):
    response = requests.get(api.replace("/api/", "/nothing"), timeout=10)
    assert response.status_code == 404
    assert requests.get(api.rstrip("/") + "/1.4/?results=1&seed=s", timeout=10).json()["results"] == users_page("s")


# --- server: faults ----------------------------------------------------------------------------------------


def test_errors_then_success_with_retry_after():
    log = []
    faults = Faults(errors={2: [429, 500, 503]}, retry_after="7")
    with serve_users(faults=faults, log=log) as url:
        statuses = [get(url, results=3, page=2, seed="f") for _ in range(4)]
        assert [r.status_code for r in statuses] == [429, 500, 503, 200]
        assert statuses[0].headers["Retry-After"] == "7" and "Retry-After" not in statuses[1].headers
        assert statuses[2].headers["Retry-After"] == "7"
        assert statuses[3].content == page_body("f", 2, 3)
        assert get(url, results=3, page=1, seed="f").status_code == 200  # other pages unaffected
    assert [(r.page, r.status) for r in log] == [(2, 429), (2, 500), (2, 503), (2, 200), (1, 200)]


def test_every_page_errors_and_broken_page():
    with serve_users(faults=Faults(every_page=[500], broken={3: 502})) as url:
        assert [get(url, results=1, page=1, seed="f").status_code for _ in range(2)] == [500, 200]
        assert [get(url, results=1, page=3, seed="f").status_code for _ in range(5)] == [502] * 5


def test_slow_response_times_a_client_out():
    with serve_users(faults=Faults(slow={1: 1}, slow_s=2.0)) as url:
        with pytest.raises(requests.Timeout):
            requests.get(url, params={"results": 1, "seed": "f"}, timeout=0.2)
        assert get(url, results=1, seed="f").content == page_body("f", 1, 1)


@pytest.mark.parametrize(
    ("kind", "check"),
    [
        ("not_json", lambda r: r.content.startswith(b"<html>")),
        ("not_object", lambda r: r.json() == []),
        ("short", lambda r: len(r.json()["results"]) == 4),
        ("wrong_page", lambda r: r.json()["info"]["page"] == 2),
        ("wrong_seed", lambda r: r.json()["info"]["seed"] != "f"),
        ("no_results", lambda r: "results" not in r.json()),
    ],
)
def test_invalid_responses(kind, check):
    with serve_users(faults=Faults(invalid={1: kind})) as url:
        response = get(url, results=5, page=1, seed="f")
        assert response.status_code == 200 and check(response)


def test_command_line_serves_the_api():
    from devtools.local_stack import free_port, wait_for_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.samples.users", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        response = get(f"http://127.0.0.1:{port}/api/", results=5, seed=SEED)
        assert response.content == page_body(SEED, 1, 5)
    finally:
        process.terminate()
        process.wait(timeout=10)

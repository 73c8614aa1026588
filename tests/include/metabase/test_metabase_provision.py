"""Provisioning against the fake Metabase: creation, idempotency, targeted updates, setup, health timeout."""

from __future__ import annotations

import copy
import json
import shutil
import socket
from pathlib import Path

import pytest
import requests
import yaml

from devtools.fake_metabase import ADMIN_EMAIL, ADMIN_PASSWORD
from include.metabase.client import MetabaseError, MetabaseUnavailable
from include.metabase.provision import database_from_env, main, provision
from include.metabase.specs import DASHBOARDS_DIR, SpecError

# What the dashboard files ask for, read straight from the YAML rather than through the code under test.
SPECS = {path.name: yaml.safe_load(path.read_text()) for path in sorted(DASHBOARDS_DIR.glob("*.yml"))}
CARDS = {card["name"]: card for spec in SPECS.values() for card in spec["cards"]}


def expected_variables(spec: dict, tags: dict) -> tuple[dict, list]:
    """The template tags and card parameters the YAML's ``parameters`` ask for (tag ids taken from ``tags``)."""
    widget = {"number": "number/=", "date": "date/single", "text": "string/="}
    wanted_tags, wanted_parameters = {}, []
    for item in spec.get("parameters", []):
        name = item["name"]
        # YAML reads an unquoted 2026-01-01 as a date: Metabase gets the ISO text.
        default = item["default"].isoformat() if item["type"] == "date" else item["default"]
        tag_id = tags.get(name, {}).get("id")
        wanted_tags[name] = {"id": tag_id, "name": name, "display-name": item["display_name"], "type": item["type"],
                             "required": True, "default": default}  # fmt: skip
        # No "required" on the parameter: Metabase's parameter schema has no such key (the tag carries it).
        wanted_parameters.append({"id": tag_id, "type": widget[item["type"]], "name": item["display_name"],
                                  "slug": name, "target": ["variable", ["template-tag", name]],
                                  "default": default})  # fmt: skip
    return wanted_tags, wanted_parameters


def call(method: str, url: str, **kwargs) -> requests.Response:
    """A direct request to the fake, bypassing the client."""
    return requests.request(method, url, timeout=5, **kwargs)


def run(fake, database, dashboards_dir=DASHBOARDS_DIR, **options):
    options.setdefault("health_timeout_s", 5.0)
    options.setdefault("poll_interval_s", 0.05)
    return provision(fake.url, ADMIN_EMAIL, ADMIN_PASSWORD, database, dashboards_dir, **options)


@pytest.fixture
def specs_copy(tmp_path: Path) -> Path:
    """A writable copy of the dashboard files."""
    target = tmp_path / "dashboards"
    shutil.copytree(DASHBOARDS_DIR, target)
    return target


def edit_card(directory: Path, card_name: str, **changes) -> None:
    for path in directory.glob("*.yml"):
        spec = yaml.safe_load(path.read_text())
        for card in spec["cards"]:
            if card["name"] == card_name:
                card.update(changes)
                path.write_text(yaml.safe_dump(spec, sort_keys=False))
                return
    raise AssertionError(f"no card {card_name!r}")


def test_first_run_creates_everything(fake_metabase, analytics_details):
    summary = run(fake_metabase, analytics_details)

    assert summary.updated == [] and summary.unchanged == []
    assert sorted(summary.created) == sorted(
        ["database 'analytics'", "collection 'Lakehouse'"]
        + [f"card {name!r}" for name in CARDS]
        + [f"dashboard {spec['name']!r}" for spec in SPECS.values()]
    )
    [database] = fake_metabase.databases.values()
    assert database["engine"] == "postgres"
    assert database["details"] == {**analytics_details, "ssl": False}
    [collection] = fake_metabase.collections.values()
    assert collection["name"] == "Lakehouse"

    cards = {card["name"]: card for card in fake_metabase.cards.values()}
    assert set(cards) == set(CARDS)
    for name, card in cards.items():
        assert card["collection_id"] == collection["id"]
        assert card["display"] == CARDS[name]["display"]
        assert card["visualization_settings"] == CARDS[name].get("visualization_settings", {})
        tags = card["dataset_query"]["native"]["template-tags"]
        assert card["dataset_query"] == {
            "database": database["id"],
            "type": "native",
            "native": {"query": CARDS[name]["sql"].strip(), "template-tags": tags},
        }
        assert (tags, card["parameters"]) == expected_variables(CARDS[name], tags)

    dashboards = {d["name"]: d for d in fake_metabase.dashboards.values()}
    assert set(dashboards) == {spec["name"] for spec in SPECS.values()}
    for spec in SPECS.values():
        dashboard = dashboards[spec["name"]]
        assert dashboard["collection_id"] == collection["id"]
        assert dashboard["description"] == spec["description"]
        placed = {
            fake_metabase.cards[d["card_id"]]["name"]: {k: d[k] for k in ("row", "col", "size_x", "size_y")}
            for d in dashboard["dashcards"]
        }
        assert placed == {card["name"]: card["layout"] for card in spec["cards"]}


def test_second_run_changes_nothing(fake_metabase, analytics_details):
    run(fake_metabase, analytics_details)
    state, writes = fake_metabase.state(), len(fake_metabase.writes())

    summary = run(fake_metabase, analytics_details)

    assert not summary.changed
    assert len(summary.unchanged) == 2 + len(CARDS) + len(SPECS)
    assert fake_metabase.state() == state
    assert len(fake_metabase.writes()) == writes


def test_changed_sql_updates_only_that_card(fake_metabase, analytics_details, specs_copy):
    run(fake_metabase, analytics_details, specs_copy)
    card_ids = {card["name"]: card["id"] for card in fake_metabase.cards.values()}
    before, writes = fake_metabase.state(), len(fake_metabase.writes())
    new_sql = "SELECT lang, tweets FROM marts.tweet_languages ORDER BY tweets DESC LIMIT 5"
    edit_card(specs_copy, "Top languages", sql=new_sql)

    summary = run(fake_metabase, analytics_details, specs_copy)

    assert summary.created == []
    assert summary.updated == ["card 'Top languages'"]
    assert fake_metabase.writes()[writes:] == [("PUT", f"/api/card/{card_ids['Top languages']}")]
    after = fake_metabase.state()
    assert after["cards"][card_ids["Top languages"]]["dataset_query"]["native"]["query"] == new_sql
    # Everything else is exactly as before.
    del before["cards"][card_ids["Top languages"]], after["cards"][card_ids["Top languages"]]
    assert after == before


def test_moved_card_updates_only_the_dashboard_and_keeps_dashcard_ids(fake_metabase, analytics_details, specs_copy):
    run(fake_metabase, analytics_details, specs_copy)
    [dashboard] = [d for d in fake_metabase.dashboards.values() if d["name"] == "Tweets activity"]
    dashcard_ids = sorted(d["id"] for d in dashboard["dashcards"])
    writes = len(fake_metabase.writes())
    edit_card(specs_copy, "Tweets per hour", layout={"row": 3, "col": 0, "size_x": 24, "size_y": 5})

    summary = run(fake_metabase, analytics_details, specs_copy)

    assert summary.updated == ["dashboard 'Tweets activity'"]
    assert fake_metabase.writes()[writes:] == [("PUT", f"/api/dashboard/{dashboard['id']}")]
    assert sorted(d["id"] for d in dashboard["dashcards"]) == dashcard_ids
    [moved] = [d for d in dashboard["dashcards"] if fake_metabase.cards[d["card_id"]]["name"] == "Tweets per hour"]
    assert moved["size_y"] == 5


def test_edits_made_in_metabase_are_reverted_and_other_objects_kept(fake_metabase, analytics_details):
    run(fake_metabase, analytics_details)
    [card] = [c for c in fake_metabase.cards.values() if c["name"] == "Tweets per day"]
    card["display"] = "line"
    collection_id = card["collection_id"]
    session = call(
        "POST", f"{fake_metabase.url}/api/session", json={"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    mine = call(
        "POST",
        f"{fake_metabase.url}/api/card",
        headers={"X-Metabase-Session": session.json()["id"]},
        json={
            "name": "My own question",
            "display": "table",
            "visualization_settings": {},
            "collection_id": collection_id,
            "dataset_query": {
                "database": card["dataset_query"]["database"],
                "type": "native",
                "native": {"query": "SELECT 1"},
            },
        },
    ).json()

    summary = run(fake_metabase, analytics_details)

    assert summary.updated == ["card 'Tweets per day'"]
    assert card["display"] == "bar"
    assert fake_metabase.cards[mine["id"]]["name"] == "My own question"


def test_changed_database_details_are_updated(fake_metabase, analytics_details):
    run(fake_metabase, analytics_details)
    summary = run(fake_metabase, {**analytics_details, "host": "elsewhere"})
    assert summary.updated == ["database 'analytics'"]
    [database] = fake_metabase.databases.values()
    assert database["details"]["host"] == "elsewhere"


def test_first_time_setup_when_no_user_exists(make_fake, analytics_details):
    fake = make_fake(has_user_setup=False)

    summary = run(fake, analytics_details)

    assert f"admin user {ADMIN_EMAIL!r}" in summary.created
    assert fake.users == {ADMIN_EMAIL: ADMIN_PASSWORD}
    assert ("POST", "/api/setup") in fake.requests and ("POST", "/api/session") not in fake.requests
    assert len(fake.cards) == len(CARDS)
    # Later runs log in instead.
    assert not run(fake, analytics_details).changed
    assert ("POST", "/api/session") in fake.requests


def test_wrong_password_fails_clearly(fake_metabase, analytics_details):
    with pytest.raises(MetabaseError, match="POST /api/session -> HTTP 401"):
        provision(fake_metabase.url, ADMIN_EMAIL, "wrong", analytics_details, health_timeout_s=1)


def test_waits_for_health(make_fake, analytics_details):
    fake = make_fake(unhealthy_polls=3)
    run(fake, analytics_details)
    assert fake.requests[:4] == [("GET", "/api/health")] * 4


def test_health_timeout_gives_a_clear_error(make_fake, analytics_details):
    fake = make_fake(healthy=False)
    with pytest.raises(MetabaseUnavailable, match=r"not healthy after 0s \(last answer: HTTP 503"):
        run(fake, analytics_details, health_timeout_s=0.3)
    assert fake.writes() == []


def test_unreachable_metabase_times_out(analytics_details):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(MetabaseUnavailable, match="ConnectionError"):
        provision(f"http://127.0.0.1:{port}", ADMIN_EMAIL, ADMIN_PASSWORD, analytics_details, health_timeout_s=0.2)


def test_invalid_spec_stops_before_any_request(fake_metabase, analytics_details, specs_copy):
    edit_card(specs_copy, "Recent loads", sql="DELETE FROM marts.pipeline_loads")
    with pytest.raises(SpecError, match="card 'Recent loads'"):
        run(fake_metabase, analytics_details, specs_copy)
    assert fake_metabase.requests == []


def test_missing_database_field_is_named(fake_metabase, analytics_details):
    with pytest.raises(ValueError, match="missing password"):
        run(fake_metabase, {**analytics_details, "password": ""})


def test_fake_rejects_unknown_endpoints_and_missing_sessions(fake_metabase):
    assert call("GET", f"{fake_metabase.url}/api/user").status_code == 404
    assert call("DELETE", f"{fake_metabase.url}/api/card/1").status_code == 404
    assert call("GET", f"{fake_metabase.url}/api/database").status_code == 401
    bad = {"X-Metabase-Session": "not-a-session"}
    assert call("GET", f"{fake_metabase.url}/api/collection", headers=bad).status_code == 401


@pytest.mark.parametrize(
    "env",
    [
        {
            "ANALYTICS_DB_HOST": "analytics-host",
            "ANALYTICS_DB_PORT": "5432",
            "ANALYTICS_DB_NAME": "analytics",
            "ANALYTICS_DB_USER": "reader",
            "ANALYTICS_DB_PASSWORD": "secret",
        },
        {"AIRFLOW_CONN_ANALYTICS_POSTGRES": "postgres://reader:secret@analytics-host:5432/analytics"},
        {
            "AIRFLOW_CONN_ANALYTICS_POSTGRES": json.dumps(
                {
                    "conn_type": "postgres",
                    "host": "analytics-host",
                    "port": 5432,
                    "schema": "analytics",
                    "login": "reader",
                    "password": "secret",
                }
            )
        },
    ],
    ids=["variables", "airflow-uri", "airflow-json"],
)
def test_database_from_env(env, analytics_details):
    assert database_from_env(env) == analytics_details


def test_database_from_env_needs_something():
    with pytest.raises(ValueError, match="ANALYTICS_DB_HOST"):
        database_from_env({})


def test_cli_provisions_from_the_environment(fake_metabase, capsys):
    env = {
        "METABASE_URL": fake_metabase.url,
        "MB_ADMIN_EMAIL": ADMIN_EMAIL,
        "MB_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "AIRFLOW_CONN_ANALYTICS_POSTGRES": "postgres://reader:secret@analytics-host:5432/analytics",
    }
    assert main([], env) == 0
    assert len(fake_metabase.cards) == len(CARDS)
    assert main([], env) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"0 created, 0 updated, {2 + len(CARDS) + len(SPECS)} unchanged"


def test_cli_fails_in_one_line(capsys):
    assert main([], {"METABASE_URL": "http://127.0.0.1:9"}) == 1
    assert capsys.readouterr().err.strip() == (
        "metabase provisioning failed: ValueError: environment variable MB_ADMIN_EMAIL is not set"
    )


def test_cli_check_validates_only(capsys):
    assert main(["--check"], {}) == 0
    assert "dashboard files valid" in capsys.readouterr().out


WEEKLY = "Weekly average trips in a bounding box"


def test_template_tags_are_stable_and_read_back_in_both_query_shapes(fake_metabase, analytics_details):
    run(fake_metabase, analytics_details)
    [card] = [c for c in fake_metabase.cards.values() if c["name"] == WEEKLY]
    tags = card["dataset_query"]["native"]["template-tags"]
    assert set(tags) == {"min_lon", "min_lat", "max_lon", "max_lat", "from", "to"}
    assert len({tag["id"] for tag in tags.values()}) == 6
    assert [p["id"] for p in card["parameters"]] == [tags[p["slug"]]["id"] for p in card["parameters"]]
    session = call(
        "POST", f"{fake_metabase.url}/api/session", json={"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    ).json()["id"]
    mbql5 = call("GET", f"{fake_metabase.url}/api/card/{card['id']}", headers={"X-Metabase-Session": session}).json()
    assert mbql5["dataset_query"]["stages"][0]["template-tags"] == tags
    # A second run sends the same ids: nothing to update.
    assert not run(fake_metabase, analytics_details).changed


def test_a_changed_default_updates_only_that_card(fake_metabase, analytics_details, specs_copy):
    run(fake_metabase, analytics_details, specs_copy)
    [card] = [c for c in fake_metabase.cards.values() if c["name"] == WEEKLY]
    writes = len(fake_metabase.writes())
    parameters = copy.deepcopy(CARDS[WEEKLY]["parameters"])
    parameters[0]["default"] = -74.1
    edit_card(specs_copy, WEEKLY, parameters=parameters)

    summary = run(fake_metabase, analytics_details, specs_copy)

    assert summary.updated == [f"card {WEEKLY!r}"]
    assert fake_metabase.writes()[writes:] == [("PUT", f"/api/card/{card['id']}")]
    assert card["dataset_query"]["native"]["template-tags"]["min_lon"]["default"] == -74.1
    assert card["parameters"][0]["default"] == -74.1


def test_defaults_read_back_in_another_form_are_not_a_change(fake_metabase, analytics_details):
    """Metabase may hand a number default back as text or in a list; that is the same default, not an edit."""
    run(fake_metabase, analytics_details)
    [card] = [c for c in fake_metabase.cards.values() if c["name"] == WEEKLY]
    west = CARDS[WEEKLY]["parameters"][0]["default"]
    card["dataset_query"]["native"]["template-tags"]["min_lon"]["default"] = str(west)
    card["parameters"][0]["default"] = [west]
    card["parameters"][0]["values_query_type"] = "none"  # a key Metabase adds by itself
    assert not run(fake_metabase, analytics_details).changed
    card["dataset_query"]["native"]["template-tags"]["min_lon"]["default"] = str(west - 0.5)
    assert run(fake_metabase, analytics_details).updated == [f"card {WEEKLY!r}"]


def test_maps_keep_their_settings(fake_metabase, analytics_details):
    run(fake_metabase, analytics_details)
    maps = {c["name"]: c for c in fake_metabase.cards.values() if c["display"] == "map"}
    assert set(maps) == {"Where users live", "Where trips start"}
    for name, card in maps.items():
        assert card["visualization_settings"] == CARDS[name]["visualization_settings"]
        assert card["visualization_settings"]["map.type"] == "pin"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda tags, params: tags["min_lon"].update({"name": "west"}), "must match the :name"),
        (lambda tags, params: tags["min_lon"].update({"display-name": " "}), "template-tags.min_lon"),
        (lambda tags, params: tags["min_lon"].update({"type": "float"}), "template-tags.min_lon.type"),
        (lambda tags, params: tags["min_lon"].update({"type": "float"}), "'float' is not one of"),
        (lambda tags, params: params[0].update({"required": True}), "undeclared keys ['required']"),
        (lambda tags, params: params[0].update({"target": ["variable", ["template-tag", "nope"]]}), "target"),
    ],
)
def test_the_fake_refuses_what_metabase_refuses(make_fake, analytics_details, change, message):
    fake_metabase = make_fake(expect_invalid=True)
    run(fake_metabase, analytics_details)
    [card] = [c for c in fake_metabase.cards.values() if c["name"] == WEEKLY]
    body = copy.deepcopy({k: card[k] for k in ("name", "display", "visualization_settings", "dataset_query",
                                                "parameters")})  # fmt: skip
    change(body["dataset_query"]["native"]["template-tags"], body["parameters"])
    session = call(
        "POST", f"{fake_metabase.url}/api/session", json={"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    ).json()["id"]
    response = call("POST", f"{fake_metabase.url}/api/card", headers={"X-Metabase-Session": session}, json=body)
    assert response.status_code == 400 and message in response.json()["message"]

"""The fake is as strict as Metabase v0.59: its own API description, password and e-mail rules, archived objects."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from devtools import fake_metabase as fake_module
from devtools.fake_metabase import ADMIN_EMAIL, ADMIN_PASSWORD
from include.metabase.client import MetabaseError
from include.metabase.provision import provision

WEEKLY = "Weekly average trips in a bounding box"


def run(fake, database, email=ADMIN_EMAIL, password=ADMIN_PASSWORD):
    return provision(fake.url, email, password, database, health_timeout_s=5.0, poll_interval_s=0.05)


def test_every_endpoint_the_fake_serves_is_in_metabases_description(openapi):
    for method, pattern, _ in fake_module.ROUTES:
        path = re.sub(r"\(\\d\+\)", "7", pattern)
        assert openapi.find(method, path) is not None, (method, path)


def test_the_fake_knows_the_pinned_versions_tag_types_and_parameter_keys(openapi):
    assert set(openapi.schema("metabase.lib.schema.template-tag.type")["enum"]) == fake_module.TAG_TYPES
    assert set(openapi.schema("metabase.parameters.schema.parameter")["properties"]) == fake_module.PARAMETER_KEYS


def test_keys_with_defaults_are_optional_and_everything_else_is_checked(openapi):
    # POST /api/database marks is_full_sync, is_on_demand and connection_source required: they have defaults.
    assert openapi.problems("POST", "/api/database", {}, {"name": "a", "engine": "postgres", "details": {}}) == []
    assert openapi.problems("PUT", "/api/collection/3", {}, {"description": "d"}) == []
    assert openapi.problems("POST", "/api/database", {}, {"name": "a", "details": {}}) != []  # no engine
    assert openapi.problems("POST", "/api/card", {}, {"name": "q", "display": "table"}) != []  # no query
    assert openapi.problems("GET", "/api/collection/3/items", {"models": ["card", "widget"]}, None) != []


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "problem"),
    [
        ("GET", "/api/card/7", {"legacy-mbql": ["true"], "ignore_view": ["true"]}, None, "'ignore_view'"),
        ("POST", "/api/setup", {}, {"token": "t", "user": {"email": "a@b.io", "password": "abc123x"},
                                    "prefs": {"site_name": "L", "allow_tracking": False}}, "'allow_tracking'"),
        ("PUT", "/api/card/7", {}, {"parameters": [{"id": "p", "type": "number/=", "required": True}]}, "required"),
        ("GET", "/api/card/7", {"legacy-mbql": ["maybe"]}, None, "legacy-mbql"),
    ],
    ids=["ignore_view", "allow_tracking", "parameter_required", "bad_boolean"],
)  # fmt: skip
def test_what_metabase_ignores_or_strips_is_refused(openapi, method, path, query, body, problem):
    problems = openapi.problems(method, path, query, body)
    assert len(problems) == 1 and problem in problems[0], problems


@pytest.mark.parametrize(
    ("email", "password", "message"),
    [
        (ADMIN_EMAIL, "abc1", "at least 6 characters"),
        (ADMIN_EMAIL, "no-digits-here", "at least 1 digit"),
        (ADMIN_EMAIL, "password1", "too common"),
        ("admin@localhost", ADMIN_PASSWORD, "valid email"),
        ("admin.example.com", ADMIN_PASSWORD, "valid email"),
    ],
    # ADMIN_PASSWORD is random per process: ids without it keep the collection identical on every xdist worker.
    ids=["too-short", "no-digit", "common", "no-dot-in-domain", "no-at"],
)
def test_setup_refuses_weak_passwords_and_bad_emails(make_fake, analytics_details, email, password, message):
    fake = make_fake(has_user_setup=False)
    with pytest.raises(MetabaseError, match=message) as refused:
        run(fake, analytics_details, email, password)
    assert refused.value.status == 400 and fake.users == {}


def test_setup_accepts_the_compose_default_admin(make_fake, analytics_details):
    # docker-compose.override.yml's defaults for MB_ADMIN_EMAIL / MB_ADMIN_PASSWORD.
    fake = make_fake(has_user_setup=False)
    run(fake, analytics_details, "admin@lakehouse.local", "lakehouse-dev-password-1")
    assert set(fake.users) == {"admin@lakehouse.local"}


def test_archived_card_and_dashboard_are_restored_not_duplicated(fake_metabase, analytics_details):
    run(fake_metabase, analytics_details)
    cards, dashboards = len(fake_metabase.cards), len(fake_metabase.dashboards)
    [card] = [c for c in fake_metabase.cards.values() if c["name"] == WEEKLY]
    [board] = [d for d in fake_metabase.dashboards.values() if d["name"] == "Trips"]
    # Archived in the UI: moved to the trash, no longer among the collection's items.
    card["archived"] = board["archived"] = True
    writes = len(fake_metabase.writes())

    summary = run(fake_metabase, analytics_details)

    assert (len(fake_metabase.cards), len(fake_metabase.dashboards)) == (cards, dashboards)
    assert card["archived"] is False and board["archived"] is False
    assert sorted(fake_metabase.writes()[writes:]) == [("PUT", f"/api/card/{card['id']}"),
                                                       ("PUT", f"/api/dashboard/{board['id']}")]  # fmt: skip
    assert set(summary.updated) == {f"card {WEEKLY!r}", "dashboard 'Trips'"} and not summary.created
    assert not run(fake_metabase, analytics_details).changed


def test_parameters_read_back_with_or_without_required_are_not_a_change(fake_metabase, analytics_details):
    run(fake_metabase, analytics_details)
    [card] = [c for c in fake_metabase.cards.values() if c["name"] == WEEKLY]
    assert card["parameters"] and all("required" not in p for p in card["parameters"])
    # v0.59.6 kept an undeclared "required" on saved parameters: a card saved by it is not rewritten either.
    for parameter in card["parameters"]:
        parameter["required"] = True
    writes = len(fake_metabase.writes())
    assert not run(fake_metabase, analytics_details).changed
    assert fake_metabase.writes()[writes:] == []


def test_the_fake_reports_the_pinned_version(fake_metabase):
    import requests

    tag = requests.get(f"{fake_metabase.url}/api/session/properties", timeout=5).json()["version"]["tag"]
    compose = Path(fake_module.__file__).resolve().parents[1] / "docker-compose.override.yml"
    assert f"metabase/metabase:{tag}\n" in compose.read_text(encoding="utf-8")

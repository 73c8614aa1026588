"""Dashboard spec validation: the shipped files, and the mistakes the validator must refuse."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from include.metabase.specs import DASHBOARDS_DIR, SpecError, load_dashboard, load_dashboards, parse_dashboard

SPEC_FILES = sorted(DASHBOARDS_DIR.glob("*.yml"))

VALID = {
    "name": "Demo",
    "description": "A demo dashboard.",
    "cards": [
        {
            "name": "Per day",
            "description": "Rows per day.",
            "display": "bar",
            "sql": "SELECT day, tweets FROM marts.tweets_daily",
            "visualization_settings": {"graph.dimensions": ["day"], "graph.metrics": ["tweets"]},
            "layout": {"row": 0, "col": 0, "size_x": 12, "size_y": 6},
        },
        {
            "name": "Total",
            "description": "All rows.",
            "display": "scalar",
            "sql": "SELECT sum(tweets) AS tweets FROM marts.tweets_daily",
            "layout": {"row": 0, "col": 12, "size_x": 12, "size_y": 6},
        },
    ],
}


def with_card(**changes) -> dict:
    """VALID with its first card changed."""
    spec = copy.deepcopy(VALID)
    spec["cards"][0].update(changes)
    return spec


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.name)
def test_every_dashboard_file_validates(path: Path):
    dashboard = load_dashboard(path)
    assert dashboard.cards
    raw = yaml.safe_load(path.read_text())
    assert [c.name for c in dashboard.cards] == [c["name"] for c in raw["cards"]]


def test_the_two_dashboards_of_the_issue_exist():
    dashboards = {d.name: d for d in load_dashboards()}
    assert {"Tweets activity", "Pipeline health"} <= set(dashboards)
    tweets = {c.name: c for c in dashboards["Tweets activity"].cards}
    assert tweets["Tweets per hour"].display == "line"
    assert tweets["Tweets per day"].display == "bar"
    assert tweets["Top languages"].display in ("bar", "pie", "row")
    assert "LIMIT" in tweets["Top languages"].sql.upper()


def test_valid_spec_parses():
    dashboard = parse_dashboard(VALID, "demo.yml")
    assert [c.name for c in dashboard.cards] == ["Per day", "Total"]
    assert dashboard.cards[1].visualization_settings == {}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (with_card(layout={"row": 0, "col": 6, "size_x": 12, "size_y": 6}), "overlaps card 'Per day'"),
        (with_card(layout={"row": 0, "col": 20, "size_x": 6, "size_y": 6}), "24-column grid"),
        (with_card(layout={"row": 0, "col": 0, "size_x": 0, "size_y": 6}), "size_x, size_y >= 1"),
        (with_card(layout={"row": 0, "col": 0, "size_x": 1.5, "size_y": 6}), "integers"),
        (with_card(display="sankey"), "unknown display 'sankey'"),
        (with_card(sql="DELETE FROM marts.tweets_daily"), "must start with SELECT or WITH"),
        (with_card(sql="  "), "sql must be a non-empty string"),
        (with_card(name="Total"), "card 'Total' appears twice"),
        (with_card(visualization_settings={"graph.dimensions": ["dya"], "graph.metrics": ["tweets"]}), "'dya'"),
        (with_card(visualization_settings={"graph.metrics": ["tweets"]}), "needs visualization_settings.graph.dim"),
        (with_card(colour="red"), "unknown keys colour"),
    ],
)
def test_invalid_card_is_rejected_naming_file_and_card(spec: dict, message: str):
    with pytest.raises(SpecError, match="^demo.yml: card '(Per day|Total)'") as raised:
        parse_dashboard(spec, "demo.yml")
    assert message in str(raised.value)


def test_missing_card_key_is_named():
    spec = copy.deepcopy(VALID)
    del spec["cards"][1]["layout"]
    with pytest.raises(SpecError, match="demo.yml: card 'Total': missing layout"):
        parse_dashboard(spec, "demo.yml")


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE marts.tweets_daily SET tweets = 0",
        "WITH gone AS (DELETE FROM marts.tweets_daily RETURNING *) SELECT * FROM gone",
        "SELECT 1; DROP TABLE marts.tweets_daily",
        "SELECT * INTO marts.copy FROM marts.tweets_daily",
        "SELECT * FROM marts.tweets_daily FOR UPDATE",
        "/* SELECT */ TRUNCATE marts.tweets_daily",
        "select 1 -- harmless\n; insert into t values (1)",
    ],
)
def test_sql_that_is_not_read_only_is_rejected(sql: str):
    with pytest.raises(SpecError, match="demo.yml: card 'Per day'"):
        parse_dashboard(with_card(sql=sql, display="table", visualization_settings={}), "demo.yml")


@pytest.mark.parametrize(
    "sql",
    [
        "-- the daily counts\nSELECT day, tweets FROM marts.tweets_daily;",
        "WITH d AS (SELECT day, tweets FROM marts.tweets_daily) SELECT * FROM d",
        "SELECT 'delete; drop' AS day, updated_at AS tweets FROM marts.tweets_daily",
    ],
)
def test_read_only_sql_is_accepted(sql: str):
    parse_dashboard(with_card(sql=sql), "demo.yml")


def test_names_must_be_unique_across_files(tmp_path: Path):
    for name in ("a.yml", "b.yml"):
        spec = copy.deepcopy(VALID)
        spec["name"] = f"Dashboard {name}"
        (tmp_path / name).write_text(yaml.safe_dump(spec))
    with pytest.raises(SpecError, match="b.yml: card 'Per day' is also defined in a.yml"):
        load_dashboards(tmp_path)


def test_bad_yaml_and_empty_directory(tmp_path: Path):
    with pytest.raises(SpecError, match="no dashboard files"):
        load_dashboards(tmp_path)
    (tmp_path / "broken.yml").write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="broken.yml: not valid YAML"):
        load_dashboards(tmp_path)


def test_the_users_and_trips_dashboards_exist():
    dashboards = {d.name: d for d in load_dashboards()}
    users = {c.name: c for c in dashboards["Users"].cards}
    trips = {c.name: c for c in dashboards["Trips"].cards}
    assert users["Where users live"].display == "map" and trips["Where trips start"].display == "map"
    assert users["Users by gender"].display == "pie"
    weekly = trips["Weekly average trips in a bounding box"]
    assert [p.name for p in weekly.parameters] == ["min_lon", "min_lat", "max_lon", "max_lat", "from", "to"]
    assert {p.type for p in weekly.parameters} == {"number", "date"}
    assert "ST_MakeEnvelope" in weekly.sql and "ST_Intersects" in weekly.sql and "origin_geom" in weekly.sql
    for dashboard in (dashboards["Users"], dashboards["Trips"]):
        for card in dashboard.cards:
            assert "password" not in card.sql.lower(), card.name


MAP = {
    "name": "Pins",
    "description": "Where.",
    "display": "map",
    "sql": "SELECT latitude, longitude FROM marts.user_directory",
    "visualization_settings": {
        "map.type": "pin",
        "map.latitude_column": "latitude",
        "map.longitude_column": "longitude",
    },
    "layout": {"row": 6, "col": 0, "size_x": 24, "size_y": 6},
}
WEEKLY = {
    "name": "Box",
    "description": "Trips in a box.",
    "display": "table",
    "sql": "SELECT count(*) AS trips FROM marts.trip_facts WHERE pickup_longitude >= {{min_lon}}"
    " AND pickup_date >= {{ from }} AND note = {{label}}",
    "parameters": [
        {"name": "min_lon", "display_name": "West", "type": "number", "default": -74.02},
        {"name": "from", "display_name": "From", "type": "date", "default": "2026-01-05"},
        {"name": "label", "display_name": "Label", "type": "text", "default": "it's"},
    ],
    "layout": {"row": 12, "col": 0, "size_x": 24, "size_y": 6},
}


def with_extra(card: dict, **changes) -> dict:
    """VALID plus ``card`` (changed)."""
    spec = copy.deepcopy(VALID)
    spec["cards"].append({**copy.deepcopy(card), **changes})
    return spec


def test_a_pin_map_and_template_tags_parse_and_render():
    from datetime import date

    parameters = copy.deepcopy(WEEKLY["parameters"])
    parameters[1]["default"] = date(2026, 1, 5)
    dashboard = parse_dashboard(with_extra(WEEKLY, parameters=parameters), "demo.yml")
    card = dashboard.cards[-1]
    assert card.parameters[1].default == "2026-01-05"  # a YAML date becomes ISO text
    assert card.rendered_sql() == (
        "SELECT count(*) AS trips FROM marts.trip_facts WHERE pickup_longitude >= -74.02"
        " AND pickup_date >= DATE '2026-01-05' AND note = 'it''s'"
    )
    assert "-73.5" in card.rendered_sql({"min_lon": -73.5})
    with pytest.raises(KeyError, match="no parameter max_lon"):
        card.rendered_sql({"max_lon": 1})
    assert parse_dashboard(with_extra(MAP), "demo.yml").cards[-1].display == "map"


def _map(**settings) -> dict:
    return with_extra(MAP, visualization_settings={**MAP["visualization_settings"], **settings})


def _weekly(parameters=None, **changes) -> dict:
    return with_extra(WEEKLY, parameters=WEEKLY["parameters"] if parameters is None else parameters, **changes)


P = WEEKLY["parameters"]


@pytest.mark.parametrize(
    ("spec", "card", "message"),
    [
        (_map(**{"map.type": "region"}), "Pins", "map.type: pin"),
        (_map(**{"map.latitude_column": "lat"}), "Pins", "'lat', which the SQL never mentions"),
        (with_extra(MAP, visualization_settings={"map.type": "pin"}), "Pins", "needs visualization_settings.map.lat"),
        (_map(**{"map.pin_type": "balloons"}), "Pins", "map.pin_type must be one of"),
        (_map(**{"map.zoom": 40}), "Pins", "map.zoom must be a number from 0 to 22"),
        (_map(**{"map.colour": "red"}), "Pins", "unknown map settings map.colour"),
        (
            with_card(visualization_settings={**VALID["cards"][0]["visualization_settings"], "map.type": "pin"}),
            "Per day",
            "map settings on a bar card",
        ),
        (_weekly(P[:2]), "Box", "{{tags}} without a parameter: label"),
        (
            _weekly([*P, {"name": "spare", "display_name": "S", "type": "text", "default": "x"}]),
            "Box",
            "parameters the SQL never uses: spare",
        ),
        (_weekly([P[0], P[0], P[1], P[2]]), "Box", "parameter names must be unique"),
        (_weekly([{**P[0], "type": "float"}, P[1], P[2]]), "Box", "type must be one of number, date, text"),
        (_weekly([{**P[0], "default": "west"}, P[1], P[2]]), "Box", "a finite number as default"),
        (_weekly([{**P[0], "default": True}, P[1], P[2]]), "Box", "a finite number as default"),
        (_weekly([P[0], {**P[1], "default": "2026-02-30"}, P[2]]), "Box", "a YYYY-MM-DD default"),
        (_weekly([P[0], P[1], {**P[2], "default": 3}]), "Box", "a text default"),
        (_weekly([P[0], P[1], {**P[2], "name": "my-label"}]), "Box", "letters, digits and _"),
        (_weekly([P[0], P[1], {k: v for k, v in P[2].items() if k != "default"}]), "Box", "missing default"),
        (_weekly(sql=WEEKLY["sql"] + " [[AND x = {{label}}]]"), "Box", "optional clauses"),
        (_weekly([]), "Box", "without a parameter"),
    ],
)
def test_invalid_maps_and_parameters_are_rejected(spec: dict, card: str, message: str):
    with pytest.raises(SpecError, match=f"^demo.yml: card '{card}'") as raised:
        parse_dashboard(spec, "demo.yml")
    assert message in str(raised.value)

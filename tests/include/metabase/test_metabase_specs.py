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

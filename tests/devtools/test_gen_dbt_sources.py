"""The dbt gold sources are generated from the table declarations, and the committed file is the generator's output."""

from __future__ import annotations

import yaml

from devtools import gen_dbt_sources


def test_committed_sources_are_the_generated_ones():
    assert gen_dbt_sources.SOURCES.read_text() == gen_dbt_sources.render(), (
        "stale: run python -m devtools.gen_dbt_sources"
    )
    assert gen_dbt_sources.main(["--check"]) == 0


def test_every_gold_table_has_its_columns_descriptions_and_freshness():
    from include.tables import DECLARED

    (source,) = yaml.safe_load(gen_dbt_sources.render())["sources"]
    assert (source["name"], source["schema"]) == ("gold", "gold")
    tables = {t["name"]: t for t in source["tables"]}
    assert list(tables) == [t.name for t in DECLARED.gold]
    for table in DECLARED.gold:
        entry = tables[table.name]
        names = [c["name"] for c in entry["columns"]]
        assert names == [*(c.name for c in table.columns), "_loaded_at", *(p.name for p in table.points)]
        assert all(c["description"] for c in entry["columns"]) and entry["description"] == table.description
        assert entry["config"]["loaded_at_field"] == "_loaded_at"
        freshness = DECLARED.domains[table.domain].freshness
        (warn, warn_period), (error, error_period) = freshness.warn_after, freshness.error_after
        assert entry["config"]["freshness"] == {
            "warn_after": {"count": warn, "period": warn_period},
            "error_after": {"count": error, "period": error_period},
        }
    # Written by hand: a daily domain, the continuous trips feed, and the PostGIS points the loader adds to trips.
    assert tables["tweets_per_hour"]["config"]["freshness"]["warn_after"] == {"count": 26, "period": "hour"}
    assert tables["trips"]["config"]["freshness"]["error_after"] == {"count": 7, "period": "day"}
    assert "origin_geom" in [c["name"] for c in tables["trips"]["columns"]]


def test_a_stale_file_is_reported(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "_gold__sources.yml"
    stale.write_text(gen_dbt_sources.render().replace("do not edit", "edited"))
    monkeypatch.setattr(gen_dbt_sources, "SOURCES", stale)
    monkeypatch.setattr(gen_dbt_sources, "ROOT", tmp_path)
    assert gen_dbt_sources.main(["--check"]) == 1
    assert "stale" in capsys.readouterr().err

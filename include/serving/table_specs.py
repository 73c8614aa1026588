"""Per-table serving extras: PostGIS point columns in PostgreSQL, secondary indexes in TiDB.

They are declared with the table (``[gold.serving]`` in spark/lakehouse_jobs/tables.toml). The loaders know nothing
of any particular table: they take these as arguments, and the serve tasks look them up here with
``serving_extras(table)``. A table without any gets none (the loaders behave as before). This module imports nothing
heavy, so the serve DAG can read it at parse time.
"""

from __future__ import annotations

from dataclasses import dataclass

from include.tables import DECLARED, declarations

WGS84 = declarations.WGS84


@dataclass(frozen=True)
class PointColumn:
    """A PostgreSQL ``geometry(Point, srid)`` column generated from two numeric columns of the gold table.

    Stored (``GENERATED ALWAYS AS ... STORED``), NULL when either coordinate is NULL, with a GiST index, so
    Metabase maps and spatial SQL (``ST_Intersects``, ``ST_DWithin``...) read it directly.

    Attributes:
        name: the generated column; it must not be a column of the gold table.
        longitude: the gold column holding the longitude (x).
        latitude: the gold column holding the latitude (y).
        srid: the spatial reference of the coordinates (WGS 84 by default).
    """

    name: str
    longitude: str
    latitude: str
    srid: int = WGS84


@dataclass(frozen=True)
class SecondaryIndex:
    """A secondary index of the TiDB rows table (``<table>__rows``), created with it or added when missing.

    The loader appends the view's join columns (``ds``, ``_load_id``) so that a query through the view can be
    answered from the index alone, whatever the primary key's clustering.

    Attributes:
        name: the index name, unique within the table.
        columns: the indexed gold columns, in order; strings become ``VARCHAR(255)``.
    """

    name: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class ServingExtras:
    """What a gold table gets in the serving targets beyond its columns.

    Attributes:
        points: PostgreSQL generated point columns (each with a GiST index).
        tidb_indexes: TiDB secondary indexes.
    """

    points: tuple[PointColumn, ...] = ()
    tidb_indexes: tuple[SecondaryIndex, ...] = ()


NONE = ServingExtras()


def _extras(table: declarations.Table) -> ServingExtras:
    return ServingExtras(
        points=tuple(PointColumn(p.name, p.longitude, p.latitude, p.srid) for p in table.points),
        tidb_indexes=tuple(SecondaryIndex(i.name, i.columns) for i in table.tidb_indexes),
    )


# By gold table name (without namespace): the tables whose `[gold.serving]` declares any.
EXTRAS: dict[str, ServingExtras] = {
    table.name: _extras(table) for table in DECLARED.gold if table.points or table.tidb_indexes
}


def serving_extras(table: str) -> ServingExtras:
    """The extras of gold table ``table`` (without namespace); none for a table without any."""
    return EXTRAS.get(table, NONE)

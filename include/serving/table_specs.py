"""Per-table serving extras: PostGIS point columns in PostgreSQL, secondary B-tree indexes in both databases.

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
    """A B-tree index of a served table, created with it or added when missing.

    In TiDB it indexes the rows table (``<table>__rows``), and the loader appends the view's join columns (``ds``,
    ``_load_id``) so that a query through the view can be answered from the index alone, whatever the primary key's
    clustering. In PostgreSQL it is an index of the partitioned table (``<table>__<name>``), so every slice's
    partition has it (the staging table builds it before the swap, which adopts it).

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
        indexes: secondary B-tree indexes, in both databases.
    """

    points: tuple[PointColumn, ...] = ()
    indexes: tuple[SecondaryIndex, ...] = ()


NONE = ServingExtras()


def _extras(table: declarations.Table) -> ServingExtras:
    return ServingExtras(
        points=tuple(PointColumn(p.name, p.longitude, p.latitude, p.srid) for p in table.points),
        indexes=tuple(SecondaryIndex(i.name, i.columns) for i in table.indexes),
    )


# By gold table name (without namespace): the tables whose `[gold.serving]` declares any.
EXTRAS: dict[str, ServingExtras] = {
    table.name: _extras(table) for table in DECLARED.gold if table.points or table.indexes
}


def serving_extras(table: str) -> ServingExtras:
    """The extras of gold table ``table`` (without namespace); none for a table without any."""
    return EXTRAS.get(table, NONE)

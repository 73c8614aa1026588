"""Per-table serving extras, declared once: PostGIS point columns in PostgreSQL, secondary indexes in TiDB.

The loaders know nothing of any particular table: they take these as arguments, and the serve tasks look them
up here with ``serving_extras(table)``. A table not listed gets none (the loaders behave as before). This module
imports nothing heavy, so the serve DAG can read it at parse time.
"""

from __future__ import annotations

from dataclasses import dataclass

WGS84 = 4326


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

# By gold table name (without namespace), among those include/assets.py declares (GOLD_TABLES).
EXTRAS: dict[str, ServingExtras] = {
    "trips": ServingExtras(
        points=(
            PointColumn("origin_geom", "origin_longitude", "origin_latitude"),
            PointColumn("destination_geom", "destination_longitude", "destination_latitude"),
        ),
        # The weekly-average question filters the origin point to a box and trip_date to a range. A B-tree seeks
        # on its first column's range and filters the others inside the index: the date-first index serves short
        # date ranges, the longitude-first one small boxes over long ranges; the optimizer picks. (No region index
        # yet: the loader cannot index a string column of a rows table created before the index, see tidb.py.)
        tidb_indexes=(
            SecondaryIndex("trip_date_origin", ("trip_date", "origin_longitude", "origin_latitude")),
            SecondaryIndex("origin_date", ("origin_longitude", "origin_latitude", "trip_date")),
        ),
    ),
    "trip_groups": ServingExtras(
        points=(
            PointColumn("origin_cell_geom", "origin_cell_longitude", "origin_cell_latitude"),
            PointColumn("destination_cell_geom", "destination_cell_longitude", "destination_cell_latitude"),
        ),
    ),
}


def serving_extras(table: str) -> ServingExtras:
    """The extras of gold table ``table`` (without namespace); none for a table not listed."""
    return EXTRAS.get(table, NONE)

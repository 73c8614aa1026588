"""PostGIS point columns of the PostgreSQL loader, on the real local PostgreSQL with PostGIS."""

from __future__ import annotations

import datetime as dt
import uuid

import pyarrow as pa
import pytest
from serving_dbs import PG_DSN, admin, execute, scratch_database

from include.serving.postgres import load_slice_postgres
from include.serving.table_specs import PointColumn, serving_extras

pytestmark = pytest.mark.integration

DS_A = dt.date(2026, 11, 20)
DS_B = dt.date(2026, 11, 21)
POINTS = serving_extras("trips").points
# Boxes (min_lon, min_lat, max_lon, max_lat): a corner of the area, the middle, all of it, and none of it.
BOXES = [
    (-74.30, 40.45, -74.00, 40.60),
    (-74.00, 40.70, -73.90, 40.80),
    (-74.30, 40.45, -73.65, 40.95),
    (-73.00, 41.00, -72.90, 41.10),
]


def batches(rows: list[dict], schema: pa.Schema, size: int = 500) -> list[pa.RecordBatch]:
    return pa.Table.from_pylist(rows, schema=schema).to_batches(max_chunksize=size)


def fetch(conn, sql: str, args=()) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def in_box(lon: float | None, lat: float | None, box: tuple[float, float, float, float]) -> bool:
    """ST_Intersects of a point and an envelope: inside or on the boundary."""
    min_lon, min_lat, max_lon, max_lat = box
    return lon is not None and lat is not None and min_lon <= lon <= max_lon and min_lat <= lat <= max_lat


def box_count_sql(table: str) -> str:
    """Trips whose origin point is in the envelope given by 4 parameters, as Metabase or an analyst writes it."""
    return f"SELECT count(*) FROM gold.{table} WHERE ST_Intersects(origin_geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326))"


def point_values(reader, table: str) -> dict[str, tuple]:
    """trip_id -> (origin x, y, srid, destination x, y, srid) as served, None for a NULL geometry."""
    rows = fetch(
        reader,
        "SELECT trip_id, ST_X(origin_geom), ST_Y(origin_geom), ST_SRID(origin_geom),"
        f" ST_X(destination_geom), ST_Y(destination_geom), ST_SRID(destination_geom) FROM gold.{table}",
    )
    return {row[0]: row[1:] for row in rows}


def expected_points(rows: list[dict]) -> dict[str, tuple]:
    def point(lon, lat):
        return (None, None, None) if lon is None or lat is None else (lon, lat, 4326)

    return {
        r["trip_id"]: (
            *point(r["origin_longitude"], r["origin_latitude"]),
            *point(r["destination_longitude"], r["destination_latitude"]),
        )
        for r in rows
    }


def gist_indexes(reader, relation: str) -> list[tuple[str, str, str | None]]:
    """(column, access method, the parent index it is attached to) of each index of ``relation``."""
    return fetch(
        reader,
        "SELECT a.attname, am.amname, parent.inhparent::regclass::text FROM pg_index i"
        " JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam"
        " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
        " LEFT JOIN pg_inherits parent ON parent.inhrelid = i.indexrelid"
        " WHERE i.indrelid = %s::regclass ORDER BY 1",
        (relation,),
    )


def partitions(reader, table: str) -> list[str]:
    return [
        row[0]
        for row in fetch(
            reader,
            "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = %s::regclass ORDER BY 1",
            (f"gold.{table}",),
        )
    ]


@pytest.fixture
def spatial(pg_postgis, pg_connect):
    """A loading connection and an autocommit reader on the session database, which has PostGIS."""
    conn, reader = pg_connect(), pg_connect()
    reader.autocommit = True
    return conn, reader


def test_point_columns_hold_the_coordinates_or_null(spatial, trips, table_name):
    conn, reader = spatial
    rows = trips.rows(DS_A, 1_000, seed=1)

    load_slice_postgres(conn, table_name, DS_A, trips.schema, 1, batches(rows, trips.schema), point_columns=POINTS)

    assert point_values(reader, table_name) == expected_points(rows)
    types = fetch(
        reader,
        "SELECT attname, format_type(atttypid, atttypmod), attgenerated FROM pg_attribute"
        " WHERE attrelid = %s::regclass AND attname LIKE '%%geom'",
        (f"gold.{table_name}",),
    )
    assert sorted(types) == [
        ("destination_geom", "geometry(Point,4326)", "s"),
        ("origin_geom", "geometry(Point,4326)", "s"),
    ]
    # The generated value is the point PostGIS makes of the same coordinates.
    mismatched = fetch(
        reader,
        f"SELECT count(*) FROM gold.{table_name} WHERE NOT coalesce(ST_Equals(origin_geom,"
        " ST_SetSRID(ST_MakePoint(origin_longitude, origin_latitude), 4326)), origin_geom IS NULL)",
    )
    assert mismatched == [(0,)]
    nulls = sum(1 for r in rows if r["origin_longitude"] is None or r["origin_latitude"] is None)
    assert nulls > 0
    assert fetch(reader, f"SELECT count(*) FROM gold.{table_name} WHERE origin_geom IS NULL") == [(nulls,)]


class Statements:
    """Collects the statements a ``psycopg2.extras.LoggingConnection`` runs."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def write(self, text: str) -> None:
        if text.strip():
            self.seen.append(" ".join(text.split()))


def test_gist_indexes_on_the_parent_and_each_partition(spatial, trips, table_name, pg_postgis):
    import psycopg2
    import psycopg2.extras

    _, reader = spatial
    conn = psycopg2.connect(pg_postgis, connection_factory=psycopg2.extras.LoggingConnection)
    statements = Statements()
    conn.initialize(statements)
    try:
        for snapshot, ds in enumerate((DS_A, DS_B, DS_A), start=1):
            rows = trips.rows(ds, 300, seed=snapshot)
            load_slice_postgres(
                conn, table_name, ds, trips.schema, snapshot, batches(rows, trips.schema), point_columns=POINTS
            )
    finally:
        conn.close()

    assert gist_indexes(reader, f"gold.{table_name}") == [
        ("destination_geom", "gist", None),
        ("origin_geom", "gist", None),
    ]
    parent_index = dict(
        fetch(
            reader,
            "SELECT a.attname, i.indexrelid::regclass::text FROM pg_index i JOIN pg_attribute a"
            " ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] WHERE i.indrelid = %s::regclass",
            (f"gold.{table_name}",),
        )
    )
    slices = partitions(reader, table_name)
    assert slices == [f"gold_slices.{table_name}__20261120", f"gold_slices.{table_name}__20261121"]
    for partition in slices:
        # One index a point column, attached to the parent's, named after the partition.
        assert gist_indexes(reader, partition) == [
            ("destination_geom", "gist", parent_index["destination_geom"]),
            ("origin_geom", "gist", parent_index["origin_geom"]),
        ]
        names = fetch(
            reader, "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = %s::regclass", (partition,)
        )
        assert sorted(names) == [(f"{partition}_destination_geom_idx",), (f"{partition}_origin_geom_idx",)]
    # Each load built both indexes on its staging table before the ATTACH, which therefore adopted them (had it
    # built its own, the partitions would hold four indexes).
    built_before_attach = []
    for sql in statements.seen:
        if sql.startswith("CREATE TABLE") and "gold_slices" in sql:
            built = 0
        elif sql.startswith("CREATE INDEX ON") and "gold_slices" in sql and "USING gist" in sql:
            built += 1
        elif "ATTACH PARTITION" in sql:
            built_before_attach.append(built)
    assert built_before_attach == [2, 2, 2], statements.seen


def test_box_query_counts_match_python_and_use_the_index(spatial, trips, table_name):
    conn, reader = spatial
    rows = trips.rows(DS_A, 2_000, seed=3) + trips.rows(DS_B, 1_500, seed=4)
    for ds in (DS_A, DS_B):
        data = [r for r in rows if r["ds"] == ds]
        load_slice_postgres(conn, table_name, ds, trips.schema, 1, batches(data, trips.schema), point_columns=POINTS)

    box_sql = box_count_sql(table_name)
    for box in BOXES:
        expected = sum(1 for r in rows if in_box(r["origin_longitude"], r["origin_latitude"], box))
        assert fetch(reader, box_sql, box) == [(expected,)], box
    # With a date range too, and on the destination point.
    box, first, last = BOXES[1], dt.date(2025, 3, 1), dt.date(2025, 8, 31)
    expected = sum(
        1 for r in rows if in_box(r["origin_longitude"], r["origin_latitude"], box) and first <= r["trip_date"] <= last
    )
    assert fetch(reader, box_sql + " AND trip_date BETWEEN %s AND %s", (*box, first, last)) == [(expected,)]
    destinations = sum(1 for r in rows if in_box(r["destination_longitude"], r["destination_latitude"], box))
    destination_sql = box_sql.replace("ST_Intersects(origin_geom", "ST_Intersects(destination_geom")
    assert fetch(reader, destination_sql, box) == [(destinations,)]
    # The GiST index answers the box test (forbidding sequential scans shows it can; tiny tables favour them).
    with reader.cursor() as cur:
        cur.execute("SET enable_seqscan = off")
        cur.execute("EXPLAIN " + box_sql, box)
        plan = "\n".join(row[0] for row in cur.fetchall())
        cur.execute("RESET enable_seqscan")
    assert plan.count("Index Scan using") + plan.count("Bitmap Index Scan on") == 2, plan
    assert "origin_geom" in plan and "Seq Scan" not in plan, plan


def test_reload_swaps_the_slice_and_a_failure_keeps_it(spatial, trips, table_name):
    conn, reader = spatial
    first = trips.rows(DS_A, 400, seed=5)
    other = trips.rows(DS_B, 100, seed=6)
    second = trips.rows(DS_A, 250, seed=7)
    load_slice_postgres(conn, table_name, DS_A, trips.schema, 1, batches(first, trips.schema), point_columns=POINTS)
    load_slice_postgres(conn, table_name, DS_B, trips.schema, 1, batches(other, trips.schema), point_columns=POINTS)

    result = load_slice_postgres(
        conn, table_name, DS_A, trips.schema, 2, batches(second, trips.schema), point_columns=POINTS
    )

    assert result.rows == 250
    assert point_values(reader, table_name) == expected_points(second + other)

    def failing():
        yield from batches(trips.rows(DS_A, 600, seed=8), trips.schema)
        raise RuntimeError("injected failure")

    with pytest.raises(RuntimeError, match="injected failure"):
        load_slice_postgres(conn, table_name, DS_A, trips.schema, 3, failing(), point_columns=POINTS)

    assert point_values(reader, table_name) == expected_points(second + other)
    assert fetch(
        reader, "SELECT snapshot_id FROM gold._lakehouse_loads WHERE table_name = %s AND ds = %s", (table_name, DS_A)
    ) == [(2,)]
    leftovers = fetch(
        reader,
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'gold_slices' AND c.relkind = 'r' AND c.relname LIKE %s",
        (f"{table_name}%",),
    )
    assert leftovers == [(2,)]
    box = BOXES[0]
    box_sql = box_count_sql(table_name)
    expected = sum(1 for r in second + other if in_box(r["origin_longitude"], r["origin_latitude"], box))
    assert fetch(reader, box_sql, box) == [(expected,)]


def test_a_served_table_gains_point_columns_and_grows(spatial, trips, table_name):
    conn, reader = spatial
    old = trips.rows(DS_A, 200, seed=9)
    # Served before it had point columns.
    load_slice_postgres(conn, table_name, DS_A, trips.schema, 1, batches(old, trips.schema))
    grown = trips.schema.append(pa.field("tip_amount", pa.float64()))
    new = [{**r, "tip_amount": 1.25} for r in trips.rows(DS_B, 150, seed=10)]

    load_slice_postgres(conn, table_name, DS_B, grown, 1, batches(new, grown), point_columns=POINTS)

    assert point_values(reader, table_name) == expected_points(old + new)
    assert fetch(reader, f"SELECT count(*) FROM gold.{table_name} WHERE tip_amount = 1.25") == [(150,)]
    for partition in partitions(reader, table_name):
        assert [column for column, _, _ in gist_indexes(reader, partition)] == ["destination_geom", "origin_geom"]


def test_tables_without_point_columns_get_none(spatial, trips, table_name):
    conn, reader = spatial
    load_slice_postgres(conn, table_name, DS_A, trips.schema, 1, batches(trips.rows(DS_A, 10, seed=11), trips.schema))

    assert gist_indexes(reader, f"gold.{table_name}") == []
    columns = fetch(reader, "SELECT count(*) FROM information_schema.columns WHERE table_name = %s", (table_name,))
    assert columns == [(len(trips.schema) + 1,)]  # and _loaded_at


def test_the_loader_creates_postgis_when_missing(trips, table_name):
    import psycopg2

    with scratch_database("postgres", "serving_gis") as name:
        conn = psycopg2.connect(PG_DSN, dbname=name)
        try:
            rows = trips.rows(DS_A, 50, seed=12)
            load_slice_postgres(
                conn, table_name, DS_A, trips.schema, 1, batches(rows, trips.schema), point_columns=POINTS
            )
            assert fetch(conn, "SELECT count(*) FROM pg_extension WHERE extname = 'postgis'") == [(1,)]
            assert point_values(conn, table_name) == expected_points(rows)
        finally:
            conn.close()


def test_a_user_who_may_not_create_postgis_gets_a_clear_error(trips, table_name):
    import psycopg2

    role = f"serving_gis_{uuid.uuid4().hex[:8]}"
    server = admin("postgres")
    execute(server, f'CREATE ROLE "{role}" LOGIN')
    try:
        with scratch_database("postgres", "serving_gis", owner=role) as name:
            conn = psycopg2.connect(PG_DSN, dbname=name, user=role)
            try:
                with pytest.raises(RuntimeError, match=f"CREATE EXTENSION postgis;` in database '{name}'"):
                    load_slice_postgres(
                        conn,
                        table_name,
                        DS_A,
                        trips.schema,
                        1,
                        batches(trips.rows(DS_A, 5, seed=13), trips.schema),
                        point_columns=POINTS,
                    )
                # Nothing was created, and the connection is usable; a table without points still loads.
                assert fetch(conn, "SELECT to_regclass('gold._lakehouse_loads')") == [(None,)]
                conn.rollback()
                load_slice_postgres(
                    conn, table_name, DS_A, trips.schema, 1, batches(trips.rows(DS_A, 5, seed=13), trips.schema)
                )
            finally:
                conn.close()
    finally:
        execute(server, f'DROP ROLE IF EXISTS "{role}"')
        server.close()


def test_bad_point_columns_are_refused(spatial, trips, table_name):
    conn, _ = spatial
    data = batches(trips.rows(DS_A, 5, seed=14), trips.schema)
    with pytest.raises(ValueError, match="no column"):
        load_slice_postgres(
            conn, table_name, DS_A, trips.schema, 1, data, point_columns=[PointColumn("g", "lon", "origin_latitude")]
        )
    with pytest.raises(ValueError, match="reserved"):
        load_slice_postgres(
            conn,
            table_name,
            DS_A,
            trips.schema,
            1,
            data,
            point_columns=[PointColumn("trip_id", "origin_longitude", "origin_latitude")],
        )


def test_btree_indexes_and_the_weekly_average_on_the_postgres_copy(spatial, trips, table_name):
    """The declared B-tree indexes on the parent and each slice, and the API's weekly-average SQL on the PostgreSQL
    copy: the counts of a plain Python loop, read through those indexes (no partition read whole)."""
    from include.api.queries import BoundingBox, weekly_average_query, weekly_rows
    from tests.trip_cells import SCHEMA as CELLS_SCHEMA
    from tests.trip_cells import cell_rows

    conn, reader = spatial
    cells = f"{table_name}_cells"
    served = []
    for snapshot, ds in enumerate((DS_A, DS_B), start=1):
        rows = trips.rows(ds, 2_000, seed=snapshot)
        served += rows
        load_slice_postgres(conn, table_name, ds, trips.schema, snapshot, batches(rows, trips.schema),
                            point_columns=POINTS, indexes=serving_extras("trips").indexes)  # fmt: skip
        load_slice_postgres(conn, cells, ds, CELLS_SCHEMA, snapshot, batches(cell_rows(rows), CELLS_SCHEMA),
                            indexes=serving_extras("trip_origin_cells").indexes)  # fmt: skip
    gist = ["destination_geom_gist", "origin_geom_gist"]
    for table, names in (
        (table_name, ["origin_fine_cell_date", *gist]),
        (cells, ["level_cell_date", "level_region_date"]),
    ):
        found = fetch(reader, "SELECT indexname FROM pg_indexes WHERE schemaname = 'gold' AND tablename = %s", (table,))
        assert sorted(name for (name,) in found) == sorted(f"{table}__{n}" for n in names)
        for partition in partitions(reader, table):
            attached = fetch(reader, "SELECT count(*) FROM pg_index WHERE indrelid = %s::regclass", (partition,))
            assert attached == [(len(names),)]
    reader.cursor().execute("ANALYZE")
    first, last = dt.date(2025, 3, 5), dt.date(2025, 9, 28)
    for box in BOXES:
        sql, params = weekly_average_query(
            BoundingBox(*box), first, last, trips=f"gold.{table_name}", cells=f"gold.{cells}"
        )
        got = [week[:3] for week in weekly_rows(fetch(reader, sql, params), first, last)]
        counted = {}
        for r in served:
            day = r["trip_date"]
            if first <= day <= last and in_box(r["origin_longitude"], r["origin_latitude"], box):
                monday = day - dt.timedelta(days=day.weekday())
                counted[monday] = counted.get(monday, 0) + 1
        assert {week: n for week, _, n in got if n} == counted, box
        # Slices this small are cheaper to read whole, so the planner would; without that choice, every part of
        # the query is an index read (at scale the planner picks them itself: bench/trips_scale.py).
        with reader.cursor() as cur:
            cur.execute("SET enable_seqscan = off")
            cur.execute("EXPLAIN " + sql, params)
            plan = "\n".join(row[0] for row in cur.fetchall())
            cur.execute("RESET enable_seqscan")
        assert "Seq Scan" not in plan, plan


def test_bad_indexes_are_refused(spatial, trips, table_name):
    from include.serving.table_specs import SecondaryIndex

    conn, _ = spatial
    rows = batches(trips.rows(DS_A, 5, seed=3), trips.schema)
    for indexes, message in [
        ([SecondaryIndex("by_nothing", ("no_such_column",))], "no column"),
        ([SecondaryIndex("twice", ("trip_id",)), SecondaryIndex("twice", ("region",))], "unique"),
        ([SecondaryIndex("bad name", ("trip_id",))], "must match"),
    ]:
        with pytest.raises(ValueError, match=message):
            load_slice_postgres(conn, table_name, DS_A, trips.schema, 1, rows, indexes=indexes)
    # Both names within their limits, but PostgreSQL would cut the index's name: refused rather than cut.
    with pytest.raises(ValueError, match="longer than 63"):
        long_table, index = f"{table_name}_{'t' * 24}", SecondaryIndex("i" * 40, ("trip_id",))
        load_slice_postgres(conn, long_table, DS_A, trips.schema, 1, rows, indexes=[index])

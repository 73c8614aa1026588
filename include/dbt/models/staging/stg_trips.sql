{#- The staged order (trip first, then where it went, then lineage), not gold.trips' own. -#}
{{ stage_gold_table('trips', {
    'ds': 'date', 'trip_id': 'text', 'region': 'text', 'datasource': 'text', 'datetime': 'timestamptz',
    'trip_date': 'date', 'week_start': 'date', 'hour_of_day': 'integer', 'time_bucket': 'text',
    'origin_longitude': 'double precision', 'origin_latitude': 'double precision',
    'destination_longitude': 'double precision', 'destination_latitude': 'double precision',
    'origin_cell': 'text', 'destination_cell': 'text', 'origin_geom': 'geometry(Point, 4326)',
    'destination_geom': 'geometry(Point, 4326)', 'source_file': 'text', '_loaded_at': 'timestamptz'
}, renamed={'datetime': 'trip_at'}) }}

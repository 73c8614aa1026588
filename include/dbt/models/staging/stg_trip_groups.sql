{{ stage_gold_table('trip_groups', {
    'ds': 'date', 'region': 'text', 'origin_cell': 'text', 'destination_cell': 'text', 'time_bucket': 'text',
    'origin_cell_longitude': 'double precision', 'origin_cell_latitude': 'double precision',
    'destination_cell_longitude': 'double precision', 'destination_cell_latitude': 'double precision',
    'trips': 'bigint', 'datasources': 'text', 'first_seen': 'timestamptz', 'last_seen': 'timestamptz',
    '_loaded_at': 'timestamptz'
}) }}

{{ stage_gold_table('trips_weekly', {
    'ds': 'date', 'region': 'text', 'week_start': 'date', 'days': 'integer', 'trips': 'bigint',
    'days_with_trips': 'integer', 'average_trips_per_day': 'double precision', '_loaded_at': 'timestamptz'
}) }}

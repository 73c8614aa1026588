{{ stage_gold_table('pipeline_runs', {
    'ds': 'date', 'domain': 'text', 'source': 'text', 'bytes': 'bigint', 'lines': 'bigint',
    'extraction_s': 'double precision', 'raw_rows': 'bigint', 'accepted': 'bigint', 'duplicates': 'bigint',
    'rejects': 'bigint', 'status': 'text', '_loaded_at': 'timestamptz'
}) }}

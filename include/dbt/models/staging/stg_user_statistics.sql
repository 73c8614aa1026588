{{ stage_gold_table('user_statistics', {
    'ds': 'date', 'gender': 'text', 'users': 'bigint', 'average_age': 'double precision', '_loaded_at': 'timestamptz'
}) }}

{{ stage_gold_table('product_shelf_life', {
    'ds': 'date', 'shelf_life_days': 'integer', 'readings': 'bigint', 'products': 'bigint',
    'avg_shelf_life_days': 'double precision', '_loaded_at': 'timestamptz'
}) }}

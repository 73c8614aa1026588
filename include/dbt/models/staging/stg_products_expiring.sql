{{ stage_gold_table('products_expiring', {
    'ds': 'date', 'department_name': 'text', 'within_days': 'integer', 'as_of': 'timestamp',
    'products': 'bigint', 'readings': 'bigint', '_loaded_at': 'timestamptz'
}) }}

{{ stage_gold_table('products_by_department', {
    'ds': 'date', 'department_name': 'text', 'day': 'date', 'products': 'bigint', 'sensors': 'bigint',
    'readings': 'bigint', '_loaded_at': 'timestamptz'
}) }}

{{ stage_gold_table('product_master', {
    'ds': 'date', 'department_name': 'text', 'sensor_serial': 'text', 'product_name': 'text',
    'create_at': 'timestamp', 'product_expire': 'timestamp', 'shelf_life_days': 'double precision',
    '_source_file': 'text', '_loaded_at': 'timestamptz'
}, renamed={'create_at': 'created_at', 'product_expire': 'expires_at', '_source_file': 'source_file'}) }}

{{ stage_gold_table('top_countries', {
    'ds': 'date', 'country': 'text', 'customers': 'bigint', 'rentals': 'bigint', 'revenue': 'numeric',
    'rank': 'integer', '_loaded_at': 'timestamptz'
}, renamed={'rank': 'country_rank'}) }}

{{ stage_gold_table('tweets_by_country', {'ds': 'date', 'country_code': 'text', 'tweets': 'bigint', '_loaded_at': 'timestamptz'}) }}

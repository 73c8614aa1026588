{{ stage_gold_table('tweets_by_language', {'ds': 'date', 'lang': 'text', 'tweets': 'bigint', '_loaded_at': 'timestamptz'}) }}

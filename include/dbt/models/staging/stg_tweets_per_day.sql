{{ stage_gold_table('tweets_per_day', {'ds': 'date', 'day': 'date', 'tweets': 'bigint', '_loaded_at': 'timestamptz'}) }}

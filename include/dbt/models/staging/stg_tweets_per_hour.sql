{{ stage_gold_table('tweets_per_hour', {'ds': 'date', 'hour_start': 'timestamptz', 'tweets': 'bigint', '_loaded_at': 'timestamptz'}) }}

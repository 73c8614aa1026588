{{ stage_gold_table('films_per_category', {'ds': 'date', 'category': 'text', 'films': 'bigint', '_loaded_at': 'timestamptz'}) }}

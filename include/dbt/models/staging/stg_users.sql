{{ stage_gold_table('users', {
    'ds': 'date', 'user_id': 'text', 'title': 'text', 'first_name': 'text', 'last_name': 'text',
    'gender': 'text', 'email': 'text', 'username': 'text', 'date_of_birth': 'date', 'age': 'integer',
    'nationality': 'text', 'street': 'text', 'city': 'text', 'state': 'text', 'country': 'text',
    'postcode': 'text', 'latitude': 'double precision', 'longitude': 'double precision',
    'timezone_offset': 'text', 'registered_at': 'timestamptz', 'phone': 'text', 'cell': 'text',
    'picture_url': 'text', 'first_ds': 'date', '_loaded_at': 'timestamptz'
}) }}

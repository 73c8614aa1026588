with

source as (

    select * from {{ gold_source('users', {
        'ds': 'date', 'user_id': 'text', 'title': 'text', 'first_name': 'text', 'last_name': 'text',
        'gender': 'text', 'email': 'text', 'username': 'text', 'date_of_birth': 'date', 'age': 'integer',
        'nationality': 'text', 'street': 'text', 'city': 'text', 'state': 'text', 'country': 'text',
        'postcode': 'text', 'latitude': 'double precision', 'longitude': 'double precision',
        'timezone_offset': 'text', 'registered_at': 'timestamptz', 'phone': 'text', 'cell': 'text',
        'picture_url': 'text', 'first_ds': 'date', '_loaded_at': 'timestamptz'
    }) }} as gold_table

),

-- Columns are listed, never `*`: should a secret ever reach the served table, it stops here.
renamed as (

    select
        ds,
        user_id,
        title,
        first_name,
        last_name,
        gender,
        email,
        username,
        date_of_birth,
        age,
        nationality,
        street,
        city,
        state,
        country,
        postcode,
        latitude,
        longitude,
        timezone_offset,
        registered_at,
        phone,
        cell,
        picture_url,
        first_ds,
        _loaded_at as loaded_at

    from source

)

select * from renamed

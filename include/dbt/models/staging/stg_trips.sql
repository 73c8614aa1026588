with

source as (

    select * from {{ gold_source('trips', {
        'ds': 'date', 'trip_id': 'text', 'pickup_at': 'timestamptz', 'dropoff_at': 'timestamptz',
        'pickup_date': 'date', 'passenger_count': 'integer', 'trip_distance': 'double precision',
        'duration_minutes': 'double precision', 'pickup_longitude': 'double precision',
        'pickup_latitude': 'double precision', 'dropoff_longitude': 'double precision',
        'dropoff_latitude': 'double precision', 'fare_amount': 'numeric(10, 2)', 'total_amount': 'numeric(10, 2)',
        '_loaded_at': 'timestamptz', 'pickup_geom': 'geometry(Point, 4326)', 'dropoff_geom': 'geometry(Point, 4326)'
    }) }} as gold_table

),

renamed as (

    select
        ds,
        trip_id,
        pickup_at,
        dropoff_at,
        pickup_date,
        passenger_count,
        trip_distance,
        duration_minutes,
        pickup_longitude,
        pickup_latitude,
        dropoff_longitude,
        dropoff_latitude,
        fare_amount,
        total_amount,
        pickup_geom,
        dropoff_geom,
        _loaded_at as loaded_at

    from source

)

select * from renamed

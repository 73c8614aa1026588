with

source as (

    select * from {{ gold_source('trips_daily', {
        'ds': 'date', 'pickup_date': 'date', 'trips': 'bigint', 'average_distance': 'double precision',
        'average_fare': 'double precision', 'total_fare': 'numeric(18, 2)', '_loaded_at': 'timestamptz'
    }) }} as gold_table

),

renamed as (

    select
        ds,
        pickup_date,
        trips,
        average_distance,
        average_fare,
        total_fare,
        _loaded_at as loaded_at

    from source

)

select * from renamed

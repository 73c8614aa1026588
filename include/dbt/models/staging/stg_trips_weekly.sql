with

source as (

    select * from {{ gold_source('trips_weekly', {
        'ds': 'date', 'region': 'text', 'week_start': 'date', 'days': 'integer', 'trips': 'bigint',
        'days_with_trips': 'integer', 'average_trips_per_day': 'double precision', '_loaded_at': 'timestamptz'
    }) }} as gold_table

),

renamed as (

    select
        ds,
        region,
        week_start,
        days,
        trips,
        days_with_trips,
        average_trips_per_day,
        _loaded_at as loaded_at

    from source

)

select * from renamed

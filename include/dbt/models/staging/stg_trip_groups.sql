with

source as (

    select * from {{ gold_source('trip_groups', {
        'ds': 'date', 'region': 'text', 'origin_cell': 'text', 'destination_cell': 'text', 'time_bucket': 'text',
        'origin_cell_longitude': 'double precision', 'origin_cell_latitude': 'double precision',
        'destination_cell_longitude': 'double precision', 'destination_cell_latitude': 'double precision',
        'trips': 'bigint', 'datasources': 'text', 'first_seen': 'timestamptz', 'last_seen': 'timestamptz',
        '_loaded_at': 'timestamptz'
    }) }} as gold_table

),

renamed as (

    select
        ds,
        region,
        origin_cell,
        destination_cell,
        time_bucket,
        origin_cell_longitude,
        origin_cell_latitude,
        destination_cell_longitude,
        destination_cell_latitude,
        trips,
        datasources,
        first_seen,
        last_seen,
        _loaded_at as loaded_at

    from source

)

select * from renamed

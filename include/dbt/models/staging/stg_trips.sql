with

source as (

    select * from {{ gold_source('trips', {
        'ds': 'date', 'trip_id': 'text', 'region': 'text', 'origin_longitude': 'double precision',
        'origin_latitude': 'double precision', 'destination_longitude': 'double precision',
        'destination_latitude': 'double precision', 'datetime': 'timestamptz', 'datasource': 'text',
        'trip_date': 'date', 'week_start': 'date', 'hour_of_day': 'integer', 'time_bucket': 'text',
        'origin_cell': 'text', 'destination_cell': 'text', 'source_file': 'text', '_loaded_at': 'timestamptz',
        'origin_geom': 'geometry(Point, 4326)', 'destination_geom': 'geometry(Point, 4326)'
    }) }} as gold_table

),

renamed as (

    select
        ds,
        trip_id,
        region,
        datasource,
        datetime as trip_at,
        trip_date,
        week_start,
        hour_of_day,
        time_bucket,
        origin_longitude,
        origin_latitude,
        destination_longitude,
        destination_latitude,
        origin_cell,
        destination_cell,
        origin_geom,
        destination_geom,
        source_file,
        _loaded_at as loaded_at

    from source

)

select * from renamed

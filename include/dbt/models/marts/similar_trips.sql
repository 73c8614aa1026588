with

groups as (

    select * from {{ ref('stg_trip_groups') }}

),

-- Each slice is a snapshot over every trip served as of its run: the latest slice is the current picture.
latest as (

    select
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
        ds

    from groups
    where ds = (select max(ds) from groups)

)

select * from latest

with

daily as (

    select * from {{ ref('stg_trips_daily') }}

),

-- Each slice is a snapshot over every trip served as of its run: the latest slice is the current picture.
latest as (

    select
        pickup_date,
        trips,
        average_distance,
        average_fare,
        total_fare,
        ds

    from daily
    where ds = (select max(ds) from daily)

)

select * from latest

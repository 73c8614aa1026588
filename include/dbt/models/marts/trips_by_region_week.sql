with

weekly as (

    select * from {{ ref('stg_trips_weekly') }}

),

-- Each slice is a snapshot over every trip served as of its run: the latest slice is the current picture.
latest as (

    select
        region,
        week_start,
        days,
        trips,
        days_with_trips,
        average_trips_per_day,
        ds

    from weekly
    where ds = (select max(ds) from weekly)

)

select * from latest

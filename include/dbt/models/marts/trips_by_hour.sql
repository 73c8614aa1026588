with

trips as (

    select hour_of_day from {{ ref('stg_trips') }}

),

per_hour as (

    select
        hour_of_day,
        count(*)::bigint as trips

    from trips
    group by hour_of_day

),

-- Every hour of the day once there are trips, hours without trips included as 0.
hours as (

    select generate_series(0, 23) as hour_of_day
    where exists (select 1 from trips)

),

hourly as (

    select
        hours.hour_of_day,
        coalesce(per_hour.trips, 0) as trips,
        round(coalesce(per_hour.trips, 0)::numeric / sum(coalesce(per_hour.trips, 0)) over (), 4) as share_of_trips

    from hours
    left join per_hour on hours.hour_of_day = per_hour.hour_of_day

)

select * from hourly

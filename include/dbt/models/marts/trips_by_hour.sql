with

trips as (

    select
        extract(hour from pickup_at at time zone 'UTC')::integer as pickup_hour,
        trip_distance,
        fare_amount,
        duration_minutes

    from {{ ref('stg_trips') }}

),

per_hour as (

    select
        pickup_hour,
        count(*)::bigint as trips,
        avg(trip_distance) as average_distance,
        avg(fare_amount) as average_fare,
        avg(duration_minutes) as average_duration_minutes

    from trips
    group by pickup_hour

),

-- Every hour of the day once there are trips, hours without pickups included as 0.
hours as (

    select generate_series(0, 23) as pickup_hour
    where exists (select 1 from trips)

),

hourly as (

    select
        hours.pickup_hour,
        coalesce(per_hour.trips, 0) as trips,
        round(coalesce(per_hour.trips, 0)::numeric / sum(coalesce(per_hour.trips, 0)) over (), 4) as share_of_trips,
        round(per_hour.average_distance::numeric, 4) as average_distance,
        round(per_hour.average_fare, 4) as average_fare,
        round(per_hour.average_duration_minutes::numeric, 2) as average_duration_minutes

    from hours
    left join per_hour on hours.pickup_hour = per_hour.pickup_hour

)

select * from hourly

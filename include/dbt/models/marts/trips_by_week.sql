with

trips as (

    select
        pickup_date,
        trip_distance,
        fare_amount

    from {{ ref('stg_trips') }}

),

-- The weeks run from the first pickup day's to the last one's, as in the weekly-average question: ISO weeks from
-- Monday, and a week's days are those between the first and the last pickup day (fewer at either end).
bounds as (

    select
        min(pickup_date) as first_day,
        max(pickup_date) as last_day,
        min(pickup_date) - (extract(isodow from min(pickup_date))::integer - 1) as first_week

    from trips

),

weeks as (

    select
        bounds.first_week + 7 * n as week_start,
        least(bounds.first_week + 7 * n + 6, bounds.last_day)
        - greatest(bounds.first_week + 7 * n, bounds.first_day) + 1 as days

    from bounds
    -- No trips: a null bound, so no weeks.
    cross join generate_series(0, (bounds.last_day - bounds.first_week) / 7) as n

),

per_week as (

    select
        pickup_date - (extract(isodow from pickup_date)::integer - 1) as week_start,
        count(*)::bigint as trips,
        count(distinct pickup_date)::bigint as days_with_trips,
        avg(trip_distance) as average_distance,
        avg(fare_amount) as average_fare,
        sum(fare_amount) as total_fare

    from trips
    group by 1

),

weekly as (

    select
        weeks.week_start,
        weeks.days,
        coalesce(per_week.trips, 0) as trips,
        coalesce(per_week.days_with_trips, 0) as days_with_trips,
        round(coalesce(per_week.trips, 0)::numeric / weeks.days, 4) as average_trips_per_day,
        round(per_week.average_distance::numeric, 4) as average_distance,
        round(per_week.average_fare, 4) as average_fare,
        coalesce(per_week.total_fare, 0)::numeric(18, 2) as total_fare

    from weeks
    left join per_week on weeks.week_start = per_week.week_start

)

select * from weekly

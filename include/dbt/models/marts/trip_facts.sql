{#-
    A view, unlike the other marts: it holds every trip, so copying it on each serve run would cost a full rewrite
    of the largest table, and as a view the map and the bounding-box question use gold.trips' GiST index on
    pickup_geom and its ds partitions.
-#}
{{ config(materialized='view') }}

with

trips as (

    select * from {{ ref('stg_trips') }}

),

facts as (

    select
        trip_id,
        pickup_at,
        dropoff_at,
        pickup_date,
        extract(isodow from pickup_date)::integer as pickup_weekday,
        extract(hour from pickup_at at time zone 'UTC')::integer as pickup_hour,
        passenger_count,
        trip_distance,
        duration_minutes,
        fare_amount,
        total_amount,
        pickup_longitude,
        pickup_latitude,
        dropoff_longitude,
        dropoff_latitude,
        pickup_geom,
        dropoff_geom,
        ds

    from trips

)

select * from facts

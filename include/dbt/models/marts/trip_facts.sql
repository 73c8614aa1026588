{#-
    A view, unlike the other marts: it holds every trip, so copying it on each serve run would cost a full rewrite
    of the largest table, and as a view the map and the bounding-box question use gold.trips' GiST index on
    origin_geom and its ds partitions.
-#}
{{ config(materialized='view') }}

with

trips as (

    select * from {{ ref('stg_trips') }}

),

facts as (

    select
        trip_id,
        region,
        datasource,
        trip_at,
        trip_date,
        week_start,
        extract(isodow from trip_date)::integer as weekday,
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
        ds

    from trips

)

select * from facts

{#-
    The brief's "What regions has the cheap_mobile datasource appeared in?", for every datasource: one row per
    datasource and region it appeared in (filter on datasource = 'cheap_mobile' for the brief's answer);
    include/sql/trips_questions.sql has the same query on gold.trips.
-#}
with

trips as (

    select datasource, region, trip_at from {{ ref('stg_trips') }}

),

appearances as (

    select
        datasource,
        region,
        count(*)::bigint as trips,
        min(trip_at) as first_seen,
        max(trip_at) as last_seen

    from trips
    group by datasource, region

)

select * from appearances

{#-
    The brief's "From the two most commonly appearing regions, which is the latest datasource?": the two regions
    with the most trips (ties by name), each with the datasource of its latest trip (ties by datasource name). The
    first row's region is the most common one; include/sql/trips_questions.sql has the same query on gold.trips.
-#}
with

trips as (

    select region, datasource, trip_at from {{ ref('stg_trips') }}

),

top_regions as (

    select
        region,
        count(*)::bigint as trips

    from trips
    group by region
    order by trips desc, region
    limit 2

),

ranked as (

    select
        trips.region,
        trips.datasource,
        trips.trip_at,
        row_number() over (partition by trips.region order by trips.trip_at desc, trips.datasource) as position

    from trips
    inner join top_regions on trips.region = top_regions.region

),

answer as (

    select
        top_regions.region,
        top_regions.trips,
        row_number() over (order by top_regions.trips desc, top_regions.region)::integer as region_rank,
        ranked.datasource as latest_datasource,
        ranked.trip_at as latest_at

    from top_regions
    inner join ranked on top_regions.region = ranked.region and ranked.position = 1

)

select * from answer

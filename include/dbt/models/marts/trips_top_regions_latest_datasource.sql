{#-
    The brief's "From the two most commonly appearing regions, which is the latest datasource?": the two regions
    with the most trips (ties by name), each with the datasource of its latest trip (ties by datasource name). The
    first row's region is the most common one; include/sql/trips_questions.sql has the same query on gold.trips.
    Read from trips_datasource_regions: a region's trips are its datasources' trips, and its latest trip is the
    last seen of one of them.
-#}
with

appearances as (

    select * from {{ ref('trips_datasource_regions') }}

),

top_regions as (

    select
        region,
        sum(trips)::bigint as trips

    from appearances
    group by region
    order by trips desc, region
    limit 2

),

ranked as (

    select
        region,
        datasource,
        last_seen,
        row_number() over (partition by region order by last_seen desc, datasource) as position

    from appearances

),

answer as (

    select
        top_regions.region,
        top_regions.trips,
        row_number() over (order by top_regions.trips desc, top_regions.region)::integer as region_rank,
        ranked.datasource as latest_datasource,
        ranked.last_seen as latest_at

    from top_regions
    inner join ranked on top_regions.region = ranked.region and ranked.position = 1

)

select * from answer

{#-
    A view, unlike the other marts: it holds every trip, so copying it on each serve run would cost a full rewrite
    of the largest table, and as a view the map and the bounding-box question use gold.trips' GiST index on
    origin_geom and its ds partitions.
-#}
{{ config(materialized='view') }}
{%- set trips = ref('stg_trips') %}

select
    {{ column_names(trips, except=['ds'], through='week_start') | join(',\n    ') }},
    extract(isodow from trip_date)::integer as weekday,
    {{ column_names(trips, except=['ds', 'source_file', 'loaded_at'], after='week_start') | join(',\n    ') }},
    ds

from {{ trips }}

with

hours as (

    select * from {{ ref('stg_tweets_per_hour') }}

),

-- A data interval does not have to line up with UTC days, so two ds slices can both hold tweets of the same hour:
-- their counts are disjoint parts of that hour and add up.
hourly as (

    select
        hour_start,
        sum(tweets)::bigint as tweets,
        max(ds) as ds

    from hours
    group by hour_start

)

select * from hourly

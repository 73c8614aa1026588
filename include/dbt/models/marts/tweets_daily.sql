with

days as (

    select * from {{ ref('stg_tweets_per_day') }}

),

-- As for hours: slices that share a day hold disjoint parts of it.
daily as (

    select
        day,
        sum(tweets)::bigint as tweets

    from days
    group by day

)

select * from daily

-- Both marts count the same tweets from the same slices, so each UTC day's hours must add up to the day.
with

hours_per_day as (

    select
        (hour_start at time zone 'UTC')::date as day,
        sum(tweets) as tweets

    from {{ ref('tweets_hourly') }}
    group by 1

)

select
    coalesce(d.day, h.day) as day,
    d.tweets as daily_tweets,
    h.tweets as hourly_tweets

from {{ ref('tweets_daily') }} as d
full outer join hours_per_day as h on d.day = h.day
where d.tweets is distinct from h.tweets

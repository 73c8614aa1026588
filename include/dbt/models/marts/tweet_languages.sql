with

languages as (

    select * from {{ ref('stg_tweets_by_language') }}

),

per_language as (

    select
        lang,
        sum(tweets)::bigint as tweets

    from languages
    group by lang

),

with_share as (

    select
        lang,
        tweets,
        -- The cast matters: bigint / bigint would truncate every share to 0.
        tweets::numeric / nullif(sum(tweets) over (), 0) as share

    from per_language

)

select * from with_share

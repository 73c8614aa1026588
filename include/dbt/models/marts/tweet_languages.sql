with

per_language as (

    {{ tweets_summed_per(ref('stg_tweets_by_language'), 'lang') }}

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

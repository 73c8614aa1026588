with

source as (

    select * from {{ gold_source('tweets_per_hour', {'ds': 'date', 'hour_start': 'timestamptz', 'tweets': 'bigint', '_loaded_at': 'timestamptz'}) }} as gold_table

),

renamed as (

    select
        ds,
        hour_start,
        tweets,
        _loaded_at as loaded_at

    from source

)

select * from renamed

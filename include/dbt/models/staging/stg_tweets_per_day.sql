with

source as (

    select * from {{ gold_source('tweets_per_day', {'ds': 'date', 'day': 'date', 'tweets': 'bigint', '_loaded_at': 'timestamptz'}) }} as gold_table

),

renamed as (

    select
        ds,
        day,
        tweets,
        _loaded_at as loaded_at

    from source

)

select * from renamed

with

source as (

    select * from {{ gold_source('tweets_by_language', {'ds': 'date', 'lang': 'text', 'tweets': 'bigint', '_loaded_at': 'timestamptz'}) }} as gold_table

),

renamed as (

    select
        ds,
        lang,
        tweets,
        _loaded_at as loaded_at

    from source

)

select * from renamed

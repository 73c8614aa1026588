with

source as (

    select * from {{ source('gold', 'tweets_by_language') }}

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

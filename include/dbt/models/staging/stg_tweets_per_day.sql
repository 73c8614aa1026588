with

source as (

    select * from {{ source('gold', 'tweets_per_day') }}

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

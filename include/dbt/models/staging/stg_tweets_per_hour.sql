with

source as (

    select * from {{ source('gold', 'tweets_per_hour') }}

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

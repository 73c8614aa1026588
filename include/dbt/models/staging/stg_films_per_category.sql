with

source as (

    select * from {{ gold_source('films_per_category', {'ds': 'date', 'category': 'text', 'films': 'bigint', '_loaded_at': 'timestamptz'}) }} as gold_table

),

renamed as (

    select
        ds,
        category,
        films,
        _loaded_at as loaded_at

    from source

)

select * from renamed

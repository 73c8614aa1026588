with

source as (

    select * from {{ gold_source('top_countries', {'ds': 'date', 'country': 'text', 'customers': 'bigint', 'rentals': 'bigint', 'revenue': 'numeric', 'rank': 'integer', '_loaded_at': 'timestamptz'}) }} as gold_table

),

renamed as (

    select
        ds,
        country,
        customers,
        rentals,
        revenue,
        rank as country_rank,
        _loaded_at as loaded_at

    from source

)

select * from renamed

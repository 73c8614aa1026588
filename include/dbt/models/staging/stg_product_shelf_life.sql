with

source as (

    select * from {{ gold_source('product_shelf_life', {
        'ds': 'date', 'shelf_life_days': 'integer', 'readings': 'bigint', 'products': 'bigint',
        'avg_shelf_life_days': 'double precision', '_loaded_at': 'timestamptz'
    }) }} as gold_table

),

renamed as (

    select
        ds,
        shelf_life_days,
        readings,
        products,
        avg_shelf_life_days,
        _loaded_at as loaded_at

    from source

)

select * from renamed
